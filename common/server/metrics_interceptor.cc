#include "common/server/metrics_interceptor.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <shared_mutex>
#include <string>

#include <google/protobuf/descriptor.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace contacts {
namespace {

using RpcType = grpc::experimental::ServerRpcInfo::Type;

// Go middleware's default buckets, plus 30 s, 60 s and 300 s for long streaming exports.
const prometheus::Histogram::BucketBoundaries& Buckets() {
  static const auto* const kBuckets =
      new prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
  return *kBuckets;
}

struct Families {
  prometheus::Family<prometheus::Counter>* started;
  prometheus::Family<prometheus::Counter>* handled;
  prometheus::Family<prometheus::Histogram>* seconds;
};

const char* TypeName(RpcType type) {
  switch (type) {
    case RpcType::UNARY:
      return "unary";
    case RpcType::CLIENT_STREAMING:
      return "client_stream";
    case RpcType::SERVER_STREAMING:
      return "server_stream";
    case RpcType::BIDI_STREAMING:
      return "bidi_stream";
  }
  return "unknown";
}

// Splits "/pkg.Service/Method" into service and method.
void SplitMethod(std::string_view name, std::string* service, std::string* method) {
  if (!name.empty() && name.front() == '/') name.remove_prefix(1);
  size_t slash = name.find('/');
  if (slash == std::string_view::npos) {
    *service = "unknown";
    *method = name.empty() ? "unknown" : std::string(name);
    return;
  }
  *service = std::string(name.substr(0, slash));
  *method = std::string(name.substr(slash + 1));
}

// Whether the server has this method: its service is registered and, unless the service is
// hand-written (no descriptor compiled in), the service's descriptor has the method.
bool IsServedMethod(const RegisteredServices& services, const std::string& service, const std::string& method) {
  if (!services.Has(service)) return false;
  const google::protobuf::ServiceDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
  return descriptor == nullptr || descriptor->FindMethodByName(method) != nullptr;
}

// The series of one method, looked up once. prometheus-cpp's Family::Add builds a label map and
// hashes it under the family's lock, which took three such lookups per call before.
class MethodSeries {
 public:
  MethodSeries(const Families& families, std::string service, std::string method, RpcType type, bool open_ended)
      : families_(families),
        service_(std::move(service)),
        method_(std::move(method)),
        type_(TypeName(type)),
        open_ended_(open_ended),
        started_(&families.started->Add({{"grpc_service", service_}, {"grpc_method", method_}, {"grpc_type", type_}})),
        seconds_(&families.seconds->Add({{"grpc_service", service_}, {"grpc_method", method_}, {"grpc_type", type_}},
                                        Buckets())) {}

  bool open_ended() const { return open_ended_; }
  void Started() { started_->Increment(); }
  void Handled(grpc::StatusCode code, double seconds) {
    HandledCounter(code).Increment();
    seconds_->Observe(seconds);
  }

 private:
  static constexpr size_t kCodes = 17;  // OK (0) .. UNAUTHENTICATED (16)

  // Added on a code's first use, so /metrics lists only the codes a method has returned.
  prometheus::Counter& HandledCounter(grpc::StatusCode code) {
    size_t index = static_cast<size_t>(code);
    if (index >= kCodes) index = grpc::StatusCode::UNKNOWN;  // GrpcCodeName calls it "Unknown" too
    prometheus::Counter* counter = handled_[index].load(std::memory_order_acquire);
    if (counter == nullptr) {
      // Family::Add returns the same counter to racing callers, so storing either is right.
      counter = &families_.handled->Add({{"grpc_service", service_},
                                         {"grpc_method", method_},
                                         {"grpc_type", type_},
                                         {"grpc_code", std::string(GrpcCodeName(code))}});
      handled_[index].store(counter, std::memory_order_release);
    }
    return *counter;
  }

  const Families families_;
  const std::string service_;
  const std::string method_;
  const std::string type_;
  const bool open_ended_;
  prometheus::Counter* const started_;
  prometheus::Histogram* const seconds_;
  std::array<std::atomic<prometheus::Counter*>, kCodes> handled_{};
};

// The series of every method called so far. Names the server does not have share one series per
// RPC type labelled "unknown", so made-up names cannot grow /metrics without bound.
class SeriesTable {
 public:
  SeriesTable(const Families& families, const RegisteredServices* services)
      : families_(families), services_(services) {}

  MethodSeries& For(const char* full_method, RpcType type) {
    std::string_view name = full_method == nullptr ? "" : full_method;
    const absl::string_view key(name.data(), name.size());  // Debian's Abseil has its own string_view
    {
      std::shared_lock lock(mu_);
      if (auto it = methods_.find(key); it != methods_.end()) return *it->second;
    }
    std::string service, method;
    SplitMethod(name, &service, &method);
    const bool served = services_ != nullptr && IsServedMethod(*services_, service, method);
    std::unique_lock lock(mu_);
    std::unique_ptr<MethodSeries>& series =
        served ? methods_[key] : unknown_[static_cast<size_t>(type) % unknown_.size()];
    if (series == nullptr) {
      series = served ? std::make_unique<MethodSeries>(families_, std::move(service), std::move(method), type,
                                                       IsOpenEndedMethod(name))
                      : std::make_unique<MethodSeries>(families_, "unknown", "unknown", type, false);
    }
    return *series;
  }

 private:
  const Families families_;
  const RegisteredServices* const services_;
  std::shared_mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<MethodSeries>> methods_;
  std::array<std::unique_ptr<MethodSeries>, 4> unknown_;  // by RPC type
};

// One per call. Records the status at PRE_SEND_STATUS; a call that ends without sending one (the
// client went away first) is counted as Canceled when the interceptor is destroyed.
class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(SeriesTable& table, InFlightCalls* in_flight, grpc::experimental::ServerRpcInfo* info)
      : series_(table.For(info->method(), info->type())), start_(std::chrono::steady_clock::now()) {
    if (in_flight != nullptr && !series_.open_ended()) {
      in_flight_ = in_flight;
      in_flight_->Begin();
    }
    series_.Started();
  }

  ~MetricsInterceptor() override {
    if (!recorded_) Record(grpc::StatusCode::CANCELLED);
    if (in_flight_ != nullptr) in_flight_->End();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (!recorded_ &&
        methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      Record(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  void Record(grpc::StatusCode code) {
    recorded_ = true;
    series_.Handled(code, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

  MethodSeries& series_;
  InFlightCalls* in_flight_ = nullptr;
  std::chrono::steady_clock::time_point start_;
  bool recorded_ = false;
};

class MetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  MetricsInterceptorFactory(prometheus::Registry& registry, const RegisteredServices* services,
                            InFlightCalls* in_flight)
      : in_flight_(in_flight),
        table_(Families{&prometheus::BuildCounter()
                             .Name("grpc_server_started_total")
                             .Help("Total number of RPCs started on the server.")
                             .Register(registry),
                        &prometheus::BuildCounter()
                             .Name("grpc_server_handled_total")
                             .Help("Total number of RPCs completed on the server, regardless of success or failure.")
                             .Register(registry),
                        &prometheus::BuildHistogram()
                             .Name("grpc_server_handling_seconds")
                             .Help("Histogram of response latency (seconds) of gRPC that had been application-level "
                                   "handled by the server.")
                             .Register(registry)},
               services) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(table_, in_flight_, info);
  }

 private:
  InFlightCalls* in_flight_;
  SeriesTable table_;
};

}  // namespace

std::string_view GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "Canceled";
    case grpc::StatusCode::UNKNOWN:
      return "Unknown";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "InvalidArgument";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DeadlineExceeded";
    case grpc::StatusCode::NOT_FOUND:
      return "NotFound";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "AlreadyExists";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PermissionDenied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "ResourceExhausted";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FailedPrecondition";
    case grpc::StatusCode::ABORTED:
      return "Aborted";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OutOfRange";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "Unimplemented";
    case grpc::StatusCode::INTERNAL:
      return "Internal";
    case grpc::StatusCode::UNAVAILABLE:
      return "Unavailable";
    case grpc::StatusCode::DATA_LOSS:
      return "DataLoss";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "Unauthenticated";
    default:
      return "Unknown";
  }
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeMetricsInterceptorFactory(
    prometheus::Registry& registry, const RegisteredServices* services, InFlightCalls* in_flight) {
  return std::make_unique<MetricsInterceptorFactory>(registry, services, in_flight);
}

void RegisteredServices::Set(const std::vector<std::string>& names) {
  std::lock_guard<std::mutex> lock(set_mu_);
  if (names_owner_ != nullptr) return;  // readers may hold the first list: it stays
  names_owner_ = std::make_unique<const std::vector<std::string>>(names);
  names_.store(names_owner_.get(), std::memory_order_release);
}

bool RegisteredServices::Has(std::string_view service) const {
  const std::vector<std::string>* names = names_.load(std::memory_order_acquire);
  return names != nullptr && std::find(names->begin(), names->end(), service) != names->end();
}

void InFlightCalls::Begin() {
  std::lock_guard<std::mutex> lock(mu_);
  ++count_;
}

void InFlightCalls::End() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--count_ == 0) zero_.notify_all();
}

int64_t InFlightCalls::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

bool InFlightCalls::WaitForZero(std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  return zero_.wait_until(lock, deadline, [this] { return count_ == 0; });
}

bool IsOpenEndedMethod(std::string_view full_method) {
  return full_method == "/grpc.health.v1.Health/Watch" ||
         full_method == "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo" ||
         full_method == "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
}

}  // namespace contacts
