// ByteSource: the pull side of CsvReader. A minimal "read up to n bytes" interface with optional
// seeking, implemented here for file descriptors, files, std::istream and in-memory strings. Other
// producers (a libzip entry, a decompressor) implement it to feed the CSV reader without copying
// whole files into memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace contacts {

class ByteSource {
 public:
  virtual ~ByteSource() = default;

  // Reads up to `n` (> 0) bytes into `buf`. Returns the number of bytes read; 0 means end of input
  // and only then. Errors: the underlying read failed (UNAVAILABLE for I/O errors).
  virtual absl::StatusOr<size_t> Read(char* buf, size_t n) = 0;

  // Repositions so that the next Read returns the byte at absolute `offset` from the start of the
  // input. Errors: UNIMPLEMENTED when the source cannot seek (the default), OUT_OF_RANGE /
  // UNAVAILABLE from the underlying stream.
  virtual absl::Status Seek(uint64_t offset);
};

// Reads from an already-open file descriptor. When `owns_fd`, the descriptor is closed on
// destruction. Seek uses lseek, so it works for regular files, not pipes.
std::unique_ptr<ByteSource> MakeFdByteSource(int fd, bool owns_fd);

// Opens `path` read-only (O_CLOEXEC). Errors: NOT_FOUND when missing, PERMISSION_DENIED, UNAVAILABLE.
absl::StatusOr<std::unique_ptr<ByteSource>> OpenFileByteSource(const std::string& path);

// Reads from `*in`, which must outlive the source. Seek uses seekg.
std::unique_ptr<ByteSource> MakeIstreamByteSource(std::istream* in);

// Reads from memory. REQUIRES: `data` outlives the source (it is not copied).
std::unique_ptr<ByteSource> MakeStringByteSource(std::string_view data);

}  // namespace contacts
