#include "services/import_processor/spool_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/format.h>

namespace contacts {
namespace {

absl::Status Errno(std::string_view what, const std::string& path) {
  return absl::InternalError(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

// Start writing the file back every few MiB, so that the fsync ending the upload waits for the
// last ones only, not for all of it (~0.1 s of a 100 MB upload, with both cores idle).
constexpr uint64_t kWritebackBytes = 4 << 20;

}  // namespace

SpoolWriter::SpoolWriter(int fd, std::string path) : path_(std::move(path)), fd_(fd) {}

absl::StatusOr<std::unique_ptr<SpoolWriter>> SpoolWriter::Start(int fd, std::string path) {
  std::unique_ptr<SpoolWriter> writer(new SpoolWriter(fd, std::move(path)));
  try {
    writer->thread_ = std::thread([raw = writer.get()] { raw->Loop(); });
  } catch (const std::system_error& e) {
    return absl::ResourceExhaustedError(
        fmt::format("cannot start the spool writer of {}: {}", writer->path_, e.what()));
  }  // the writer's destructor closes fd
  return writer;
}

SpoolWriter::~SpoolWriter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;  // wakes a blocked Write too
    queue_.clear();    // queued_bytes_ stays: the chunk being written is still counted in it
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
}

absl::Status SpoolWriter::Write(std::shared_ptr<const std::string> chunk) {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return stopping_ || !error_.ok() || queued_bytes_ < kMaxQueuedBytes; });
  if (!error_.ok()) return error_;
  if (finished_ || stopping_) return absl::FailedPreconditionError(fmt::format("{}: already finished", path_));
  queued_bytes_ += chunk->size();
  queue_.push_back(std::move(chunk));
  changed_.notify_all();
  return absl::OkStatus();
}

absl::Status SpoolWriter::Finish() {
  std::unique_lock lock(mu_);
  if (finished_) return absl::FailedPreconditionError(fmt::format("{}: already finished", path_));
  changed_.wait(lock, [&] { return !error_.ok() || (queue_.empty() && !writing_); });
  if (!error_.ok()) return error_;
  finished_ = true;
  if (::fsync(fd_) != 0) error_ = Errno("fsync", path_);
  ::close(fd_);
  fd_ = -1;
  if (error_.ok()) sha256_hex_ = sha256_.FinishHex();  // the thread is idle: the queue is empty
  return error_;
}

void SpoolWriter::Loop() {
  uint64_t written = 0;
  uint64_t writeback_start = 0;  // bytes before it were handed to sync_file_range
  std::unique_lock lock(mu_);
  while (true) {
    changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    std::shared_ptr<const std::string> chunk = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    lock.unlock();
    absl::Status status;
    std::string_view data = *chunk;
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        status = Errno("write", path_);
        break;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    if (status.ok()) sha256_.Update(*chunk);
    written += chunk->size();
    if (status.ok() && written - writeback_start >= kWritebackBytes) {
      ::sync_file_range(fd_, static_cast<off_t>(writeback_start), static_cast<off_t>(written - writeback_start),
                        SYNC_FILE_RANGE_WRITE);  // a hint: fsync still makes the file durable
      writeback_start = written;
    }
    lock.lock();
    writing_ = false;
    queued_bytes_ -= chunk->size();
    if (!status.ok() && error_.ok()) {
      error_ = status;
      queue_.clear();
      queued_bytes_ = 0;
    }
    changed_.notify_all();
    if (!error_.ok()) {
      changed_.wait(lock, [&] { return stopping_; });
      return;
    }
  }
}

}  // namespace contacts
