#include "common/server/server_runner.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <thread>

#include <google/protobuf/descriptor.h>
#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/impl/server_initializer.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <sys/socket.h>

#include "grpc/health/v1/health.pb.h"

#include "absl/strings/numbers.h"
#include "common/server/metrics_interceptor.h"
#include "fmt/format.h"
#include "prometheus/exposer.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "spdlog/spdlog.h"

namespace contacts {
namespace {

// Self-pipe for SIGTERM / SIGINT: the handler only write()s one byte (async-signal-safe); the
// byte is never read, so every waiter in the process sees the pipe readable.
int g_signal_pipe[2] = {-1, -1};
std::once_flag g_signal_once;

void OnShutdownSignal(int /*signo*/) {
  int saved_errno = errno;
  char byte = 1;
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &byte, 1);
  errno = saved_errno;
}

// The SIGTERM / SIGINT actions before InstallSignalHandlers(), to put back if Start() fails.
struct PreviousSignalActions {
  struct sigaction term;
  struct sigaction interrupt;
};

absl::Status InstallSignalHandlers(PreviousSignalActions* previous) {
  absl::Status status;
  std::call_once(g_signal_once, [&status] {
    if (pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
      status = absl::InternalError(fmt::format("pipe2: {}", std::strerror(errno)));
    }
  });
  if (!status.ok()) return status;
  if (g_signal_pipe[1] < 0) return absl::InternalError("signal pipe unavailable");
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = OnShutdownSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (sigaction(SIGTERM, &action, &previous->term) != 0) {
    return absl::InternalError(fmt::format("sigaction: {}", std::strerror(errno)));
  }
  if (sigaction(SIGINT, &action, &previous->interrupt) != 0) {
    int error = errno;
    sigaction(SIGTERM, &previous->term, nullptr);
    return absl::InternalError(fmt::format("sigaction: {}", std::strerror(error)));
  }
  return absl::OkStatus();
}

void RestoreSignalHandlers(const PreviousSignalActions& previous) {
  sigaction(SIGTERM, &previous.term, nullptr);
  sigaction(SIGINT, &previous.interrupt, nullptr);
}

void RestoreDefaultSignalHandlers() {
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
}

// Records the names of all services the server registered (ours, health, reflection), which
// grpc::Service does not expose. ServerBuilder calls Finish() after the server has started.
class ServiceNamesPlugin : public grpc::ServerBuilderPlugin {
 public:
  explicit ServiceNamesPlugin(std::vector<std::string>* out) : out_(out) {}
  std::string name() override { return "contacts_service_names"; }
  void InitServer(grpc::ServerInitializer* /*si*/) override {}
  void Finish(grpc::ServerInitializer* si) override { *out_ = *si->GetServiceList(); }
  void ChangeArguments(const std::string& /*name*/, void* /*value*/) override {}

 private:
  std::vector<std::string>* out_;
};

class ServiceNamesOption : public grpc::ServerBuilderOption {
 public:
  explicit ServiceNamesOption(std::vector<std::string>* out) : out_(out) {}
  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->push_back(std::make_unique<ServiceNamesPlugin>(out_));
  }

 private:
  std::vector<std::string>* out_;
};

// Opens and closes one TCP connection to host:port (ignoring errors).
void ConnectOnce(const std::string& host, int port) {
  std::string name = host;
  if (name.size() >= 2 && name.front() == '[') name = name.substr(1, name.size() - 2);
  if (name.empty() || name == "0.0.0.0") name = "127.0.0.1";
  if (name == "::") name = "::1";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* result = nullptr;
  if (getaddrinfo(name.c_str(), std::to_string(port).c_str(), &hints, &result) != 0) return;
  int fd = socket(result->ai_family, result->ai_socktype | SOCK_CLOEXEC, result->ai_protocol);
  if (fd >= 0) {
    connect(fd, result->ai_addr, result->ai_addrlen);
    close(fd);
  }
  freeaddrinfo(result);
}

// Civetweb's listener thread notices a stop request only when its poll() returns, which without
// traffic takes up to 2 s. Connecting to it wakes the poll at once, so keep doing that until the
// exposer is gone.
void StopExposer(std::unique_ptr<prometheus::Exposer> exposer, const std::string& host, int port) {
  if (!exposer) return;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread waker([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!done) {
      lock.unlock();
      ConnectOnce(host, port);
      lock.lock();
      cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return done; });
    }
  });
  exposer.reset();
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  waker.join();
}

// Why host:port cannot be bound, from a bind() of our own ("Address already in use"), for the error
// message when gRPC only says it failed. Empty if the bind works now or the name does not resolve.
std::string ProbeBindError(const std::string& host, int port) {
  std::string name = host;
  if (name.size() >= 2 && name.front() == '[') name = name.substr(1, name.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* result = nullptr;
  if (int rc = getaddrinfo(name.c_str(), std::to_string(port).c_str(), &hints, &result); rc != 0) {
    return gai_strerror(rc);
  }
  std::string error;
  int fd = socket(result->ai_family, result->ai_socktype | SOCK_CLOEXEC, result->ai_protocol);
  if (fd < 0) {
    error = std::strerror(errno);
  } else {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, result->ai_addr, result->ai_addrlen) != 0) error = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(result);
  return error;
}

bool MetricsDisabled(const std::string& metrics_listen) { return metrics_listen.empty() || metrics_listen == "off"; }

// gRPC's built-in health service is invisible to reflection (grpc/grpc#36665) because its
// descriptor is not in the generated pool. Linking our compiled copy of health.proto and touching
// it here puts it there, so reflection can resolve grpc.health.v1.Health.
void RegisterHealthDescriptor() {
  const google::protobuf::Descriptor* request = grpc::health::v1::HealthCheckRequest::descriptor();
  const google::protobuf::FileDescriptor* file =
      google::protobuf::DescriptorPool::generated_pool()->FindFileByName("grpc/health/v1/health.proto");
  if (request == nullptr || file == nullptr || file->FindServiceByName("Health") == nullptr) {
    spdlog::warn("grpc.health.v1 descriptors missing; reflection will not describe the health service");
  }
}

}  // namespace

absl::Status ParseHostPort(std::string_view address, std::string* host, int* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(fmt::format("address \"{}\" is not HOST:PORT", address));
  }
  std::string_view host_part = address.substr(0, colon);
  std::string_view port_part = address.substr(colon + 1);
  if (host_part.front() == '[' ? host_part.back() != ']' : host_part.find(':') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        fmt::format("address \"{}\": IPv6 hosts need brackets, e.g. [::1]:50051", address));
  }
  int parsed = 0;
  if (port_part.empty() || port_part.find_first_not_of("0123456789") != std::string_view::npos ||
      !absl::SimpleAtoi(absl::string_view(port_part.data(), port_part.size()), &parsed) || parsed > 65535) {
    return absl::InvalidArgumentError(
        fmt::format("address \"{}\": port \"{}\" is not a number from 0 to 65535", address, port_part));
  }
  *host = std::string(host_part);
  *port = parsed;
  return absl::OkStatus();
}

ServerRunner::ServerRunner(ServerOptions options)
    : options_(std::move(options)), registry_(std::make_shared<prometheus::Registry>()) {
  if (pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    wake_pipe_[0] = wake_pipe_[1] = -1;
  }
}

ServerRunner::~ServerRunner() {
  if (server_) {
    Drain();
  }
  for (int fd : wake_pipe_) {
    if (fd >= 0) close(fd);
  }
}

void ServerRunner::AddService(grpc::Service* service) {
  if (started_.load()) {
    spdlog::critical("{}: AddService after Start is a programming error", options_.service_name);
    std::abort();
  }
  services_.push_back(service);
}

prometheus::Registry& ServerRunner::metrics() { return *registry_; }

std::string ServerRunner::address() const { return fmt::format("{}:{}", host_, port_); }

absl::Status ServerRunner::Start() {
  if (started_.exchange(true)) return absl::FailedPreconditionError("ServerRunner::Start called twice");
  const std::string& name = options_.service_name;
  int requested_port = 0;
  if (absl::Status s = ParseHostPort(options_.listen, &host_, &requested_port); !s.ok()) {
    return absl::InvalidArgumentError(fmt::format("--listen: {}", std::string(s.message())));
  }
  if (options_.max_message_bytes <= 0 || options_.max_message_bytes > INT32_MAX) {
    return absl::InvalidArgumentError(
        fmt::format("--max_message_bytes={} must be between 1 and {}", options_.max_message_bytes, INT32_MAX));
  }
  if (options_.grace_period_ms < 0) {
    return absl::InvalidArgumentError(
        fmt::format("--grace_period_ms={} must not be negative", options_.grace_period_ms));
  }
  if (options_.deadline_cap_ms <= 0) {
    return absl::InvalidArgumentError(fmt::format("--deadline_cap_ms={} must be positive", options_.deadline_cap_ms));
  }
  if (wake_pipe_[0] < 0) return absl::InternalError("could not create the shutdown pipe");

  prometheus::BuildGauge()
      .Name("contacts_build_info")
      .Help("Always 1; labels name the service.")
      .Register(*registry_)
      .Add({{"service", name}})
      .Set(1);

  // Metrics first, so a bad --metrics_listen fails before the gRPC port is taken.
  if (!MetricsDisabled(options_.metrics_listen)) {
    int metrics_requested = 0;
    if (absl::Status s = ParseHostPort(options_.metrics_listen, &metrics_host_, &metrics_requested); !s.ok()) {
      return absl::InvalidArgumentError(fmt::format("--metrics_listen: {}", std::string(s.message())));
    }
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(options_.metrics_listen, 2);
    } catch (const std::exception& e) {
      std::string reason = ProbeBindError(metrics_host_, metrics_requested);
      return absl::UnavailableError(fmt::format("{}: cannot serve metrics on {}: {}", name, options_.metrics_listen,
                                                reason.empty() ? e.what() : reason));
    }
    exposer_->RegisterCollectable(registry_);
    std::vector<int> ports = exposer_->GetListeningPorts();
    metrics_port_ = ports.empty() ? metrics_requested : ports.front();
    spdlog::info("{} metrics on {}:{}", name, metrics_host_, metrics_port_);
  }

  // Before the server exists, so a SIGTERM during start is not lost (or fatal) either.
  PreviousSignalActions previous_signal_actions;
  if (absl::Status s = InstallSignalHandlers(&previous_signal_actions); !s.ok()) return s;

  RegisterHealthDescriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(
      options_.listen, options_.credentials ? options_.credentials : grpc::InsecureServerCredentials(), &selected_port);
  for (grpc::Service* service : services_) builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options_.max_message_bytes));
  // Keepalive: ping idle clients every 30 s so dead peers and idle NAT entries are noticed, accept
  // client pings (even without calls) no more often than every 10 s.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  // Without this, gRPC may share the port with another process (SO_REUSEPORT) and a second
  // instance would "start" on a port already in use.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetOption(std::make_unique<ServiceNamesOption>(&service_names_));
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(MakeMetricsInterceptorFactory(*registry_, &registered_services_, &in_flight_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  server_ = builder.BuildAndStart();
  if (server_ == nullptr || selected_port == 0) {
    server_.reset();
    // WaitForShutdownSignal() will not run: SIGTERM / SIGINT must act as they did before Start().
    RestoreSignalHandlers(previous_signal_actions);
    StopExposer(std::move(exposer_), metrics_host_, metrics_port_);
    metrics_port_ = 0;
    std::string reason = ProbeBindError(host_, requested_port);
    return absl::UnavailableError(fmt::format("{}: cannot listen on {}: {}", name, options_.listen,
                                              reason.empty() ? "gRPC could not bind it (see its log above)" : reason));
  }
  port_ = selected_port;
  registered_services_.Set(service_names_);

  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health != nullptr) {
    health->SetServingStatus("", true);
    for (const std::string& service : service_names_) health->SetServingStatus(service, true);
  }
  spdlog::info("{} listening on {}", name, address());
  return absl::OkStatus();
}

void ServerRunner::WaitForShutdownSignal() {
  if (!server_) return;
  pollfd fds[2] = {{g_signal_pipe[0], POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
  bool by_signal = false;
  while (true) {
    int n = poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      spdlog::error("{}: poll failed ({}); shutting down", options_.service_name, std::strerror(errno));
      break;
    }
    if (fds[0].revents != 0) {
      by_signal = true;
      break;
    }
    if (fds[1].revents != 0) break;
  }
  if (by_signal) {
    // A second SIGTERM / SIGINT during the drain kills the process immediately.
    RestoreDefaultSignalHandlers();
  }
  spdlog::info("{} shutting down ({}); grace period {} ms", options_.service_name, by_signal ? "signal" : "Shutdown()",
               options_.grace_period_ms);
  Drain();
}

void ServerRunner::Shutdown() {
  if (wake_pipe_[1] < 0) return;
  char byte = 1;
  [[maybe_unused]] ssize_t n = write(wake_pipe_[1], &byte, 1);
}

// gRPC's Server::Shutdown(deadline) waits not only for in-flight calls but also for every client
// connection to close after its GOAWAY, and an idle gRPC C++ client may not read the GOAWAY for
// seconds (its backup poller runs every 5 s), so a quiet server would use the whole grace period.
// So: stop accepting calls (Shutdown in a helper thread), wait until the calls we counted have
// finished, then close the remaining idle connections with grpc_server_cancel_all_calls. A call
// that reaches the server in the same instant as the shutdown may be cancelled; clients see
// NOT_SERVING before that and retry elsewhere.
void ServerRunner::Drain() {
  std::call_once(drain_once_, [this] {
    if (!server_) return;
    const auto start = std::chrono::steady_clock::now();
    const auto shutdown_deadline = AddMillisSaturated(std::chrono::system_clock::now(), options_.grace_period_ms);
    const auto drain_deadline = AddMillisSaturated(start, options_.grace_period_ms);
    if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
      health->SetServingStatus(false);  // every registered name, so Watch streams see NOT_SERVING
      health->Shutdown();               // then ends Watch streams and freezes the status
    }
    // Stop /metrics while the calls drain.
    std::thread stop_metrics([this, exposer = std::move(exposer_)]() mutable {
      StopExposer(std::move(exposer), metrics_host_, metrics_port_);
    });

    std::mutex mu;
    std::condition_variable cv;
    bool stopped = false;
    std::thread shutdown([&] {
      server_->Shutdown(shutdown_deadline);
      std::lock_guard<std::mutex> lock(mu);
      stopped = true;
      cv.notify_all();
    });
    if (in_flight_.WaitForZero(drain_deadline)) {
      std::unique_lock<std::mutex> lock(mu);
      // Repeat in case the first cancel ran before the shutdown thread had begun.
      while (!cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return stopped; })) {
        grpc_server_cancel_all_calls(server_->c_server());
      }
    }
    spdlog::debug("{}: {} calls in flight; waiting for the server to stop", options_.service_name, in_flight_.count());
    shutdown.join();
    spdlog::debug("{}: server stopped accepting and finished calls", options_.service_name);
    server_->Wait();
    stop_metrics.join();
    spdlog::debug("{}: metrics endpoint stopped", options_.service_name);
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    spdlog::info("{} stopped after {} ms", options_.service_name, elapsed.count());
  });
}

std::chrono::system_clock::time_point EffectiveDeadline(const grpc::ServerContextBase& ctx, int64_t deadline_cap_ms) {
  return std::min(ctx.deadline(), AddMillisSaturated(std::chrono::system_clock::now(), deadline_cap_ms));
}

bool CallCancelledOrExpired(const grpc::ServerContextBase& ctx, std::chrono::system_clock::time_point deadline) {
  return ctx.IsCancelled() || std::chrono::system_clock::now() >= deadline;
}

absl::Status StatusOfStoppedCall(absl::Status stopped, const grpc::ServerContextBase& ctx,
                                 std::chrono::system_clock::time_point deadline) {
  if (absl::IsCancelled(stopped) && !ctx.IsCancelled() && std::chrono::system_clock::now() >= deadline) {
    return absl::DeadlineExceededError(stopped.message());
  }
  return stopped;
}

}  // namespace contacts
