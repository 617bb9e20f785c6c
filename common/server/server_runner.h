// ServerRunner: the gRPC server bootstrap every service shares (sync API). It turns on health
// checking and reflection (including reflection of grpc.health.v1.Health itself, grpc/grpc#36665),
// sets message size limits and keepalive, counts every call in Prometheus metrics served on a
// separate HTTP port, and shuts down gracefully on SIGTERM / SIGINT: health goes NOT_SERVING, new
// calls are refused, in-flight calls get the grace period to finish.
//
// Typical main():
//   ServerRunner runner(options);
//   runner.AddService(&my_service);
//   if (auto s = runner.Start(); !s.ok()) { spdlog::critical("{}", s.ToString()); return 1; }
//   runner.WaitForShutdownSignal();
//   return 0;
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_context.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/server/metrics_interceptor.h"

namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace contacts {

struct ServerOptions {
  std::string service_name;              // e.g. "contact-store"; used in logs and contacts_build_info.
  std::string listen;                    // HOST:PORT (or [v6]:PORT); port 0 picks a free one.
  std::string metrics_listen;            // HOST:PORT of /metrics; "" or "off": no metrics endpoint.
  int64_t grace_period_ms = 10000;       // Default: 10 s for in-flight calls after SIGTERM.
  int64_t max_message_bytes = 64 << 20;  // Default: 64 MiB, both directions.
  int64_t deadline_cap_ms = 300000;      // Default: 5 min; see EffectiveDeadline().
  // Of the gRPC listener (not /metrics). Default: null, plaintext. See MakeServerCredentials().
  std::shared_ptr<grpc::ServerCredentials> credentials;
};

// Splits "HOST:PORT" / "[V6]:PORT" into host (brackets kept) and port 0..65535.
// Errors: INVALID_ARGUMENT naming the address.
absl::Status ParseHostPort(std::string_view address, std::string* host, int* port);

class ServerRunner {
 public:
  explicit ServerRunner(ServerOptions options);
  ~ServerRunner();
  ServerRunner(const ServerRunner&) = delete;
  ServerRunner& operator=(const ServerRunner&) = delete;

  // Registers a service (not owned; must outlive the runner). REQUIRES: before Start().
  void AddService(grpc::Service* service);

  // The registry exposed on metrics_listen; services add their own families to it.
  prometheus::Registry& metrics();

  // Builds and starts the server and the metrics endpoint, then marks the overall health ("")
  // and every registered service SERVING. Logs "<service> listening on HOST:PORT" (the real port)
  // and "<service> metrics on HOST:PORT" when metrics are on. Installs the SIGTERM / SIGINT
  // handlers used by WaitForShutdownSignal(): from then on those signals no longer end the process
  // by themselves, so call WaitForShutdownSignal() promptly after a successful Start(). A Start()
  // that fails after installing them (e.g. the port is taken) puts the previous handlers back.
  // Errors: INVALID_ARGUMENT for a malformed address or option; UNAVAILABLE when an address
  // cannot be bound (e.g. already in use); FAILED_PRECONDITION if called twice.
  absl::Status Start();

  // The bound gRPC port (the real one when 0 was asked); 0 before Start().
  int port() const { return port_; }
  // The bound metrics port; 0 when metrics are off or before Start().
  int metrics_port() const { return metrics_port_; }
  // "HOST:PORT" actually bound, for clients in tests.
  std::string address() const;

  // Blocks until SIGTERM or SIGINT arrives or Shutdown() is called, then: health NOT_SERVING for
  // every service, then stops accepting calls and lets in-flight calls run until now + grace
  // (after that they are cancelled), then stops the metrics endpoint and returns. After the first
  // signal, a second SIGTERM / SIGINT kills the process at once (default action).
  // Returns immediately if Start() did not succeed.
  void WaitForShutdownSignal();

  // Wakes WaitForShutdownSignal(). Thread-safe, idempotent, may be called before it.
  void Shutdown();

  // The full names of the services the server answers (after Start()), e.g.
  // "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection" and the added ones.
  std::vector<std::string> service_names() const { return service_names_; }

 private:
  void Drain();

  ServerOptions options_;
  std::vector<grpc::Service*> services_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  RegisteredServices registered_services_;  // for the metrics' labels; outlives server_
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::string> service_names_;
  InFlightCalls in_flight_;
  int port_ = 0;
  int metrics_port_ = 0;
  std::string host_;
  std::string metrics_host_;
  int wake_pipe_[2] = {-1, -1};
  std::atomic<bool> started_{false};
  std::once_flag drain_once_;
};

// `now` + `ms`, saturating at the clock's largest time point: a cap or grace period too large for
// the clock (an operator's "unlimited", e.g. INT64_MAX ms) would otherwise overflow into the past.
// A non-positive `ms` gives `now`.
template <typename TimePoint>
TimePoint AddMillisSaturated(TimePoint now, int64_t ms) {
  if (ms <= 0) return now;
  const auto headroom = std::chrono::duration_cast<std::chrono::milliseconds>(TimePoint::max() - now);
  if (ms >= headroom.count()) return TimePoint::max();
  return now + std::chrono::milliseconds(ms);
}

// The deadline a handler should honour: the earlier of the client's deadline and now + cap. A cap
// beyond what the clock can represent (e.g. INT64_MAX) means no cap; a cap <= 0 gives now.
std::chrono::system_clock::time_point EffectiveDeadline(const grpc::ServerContextBase& ctx, int64_t deadline_cap_ms);

// True when the client cancelled the call (or it expired on the client's side) or `deadline` has
// passed. Long loops call it every few iterations and stop with CANCELLED / DEADLINE_EXCEEDED.
bool CallCancelledOrExpired(const grpc::ServerContextBase& ctx, std::chrono::system_clock::time_point deadline);

// What a caller is told when a long operation stopped with CANCELLED because
// CallCancelledOrExpired(ctx, deadline) said so: DEADLINE_EXCEEDED, with the same message, when
// the client did not cancel but `deadline` passed (it may be the server's cap, earlier than the
// client's own deadline). Any other status, or a call the client cancelled, is returned as is.
absl::Status StatusOfStoppedCall(absl::Status stopped, const grpc::ServerContextBase& ctx,
                                 std::chrono::system_clock::time_point deadline);

}  // namespace contacts
