// Server interceptor that counts gRPC calls in Prometheus, with the metric and label names of
// grpc-ecosystem's Prometheus middleware so that its dashboards work unchanged:
//   grpc_server_started_total{grpc_service, grpc_method, grpc_type}
//   grpc_server_handled_total{grpc_service, grpc_method, grpc_type, grpc_code}
//   grpc_server_handling_seconds{grpc_service, grpc_method, grpc_type}  (histogram)
// grpc_service is the full service name ("grpc.health.v1.Health"), grpc_method the short method
// name ("Check"), grpc_type unary / client_stream / server_stream / bidi_stream, grpc_code the
// status name as Go spells it ("OK", "InvalidArgument", ...). A call to a method the server does not
// have (a client can send any name) is counted as grpc_service="unknown", grpc_method="unknown", so
// made-up names cannot grow /metrics without bound.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/status.h>

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace contacts {

// "OK", "Canceled", "Unknown", "InvalidArgument", ... (Go's codes.Code.String()).
std::string_view GrpcCodeName(grpc::StatusCode code);

// Counts the calls a server is handling, so a graceful shutdown can stop waiting as soon as the
// last one finished. Thread-safe.
class InFlightCalls {
 public:
  void Begin();
  void End();
  int64_t count() const;
  // Blocks until the count is zero or `deadline`; returns whether it reached zero.
  bool WaitForZero(std::chrono::steady_clock::time_point deadline) const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable zero_;
  int64_t count_ = 0;
};

// True for calls that never end on their own (grpc.health.v1.Health/Watch and reflection
// streams): they are not counted as in flight, so an open Watch cannot hold up a shutdown.
bool IsOpenEndedMethod(std::string_view full_method);

// The services a server registered, which gRPC tells only once the server has started (health is
// registered by Start). Set once; read by every call. Thread-safe.
class RegisteredServices {
 public:
  // The full names ("grpc.health.v1.Health"). Calls before this count as "unknown".
  void Set(const std::vector<std::string>& names);
  bool Has(std::string_view service) const;

 private:
  std::mutex set_mu_;  // only for Set, which may not race with itself
  std::unique_ptr<const std::vector<std::string>> names_owner_;
  std::atomic<const std::vector<std::string>*> names_{nullptr};
};

// A factory for ServerBuilder::experimental().SetInterceptorCreators. A method counts as known
// when its service is in `services` and, if that service's descriptor is compiled in (every
// service but hand-written ones), the descriptor has the method. The metric families are
// registered in `registry` when the factory is made; the registry, `services` and `in_flight` (if
// not null) must outlive the server.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeMetricsInterceptorFactory(
    prometheus::Registry& registry, const RegisteredServices* services, InFlightCalls* in_flight = nullptr);

}  // namespace contacts
