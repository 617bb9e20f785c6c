#include "common/csv/byte_source.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace contacts {
namespace {

absl::Status ErrnoStatus(int err, std::string_view what) {
  std::string message = fmt::format("{}: {}", what, std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::UnavailableError(message);
  }
}

class FdByteSource : public ByteSource {
 public:
  FdByteSource(int fd, bool owns_fd) : fd_(fd), owns_fd_(owns_fd) {}
  ~FdByteSource() override {
    if (owns_fd_) ::close(fd_);
  }

  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    for (;;) {
      const ssize_t got = ::read(fd_, buf, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return ErrnoStatus(errno, "read");
    }
  }

  absl::Status Seek(uint64_t offset) override {
    if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) return ErrnoStatus(errno, "lseek");
    return absl::OkStatus();
  }

 private:
  int fd_;
  bool owns_fd_;
};

class IstreamByteSource : public ByteSource {
 public:
  explicit IstreamByteSource(std::istream* in) : in_(in) {}

  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    in_->read(buf, static_cast<std::streamsize>(n));
    const std::streamsize got = in_->gcount();
    if (in_->bad()) return absl::UnavailableError("read from stream failed");
    return static_cast<size_t>(got);
  }

  absl::Status Seek(uint64_t offset) override {
    in_->clear();
    in_->seekg(static_cast<std::streamoff>(offset));
    if (in_->fail()) return absl::UnavailableError(fmt::format("cannot seek stream to {}", offset));
    return absl::OkStatus();
  }

 private:
  std::istream* in_;
};

class StringByteSource : public ByteSource {
 public:
  explicit StringByteSource(std::string_view data) : data_(data) {}

  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    const size_t k = std::min(n, data_.size() - pos_);
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    return k;
  }

  absl::Status Seek(uint64_t offset) override {
    if (offset > data_.size()) {
      return absl::OutOfRangeError(fmt::format("seek to {} past the end ({} bytes)", offset, data_.size()));
    }
    pos_ = static_cast<size_t>(offset);
    return absl::OkStatus();
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

}  // namespace

absl::Status ByteSource::Seek(uint64_t offset) { return absl::UnimplementedError("this byte source cannot seek"); }

std::unique_ptr<ByteSource> MakeFdByteSource(int fd, bool owns_fd) {
  return std::make_unique<FdByteSource>(fd, owns_fd);
}

absl::StatusOr<std::unique_ptr<ByteSource>> OpenFileByteSource(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, fmt::format("open {}", path));
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);  // a hint only: its failure does not matter
  return MakeFdByteSource(fd, /*owns_fd=*/true);
}

std::unique_ptr<ByteSource> MakeIstreamByteSource(std::istream* in) { return std::make_unique<IstreamByteSource>(in); }

std::unique_ptr<ByteSource> MakeStringByteSource(std::string_view data) {
  return std::make_unique<StringByteSource>(data);
}

}  // namespace contacts
