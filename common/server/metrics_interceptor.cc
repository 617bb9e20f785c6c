#include "common/server/metrics_interceptor.h"

#include <chrono>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace contacts {
namespace {

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

const char* TypeName(grpc::experimental::ServerRpcInfo::Type type) {
  using Type = grpc::experimental::ServerRpcInfo::Type;
  switch (type) {
    case Type::UNARY:
      return "unary";
    case Type::CLIENT_STREAMING:
      return "client_stream";
    case Type::SERVER_STREAMING:
      return "server_stream";
    case Type::BIDI_STREAMING:
      return "bidi_stream";
  }
  return "unknown";
}

// Splits "/pkg.Service/Method" into service and method.
void SplitMethod(const char* full, std::string* service, std::string* method) {
  std::string_view name = full == nullptr ? "" : full;
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

// One per call. Records the status at PRE_SEND_STATUS; a call that ends without sending one (the
// client went away first) is counted as Canceled when the interceptor is destroyed.
class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(const Families& families, InFlightCalls* in_flight, grpc::experimental::ServerRpcInfo* info)
      : families_(families), start_(std::chrono::steady_clock::now()) {
    if (in_flight != nullptr && !IsOpenEndedMethod(info->method() == nullptr ? "" : info->method())) {
      in_flight_ = in_flight;
      in_flight_->Begin();
    }
    SplitMethod(info->method(), &service_, &method_);
    type_ = TypeName(info->type());
    families_.started->Add({{"grpc_service", service_}, {"grpc_method", method_}, {"grpc_type", type_}}).Increment();
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
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    families_.handled
        ->Add({{"grpc_service", service_},
               {"grpc_method", method_},
               {"grpc_type", type_},
               {"grpc_code", std::string(GrpcCodeName(code))}})
        .Increment();
    families_.seconds->Add({{"grpc_service", service_}, {"grpc_method", method_}, {"grpc_type", type_}}, Buckets())
        .Observe(seconds);
  }

  Families families_;
  InFlightCalls* in_flight_ = nullptr;
  std::chrono::steady_clock::time_point start_;
  std::string service_;
  std::string method_;
  std::string type_;
  bool recorded_ = false;
};

class MetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  MetricsInterceptorFactory(prometheus::Registry& registry, InFlightCalls* in_flight)
      : in_flight_(in_flight),
        families_{&prometheus::BuildCounter()
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
                       .Register(registry)} {}

  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(families_, in_flight_, info);
  }

 private:
  InFlightCalls* in_flight_;
  Families families_;
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
    prometheus::Registry& registry, InFlightCalls* in_flight) {
  return std::make_unique<MetricsInterceptorFactory>(registry, in_flight);
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
