#include "services/contact_store/free_space_guard.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>
#include <sys/statvfs.h>

namespace contacts::store {

absl::StatusOr<uint64_t> FreeSpaceGuard::StatvfsFreeBytes(const std::string& path) {
  struct statvfs volume {};
  if (::statvfs(path.c_str(), &volume) != 0) {
    return absl::InternalError(fmt::format("statvfs {}: {}", path, std::strerror(errno)));
  }
  return static_cast<uint64_t>(volume.f_bavail) * volume.f_frsize;
}

FreeSpaceGuard::FreeSpaceGuard(std::string path, uint64_t reserve_bytes, FreeBytesFn free_bytes,
                               std::chrono::milliseconds recheck_every)
    : path_(std::move(path)),
      reserve_bytes_(reserve_bytes),
      free_bytes_(std::move(free_bytes)),
      recheck_every_(recheck_every) {}

absl::Status FreeSpaceGuard::CheckWrite() {
  if (reserve_bytes_ == 0) return absl::OkStatus();
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (!checked_ || now - checked_at_ >= recheck_every_) {
    absl::StatusOr<uint64_t> free = free_bytes_(path_);
    if (!free.ok()) return absl::OkStatus();  // cannot tell: the disk will say
    free_ = *free;
    checked_at_ = now;
    checked_ = true;
  }
  if (free_ >= reserve_bytes_) return absl::OkStatus();
  constexpr double kMiB = 1 << 20;
  return absl::ResourceExhaustedError(fmt::format(
      "contact-store refuses writes: {:.1f} MiB free on the volume of {}, below the {:.0f} MiB it keeps for "
      "RocksDB (--min_free_disk_mb); free space or grow the volume, reads go on meanwhile",
      static_cast<double>(free_) / kMiB, path_, static_cast<double>(reserve_bytes_) / kMiB));
}

}  // namespace contacts::store
