// Authentication of gRPC calls by API key: each key maps to one tenant and one role. This part is
// free of gRPC types so it can be unit tested directly; common/auth/grpc_auth.h reads the keys from
// a call's metadata.
//
// With auth off (Authenticator::Disabled(), the local default), every call is admin of the tenant
// named by the "x-tenant" header, or of "default".
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace contacts {

// Ordered: admin > writer > reader. A call needing `writer` is allowed for writer and admin.
enum class Role : int { kReader = 1, kWriter = 2, kAdmin = 3 };

// "reader", "writer", "admin".
std::string_view RoleName(Role role);
// Parses "reader" / "writer" / "admin" (case-insensitive). Errors: INVALID_ARGUMENT.
absl::StatusOr<Role> ParseRole(std::string_view text);

// The tenant name used when auth is off and the call names none.
inline constexpr std::string_view kDefaultTenant = "default";

// True for names matching [a-z0-9][a-z0-9_-]{0,62}.
bool IsValidTenantName(std::string_view tenant);

struct CallIdentity {
  std::string tenant;
  Role role = Role::kReader;
};

class Authenticator {
 public:
  // Auth off: tenant from x-tenant if present (must be a valid tenant name, else
  // INVALID_ARGUMENT), else "default"; role admin.
  static Authenticator Disabled();

  // Reads a key file: one "<api key> <tenant> <role>" per line, fields separated by spaces or
  // tabs; '#' starts a comment line; blank lines are ignored, and so is a UTF-8 byte order mark
  // at the start of the file.
  // Errors, each naming the file and, for open/read failures, the system's reason (strerror):
  //   NOT_FOUND: nothing at the path (ENOENT, or ENOTDIR: a folder in the path is a file);
  //   PERMISSION_DENIED: the file or a folder above it may not be read (EACCES, EPERM);
  //   INVALID_ARGUMENT: the path is a directory or too long; also, naming the line, a malformed
  //     line, a bad tenant, an unknown role, a duplicate key (the key itself is never put in a
  //     message), or a file with no keys;
  //   FAILED_PRECONDITION: any other open failure (a symlink loop, too many open files, ...);
  //   DATA_LOSS: reading failed after the open (an I/O error).
  static absl::StatusOr<Authenticator> FromFile(const std::string& path);
  static absl::StatusOr<Authenticator> FromText(std::string_view text);

  // Replaces every key with those of `text` (a key file's content; `source` names it in errors),
  // for a key file changed while the service runs (ApiKeysReloader). Calls authenticated before
  // the swap keep their identity; calls after it see only the new keys. On error (as FromText's,
  // INVALID_ARGUMENT naming the line) the keys in use stay as they were. Thread-safe with
  // Authenticate. FAILED_PRECONDITION when auth is off: it cannot be turned on at run time.
  absl::Status ReplaceKeys(std::string_view text, std::string_view source);

  // api_key: the "x-api-key" metadata value (or the key from "authorization: Bearer <key>");
  // tenant_header: the "x-tenant" value, if any.
  // Errors: UNAUTHENTICATED for a missing or unknown key; PERMISSION_DENIED if the key's role is
  // below `required` or x-tenant names another tenant than the key's; INVALID_ARGUMENT for a
  // malformed x-tenant when auth is off.
  absl::StatusOr<CallIdentity> Authenticate(std::optional<std::string_view> api_key,
                                            std::optional<std::string_view> tenant_header, Role required) const;

  bool enabled() const { return enabled_; }
  size_t key_count() const;

 private:
  struct KeyEntry {
    std::string key;
    CallIdentity identity;
  };
  using KeyList = std::vector<KeyEntry>;
  // The keys in use: replaced whole, so a call reads one consistent list while a reload swaps in
  // the next. Behind a pointer so that the Authenticator stays movable.
  struct KeySlot {
    mutable absl::Mutex mu;
    std::shared_ptr<const KeyList> keys ABSL_GUARDED_BY(mu);
  };

  static absl::StatusOr<std::shared_ptr<const KeyList>> Parse(std::string_view text, std::string_view source);
  static absl::StatusOr<Authenticator> FromTextNamed(std::string_view text, std::string_view source);
  static Authenticator WithKeys(std::shared_ptr<const KeyList> keys);
  std::shared_ptr<const KeyList> keys() const;

  bool enabled_ = false;
  std::unique_ptr<KeySlot> slot_;  // null when auth is off
};

// The content of an API keys file, with FromFile's errors (NOT_FOUND, PERMISSION_DENIED,
// INVALID_ARGUMENT for a directory, FAILED_PRECONDITION, DATA_LOSS), each naming the file.
absl::StatusOr<std::string> ReadApiKeysFile(const std::string& path);

}  // namespace contacts
