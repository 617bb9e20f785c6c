// The edge every RPC handler of the suite goes through: authenticate the call, run the handler on
// absl::Status, map that status to gRPC once.
#pragma once

#include <string_view>
#include <utility>

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>
#include <spdlog/spdlog.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/auth/grpc_auth.h"
#include "common/status/grpc_status.h"

namespace contacts {

// Authenticates the call with `role`, runs `fn(identity)` (returning absl::Status) and returns its
// status as gRPC's. Each outcome is logged at debug level with `service`, `method` and the tenant.
template <typename Fn>
grpc::Status HandleCall(const Authenticator& auth, const grpc::ServerContextBase& ctx, std::string_view service,
                        std::string_view method, Role role, Fn&& fn) {
  absl::StatusOr<CallIdentity> identity = AuthenticateCall(auth, ctx, role);
  if (!identity.ok()) return ToGrpcStatus(identity.status());
  const absl::Status status = std::forward<Fn>(fn)(*identity);
  if (status.ok()) {
    SPDLOG_DEBUG("{} {} tenant={} ok", service, method, identity->tenant);
  } else {
    SPDLOG_DEBUG("{} {} tenant={} failed: {}", service, method, identity->tenant, status.ToString());
  }
  return ToGrpcStatus(status);
}

}  // namespace contacts
