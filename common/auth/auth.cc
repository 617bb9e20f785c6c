#include "common/auth/auth.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "fmt/format.h"

namespace contacts {
namespace {

// Compares in time that depends only on the lengths, not on where the strings differ, so that a
// caller cannot learn a key byte by byte from response times.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// The status for a failed open() of the keys file, with the system's reason: the code tells the
// operator what to fix (the path, the file's mode or owner, or something else about the path).
absl::Status OpenError(int error, const std::string& path) {
  std::string message = fmt::format("cannot open API keys file \"{}\": {}", path, std::strerror(error));
  switch (error) {
    case ENOENT:
    case ENOTDIR:  // a folder in the path is a file: nothing is at that path
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case EISDIR:
    case ENAMETOOLONG:
      return absl::InvalidArgumentError(message);
    default:  // ELOOP, EMFILE, EIO, ...: the path or the system must be fixed first
      return absl::FailedPreconditionError(message);
  }
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kReader:
      return "reader";
    case Role::kWriter:
      return "writer";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

absl::StatusOr<Role> ParseRole(std::string_view text) {
  std::string lower = absl::AsciiStrToLower(std::string(text));
  if (lower == "reader") return Role::kReader;
  if (lower == "writer") return Role::kWriter;
  if (lower == "admin") return Role::kAdmin;
  return absl::InvalidArgumentError(fmt::format("role \"{}\" is not one of reader, writer, admin", text));
}

bool IsValidTenantName(std::string_view tenant) {
  if (tenant.empty() || tenant.size() > 63) return false;
  for (size_t i = 0; i < tenant.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(tenant[i]);
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '-'))) return false;
  }
  return true;
}

Authenticator Authenticator::Disabled() { return Authenticator(); }

absl::StatusOr<std::string> ReadApiKeysFile(const std::string& path) {
  // A folder opens and only fails at read() (EISDIR): name the usual slip instead (the mounted
  // Secret's folder given instead of the file in it).
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(
        fmt::format("API keys file \"{}\" is a directory: give the file in it (in the deploy, .../api_keys)", path));
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return OpenError(errno, path);
  std::string text;
  char chunk[4096];
  while (true) {
    ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int read_errno = errno;
      ::close(fd);
      return absl::DataLossError(
          fmt::format("error reading API keys file \"{}\": {}", path, std::strerror(read_errno)));
    }
    if (n == 0) break;
    text.append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

Authenticator Authenticator::WithKeys(std::shared_ptr<const KeyList> keys) {
  Authenticator auth;
  auth.enabled_ = true;
  auth.slot_ = std::make_unique<KeySlot>();
  absl::MutexLock lock(&auth.slot_->mu);
  auth.slot_->keys = std::move(keys);
  return auth;
}

absl::StatusOr<Authenticator> Authenticator::FromFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadApiKeysFile(path);
  if (!text.ok()) return text.status();
  return FromTextNamed(*text, path);
}

absl::StatusOr<Authenticator> Authenticator::FromText(std::string_view text) { return FromTextNamed(text, "API keys"); }

absl::StatusOr<Authenticator> Authenticator::FromTextNamed(std::string_view text, std::string_view source) {
  absl::StatusOr<std::shared_ptr<const KeyList>> keys = Parse(text, source);
  if (!keys.ok()) return keys.status();
  return WithKeys(*std::move(keys));
}

absl::Status Authenticator::ReplaceKeys(std::string_view text, std::string_view source) {
  if (!enabled_) return absl::FailedPreconditionError("auth is off: API keys cannot be loaded at run time");
  absl::StatusOr<std::shared_ptr<const KeyList>> keys = Parse(text, source);
  if (!keys.ok()) return keys.status();
  absl::MutexLock lock(&slot_->mu);
  slot_->keys = *std::move(keys);
  return absl::OkStatus();
}

std::shared_ptr<const Authenticator::KeyList> Authenticator::keys() const {
  if (slot_ == nullptr) return nullptr;
  absl::ReaderMutexLock lock(&slot_->mu);
  return slot_->keys;
}

size_t Authenticator::key_count() const {
  std::shared_ptr<const KeyList> list = keys();
  return list == nullptr ? 0 : list->size();
}

absl::StatusOr<std::shared_ptr<const Authenticator::KeyList>> Authenticator::Parse(std::string_view text,
                                                                                   std::string_view source) {
  auto keys = std::make_shared<KeyList>();
  // A UTF-8 byte order mark (Windows editors write one) is not part of the first key.
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());
  int line_number = 0;
  for (absl::string_view raw : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_number;
    std::string_view line = Trim(std::string_view(raw.data(), raw.size()));
    if (line.empty() || line.front() == '#') continue;
    std::vector<std::string> fields =
        absl::StrSplit(absl::string_view(line.data(), line.size()), absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 3) {
      return absl::InvalidArgumentError(fmt::format(
          "{} line {}: expected \"<api key> <tenant> <role>\", found {} fields", source, line_number, fields.size()));
    }
    if (!IsValidTenantName(fields[1])) {
      return absl::InvalidArgumentError(fmt::format("{} line {}: tenant \"{}\" must match [a-z0-9][a-z0-9_-]{{0,62}}",
                                                    source, line_number, fields[1]));
    }
    absl::StatusOr<Role> role = ParseRole(fields[2]);
    if (!role.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{} line {}: {}", source, line_number, std::string(role.status().message())));
    }
    for (const KeyEntry& existing : *keys) {
      if (existing.key == fields[0]) {
        return absl::InvalidArgumentError(
            fmt::format("{} line {}: duplicate API key (same key as an earlier line)", source, line_number));
      }
    }
    keys->push_back(KeyEntry{fields[0], CallIdentity{fields[1], *role}});
  }
  if (keys->empty()) {
    return absl::InvalidArgumentError(fmt::format("{}: no API keys found", source));
  }
  return std::shared_ptr<const KeyList>(std::move(keys));
}

absl::StatusOr<CallIdentity> Authenticator::Authenticate(std::optional<std::string_view> api_key,
                                                         std::optional<std::string_view> tenant_header,
                                                         Role required) const {
  if (!enabled_) {
    if (!tenant_header) return CallIdentity{std::string(kDefaultTenant), Role::kAdmin};
    if (!IsValidTenantName(*tenant_header)) {
      return absl::InvalidArgumentError("x-tenant must match [a-z0-9][a-z0-9_-]{0,62}");
    }
    return CallIdentity{std::string(*tenant_header), Role::kAdmin};
  }
  if (!api_key || api_key->empty()) {
    return absl::UnauthenticatedError("missing API key: send it in the x-api-key metadata header");
  }
  // Look at every entry whatever matches, so timing does not tell which entry a key is close to.
  const std::shared_ptr<const KeyList> list = keys();
  const KeyEntry* match = nullptr;
  for (const KeyEntry& entry : *list) {
    if (ConstantTimeEquals(entry.key, *api_key)) match = &entry;
  }
  if (match == nullptr) {
    return absl::UnauthenticatedError("unknown API key");
  }
  const CallIdentity& identity = match->identity;
  if (tenant_header && *tenant_header != identity.tenant) {
    return absl::PermissionDeniedError(
        fmt::format("x-tenant names another tenant than the API key's (\"{}\")", identity.tenant));
  }
  if (static_cast<int>(identity.role) < static_cast<int>(required)) {
    return absl::PermissionDeniedError(
        fmt::format("this call needs role {}; the API key has role {}", RoleName(required), RoleName(identity.role)));
  }
  return identity;
}

}  // namespace contacts
