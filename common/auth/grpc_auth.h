// Reads API key and tenant from a gRPC call's metadata and checks them with an Authenticator; and
// forwards a caller's credentials when a service calls contact-store on its behalf.
//
// Metadata read: "x-api-key: <key>" or "authorization: Bearer <key>" (x-api-key wins if both),
// and "x-tenant: <tenant>".
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"
#include "common/auth/auth.h"

namespace contacts {

inline constexpr char kApiKeyHeader[] = "x-api-key";
inline constexpr char kAuthorizationHeader[] = "authorization";
inline constexpr char kTenantHeader[] = "x-tenant";

// Errors as Authenticator::Authenticate: UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT.
// An "authorization" header that is not "Bearer <key>" (the scheme in any case) counts as a
// missing key.
absl::StatusOr<CallIdentity> AuthenticateCall(const Authenticator& auth, const grpc::ServerContextBase& ctx,
                                              Role required);

// Copies x-api-key, authorization and x-tenant from the incoming call to `outgoing`.
void ForwardCredentials(const grpc::ServerContextBase& incoming, grpc::ClientContext* outgoing);

}  // namespace contacts
