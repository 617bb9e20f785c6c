// SpoolWriter: writes an upload's chunks to its spool file on a thread of its own, in order, so
// that the upload's call checks each chunk (UTF-8, CSV, keys) while the previous ones are copied
// into the page cache: done one after the other on the call's thread they were ~0.1 s of a 100 MB
// upload on 2 cores, with one of them idle (tests/bench/RESULTS.md, session 19). The same thread
// works out the file's SHA-256 as it writes.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/digest/sha256.h"

namespace contacts {

class SpoolWriter {
 public:
  // Takes `fd` (open for writing at offset 0; closed by the writer, or here on an error). `path`
  // names it in errors. RESOURCE_EXHAUSTED when no thread can be started.
  static absl::StatusOr<std::unique_ptr<SpoolWriter>> Start(int fd, std::string path);
  // Stops after the chunk being written, drops the rest and closes the file. Does not unlink it.
  ~SpoolWriter();
  SpoolWriter(const SpoolWriter&) = delete;
  SpoolWriter& operator=(const SpoolWriter&) = delete;

  // Queues `chunk` behind the others; waits while kMaxQueuedBytes are queued. Returns the first
  // write error so far (INTERNAL naming the file), after which nothing more is written, or
  // FAILED_PRECONDITION after Finish.
  absl::Status Write(std::shared_ptr<const std::string> chunk);

  // Writes what is queued, fsyncs and closes the file. Returns the first error; FAILED_PRECONDITION
  // when called again.
  absl::Status Finish();
  // SHA-256 of the bytes written, lower-case hex; after a Finish that succeeded, else "".
  const std::string& sha256() const { return sha256_hex_; }

  // Bytes queued at most before Write waits: bounds the upload's memory.
  static constexpr uint64_t kMaxQueuedBytes = 16 << 20;

 private:
  SpoolWriter(int fd, std::string path);
  void Loop();

  const std::string path_;
  int fd_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  uint64_t queued_bytes_ = 0;
  bool writing_ = false;  // the thread holds a chunk taken off the queue
  bool stopping_ = false;
  absl::Status error_;
  bool finished_ = false;
  Sha256 sha256_;           // of the bytes written so far; the thread's
  std::string sha256_hex_;  // set by Finish
  std::thread thread_;      // started by Start once the rest is set up
};

}  // namespace contacts
