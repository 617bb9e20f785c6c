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
#include <set>
#include <utility>

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "fmt/format.h"

namespace contacts {
namespace {

constexpr char kCurrent[] = "current";

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

// The names of the folders this process made and has not removed yet: not stale, though named with its pid.
absl::Mutex live_folders_mu(absl::kConstInit);
std::set<std::string>& LiveFolders() ABSL_EXCLUSIVE_LOCKS_REQUIRED(live_folders_mu) {
  static auto* folders = new std::set<std::string>();
  return *folders;
}

// Removes the folders in `parent` that processes of this user which ended without removing them
// (killed, crashed) left: a folder's name carries the pid of its process; when that process is
// gone, or is this one (a container's service runs as pid 1 again after a restart), it is stale.
void RemoveStaleFolders(const std::string& parent) {
  std::error_code ec;
  std::vector<std::filesystem::path> stale;
  for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    int pid = 0;
    char suffix[8] = {};
    if (std::sscanf(name.c_str(), "contacts-tls-%d-%7s", &pid, suffix) != 2 || pid <= 0 || std::strlen(suffix) != 6) {
      continue;
    }
    struct stat st {};
    if (::lstat(entry.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) continue;
    if (pid == ::getpid()) {
      absl::MutexLock lock(&live_folders_mu);
      if (LiveFolders().count(name) == 0) stale.push_back(entry.path());
    } else if (::kill(pid, 0) != 0 && errno == ESRCH) {
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
    std::string path = fmt::format("{}/contacts-tls-{}-XXXXXX", parent, ::getpid());
    if (::mkdtemp(path.data()) == nullptr) {
      failures.push_back(fmt::format("in \"{}\": {}", parent, std::strerror(errno)));
      continue;
    }
    // mkdtemp makes it 0700 less the umask: exactly 0700, so that the service can use it.
    if (::chmod(path.c_str(), 0700) != 0) {
      failures.push_back(fmt::format("in \"{}\": chmod: {}", parent, std::strerror(errno)));
      ::rmdir(path.c_str());
      continue;
    }
    {
      absl::MutexLock lock(&live_folders_mu);
      LiveFolders().insert(std::filesystem::path(path).filename().string());
    }
    return std::unique_ptr<TlsStagingFolder>(new TlsStagingFolder(std::move(path)));
  }
  return absl::FailedPreconditionError(
      fmt::format("cannot create the private folder for the TLS files gRPC reads: {}",
                  failures.empty() ? "no folder to create it in" : fmt::format("{}", fmt::join(failures, "; "))));
}

TlsStagingFolder::~TlsStagingFolder() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) spdlog::warn("cannot remove the TLS staging folder \"{}\": {}", path_, ec.message());
  absl::MutexLock lock(&live_folders_mu);
  LiveFolders().erase(std::filesystem::path(path_).filename().string());
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
