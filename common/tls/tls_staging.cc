#include "common/tls/tls_staging.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "fmt/format.h"

namespace contacts {
namespace {

constexpr char kCurrent[] = "current";
constexpr char kOwnerLock[] = "owner.lock";  // flock'ed by the folder's process while it lives

std::string GenerationName(int generation) { return fmt::format("gen-{}", generation); }

bool IsWritableFolder(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && ::access(path.c_str(), W_OK | X_OK) == 0;
}

// Writes `content` to a new file at `path` (mode 0600) with the modification time `mtime`.
absl::Status WriteFile(const std::string& path, const std::string& content, std::time_t mtime) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return absl::InternalError(fmt::format("cannot create \"{}\": {}", path, std::strerror(errno)));
  std::string_view left = content;
  int error = 0;
  while (!left.empty() && error == 0) {
    const ssize_t written = ::write(fd, left.data(), left.size());
    if (written < 0 && errno != EINTR) error = errno;
    if (written > 0) left.remove_prefix(static_cast<size_t>(written));
  }
  // The umask may have taken bits off 0600: set it exactly. The mtime last, after every write.
  const timespec times[2] = {{.tv_sec = mtime, .tv_nsec = 0}, {.tv_sec = mtime, .tv_nsec = 0}};
  if (error == 0 && (::fchmod(fd, 0600) != 0 || ::futimens(fd, times) != 0)) error = errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) return absl::InternalError(fmt::format("cannot write \"{}\": {}", path, std::strerror(error)));
  return absl::OkStatus();
}

// Whether a staging folder has an owner: a process holding the flock of its kOwnerLock. Its
// name's pid cannot say: processes in other PID namespaces (containers sharing /dev/shm or a /tmp
// volume, each its own pid 1) reuse the same pids. nullopt for a folder without the file: one made
// before owner locks were (its pid is all there is to go by).
std::optional<bool> HasOwner(const std::filesystem::path& folder) {
  const int fd = ::open((folder / kOwnerLock).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    return true;  // unreadable: not ours to judge
  }
  // A lock of another open file description conflicts even within one process, so this process's
  // own folders answer "owned" too.
  const bool owned = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // drops the lock if taken
  return owned;
}

// Removes the folders in `parent` that processes of this user which ended without removing them
// (killed, crashed) left: a folder nobody holds the owner lock of. A folder made before owner locks
// goes by the pid in its name: stale when that process is gone, or is this one (a container's
// service runs as pid 1 again after a restart).
void RemoveStaleFolders(const std::string& parent) {
  std::error_code ec;
  std::vector<std::filesystem::path> stale;
  for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
    std::string name = entry.path().filename().string();
    const bool hidden = name.rfind('.', 0) == 0;  // being made, or its process ended before the rename
    if (hidden) name.erase(0, 1);
    int pid = 0;
    char suffix[8] = {};
    if (std::sscanf(name.c_str(), "contacts-tls-%d-%7s", &pid, suffix) != 2 || pid <= 0 || std::strlen(suffix) != 6) {
      continue;
    }
    struct stat st {};
    if (::lstat(entry.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) continue;
    const std::optional<bool> owned = HasOwner(entry.path());
    if (!owned.has_value() && hidden) continue;  // its lock may be moments away
    if (owned.has_value() ? !*owned : (pid == ::getpid() || (::kill(pid, 0) != 0 && errno == ESRCH))) {
      stale.push_back(entry.path());
    }
  }
  for (const std::filesystem::path& path : stale) {
    std::filesystem::remove_all(path, ec);
    if (!ec) spdlog::info("removed {}, TLS files staged by a process that ended without removing them", path.string());
  }
}

}  // namespace

std::vector<std::string> TlsStagingFolder::DefaultParents() {
  std::vector<std::string> parents;
  if (IsWritableFolder("/dev/shm")) parents.push_back("/dev/shm");
  const char* tmpdir = std::getenv("TMPDIR");
  if (tmpdir != nullptr && *tmpdir != '\0') parents.push_back(tmpdir);
  if (std::find(parents.begin(), parents.end(), "/tmp") == parents.end()) parents.push_back("/tmp");
  return parents;
}

absl::StatusOr<std::unique_ptr<TlsStagingFolder>> TlsStagingFolder::Create(const std::vector<std::string>& parents) {
  std::vector<std::string> failures;
  for (const std::string& parent : parents) {
    RemoveStaleFolders(parent);
    // Made under a hidden name and renamed once its owner lock is held, so that another process's
    // RemoveStaleFolders never finds it named and unlocked.
    std::string hidden = fmt::format("{}/.contacts-tls-{}-XXXXXX", parent, ::getpid());
    if (::mkdtemp(hidden.data()) == nullptr) {
      failures.push_back(fmt::format("in \"{}\": {}", parent, std::strerror(errno)));
      continue;
    }
    const std::filesystem::path hidden_path(hidden);
    const std::string path = (hidden_path.parent_path() / hidden_path.filename().string().substr(1)).string();
    int lock_fd = -1;
    std::string failure;
    // mkdtemp makes it 0700 less the umask: exactly 0700, so that the service can use it.
    if (::chmod(hidden.c_str(), 0700) != 0) {
      failure = fmt::format("chmod: {}", std::strerror(errno));
    } else if (lock_fd = ::open((hidden_path / kOwnerLock).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
               lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      failure = fmt::format("{}: {}", kOwnerLock, std::strerror(errno));
    } else if (::renameat2(AT_FDCWD, hidden.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
      failure = fmt::format("rename: {}", std::strerror(errno));
    }
    if (!failure.empty()) {
      failures.push_back(fmt::format("in \"{}\": {}", parent, failure));
      if (lock_fd >= 0) ::close(lock_fd);
      std::error_code ec;
      std::filesystem::remove_all(hidden_path, ec);
      continue;
    }
    return std::unique_ptr<TlsStagingFolder>(new TlsStagingFolder(path, lock_fd));
  }
  return absl::FailedPreconditionError(
      fmt::format("cannot create the private folder for the TLS files gRPC reads: {}",
                  failures.empty() ? "no folder to create it in" : fmt::format("{}", fmt::join(failures, "; "))));
}

TlsStagingFolder::~TlsStagingFolder() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) spdlog::warn("cannot remove the TLS staging folder \"{}\": {}", path_, ec.message());
  ::close(owner_lock_fd_);  // after the removal: until then the folder is owned
}

std::string TlsStagingFolder::CurrentPath(std::string_view name) const {
  return fmt::format("{}/{}/{}", path_, kCurrent, name);
}

absl::Status TlsStagingFolder::WriteGeneration(const std::string& dir, const std::map<std::string, std::string>& files,
                                               std::time_t mtime) {
  for (const auto& [name, content] : files) {
    if (absl::Status written = WriteFile(dir + "/" + name, content, mtime); !written.ok()) return written;
  }
  return absl::OkStatus();
}

absl::Status TlsStagingFolder::Stage(const std::map<std::string, std::string>& files,
                                     const std::function<absl::Status(const std::string& generation_dir)>& verify) {
  const int generation = generation_ + 1;
  const std::string name = GenerationName(generation);
  const std::string dir = fmt::format("{}/{}", path_, name);
  const std::time_t mtime = std::max(std::time(nullptr), last_mtime_ + 1);
  if (::mkdir(dir.c_str(), 0700) != 0) {
    return absl::InternalError(fmt::format("cannot create \"{}\": {}", dir, std::strerror(errno)));
  }
  absl::Status staged = WriteGeneration(dir, files, mtime);
  if (staged.ok()) staged = verify(dir);
  const std::string link = fmt::format("{}/{}", path_, kCurrent);
  const std::string new_link = link + ".new";
  if (staged.ok()) {
    ::unlink(new_link.c_str());  // left by a failed swap
    if (::symlink(name.c_str(), new_link.c_str()) != 0 || ::rename(new_link.c_str(), link.c_str()) != 0) {
      staged = absl::InternalError(fmt::format("cannot point \"{}\" at {}: {}", link, name, std::strerror(errno)));
    }
  }
  std::error_code ec;
  if (!staged.ok()) {
    std::filesystem::remove_all(dir, ec);
    return staged;
  }
  generation_ = generation;
  last_mtime_ = mtime;
  std::vector<std::filesystem::path> older;
  for (const auto& entry : std::filesystem::directory_iterator(path_, ec)) {
    const std::string entry_name = entry.path().filename().string();
    if (entry_name.rfind("gen-", 0) == 0 && entry_name != name) older.push_back(entry.path());
  }
  for (const std::filesystem::path& dir_path : older) std::filesystem::remove_all(dir_path, ec);
  return absl::OkStatus();
}

}  // namespace contacts
