#include "tests/testing/service_process.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

#include "fmt/format.h"

extern char** environ;

namespace contacts::test {
namespace {

std::string TempRoot() {
  const char* tmp = std::getenv("TMPDIR");
  return (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
}

bool HasFlag(const std::vector<std::string>& flags, std::string_view name) {
  std::string eq = fmt::format("--{}=", name);
  std::string bare = fmt::format("--{}", name);
  for (const std::string& flag : flags) {
    if (flag == bare || flag.rfind(eq, 0) == 0) return true;
  }
  return false;
}

std::string ReadFileFrom(const std::string& path, size_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(static_cast<std::streamoff>(offset));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void AppendToFile(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << text;
}

}  // namespace

TempDir::TempDir(std::string_view prefix) {
  std::string pattern = fmt::format("{}/{}_XXXXXX", TempRoot(), prefix);
  if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
}

TempDir::~TempDir() {
  if (path_.empty() || keep_) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

ServiceProcess::ServiceProcess(ServiceProcessOptions options)
    : options_(std::move(options)), temp_dir_(options_.binary.empty() ? "service" : options_.binary) {}

absl::StatusOr<std::unique_ptr<ServiceProcess>> ServiceProcess::Start(ServiceProcessOptions options) {
  std::string binary = options.binary;
  if (binary.empty()) return absl::InvalidArgumentError("ServiceProcessOptions.binary is empty");
  std::string path = binary;
  if (binary.find('/') == std::string::npos) {
    const char* bin_dir = std::getenv("CONTACTS_BIN_DIR");
    if (bin_dir == nullptr || *bin_dir == '\0') {
      return absl::FailedPreconditionError("CONTACTS_BIN_DIR is not set (ctest sets it to <build>/bin)");
    }
    path = fmt::format("{}/{}", bin_dir, binary);
  }
  if (access(path.c_str(), X_OK) != 0) {
    return absl::NotFoundError(fmt::format("service binary \"{}\" not found or not executable", path));
  }
  std::unique_ptr<ServiceProcess> process(new ServiceProcess(std::move(options)));
  if (!process->temp_dir_.ok()) {
    return absl::InternalError(fmt::format("mkdtemp under {}: {}", TempRoot(), std::strerror(errno)));
  }
  const char* keep_env = std::getenv("CONTACTS_KEEP_TEST_DIRS");
  if (process->options_.keep_temp_dir || (keep_env != nullptr && std::string_view(keep_env) == "1")) {
    process->temp_dir_.keep();
  }
  process->binary_path_ = path;
  process->data_dir_ = process->temp_dir_.path() + "/data";
  process->log_path_ = process->temp_dir_.path() + "/service.log";
  if (mkdir(process->data_dir_.c_str(), 0700) != 0) {
    return absl::InternalError(fmt::format("mkdir {}: {}", process->data_dir_, std::strerror(errno)));
  }
  absl::Status status = process->Spawn(/*same_port=*/false);
  if (!status.ok()) return status;
  return process;
}

ServiceProcess::~ServiceProcess() {
  if (running() && std::getenv("CONTACTS_TEST_TERMINATE") != nullptr) Terminate(std::chrono::seconds(30)).IgnoreError();
  if (running()) {
    kill(pid_, SIGKILL);
    int wstatus = 0;
    waitpid(pid_, &wstatus, 0);
    pid_ = -1;
  }
}

absl::Status ServiceProcess::Spawn(bool same_port) {
  std::vector<std::string> args = {binary_path_};
  if (!HasFlag(options_.flags, "listen")) {
    args.push_back(fmt::format("--listen=127.0.0.1:{}", same_port ? port_ : 0));
  }
  if (!HasFlag(options_.flags, "metrics_listen")) {
    args.push_back(fmt::format("--metrics_listen=127.0.0.1:{}", same_port ? metrics_port_ : 0));
  }
  if (!HasFlag(options_.flags, "data_dir")) args.push_back("--data_dir=" + data_dir_);
  args.insert(args.end(), options_.flags.begin(), options_.flags.end());

  std::string header = fmt::format("=== {} start:", log_offset_ == 0 && port_ == 0 ? "first" : "re");
  for (const std::string& arg : args) header += " " + arg;
  header += "\n";
  AppendToFile(log_path_, header);
  {
    struct stat st;
    log_offset_ = stat(log_path_.c_str(), &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
  }

  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string key(entry.substr(0, entry.find('=')));
    if (options_.env.count(key) == 0) env_strings.emplace_back(entry);
  }
  for (const auto& [key, value] : options_.env) env_strings.push_back(key + "=" + value);

  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path_.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The child starts with no blocked signals and default SIGTERM / SIGINT / SIGPIPE handling,
  // whatever the test process did, and in its own process group (a terminal's Ctrl-C only hits ctest).
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, binary_path_.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::InternalError(fmt::format("posix_spawn {}: {}", binary_path_, std::strerror(rc)));
  }
  pid_ = pid;
  port_ = 0;
  metrics_port_ = 0;
  channel_.reset();
  return AwaitReady();
}

absl::Status ServiceProcess::AwaitReady() {
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + options_.start_timeout;
  static const std::regex kListening(R"(listening on (\S+):(\d+))");
  static const std::regex kMetrics(R"(metrics on (\S+):(\d+))");
  std::optional<ExitInfo> exited;
  bool found = WaitFor(
      [&] {
        std::string text = ReadFileFrom(log_path_, log_offset_);
        std::smatch match;
        if (std::regex_search(text, match, kListening)) {
          host_ = match[1].str();
          if (host_ == "0.0.0.0") host_ = "127.0.0.1";
          if (host_ == "[::]") host_ = "[::1]";
          port_ = std::stoi(match[2].str());
          std::smatch metrics;
          if (std::regex_search(text, metrics, kMetrics)) metrics_port_ = std::stoi(metrics[2].str());
          return true;
        }
        exited = ReapIfExited();
        return exited.has_value();
      },
      options_.start_timeout);
  if (exited) {
    return absl::FailedPreconditionError(WithLog(fmt::format("{} exited during start (exit code {}, signal {})",
                                                             options_.binary, exited->exit_code, exited->signal)));
  }
  if (!found) {
    Kill().IgnoreError();
    return absl::DeadlineExceededError(WithLog(fmt::format("{} logged no \"listening on\" line within {} ms",
                                                           options_.binary, options_.start_timeout.count())));
  }
  if (!options_.wait_for_health) return absl::OkStatus();
  std::shared_ptr<grpc::Channel> channel = Channel();
  absl::Status last = absl::UnknownError("no health check made");
  bool serving = WaitFor(
      [&] {
        auto remaining =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        exited = ReapIfExited();
        if (exited) return true;
        absl::StatusOr<bool> result = HealthServing(
            channel, "", std::clamp(remaining, std::chrono::milliseconds(1), std::chrono::milliseconds(2000)));
        if (!result.ok()) {
          last = result.status();
          return false;
        }
        last = *result ? absl::OkStatus() : absl::UnavailableError("NOT_SERVING");
        return *result;
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
  if (exited) {
    return absl::FailedPreconditionError(
        WithLog(fmt::format("{} exited before it was SERVING (exit code {}, signal {})", options_.binary,
                            exited->exit_code, exited->signal)));
  }
  if (!serving) {
    Kill().IgnoreError();
    return absl::DeadlineExceededError(
        WithLog(fmt::format("{} on {} not SERVING within {} ms (last: {})", options_.binary, address(),
                            options_.start_timeout.count(), last.ToString())));
  }
  return absl::OkStatus();
}

std::string ServiceProcess::address() const { return fmt::format("{}:{}", host_, port_); }

std::string ServiceProcess::metrics_address() const {
  return metrics_port_ == 0 ? "" : fmt::format("127.0.0.1:{}", metrics_port_);
}

std::shared_ptr<grpc::Channel> ServiceProcess::Channel() {
  if (!channel_) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    channel_ = grpc::CreateCustomChannel(
        address(), options_.channel_credentials ? options_.channel_credentials : grpc::InsecureChannelCredentials(),
        args);
  }
  return channel_;
}

std::optional<ExitInfo> ServiceProcess::ReapIfExited() {
  int wstatus = 0;
  if (waitpid(pid_, &wstatus, WNOHANG) != pid_) return std::nullopt;
  ExitInfo info;
  if (WIFEXITED(wstatus)) info.exit_code = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) info.signal = WTERMSIG(wstatus);
  pid_ = -1;
  return info;
}

absl::StatusOr<ExitInfo> ServiceProcess::Reap(std::chrono::steady_clock::time_point since,
                                              std::chrono::milliseconds timeout) {
  const pid_t pid = pid_;
  std::optional<ExitInfo> info;
  bool done = WaitFor(
      [&] {
        info = ReapIfExited();
        return info.has_value();
      },
      timeout);
  if (!done) return absl::DeadlineExceededError(fmt::format("pid {} still running after {} ms", pid, timeout.count()));
  info->elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since);
  channel_.reset();
  return *info;
}

absl::Status ServiceProcess::Signal(int signo) {
  if (!running()) return absl::FailedPreconditionError("process is not running");
  if (kill(pid_, signo) != 0) return absl::InternalError(fmt::format("kill: {}", std::strerror(errno)));
  return absl::OkStatus();
}

absl::StatusOr<ExitInfo> ServiceProcess::Terminate(std::chrono::milliseconds timeout) {
  auto since = std::chrono::steady_clock::now();
  if (absl::Status s = Signal(SIGTERM); !s.ok()) return s;
  absl::StatusOr<ExitInfo> info = Reap(since, timeout);
  if (!info.ok()) {
    Kill().IgnoreError();
    return absl::DeadlineExceededError(
        WithLog(fmt::format("{} did not exit within {} ms of SIGTERM; killed", options_.binary, timeout.count())));
  }
  return info;
}

absl::StatusOr<ExitInfo> ServiceProcess::Kill() {
  auto since = std::chrono::steady_clock::now();
  if (absl::Status s = Signal(SIGKILL); !s.ok()) return s;
  return Reap(since, std::chrono::seconds(30));
}

absl::StatusOr<ExitInfo> ServiceProcess::WaitForExit(std::chrono::milliseconds timeout) {
  if (!running()) return absl::FailedPreconditionError("process is not running");
  return Reap(std::chrono::steady_clock::now(), timeout);
}

absl::Status ServiceProcess::Restart(bool same_port) {
  if (running()) {
    absl::StatusOr<ExitInfo> info = Terminate();
    if (!info.ok()) return info.status();
  }
  return Spawn(same_port);
}

std::string ServiceProcess::log() const { return ReadFileFrom(log_path_, 0); }

std::string ServiceProcess::WithLog(std::string_view message) const {
  return fmt::format("{}\n--- log {} ---\n{}", message, log_path_, log());
}

absl::StatusOr<Suite> StartSuite(const std::vector<std::string>& flags) {
  Suite suite;
  auto store = ServiceProcess::Start({.binary = "contact-store", .flags = flags});
  if (!store.ok()) return store.status();
  suite.store = *std::move(store);
  std::vector<std::string> client_flags = flags;
  client_flags.push_back("--store=" + suite.store->address());
  auto importer = ServiceProcess::Start({.binary = "import-processor", .flags = client_flags});
  if (!importer.ok()) return importer.status();
  suite.importer = *std::move(importer);
  auto audience = ServiceProcess::Start({.binary = "audience-query", .flags = client_flags});
  if (!audience.ok()) return audience.status();
  suite.audience = *std::move(audience);
  return suite;
}

std::vector<std::string> ReflectionListServices(std::shared_ptr<grpc::Channel> channel) {
  using grpc::reflection::v1alpha::ServerReflection;
  using grpc::reflection::v1alpha::ServerReflectionRequest;
  using grpc::reflection::v1alpha::ServerReflectionResponse;
  auto stub = ServerReflection::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&ctx);
  ServerReflectionRequest request;
  request.set_list_services("*");
  std::vector<std::string> names;
  if (!stream->Write(request)) return names;
  stream->WritesDone();
  ServerReflectionResponse response;
  while (stream->Read(&response)) {
    for (const auto& service : response.list_services_response().service()) names.push_back(service.name());
  }
  stream->Finish().ok();
  return names;
}

absl::StatusOr<std::string> ReflectionFileContainingSymbol(std::shared_ptr<grpc::Channel> channel,
                                                           const std::string& symbol) {
  using grpc::reflection::v1alpha::ServerReflection;
  using grpc::reflection::v1alpha::ServerReflectionRequest;
  using grpc::reflection::v1alpha::ServerReflectionResponse;
  auto stub = ServerReflection::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&ctx);
  ServerReflectionRequest request;
  request.set_file_containing_symbol(symbol);
  stream->Write(request);
  stream->WritesDone();
  ServerReflectionResponse response;
  bool got = stream->Read(&response);
  for (ServerReflectionResponse extra; stream->Read(&extra);) {
  }
  grpc::Status status = stream->Finish();
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        fmt::format("reflection: {}", status.error_message()));
  }
  if (!got) return absl::InternalError("reflection sent no response");
  if (response.has_error_response()) {
    return absl::Status(static_cast<absl::StatusCode>(response.error_response().error_code()),
                        fmt::format("reflection: {}", response.error_response().error_message()));
  }
  const auto& files = response.file_descriptor_response().file_descriptor_proto();
  if (files.empty()) return absl::InternalError("reflection returned no file descriptor");
  google::protobuf::FileDescriptorProto file;
  if (!file.ParseFromString(files.Get(0))) return absl::InternalError("reflection returned a malformed descriptor");
  return file.name();
}

absl::StatusOr<bool> HealthServing(std::shared_ptr<grpc::Channel> channel, const std::string& service,
                                   std::chrono::milliseconds timeout) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&ctx, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

absl::StatusOr<std::string> HttpGet(const std::string& host_port, const std::string& path,
                                    std::chrono::milliseconds timeout) {
  size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError(fmt::format("\"{}\" is not HOST:PORT", host_port));
  std::string host = host_port.substr(0, colon);
  std::string port = host_port.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &result); rc != 0) {
    return absl::UnavailableError(fmt::format("resolve {}: {}", host_port, gai_strerror(rc)));
  }
  int fd = socket(result->ai_family, result->ai_socktype | SOCK_CLOEXEC, result->ai_protocol);
  if (fd < 0) {
    freeaddrinfo(result);
    return absl::UnavailableError(fmt::format("socket: {}", std::strerror(errno)));
  }
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int rc = connect(fd, result->ai_addr, result->ai_addrlen);
  freeaddrinfo(result);
  if (rc != 0) {
    int err = errno;
    close(fd);
    return absl::UnavailableError(fmt::format("connect {}: {}", host_port, std::strerror(err)));
  }
  std::string request = fmt::format("GET {} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n", path, host_port);
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      int err = errno;
      close(fd);
      return absl::UnavailableError(fmt::format("send to {}: {}", host_port, std::strerror(err)));
    }
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buffer[8192];
  while (true) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return absl::UnavailableError(fmt::format("read from {}: {}", host_port, std::strerror(err)));
    }
    reply.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  size_t header_end = reply.find("\r\n\r\n");
  if (header_end == std::string::npos || reply.rfind("HTTP/", 0) != 0) {
    return absl::InternalError(fmt::format("malformed HTTP reply from {}", host_port));
  }
  std::string status_line = reply.substr(0, reply.find("\r\n"));
  int code = 0;
  if (std::sscanf(status_line.c_str(), "HTTP/%*s %d", &code) != 1) {
    return absl::InternalError(fmt::format("malformed HTTP status line \"{}\"", status_line));
  }
  if (code != 200) return absl::UnknownError(fmt::format("GET {}{}: {}", host_port, path, status_line));
  return reply.substr(header_end + 4);
}

std::optional<double> MetricValue(std::string_view exposition, std::string_view name,
                                  const std::map<std::string, std::string>& labels) {
  std::optional<double> total;
  size_t pos = 0;
  while (pos < exposition.size()) {
    size_t end = exposition.find('\n', pos);
    if (end == std::string_view::npos) end = exposition.size();
    std::string_view line = exposition.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line.front() == '#') continue;
    if (line.substr(0, name.size()) != name) continue;
    std::string_view rest = line.substr(name.size());
    std::string_view label_text;
    if (!rest.empty() && rest.front() == '{') {
      size_t close = rest.find('}');
      if (close == std::string_view::npos) continue;
      label_text = rest.substr(1, close - 1);
      rest = rest.substr(close + 1);
    }
    if (rest.empty() || rest.front() != ' ') continue;  // a longer metric name sharing the prefix
    bool all = true;
    for (const auto& [key, value] : labels) {
      std::string wanted = fmt::format("{}=\"{}\"", key, value);
      // Match whole pairs: at the start or after a comma.
      size_t at = label_text.find(wanted);
      while (at != std::string_view::npos && at != 0 && label_text[at - 1] != ',') {
        at = label_text.find(wanted, at + 1);
      }
      if (at == std::string_view::npos) {
        all = false;
        break;
      }
    }
    if (!all) continue;
    std::string number(
        rest.substr(1, rest.find(' ', 1) == std::string_view::npos ? std::string_view::npos : rest.find(' ', 1) - 1));
    char* parse_end = nullptr;
    double value = std::strtod(number.c_str(), &parse_end);
    if (parse_end == number.c_str()) continue;
    total = total.value_or(0) + value;
  }
  return total;
}

int RunShell(const std::string& command, std::string* output) {
  output->clear();
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) output->append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string BinaryPath(std::string_view binary) {
  const char* bin_dir = std::getenv("CONTACTS_BIN_DIR");
  return fmt::format("{}/{}", bin_dir == nullptr ? "." : bin_dir, binary);
}

}  // namespace contacts::test
