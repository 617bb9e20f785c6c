// JobRunner: runs one import or delete job from its last checkpoint to a final state.
//
// Import: pass 1 streams the spooled file and records a fingerprint of every valid row's primary
// key, from which LastOccurrenceIndex works out the rows a later row supersedes. Pass 2 streams the
// file again from the checkpoint: a parser thread validates rows and cuts batches (rejected rows
// and earlier duplicates are counted locally), while the job's thread sends each batch to
// contact-store with (job id, batch sequence), counts the store's per-row outcomes, and writes the
// checkpoint (next sequence, CSV position, counts, the batch's error log) in one synced WriteBatch.
// A batch is cut by rules that depend only on the file and the job's fixed settings, so after a
// crash the batch in flight is rebuilt identically and the store's idempotency on (job id,
// sequence) makes its replay a no-op that still reports the original outcomes.
//
// Delete: the keys (first column of an uploaded file, or the job's inline list) are checked
// locally and sent to BatchDelete in batches, checkpointed the same way; a key contact-store finds
// invalid is logged as a rejected row like one found invalid here.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

#include "contacts/internal/jobs.pb.h"

#include "services/import_processor/import_plan.h"
#include "services/import_processor/job_store.h"
#include "services/import_processor/store_client.h"

namespace contacts {

// Cancellation (by a user: the job ends CANCELLED) and stop (process shutdown: the job stays
// RUNNING and resumes at the next start) for one running job. Thread-safe.
class JobControl {
 public:
  // A user's cancel: the job sends no further batch, counts those in flight as they are answered
  // and ends CANCELLED. It cuts short the first pass and a retry, except the retry of a batch the
  // store may have applied (its answer was lost), which goes on so that the batch is counted.
  void RequestCancel();
  // A cancel asked for before a restart, of a job that may have had batches in flight when the
  // process died: the job runs on until it has sent the batches that follow its checkpoint again
  // (as many as it keeps in flight; a batch the store applied before is a no-op that answers its
  // outcomes), then ends CANCELLED, so that its counts match the store. Unlike a cancel it
  // interrupts nothing: not the first pass, not a retry.
  void RequestCancelAfterResend();
  void RequestStop();
  bool cancel_requested() const;
  bool stop_requested() const;
  bool interrupted() const { return cancel_requested() || stop_requested(); }
  // Whether the job ends CANCELLED at its next batch boundary: either kind of cancel.
  bool ends_cancelled() const;
  // Waits up to `timeout`; returns true early when cancel or stop is requested.
  bool WaitFor(std::chrono::milliseconds timeout);
  // Waits up to `timeout`; returns true early when stop is requested (a cancel does not end it).
  bool WaitForStop(std::chrono::milliseconds timeout);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool cancel_ = false;
  bool cancel_after_resend_ = false;
  bool stop_ = false;
};

struct JobRunnerOptions {
  // How long store calls are retried (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
  // ABORTED) before the job fails. Default: 5 minutes.
  std::chrono::milliseconds store_retry_budget{300000};
  // Email typo fixer for imports that ask for it. Default: none.
  EmailTypoFixer email_fixer = nullptr;
  // A batch is also cut after this many bytes of row data. Default: 8 MiB.
  size_t max_batch_bytes = size_t{8} << 20;
  // Import batches sent to contact-store before the oldest is answered. With 2 the store parses
  // and answers one batch while it applies another (BatchUpsertRequest.after_batch_sequence keeps
  // them in order); 1 sends one at a time. JobManager fixes it into each job it queues (the
  // runner uses the job's, and this only for jobs queued before it did). Default: 2.
  int batches_in_flight = 2;
};

// Called after every persisted change of the job (checkpoint or state change).
using JobProgressCallback = std::function<void(const internal::StoredJob&)>;

// The ImportPlan stored in a job record.
ImportPlan PlanFromJob(const internal::StoredJob& job);

// Runs `job` (QUEUED or RUNNING) until it is COMPLETED, COMPLETED_WITH_ERRORS, FAILED or
// CANCELLED, or until a stop is requested (then it stays RUNNING, checkpointed). Every change is
// persisted in `jobs` before `progress` hears of it. Returns the last persisted record.
internal::StoredJob RunJob(internal::StoredJob job, JobStore& jobs, StoreClient& store, JobControl& control,
                           const JobRunnerOptions& options, const JobProgressCallback& progress);

// True for a final state.
bool IsFinalState(v1::JobState state);

}  // namespace contacts
