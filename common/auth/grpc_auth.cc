#include "common/auth/grpc_auth.h"

#include <optional>
#include <string_view>

#include "absl/strings/match.h"

namespace contacts {
namespace {

std::optional<std::string_view> Header(const grpc::ServerContextBase& ctx, std::string_view name) {
  const auto& metadata = ctx.client_metadata();
  auto it = metadata.find(grpc::string_ref(name.data(), name.size()));
  if (it == metadata.end()) return std::nullopt;
  return std::string_view(it->second.data(), it->second.size());
}

}  // namespace

absl::StatusOr<CallIdentity> AuthenticateCall(const Authenticator& auth, const grpc::ServerContextBase& ctx,
                                              Role required) {
  std::optional<std::string_view> key = Header(ctx, kApiKeyHeader);
  if (!key) {
    if (std::optional<std::string_view> authorization = Header(ctx, kAuthorizationHeader)) {
      // The scheme is case-insensitive (RFC 7235 section 2.1): "bearer <key>" is sent by some clients.
      constexpr std::string_view kBearer = "bearer ";
      if (authorization->size() > kBearer.size() &&
          absl::EqualsIgnoreCase(absl::string_view(authorization->data(), kBearer.size()),
                                 absl::string_view(kBearer.data(), kBearer.size()))) {
        key = authorization->substr(kBearer.size());
      }
    }
  }
  return auth.Authenticate(key, Header(ctx, kTenantHeader), required);
}

void ForwardCredentials(const grpc::ServerContextBase& incoming, grpc::ClientContext* outgoing) {
  for (const char* name : {kApiKeyHeader, kAuthorizationHeader, kTenantHeader}) {
    if (std::optional<std::string_view> value = Header(incoming, name)) {
      outgoing->AddMetadata(name, std::string(*value));
    }
  }
}

}  // namespace contacts
