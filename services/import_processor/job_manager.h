// JobManager: import-processor's service logic behind the gRPC adapter. It registers uploads,
// validates StartImport / StartDelete synchronously (against the upload's header and the
// tenant's schema, fetched from contact-store with the caller's credentials), runs jobs on a
// bounded worker pool, resumes unfinished jobs at start, lets callers watch a job change by
// change (condition variable, no polling), cancels jobs, and keeps the Prometheus metrics.
//
// Tenancy: every upload and job records its tenant; a caller of another tenant gets NOT_FOUND.
// Credentials: the caller's x-api-key / authorization / x-tenant headers are stored with the
// job so that the worker can call contact-store on the caller's behalf, also after a restart;
// they are erased when the job reaches a final state.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "contacts/v1/import_processor.pb.h"

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "services/import_processor/job_runner.h"
#include "services/import_processor/job_store.h"
#include "services/import_processor/store_client.h"
#include "services/import_processor/upload_spool.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
template <typename T>
class Family;
}  // namespace prometheus

namespace contacts {

struct JobManagerOptions {
  // Spool folder for uploads. Must exist.
  std::string spool_dir;
  // Jobs run at the same time. Default: 2.
  int workers = 2;
  // Rows per BatchUpsert / keys per BatchDelete (contact-store takes up to 50,000). Default: 25000:
  // a large batch of new contacts is ingested there as SST files, and fewer, larger batches cost
  // less per row (1M-row import: 5.80-5.86 s with 10,000, 5.28-5.37 with 20,000, 5.06-5.09 with
  // 40,000, for ~60 / ~250 MiB more peak RSS in contact-store).
  uint32_t batch_rows = 25000;
  UploadLimits upload_limits;
  JobRunnerOptions runner;
  // Uploads older than this are deleted (file and record) unless an unfinished job reads them;
  // zero keeps them forever. Default: 72 hours.
  std::chrono::seconds upload_ttl{72 * 3600};
  // Finished jobs (COMPLETED, COMPLETED_WITH_ERRORS, FAILED, CANCELLED) that finished longer ago
  // than this are deleted with their error logs; zero keeps them forever. Default: 90 days.
  std::chrono::seconds job_retention{90 * 24 * 3600};
};

// Who is calling: the tenant (from authentication), the headers to forward to contact-store, and
// the incoming call the store lookups serve (they end with it; null outside an RPC).
struct Caller {
  std::string tenant;
  StoreCredentials credentials;
  const grpc::ServerContextBase* incoming = nullptr;
};

class JobManager {
 public:
  // `jobs` and `store` must outlive the manager; `metrics` may be null.
  JobManager(JobStore& jobs, StoreClient& store, JobManagerOptions options, prometheus::Registry* metrics);
  ~JobManager();
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  // Removes spool files left by uploads that never finished (a crash mid-upload), queues every
  // QUEUED or RUNNING job found in the jobs db (oldest first; a record that cannot be read is
  // skipped and logged), and starts the workers and the janitor, which expires uploads and
  // finished jobs at once and then hourly (see JobManagerOptions::upload_ttl and job_retention).
  absl::Status Start();
  // Workers stop at the next batch boundary (their jobs stay RUNNING and resume at the next
  // start); watchers return. Idempotent.
  void Shutdown();

  // Deletes uploads created before `now_micros` - upload_ttl that no unfinished job uses and no
  // StartImport / StartDelete is starting a job from; returns how many. Called by the janitor;
  // public for tests.
  size_t ExpireUploads(int64_t now_micros);
  // Deletes, each with its error log in one step (JobStore::DeleteJob), the finished jobs that
  // finished before `now_micros` - job_retention; QUEUED and RUNNING jobs stay however old.
  // Afterwards the calls below answer NOT_FOUND for them and ListJobs skips them. Returns how
  // many. Called by the janitor; public for tests.
  size_t ExpireJobs(int64_t now_micros);

  // ----- Uploads -----
  // Asks contact-store for the caller's primary key, so that the session can check whether the
  // file repeats one (DistinctKeyCheck; skipped when the store cannot say). Errors: as
  // UploadSession::Begin.
  absl::StatusOr<std::unique_ptr<UploadSession>> BeginUpload(const Caller& caller, const v1::UploadStart& start,
                                                             std::string* upload_id);
  // Finishes the session, records the upload, builds the preview (suggestions need the tenant's
  // attributes: if contact-store cannot be reached, the preview has none) and, when `start`
  // holds an import, starts it. Errors: as UploadSession::Finish, then as StartImport (the
  // upload is kept; the message names its id).
  absl::StatusOr<v1::UploadResponse> FinishUpload(const Caller& caller, const v1::UploadStart& start,
                                                  const std::string& upload_id, UploadSession& session);

  // ----- Jobs -----
  // Errors: INVALID_ARGUMENT (unknown upload, mapping errors, unknown list, bad mode; nothing is
  // created), FAILED_PRECONDITION (tenant not set up), the store's errors (UNAVAILABLE, ...).
  absl::StatusOr<v1::Job> StartImport(const Caller& caller, const v1::StartImportRequest& request);
  // Errors: INVALID_ARGUMENT (no keys, unknown upload, bad key kind, unknown list),
  // FAILED_PRECONDITION (tenant not set up), store errors.
  absl::StatusOr<v1::Job> StartDelete(const Caller& caller, const v1::StartDeleteRequest& request);
  // Errors: INVALID_ARGUMENT (no job id), NOT_FOUND (also for another tenant's job).
  absl::StatusOr<v1::Job> GetJob(const std::string& tenant, const std::string& job_id) const;
  // Newest first; a record that cannot be read is skipped (and logged). page_size default 50, at
  // most 1000. Errors: INVALID_ARGUMENT for a bad token or an unknown state.
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const std::string& tenant, const v1::ListJobsRequest& request) const;
  // A queued job is cancelled at once; a running one stops at its next batch boundary (the
  // returned job may still say RUNNING). A job that was RUNNING before the restart (queued again
  // by Start, picked or not) first sends again the batches that may have been in flight then, as
  // RequestCancelAfterResend says, and answers RUNNING. A finished job is returned unchanged.
  // Errors: NOT_FOUND, UNAVAILABLE when the request cannot be recorded.
  absl::StatusOr<v1::Job> CancelJob(const std::string& tenant, const std::string& job_id);
  // Calls `send` with the job now and after every change until it reaches a final state (that
  // state is sent too). Returns early, OK, when `send` returns false, `stopped()` is true, or on
  // Shutdown (checked at least every 200 ms). Errors: NOT_FOUND.
  absl::Status WatchJob(const std::string& tenant, const std::string& job_id,
                        absl::FunctionRef<bool(const v1::Job&)> send, absl::FunctionRef<bool()> stopped);
  // The rejected rows (kind kRejected) or email fixes (kFixed) of a job, by row number.
  // Errors: NOT_FOUND.
  absl::Status ScanJobLog(const std::string& tenant, const std::string& job_id, JobLogKind kind,
                          absl::FunctionRef<bool(v1::JobError&&)> visit) const;

 private:
  struct Active {
    v1::Job job;
    std::shared_ptr<JobControl> control;
    uint64_t version = 0;
    bool picked = false;  // a worker has it
    // Queued by Start() from a RUNNING record: batches after its checkpoint may have reached the
    // store before the restart, so a cancel sends them again first (CancelJob).
    bool resumed_running = false;
  };

  absl::StatusOr<internal::StoredJob> LoadJob(const std::string& tenant, const std::string& job_id) const;
  absl::StatusOr<internal::StoredUpload> LoadUpload(const std::string& tenant, const std::string& upload_id) const;
  absl::Status CheckLists(const Caller& caller, const google::protobuf::RepeatedField<uint64_t>& list_ids);
  absl::StatusOr<v1::Job> Enqueue(const internal::StoredUpload& upload, const Caller& caller, internal::StoredJob job);
  bool UploadInUse(const std::string& upload_id) const;  // REQUIRES: mu_ held
  void WorkerLoop();
  // The runner stopped without the job's last state on disk (see unsaved_).
  void EndUnsaved(internal::StoredJob job);
  // `id` leaves active_ with `job` as its final state, kept in unsaved_ unless `on_disk`; wakes
  // watchers. REQUIRES: mu_ held.
  void EndActive(const std::string& id, v1::Job job, bool on_disk);
  void JanitorLoop();
  void RemoveOrphanSpoolFiles();
  void OnProgress(const internal::StoredJob& job);
  void CountState(v1::JobState from, v1::JobState to);  // REQUIRES: mu_ held

  JobStore& jobs_;
  StoreClient& store_;
  const JobManagerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable work_;          // queue_ or shutting_down_ changed
  std::condition_variable changed_;       // an active job changed
  std::condition_variable janitor_wake_;  // shutting_down_ changed
  std::deque<std::string> queue_;
  absl::flat_hash_map<std::string, Active> active_;
  // Jobs whose final state this process knows but the jobs db would not record (a record that
  // could not be read or written): the db still says QUEUED or RUNNING, so the job resumes from
  // its last checkpoint at the next start, and until then this copy overrides the record in
  // GetJob, ListJobs, WatchJob and CancelJob so that they agree. Failing the job beats retrying it
  // here: a RocksDB whose writes fail usually stays read-only (a background error) until it is
  // reopened, so a retry would spin while callers watched a job that never moves.
  absl::flat_hash_map<std::string, v1::Job> unsaved_;
  // Upload id -> StartImport / StartDelete calls starting a job from it (UploadClaim).
  class UploadClaim;
  absl::flat_hash_map<std::string, int> starting_uploads_;
  bool shutting_down_ = false;
  std::vector<std::thread> workers_;
  std::thread janitor_;

  prometheus::Family<prometheus::Counter>* rows_family_ = nullptr;
  prometheus::Counter* rows_processed_ = nullptr;
  prometheus::Family<prometheus::Gauge>* jobs_family_ = nullptr;
  absl::flat_hash_map<int, prometheus::Gauge*> jobs_by_state_;
  prometheus::Counter* jobs_purged_ = nullptr;
  absl::flat_hash_map<std::string, uint64_t> received_seen_;  // job id -> rows counted in metrics
};

}  // namespace contacts
