#include "services/import_processor/job_runner.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <filesystem>
#include <future>
#include <memory>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <google/protobuf/arena.h>
#include <spdlog/spdlog.h>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/csv/csv_reader.h"
#include "common/status/status_macros.h"
#include "common/values/packed_cells.h"
#include "common/values/typed_value.h"
#include "services/import_processor/dedup_index.h"

namespace contacts {
namespace {

using Clock = std::chrono::steady_clock;

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool Retryable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
      return true;
    default:
      return false;
  }
}

// Whether a batch call that failed so may still have been applied by the store: its answer was
// lost (the deadline passed, or the connection dropped after the request went out), not refused.
bool MayHaveBeenApplied(const absl::Status& status) {
  return status.code() == absl::StatusCode::kDeadlineExceeded || status.code() == absl::StatusCode::kUnavailable;
}

// Calls `call` (a batch: the store keys it by job id and sequence) until it succeeds, fails for
// good, the budget is spent, or the job is interrupted (then CANCELLED). Safe because a replay of
// a batch is a no-op that answers the batch's outcomes. Once an attempt may have been applied, a
// user cancel no longer cuts the retries short (a stop still does, as the job then resumes with a
// replay): ending there would leave rows in the store that the cancelled job never counts.
template <typename Call>
auto CallWithRetry(Call call, JobControl& control, std::chrono::milliseconds budget, std::string_view what)
    -> decltype(call()) {
  const Clock::time_point give_up = Clock::now() + budget;
  std::chrono::milliseconds backoff{100};
  bool may_be_applied = false;
  while (true) {
    auto result = call();
    if (result.ok() || !Retryable(result.status())) return result;
    may_be_applied = may_be_applied || MayHaveBeenApplied(result.status());
    if (Clock::now() + backoff > give_up) {
      if (may_be_applied && control.cancel_requested()) {
        spdlog::warn("{}: cancelled, and the store may hold this batch, which the job's counts leave out", what);
      }
      return result;
    }
    spdlog::warn("{}: {} (retrying in {} ms)", what, result.status().ToString(), backoff.count());
    const bool interrupted = may_be_applied ? control.WaitForStop(backoff) : control.WaitFor(backoff);
    if (interrupted) return absl::CancelledError(fmt::format("{}: interrupted while retrying", what));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

v1::JobError MakeError(uint64_t row, std::string column, std::string value, std::string reason) {
  v1::JobError error;
  error.set_row_number(row);
  error.set_column(std::move(column));
  error.set_value(std::move(value));
  error.set_reason(std::move(reason));
  return error;
}

// A batch cut by the parser thread: the rows to send plus everything counted locally for the
// range of the file it covers.
struct PreparedBatch {
  // Rows are built on an arena: a million-row import would otherwise spend much of its time in
  // malloc/free for the map entries and strings of each row.
  std::unique_ptr<google::protobuf::Arena> arena;
  v1::BatchUpsertRequest* upsert = nullptr;
  v1::BatchDeleteRequest del;
  // Delete: the row number and the value to report (cut) of each key of `del`, in order, to log
  // the keys contact-store finds invalid.
  std::vector<std::pair<uint64_t, std::string>> sent_keys;
  size_t rows_to_send = 0;
  uint64_t received = 0;
  uint64_t duplicate = 0;
  absl::flat_hash_map<std::string, uint64_t> rejected_by_reason;
  uint64_t rejected = 0;
  std::vector<v1::JobError> rejected_rows;
  std::vector<v1::JobError> fixes;  // of the rows to send; counted once the store says which it imported
  CsvPosition end;                  // where to resume once this batch is acknowledged
  bool last = false;
  absl::Status error;

  void Reject(uint64_t row, std::string reason_key, std::string column, std::string value, std::string_view message) {
    ++rejected;
    ++rejected_by_reason[reason_key];
    rejected_rows.push_back(MakeError(row, std::move(column), std::move(value), RejectionReason(reason_key, message)));
  }
};

// Bounded single-producer single-consumer hand-off between the parser and the sender.
class BatchQueue {
 public:
  explicit BatchQueue(size_t capacity) : capacity_(capacity) {}

  // False when the consumer closed the queue (the batch is dropped).
  bool Push(PreparedBatch batch) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return closed_ || queue_.size() < capacity_; });
    if (closed_) return false;
    queue_.push_back(std::move(batch));
    cv_.notify_all();
    return true;
  }
  PreparedBatch Pop() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !queue_.empty(); });
    PreparedBatch batch = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    return batch;
  }
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  bool closed() const {
    std::lock_guard lock(mu_);
    return closed_;
  }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<PreparedBatch> queue_;
  bool closed_ = false;
};

StoreCredentials CredentialsOf(const internal::StoredJob& job) {
  StoreCredentials credentials;
  for (const internal::CallHeader& header : job.credentials()) credentials.emplace_back(header.key(), header.value());
  return credentials;
}

void AddCount(v1::JobCounts* counts, const std::string& reason, uint64_t n) {
  if (n == 0) return;
  (*counts->mutable_rejected_by_reason())[reason] += n;
}

CsvPosition ResumePositionOf(const internal::StoredJob& job) {
  return CsvPosition{job.resume_byte_offset(), job.resume_row_number(), job.resume_line_number()};
}

void SetResumePosition(internal::StoredJob* job, const CsvPosition& position) {
  job->set_resume_byte_offset(position.byte_offset);
  job->set_resume_row_number(position.record_number);
  job->set_resume_line_number(position.line_number);
  job->mutable_job()->set_bytes_done(position.byte_offset);
}

// Shared by import and delete: applies the local part of a batch's counts.
void ApplyLocalCounts(const PreparedBatch& batch, v1::JobCounts* counts) {
  counts->set_received(counts->received() + batch.received);
  counts->set_duplicate(counts->duplicate() + batch.duplicate);
  counts->set_rejected(counts->rejected() + batch.rejected);
  for (const auto& [reason, n] : batch.rejected_by_reason) AddCount(counts, reason, n);
}

class Runner {
 public:
  Runner(internal::StoredJob job, JobStore& jobs, StoreClient& store, JobControl& control,
         const JobRunnerOptions& options, const JobProgressCallback& progress)
      : job_(std::move(job)),
        jobs_(jobs),
        store_(store),
        control_(control),
        options_(options),
        progress_(progress),
        credentials_(CredentialsOf(job_)) {}

  internal::StoredJob Run() {
    v1::Job& job = *job_.mutable_job();
    if (job.state() == v1::QUEUED || job.started_at_micros() == 0) {
      job.set_state(v1::RUNNING);
      if (job.started_at_micros() == 0) job.set_started_at_micros(NowMicros());
      if (job_.next_batch_sequence() == 0) job_.set_next_batch_sequence(1);
      if (!Persist()) return job_;
    }
    spdlog::info("job {} ({} {}) running{}", job.id(), v1::JobKind_Name(job.kind()), job.file_name(),
                 job_.resume_byte_offset() > 0 ? fmt::format(" from byte {}", job_.resume_byte_offset()) : "");
    absl::Status status = job.kind() == v1::DELETE ? RunDelete() : RunImport();
    if (control_.stop_requested() && !control_.cancel_requested() && !IsFinalState(job.state())) {
      spdlog::info("job {} paused at byte {} for shutdown", job.id(), job_.resume_byte_offset());
      return job_;
    }
    if (!status.ok()) {
      if (control_.ends_cancelled()) {
        Finish(v1::CANCELLED, "");
      } else {
        Finish(v1::FAILED, status.ToString());
      }
    }
    return job_;
  }

 private:
  bool Persist() {
    absl::Status status = jobs_.PutJob(job_);
    if (!status.ok()) {
      spdlog::error("job {}: cannot persist: {}", job_.job().id(), status.ToString());
      return false;
    }
    if (progress_) progress_(job_);
    return true;
  }

  void Finish(v1::JobState state, std::string error) {
    v1::Job& job = *job_.mutable_job();
    job.set_state(state);
    job.set_error(std::move(error));
    job.set_finished_at_micros(NowMicros());
    job_.clear_credentials();  // the caller's key is not kept longer than the job needs it
    const v1::JobCounts& c = job.counts();
    spdlog::info(
        "job {} {}: received={} inserted={} updated={} unchanged={} duplicate={} skipped={} rejected={} "
        "emails_fixed={} deleted={} not_found={}{}",
        job.id(), v1::JobState_Name(state), c.received(), c.inserted(), c.updated(), c.unchanged(), c.duplicate(),
        c.skipped(), c.rejected(), c.emails_fixed(), c.deleted(), c.not_found(),
        job.error().empty() ? "" : " error: " + job.error());
    Persist();
  }

  void FinishCompleted() { Finish(job_.job().counts().rejected() > 0 ? v1::COMPLETED_WITH_ERRORS : v1::COMPLETED, ""); }

  // ----- Import -----

  // Records the key of every valid row read from `reader` into `index`, up to the record starting
  // at `stop_before` (not included; EOF when it never shows up). Returns that record's start, or
  // nullopt at EOF; *record holds it. `reserve_for_bytes`: the bytes this pass will read, to size
  // `index` after the first rows; `abandon` ends the loop early with CANCELLED.
  absl::StatusOr<std::optional<CsvPosition>> RecordKeys(CsvReader& reader, RowValidator& validator,
                                                        std::optional<uint64_t> stop_before, uint64_t reserve_for_bytes,
                                                        const std::atomic<bool>& abandon, CsvRecord* record,
                                                        LastOccurrenceIndex* index) {
    std::string key;
    uint64_t n = 0;
    std::optional<uint64_t> first_offset;
    while (true) {
      ASSIGN_OR_RETURN(bool more, reader.Next(record));
      if (!more) return std::nullopt;
      if (stop_before && record->position.byte_offset >= *stop_before) return record->position;
      if (!first_offset) first_offset = record->position.byte_offset;
      if (validator.ValidateKey(record->fields, &key)) index->Record(key, record->position.record_number - 1);
      if ((++n & 1023) != 0) continue;
      if (abandon || control_.interrupted()) return absl::CancelledError("interrupted");
      if (n == 1024 && reserve_for_bytes > 0) {
        // Room for the whole part at the first rows' size, with 10% to spare for longer rows.
        const uint64_t sampled_bytes = std::max<uint64_t>(1, record->position.byte_offset - *first_offset);
        index->Reserve(std::min<uint64_t>(reserve_for_bytes / 2, reserve_for_bytes * 1.1 * n / sampled_bytes));
      }
    }
  }

  // Where the records after the header start.
  absl::StatusOr<CsvPosition> DataStart(char delimiter) {
    ASSIGN_OR_RETURN(auto source, OpenFileByteSource(job_.spool_path()));
    CsvReader reader(std::move(source), CsvDialect{delimiter});
    CsvRecord header;
    ASSIGN_OR_RETURN(bool has_header, reader.Next(&header));
    if (!has_header) return absl::FailedPreconditionError("the uploaded file is empty");
    return reader.ResumePosition();
  }

  // The first pass over the file: the last valid row of every key into *last_rows. A file with
  // split points (UploadSession) is read in two halves at once, the second on another thread: the
  // store has nothing to do yet, so the other core is free, and this pass is all the job does for
  // its first ~10%. The halves agree only if the split point is exactly where this reader finds
  // that record; if not, the second half's work is dropped and the file read again alone.
  absl::Status FirstPass(const ImportPlan& plan, char delimiter, LastOccurrenceIndex* last_rows,
                         CsvPosition* data_start) {
    ASSIGN_OR_RETURN(*data_start, DataStart(delimiter));
    ASSIGN_OR_RETURN(auto source, OpenFileByteSource(job_.spool_path()));
    CsvReader reader(std::move(source), CsvDialect{delimiter});
    RETURN_IF_ERROR(reader.Seek(*data_start));
    CsvRecord record;
    std::error_code size_error;  // then no split and no reservation
    const uint64_t file_size = std::filesystem::file_size(job_.spool_path(), size_error);
    const uint64_t file_bytes = size_error ? 0 : file_size;
    const uint64_t data_bytes = file_bytes - std::min(file_bytes, data_start->byte_offset);
    std::optional<CsvPosition> split;  // the split point nearest the middle of the data
    const uint64_t middle = data_start->byte_offset + data_bytes / 2;
    for (const internal::CsvPoint& point : job_.split_points()) {
      if (point.byte_offset() <= data_start->byte_offset || point.byte_offset() >= file_bytes) continue;
      auto distance = [middle](uint64_t offset) { return offset > middle ? offset - middle : middle - offset; };
      if (!split || distance(point.byte_offset()) < distance(split->byte_offset)) {
        split = CsvPosition{point.byte_offset(), point.record_number(), point.line_number()};
      }
    }
    RowValidator validator(plan, options_.email_fixer);
    std::atomic<bool> abandon{false};
    LastOccurrenceIndex second_half;
    absl::Status second_status;
    std::thread second;
    if (split) {
      second = std::thread([&, split_at = *split] {
        second_status = [&]() -> absl::Status {
          ASSIGN_OR_RETURN(auto source, OpenFileByteSource(job_.spool_path()));
          CsvReader reader(std::move(source), CsvDialect{delimiter});
          RETURN_IF_ERROR(reader.Seek(split_at));
          RowValidator validator(plan, options_.email_fixer);
          CsvRecord record;
          return RecordKeys(reader, validator, std::nullopt, file_bytes - split_at.byte_offset, abandon, &record,
                            &second_half)
              .status();
        }();
      });
    }
    absl::Cleanup join_second = [&] {
      abandon = true;
      if (second.joinable()) second.join();
    };
    const uint64_t first_bytes = split ? split->byte_offset - data_start->byte_offset : data_bytes;
    ASSIGN_OR_RETURN(std::optional<CsvPosition> stopped,
                     RecordKeys(reader, validator, split ? std::optional<uint64_t>(split->byte_offset) : std::nullopt,
                                first_bytes, abandon, &record, last_rows));
    if (!split) return absl::OkStatus();
    if (stopped && *stopped == *split) {
      second.join();
      RETURN_IF_ERROR(second_status);
      last_rows->Append(std::move(second_half));
      return absl::OkStatus();
    }
    abandon = true;
    second.join();
    spdlog::warn("job {}: split point at byte {} does not start a record here; reading the file again alone",
                 job_.job().id(), split->byte_offset);
    *last_rows = LastOccurrenceIndex();
    abandon = false;
    RETURN_IF_ERROR(reader.Seek(*data_start));
    return RecordKeys(reader, validator, std::nullopt, data_bytes, abandon, &record, last_rows).status();
  }

  absl::Status RunImport() {
    run_start_ = Clock::now();
    const ImportPlan plan = PlanFromJob(job_);
    RowValidator validator(plan, options_.email_fixer);
    const char delimiter = job_.delimiter().empty() ? ',' : job_.delimiter()[0];

    // Pass 1: the last valid row of every primary key; none is superseded when the upload found
    // every key distinct (distinct_keys.h).
    LastOccurrenceIndex last_rows;
    CsvPosition data_start;
    if (job_.keys_distinct()) {
      spdlog::info("job {}: every primary key was distinct at upload: no dedup pass", job_.job().id());
      ASSIGN_OR_RETURN(data_start, DataStart(delimiter));
    } else {
      RETURN_IF_ERROR(FirstPass(plan, delimiter, &last_rows, &data_start));
    }
    last_rows.Finish();
    timing_.dedup = Clock::now() - run_start_;
    spdlog::debug("job {}: {} distinct keys, {} rows superseded by a later one", job_.job().id(), last_rows.size(),
                  last_rows.superseded_rows());

    // Pass 2 from the checkpoint.
    ASSIGN_OR_RETURN(auto source, OpenFileByteSource(job_.spool_path()));
    CsvReader reader(std::move(source), CsvDialect{delimiter});
    const CsvPosition start = job_.resume_byte_offset() == 0 ? data_start : ResumePositionOf(job_);
    RETURN_IF_ERROR(reader.Seek(start));

    absl::flat_hash_map<std::string, std::string> column_of;  // attribute -> column, for store rejections
    for (const MappedColumn& column : plan.columns) column_of[column.attribute] = column.column;

    std::vector<bool> local_only;
    for (const internal::PlannedColumn& column : job_.columns()) local_only.push_back(column.local_only());
    const v1::StartImportRequest& request = job_.import();
    const size_t batch_rows = std::max<size_t>(1, job_.batch_rows());
    BatchQueue queue(2);
    std::thread parser([&] {
      CsvRecord record;
      ValidatedRow row;
      RowRejection rejection;
      auto fresh = [&] {
        PreparedBatch batch;
        google::protobuf::ArenaOptions arena_options;
        arena_options.start_block_size = 256 << 10;
        arena_options.max_block_size = 4 << 20;
        batch.arena = std::make_unique<google::protobuf::Arena>(arena_options);
        batch.upsert = google::protobuf::Arena::CreateMessage<v1::BatchUpsertRequest>(batch.arena.get());
        batch.upsert->set_job_id(job_.job().id());
        batch.upsert->set_mode(request.mode());
        batch.upsert->mutable_list_ids()->CopyFrom(request.list_ids());
        batch.upsert->set_dry_run(request.dry_run());
        batch.upsert->set_source("import:" + job_.job().id());
        // Packed positional rows: the store resolves the attribute names once per batch, and the
        // values travel as one byte string (contacts.v1.PackedRows).
        // The store refuses the batch should the tenant's settings no longer be the plan's (a
        // SetupTenant, an attribute made again with another type, while the job waited or ran):
        // the rows were checked, and their keys deduplicated, against these.
        v1::BatchExpectations* expect = batch.upsert->mutable_expect();
        expect->set_primary_key_attribute(plan.columns[plan.primary_key].attribute);
        expect->set_default_country_code(job_.default_country_code());
        for (size_t i = 0; i < plan.columns.size(); ++i) {
          if (local_only[i]) continue;
          batch.upsert->add_columns(plan.columns[i].attribute);
          expect->add_column_types(static_cast<v1::AttributeType>(static_cast<int>(plan.columns[i].type)));
        }
        return batch;
      };
      PreparedBatch batch = fresh();
      // The packed cells grow to megabytes per batch: reserving what the last batch took saves
      // growing them by doubling (a copy of everything so far, and fresh pages, each time).
      size_t cells_hint = 0;
      int rows_hint = 0;
      size_t scanned = 0;
      size_t bytes = 0;
      while (!queue.closed()) {
        absl::StatusOr<bool> more = reader.Next(&record);
        if (!more.ok() || !*more) {
          batch.error = more.status();
          batch.last = true;
          batch.end = reader.ResumePosition();
          queue.Push(std::move(batch));
          return;
        }
        const uint64_t row_number = record.position.record_number - 1;
        ++batch.received;
        if (!validator.Validate(record.fields, &row, &rejection)) {
          batch.Reject(row_number, rejection.reason_key, rejection.column, rejection.value, rejection.message);
        } else if (!last_rows.IsLast(row_number)) {
          ++batch.duplicate;
        } else {
          v1::PackedRows* packed = batch.upsert->mutable_packed_rows();
          packed->add_row_numbers(row_number);
          std::string* cells = packed->mutable_cells();
          for (size_t i = 0; i < plan.columns.size(); ++i) {
            if (local_only[i]) continue;
            bytes += row.values[i].size() + 2;
            AppendPackedCell(cells, row.values[i]);  // "" leaves the stored value as it is
          }
          for (EmailFix& fix : row.fixes) {
            batch.fixes.push_back(MakeError(row_number, std::move(fix.column), std::move(fix.original),
                                            "email typo fixed to " + fix.fixed));
          }
          ++batch.rows_to_send;
        }
        ++scanned;
        if (batch.rows_to_send >= batch_rows || scanned >= 4 * batch_rows || bytes >= options_.max_batch_bytes) {
          batch.end = reader.ResumePosition();
          cells_hint = std::max(cells_hint, batch.upsert->packed_rows().cells().size());
          rows_hint = std::max(rows_hint, batch.upsert->packed_rows().row_numbers_size());
          if (!queue.Push(std::move(batch))) return;
          batch = fresh();
          batch.upsert->mutable_packed_rows()->mutable_cells()->reserve(cells_hint + cells_hint / 8);
          batch.upsert->mutable_packed_rows()->mutable_row_numbers()->Reserve(rows_hint);
          scanned = 0;
          bytes = 0;
        }
      }
    });

    // Batches go out in file order with up to the job's batches_in_flight unanswered (fixed when
    // it was queued, so that a cancel after a restart re-sends as many as the run before may have
    // had out, whatever --batches_in_flight says now); each is counted and checkpointed in that
    // order once answered, so a checkpoint never covers a batch the store has not acknowledged.
    const size_t window = job_.batches_in_flight() > 0 ? job_.batches_in_flight()
                                                       : static_cast<size_t>(std::max(1, options_.batches_in_flight));
    std::deque<SentBatch> in_flight;
    uint64_t next_sequence = job_.next_batch_sequence();
    uint64_t previous_sequence = 0;  // last batch sent by this run, which the next one must follow
    absl::Status status;
    absl::Status read_error;    // the file could not be read on: reported once the batches sent are counted
    bool stop_sending = false;  // a read error, cancel or stop: answer what is in flight, send nothing more
    while (true) {
      // Checked before each batch goes out, not only once one is answered: a cancel that comes
      // before the first answer would otherwise let a whole window of batches go. A cancel after
      // resend is not one of these: it sends the window first.
      if (control_.cancel_requested()) stop_sending = true;
      if (stop_sending && in_flight.empty()) {
        if (!read_error.ok()) {
          status = read_error;
        } else if (control_.ends_cancelled()) {
          Finish(v1::CANCELLED, "");
        }
        break;
      }
      if (!stop_sending && (in_flight.empty() || (in_flight.size() < window && !in_flight.back().batch.last))) {
        const Clock::time_point wait_start = Clock::now();
        PreparedBatch batch = queue.Pop();
        timing_.parse_wait += Clock::now() - wait_start;
        if (!batch.error.ok()) {
          read_error = batch.error;
          stop_sending = true;
        } else {
          in_flight.push_back(SendImportBatch(std::move(batch), next_sequence, previous_sequence));
        }
      } else {
        SentBatch& oldest = in_flight.front();
        status = ApplyImportBatch(oldest, column_of);
        if (!status.ok()) break;
        const bool last = oldest.batch.last;
        in_flight.pop_front();
        if (last) {
          FinishCompleted();
          break;
        }
        if (control_.ends_cancelled() || control_.stop_requested()) stop_sending = true;
      }
    }
    // After a failed batch, the ones still in flight are abandoned: they stop retrying and are
    // waited for (a later batch waits at most kBatchOrderWait in the store for one that failed).
    for (SentBatch& sent : in_flight) sent.abandon->store(true);
    in_flight.clear();
    queue.Close();
    parser.join();
    auto secs = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
    spdlog::debug(
        "job {}: dedup pass {:.3f} s, waiting for the parser {:.3f} s, in the store {:.3f} s, checkpoints "
        "{:.3f} s",
        job_.job().id(), secs(timing_.dedup), secs(timing_.parse_wait), secs(timing_.store), secs(timing_.checkpoint));
    return status;
  }

  // A batch handed to the store: the call runs on its own thread until `answer` is ready.
  struct SentBatch {
    PreparedBatch batch;
    std::future<absl::StatusOr<v1::BatchUpsertResponse>> answer;  // invalid when nothing was sent
    std::shared_ptr<std::atomic<bool>> abandon = std::make_shared<std::atomic<bool>>(false);
    Clock::time_point sent_at;
  };

  // Starts the store call of a batch with rows to send, numbered next_sequence (then advanced); it
  // follows batch previous_sequence of this run, if any (dry runs do not depend on order).
  SentBatch SendImportBatch(PreparedBatch batch, uint64_t& next_sequence, uint64_t& previous_sequence) {
    SentBatch sent{.batch = std::move(batch), .sent_at = Clock::now()};
    if (sent.batch.rows_to_send == 0) return sent;
    v1::BatchUpsertRequest* request = sent.batch.upsert;
    request->set_batch_sequence(next_sequence++);
    if (!request->dry_run()) request->set_after_batch_sequence(previous_sequence);
    previous_sequence = request->batch_sequence();
    std::string what = fmt::format("job {} batch {}", job_.job().id(), request->batch_sequence());
    sent.answer = std::async(std::launch::async, [this, request, abandon = sent.abandon, what = std::move(what)] {
      while (true) {
        absl::StatusOr<v1::BatchUpsertResponse> answer = CallWithRetry(
            [&]() -> absl::StatusOr<v1::BatchUpsertResponse> {
              if (abandon->load()) return absl::CancelledError("abandoned after an earlier batch failed");
              return store_.BatchUpsert(credentials_, *request);
            },
            control_, options_.store_retry_budget, what);
        // ABORTED: the store gave up waiting for the batch this one follows, which is still in
        // flight (or it failed, and the job thread abandons this one). Not this batch's failure:
        // try again without charging the retry budget.
        if (request->after_batch_sequence() != 0 && absl::IsAborted(answer.status()) && !abandon->load()) continue;
        return answer;
      }
    });
    return sent;
  }

  absl::Status ApplyImportBatch(SentBatch& sent_batch, const absl::flat_hash_map<std::string, std::string>& column_of) {
    PreparedBatch& batch = sent_batch.batch;
    v1::JobCounts* counts = job_.mutable_job()->mutable_counts();
    v1::JobCounts next = *counts;
    ApplyLocalCounts(batch, &next);
    bool sent = false;
    if (sent_batch.answer.valid()) {
      absl::StatusOr<v1::BatchUpsertResponse> answer = sent_batch.answer.get();
      timing_.store += Clock::now() - sent_batch.sent_at;
      if (!answer.ok()) return answer.status();
      v1::BatchUpsertResponse& response = *answer;
      if (static_cast<size_t>(response.results_size()) != batch.rows_to_send) {
        return absl::InternalError(fmt::format("contact-store answered batch {} with {} results for {} rows{}",
                                               batch.upsert->batch_sequence(), response.results_size(),
                                               batch.rows_to_send, response.replayed() ? " (replayed)" : ""));
      }
      // For the values of rows the store rejected: row number -> row index, and the sent cells.
      absl::flat_hash_map<uint64_t, int> sent_rows;
      std::vector<std::string_view> sent_cells;
      absl::flat_hash_set<uint64_t> not_imported;  // rows skipped or rejected, when some had fixes
      for (const v1::BatchRowResult& result : response.results()) {
        if (!batch.fixes.empty() && result.outcome() != v1::INSERTED && result.outcome() != v1::UPDATED &&
            result.outcome() != v1::UNCHANGED) {
          not_imported.insert(result.row_number());
        }
        switch (result.outcome()) {
          case v1::INSERTED:
            next.set_inserted(next.inserted() + 1);
            break;
          case v1::UPDATED:
            next.set_updated(next.updated() + 1);
            break;
          case v1::UNCHANGED:
            next.set_unchanged(next.unchanged() + 1);
            break;
          case v1::SKIPPED_EXISTS:
          case v1::SKIPPED_MISSING:
            next.set_skipped(next.skipped() + 1);
            break;
          default: {  // REJECTED, or an outcome this binary does not know
            const v1::PackedRows& packed = batch.upsert->packed_rows();
            const auto& columns = batch.upsert->columns();
            if (sent_rows.empty() && packed.row_numbers_size() > 0) {
              // The cells were built here, so they split; a failure only loses the values quoted.
              if (SplitPackedCells(packed.cells(), packed.row_numbers_size(), columns.size(), &sent_cells).ok()) {
                for (int i = 0; i < packed.row_numbers_size(); ++i) sent_rows[packed.row_numbers(i)] = i;
              }
            }
            const std::string key =
                result.attribute().empty() ? "rejected_by_store" : "rejected_by_store:" + result.attribute();
            std::string column;
            std::string value;
            if (auto c = column_of.find(result.attribute()); c != column_of.end()) column = c->second;
            if (auto r = sent_rows.find(result.row_number()); r != sent_rows.end()) {
              for (int i = 0; i < columns.size(); ++i) {
                if (columns[i] != result.attribute()) continue;
                value = CutReportedValue(sent_cells[r->second * columns.size() + i]);  // as a local rejection's
              }
            }
            next.set_rejected(next.rejected() + 1);
            AddCount(&next, key, 1);
            batch.rejected_rows.push_back(MakeError(result.row_number(), std::move(column), std::move(value),
                                                    fmt::format("{}: {}", key, result.reason())));
            break;
          }
        }
      }
      // emails_fixed counts rows imported with a fixed address: a skipped or rejected row kept
      // nothing, so its fixes are neither counted nor logged.
      std::erase_if(batch.fixes, [&](const v1::JobError& fix) { return not_imported.contains(fix.row_number()); });
      uint64_t rows_fixed = 0;
      for (size_t i = 0; i < batch.fixes.size(); ++i) {
        if (i == 0 || batch.fixes[i].row_number() != batch.fixes[i - 1].row_number()) ++rows_fixed;
      }
      next.set_emails_fixed(next.emails_fixed() + rows_fixed);
      sent = true;
    }
    *counts = std::move(next);
    if (sent) job_.set_next_batch_sequence(batch.upsert->batch_sequence() + 1);
    SetResumePosition(&job_, batch.end);
    std::sort(batch.rejected_rows.begin(), batch.rejected_rows.end(),
              [](const v1::JobError& a, const v1::JobError& b) { return a.row_number() < b.row_number(); });
    const Clock::time_point checkpoint_start = Clock::now();
    RETURN_IF_ERROR(jobs_.Checkpoint(job_, batch.rejected_rows, batch.fixes));
    timing_.checkpoint += Clock::now() - checkpoint_start;
    if (progress_) progress_(job_);
    return absl::OkStatus();
  }

  // ----- Delete -----

  absl::Status RunDelete() {
    const v1::StartDeleteRequest& request = job_.delete_();
    const bool by_email = request.key_kind() == v1::BatchDeleteRequest::EMAIL;
    const auto pk_type = AttributeTypeFromNumber(static_cast<int>(job_.primary_key_type()));
    ValueOptions value_options;
    if (!job_.default_country_code().empty()) value_options.default_country_code = job_.default_country_code();
    const size_t batch_rows = std::max<size_t>(1, job_.batch_rows());

    auto fresh = [&] {
      PreparedBatch batch;
      batch.del.set_job_id(job_.job().id());
      batch.del.set_key_kind(request.key_kind());
      batch.del.mutable_list_ids()->CopyFrom(request.list_ids());
      return batch;
    };
    auto add_key = [&](PreparedBatch& batch, uint64_t row, std::string_view raw) {
      ++batch.received;
      absl::StatusOr<std::string> key = by_email ? NormalizeValue(AttributeType::kEmail, raw, value_options)
                                                 : (pk_type ? NormalizeValue(*pk_type, raw, value_options)
                                                            : absl::StatusOr<std::string>(std::string(raw)));
      if (!key.ok()) {
        batch.Reject(row, "invalid_key", "", CutReportedValue(raw), std::string(key.status().message()));
      } else if (key->empty()) {
        batch.Reject(row, "empty_key", "", "", "the key is empty");
      } else {
        batch.del.add_keys(*std::move(key));
        batch.sent_keys.emplace_back(row, CutReportedValue(raw));
        ++batch.rows_to_send;
      }
    };

    if (request.has_keys()) {
      // Inline keys: the resume "row" is the index of the next key.
      const auto& keys = request.keys().keys();
      uint64_t next = job_.resume_row_number();
      while (true) {
        if (EndsCancelledBeforeDeleteBatch()) return absl::OkStatus();
        PreparedBatch batch = fresh();
        size_t scanned = 0;
        while (next < static_cast<uint64_t>(keys.size()) && batch.rows_to_send < batch_rows &&
               scanned < 4 * batch_rows) {
          add_key(batch, next + 1, keys[static_cast<int>(next)]);
          ++next;
          ++scanned;
        }
        batch.last = next >= static_cast<uint64_t>(keys.size());
        batch.end = CsvPosition{0, next, 0};
        RETURN_IF_ERROR(ApplyDeleteBatch(batch));
        job_.mutable_job()->set_bytes_done(0);
        if (StopsAfterDeleteBatch(batch)) return absl::OkStatus();
      }
    }

    const char delimiter = job_.delimiter().empty() ? ',' : job_.delimiter()[0];
    ASSIGN_OR_RETURN(auto source, OpenFileByteSource(job_.spool_path()));
    CsvReader reader(std::move(source), CsvDialect{delimiter});
    CsvRecord record;
    if (job_.resume_byte_offset() == 0) {
      ASSIGN_OR_RETURN(bool has_header, reader.Next(&record));
      if (!has_header) {
        FinishCompleted();
        return absl::OkStatus();
      }
    } else {
      RETURN_IF_ERROR(reader.Seek(ResumePositionOf(job_)));
    }
    while (true) {
      if (EndsCancelledBeforeDeleteBatch()) return absl::OkStatus();
      PreparedBatch batch = fresh();
      size_t scanned = 0;
      while (batch.rows_to_send < batch_rows && scanned < 4 * batch_rows) {
        ASSIGN_OR_RETURN(bool more, reader.Next(&record));
        if (!more) {
          batch.last = true;
          break;
        }
        std::string_view raw = record.fields.empty() ? std::string_view() : record.fields[0];
        add_key(batch, record.position.record_number - 1, raw);
        ++scanned;
      }
      batch.end = reader.ResumePosition();
      RETURN_IF_ERROR(ApplyDeleteBatch(batch));
      if (StopsAfterDeleteBatch(batch)) return absl::OkStatus();
    }
  }

  // Before a delete batch is read and sent: a user cancel ends the job there (a cancel after
  // resend does not: it first sends the batch that may have been in flight).
  bool EndsCancelledBeforeDeleteBatch() {
    if (!control_.cancel_requested()) return false;
    Finish(v1::CANCELLED, "");
    return true;
  }

  // After a delete batch was applied: whether the job stops here, finished when `batch` was the
  // last one or a cancel came, left RUNNING (to resume at the next start) on a shutdown.
  bool StopsAfterDeleteBatch(const PreparedBatch& batch) {
    if (batch.last) {
      FinishCompleted();
      return true;
    }
    if (control_.ends_cancelled()) {
      Finish(v1::CANCELLED, "");
      return true;
    }
    return control_.stop_requested();
  }

  absl::Status ApplyDeleteBatch(PreparedBatch& batch) {
    v1::JobCounts next = job_.job().counts();
    ApplyLocalCounts(batch, &next);
    bool sent = false;
    if (batch.rows_to_send > 0) {
      batch.del.set_batch_sequence(job_.next_batch_sequence());
      ASSIGN_OR_RETURN(v1::BatchDeleteResponse response,
                       CallWithRetry([&] { return store_.BatchDelete(credentials_, batch.del); }, control_,
                                     options_.store_retry_budget,
                                     fmt::format("job {} batch {}", job_.job().id(), batch.del.batch_sequence())));
      const uint64_t answered = response.deleted() + response.not_found() + response.invalid();
      if (answered != batch.rows_to_send) {
        return absl::InternalError(fmt::format("contact-store answered delete batch {} with {} outcomes for {} keys{}",
                                               batch.del.batch_sequence(), answered, batch.rows_to_send,
                                               response.replayed() ? " (replayed)" : ""));
      }
      RETURN_IF_ERROR(LogStoreInvalidKeys(response, batch));
      next.set_deleted(next.deleted() + response.deleted());
      next.set_not_found(next.not_found() + response.not_found());
      next.set_rejected(next.rejected() + response.invalid());
      AddCount(&next, "invalid_key", response.invalid());
      sent = true;
    }
    *job_.mutable_job()->mutable_counts() = std::move(next);
    if (sent) job_.set_next_batch_sequence(job_.next_batch_sequence() + 1);
    if (job_.delete_().has_keys()) {
      job_.set_resume_row_number(batch.end.record_number);
    } else {
      SetResumePosition(&job_, batch.end);
    }
    RETURN_IF_ERROR(jobs_.Checkpoint(job_, batch.rejected_rows, {}));
    if (progress_) progress_(job_);
    return absl::OkStatus();
  }

  // Adds the keys contact-store found invalid to the batch's rejected rows, which the checkpoint
  // logs with the locally rejected ones: the log then lists every row counted as rejected.
  // INTERNAL when the answer names keys the batch did not send, one twice, or not `invalid` keys.
  absl::Status LogStoreInvalidKeys(const v1::BatchDeleteResponse& response, PreparedBatch& batch) {
    const uint64_t sequence = batch.del.batch_sequence();
    const char* replayed = response.replayed() ? " (replayed)" : "";
    if (response.invalid_keys().empty() && response.invalid() > 0) {
      // A contact-store from before invalid_keys, or the stored answer of a batch it applied: the
      // keys are counted as rejected but cannot be named.
      spdlog::warn("job {}: contact-store found {} keys of delete batch {} invalid without naming them{}",
                   job_.job().id(), response.invalid(), sequence, replayed);
      return absl::OkStatus();
    }
    if (static_cast<uint64_t>(response.invalid_keys_size()) != response.invalid()) {
      return absl::InternalError(
          fmt::format("contact-store answered delete batch {} with {} invalid keys but named {}{}", sequence,
                      response.invalid(), response.invalid_keys_size(), replayed));
    }
    if (response.invalid_keys().empty()) return absl::OkStatus();
    int64_t previous = -1;  // indexes ascend, so none is named twice
    for (const v1::BatchDeleteResponse::KeyProblem& problem : response.invalid_keys()) {
      if (problem.index() >= batch.sent_keys.size()) {
        return absl::InternalError(
            fmt::format("contact-store answered delete batch {} of {} keys naming key {} invalid{}", sequence,
                        batch.sent_keys.size(), problem.index(), replayed));
      }
      if (static_cast<int64_t>(problem.index()) <= previous) {
        return absl::InternalError(
            fmt::format("contact-store answered delete batch {} naming key {} invalid twice or out of order{}",
                        sequence, problem.index(), replayed));
      }
      previous = problem.index();
    }
    for (const v1::BatchDeleteResponse::KeyProblem& problem : response.invalid_keys()) {
      auto& [row, value] = batch.sent_keys[problem.index()];
      batch.rejected_rows.push_back(
          MakeError(row, "", std::move(value), RejectionReason("invalid_key", problem.reason())));
    }
    std::sort(batch.rejected_rows.begin(), batch.rejected_rows.end(),
              [](const v1::JobError& a, const v1::JobError& b) { return a.row_number() < b.row_number(); });
    return absl::OkStatus();
  }

  // Where the job's thread spent its time, logged at the end (debug level).
  struct Timing {
    Clock::duration dedup{};
    Clock::duration parse_wait{};
    Clock::duration store{};  // summed over the calls, which overlap when several are in flight
    Clock::duration checkpoint{};
  } timing_;
  Clock::time_point run_start_;

  internal::StoredJob job_;
  JobStore& jobs_;
  StoreClient& store_;
  JobControl& control_;
  const JobRunnerOptions& options_;
  const JobProgressCallback& progress_;
  const StoreCredentials credentials_;
};

}  // namespace

void JobControl::RequestCancel() {
  std::lock_guard lock(mu_);
  cancel_ = true;
  cv_.notify_all();
}

void JobControl::RequestCancelAfterResend() {
  std::lock_guard lock(mu_);
  cancel_after_resend_ = true;
}

void JobControl::RequestStop() {
  std::lock_guard lock(mu_);
  stop_ = true;
  cv_.notify_all();
}

bool JobControl::cancel_requested() const {
  std::lock_guard lock(mu_);
  return cancel_;
}

bool JobControl::ends_cancelled() const {
  std::lock_guard lock(mu_);
  return cancel_ || cancel_after_resend_;
}

bool JobControl::stop_requested() const {
  std::lock_guard lock(mu_);
  return stop_;
}

bool JobControl::WaitFor(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return cancel_ || stop_; });
}

bool JobControl::WaitForStop(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return stop_; });
}

bool IsFinalState(v1::JobState state) {
  return state == v1::COMPLETED || state == v1::COMPLETED_WITH_ERRORS || state == v1::FAILED || state == v1::CANCELLED;
}

ImportPlan PlanFromJob(const internal::StoredJob& job) {
  ImportPlan plan;
  for (const internal::PlannedColumn& column : job.columns()) {
    plan.columns.push_back(
        MappedColumn{column.column_index(), column.column(), column.attribute(),
                     AttributeTypeFromNumber(static_cast<int>(column.type())).value_or(AttributeType::kText)});
  }
  plan.primary_key = job.primary_key_column();
  plan.header_fields = job.header_fields();
  plan.fix_email_typos = job.import().fix_email_typos();
  if (!job.default_country_code().empty()) plan.value_options.default_country_code = job.default_country_code();
  return plan;
}

internal::StoredJob RunJob(internal::StoredJob job, JobStore& jobs, StoreClient& store, JobControl& control,
                           const JobRunnerOptions& options, const JobProgressCallback& progress) {
  return Runner(std::move(job), jobs, store, control, options, progress).Run();
}

}  // namespace contacts
