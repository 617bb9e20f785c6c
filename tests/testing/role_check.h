// Checks which role each RPC of a running service lets through, over the wire: every method of
// the service (as its descriptor lists them, so a new RPC cannot be forgotten) is called through a
// generic stub with an empty request, once without a key and once with each role's key. The
// servers check the key before they read the request, so an empty one is enough to see the
// decision: PERMISSION_DENIED (or UNAUTHENTICATED) means refused, any other answer let through.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/grpcpp.h>

namespace contacts::test {

// API keys of one tenant, one per role.
struct RoleKeys {
  std::string reader;
  std::string writer;
  std::string admin;
};

// The keys WriteRoleKeyFile writes, all of tenant "acme".
inline const RoleKeys kAcmeRoleKeys = {.reader = "reader-key", .writer = "writer-key", .admin = "admin-key"};

// Writes an API key file holding kAcmeRoleKeys into the folder `dir`; returns its path.
std::string WriteRoleKeyFile(const std::string& dir);

// One line per disagreement between the server and `lowest_role` (method name -> "reader",
// "writer" or "admin": the lowest role that may call it): a role refused that should pass, or let
// through that should not; a call without a key answered other than UNAUTHENTICATED; a method of
// the service missing from `lowest_role`, or named there but not in the service. Empty when they
// all agree.
std::vector<std::string> RoleMismatches(const std::shared_ptr<grpc::Channel>& channel, std::string_view service,
                                        const std::map<std::string, std::string>& lowest_role, const RoleKeys& keys);

}  // namespace contacts::test
