// Refuses writes while the data volume's free space is below a reserve, so that RocksDB never
// meets a full disk: Debian's RocksDB 7.8 asserts (the process aborts) when it writes again after a
// write failed for lack of space, and then aborts again at every start until space is freed. With
// the reserve, writes get RESOURCE_EXHAUSTED, reads go on, and flushes and compactions keep room.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace contacts::store {

class FreeSpaceGuard {
 public:
  // Bytes an unprivileged writer may still use on the volume holding `path`.
  using FreeBytesFn = std::function<absl::StatusOr<uint64_t>(const std::string& path)>;
  static absl::StatusOr<uint64_t> StatvfsFreeBytes(const std::string& path);

  // reserve_bytes 0 turns the guard off. The free space is looked up at most every
  // `recheck_every`: a write then costs a clock read, and a burst between two looks can use at
  // most what the store writes in that time (far below any sensible reserve).
  FreeSpaceGuard(std::string path, uint64_t reserve_bytes, FreeBytesFn free_bytes = StatvfsFreeBytes,
                 std::chrono::milliseconds recheck_every = std::chrono::milliseconds(250));

  // OK while at least the reserve is free (or the free space cannot be told: the write then meets
  // whatever the disk says). RESOURCE_EXHAUSTED saying how much is free, where, and the flag.
  absl::Status CheckWrite();

 private:
  const std::string path_;
  const uint64_t reserve_bytes_;
  const FreeBytesFn free_bytes_;
  const std::chrono::milliseconds recheck_every_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point checked_at_;  // guarded by mu_
  bool checked_ = false;                              // guarded by mu_
  uint64_t free_ = 0;                                 // guarded by mu_: at checked_at_
};

}  // namespace contacts::store
