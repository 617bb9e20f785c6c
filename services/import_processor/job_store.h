// JobStore: import-processor's own RocksDB (<data_dir>/jobs) holding uploads, jobs with their
// checkpoints, and per-row error logs. A checkpoint (job record + the errors of the rows it
// covers) is one synced WriteBatch, so after a crash the log and the counts always agree.
//
// Column families and keys (job and upload ids are fixed-width lower-case hex, see NewId()):
//
//   default   "format_version" -> "1"
//             "cancel/" <job id>                            -> "" (CancelJob was asked, RecordCancelRequest)
//   uploads   <upload id>                                   -> contacts.internal.StoredUpload
//   jobs      <job id>                                      -> contacts.internal.StoredJob
//   errors    <job id> | kind (1 byte) | row (8 bytes BE) | seq (4 bytes BE) -> contacts.v1.JobError
//             kind 'R': a rejected row (one per row); kind 'F': an email typo fix (one per column)
//
// Job ids begin with the creation time, so the jobs family in reverse order is newest first. Job
// ids are fixed-width, so the errors keys of one job are exactly those starting with its id.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "contacts/internal/jobs.pb.h"
#include "contacts/v1/import_processor.pb.h"

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rocksdb {
class DB;
struct WriteOptions;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace contacts {

enum class JobLogKind : char { kRejected = 'R', kFixed = 'F' };

// A new id: 16 hex digits of the current time in microseconds, then 8 random hex digits.
std::string NewId();

class JobStore {
 public:
  // Opens or creates the database at `path`. Errors: INTERNAL / UNAVAILABLE from RocksDB (e.g.
  // the folder is locked by another process), FAILED_PRECONDITION for an unknown format version.
  // `sync`: fsync every write (default). Only tests turn it off: a checkpoint that is not synced
  // survives a process crash but not a machine crash.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path, bool sync = true);
  ~JobStore();

  absl::Status PutUpload(const internal::StoredUpload& upload);
  // Errors: NOT_FOUND.
  absl::StatusOr<internal::StoredUpload> GetUpload(std::string_view id) const;
  absl::Status DeleteUpload(std::string_view id);
  // Every upload, oldest first.
  absl::Status ScanUploads(absl::FunctionRef<bool(internal::StoredUpload&&)> visit) const;

  // Writes the job record alone (state changes without rows), synced.
  absl::Status PutJob(const internal::StoredJob& job);
  // Errors: NOT_FOUND.
  absl::StatusOr<internal::StoredJob> GetJob(std::string_view id) const;

  // One synced WriteBatch: the job record and the log records of the rows it now covers.
  absl::Status Checkpoint(const internal::StoredJob& job, const std::vector<v1::JobError>& rejected,
                          const std::vector<v1::JobError>& fixed);

  // Jobs newest first, starting after `after_id` when not empty. `visit` returns false to stop.
  // A record that cannot be parsed ends the scan with DATA_LOSS, or, given `unreadable`, is
  // skipped and its id added there.
  absl::Status ScanJobs(std::string_view after_id, absl::FunctionRef<bool(internal::StoredJob&&)> visit,
                        std::vector<std::string>* unreadable = nullptr) const;

  // Deletes a job for good: its record and every log record, in one synced WriteBatch (the log
  // by a range delete over the job's key prefix), so that a crash leaves either the whole job or
  // nothing of it. Returns how many log records it had. A job with no record is not an error.
  // REQUIRES: nothing writes the job any more (it is finished and no worker holds it): the count
  // is read before the batch is written.
  absl::StatusOr<uint64_t> DeleteJob(std::string_view job_id);

  // Records, synced, that a cancel of the job was asked for, so that a cancel the caller was told
  // of still holds when the process dies before the job stops (JobManager::Start). DeleteJob
  // removes it.
  absl::Status RecordCancelRequest(std::string_view job_id);
  absl::StatusOr<bool> CancelRequested(std::string_view job_id) const;

  // A job's log records of one kind, by row number. `visit` returns false to stop.
  absl::Status ScanLog(std::string_view job_id, JobLogKind kind, absl::FunctionRef<bool(v1::JobError&&)> visit) const;

  // For tests only (fault injection): `fault` is asked before every call above touches RocksDB,
  // with what the call does ("read job", "write job", "write checkpoint", "read upload", "write
  // upload", "delete upload", "scan uploads", "scan jobs", "scan job log", "delete job", "write
  // cancel request", "read cancel request"); an error
  // it returns fails the call as a RocksDB error would ("jobs db: <what>: <message>"). Null
  // removes it.
  // Thread-safe. Production code never sets it.
  void SetFaultForTesting(std::function<absl::Status(std::string_view what)> fault);
  // For tests only: `bytes` as the job record of `job_id`, parsable or not.
  absl::Status PutRawJobForTesting(std::string_view job_id, std::string_view bytes);

 private:
  JobStore() = default;

  rocksdb::WriteOptions Synced() const;
  absl::Status Fault(std::string_view what) const;  // OK unless a test's fault says otherwise

  bool sync_ = true;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* uploads_ = nullptr;
  rocksdb::ColumnFamilyHandle* jobs_ = nullptr;
  rocksdb::ColumnFamilyHandle* errors_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;

  std::atomic<bool> has_fault_{false};  // spares every call the mutex when no test set a fault
  mutable std::mutex fault_mu_;
  std::function<absl::Status(std::string_view)> fault_;
};

// The errors-family key of a log record. Exposed for tests.
std::string JobLogKey(std::string_view job_id, JobLogKind kind, uint64_t row, uint32_t seq);

}  // namespace contacts
