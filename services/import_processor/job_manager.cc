#include "services/import_processor/job_manager.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <utility>

#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include "absl/container/flat_hash_set.h"
#include "common/digest/sha256.h"
#include "common/status/status_macros.h"
#include "common/values/text_case.h"

namespace contacts {
namespace {

constexpr uint32_t kDefaultPageSize = 50;
constexpr uint32_t kMaxPageSize = 1000;
constexpr size_t kMaxInlineKeys = 100000;

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<AttributeInfo> ToAttributeInfos(const v1::ListAttributesResponse& response) {
  std::vector<AttributeInfo> out;
  for (const v1::Attribute& a : response.attributes()) {
    out.push_back(AttributeInfo{a.name(), AttributeTypeFromNumber(a.type()).value_or(AttributeType::kText),
                                a.primary_key(), a.display_name()});
  }
  return out;
}

v1::AttributeType ToProto(AttributeType type) { return static_cast<v1::AttributeType>(static_cast<int>(type)); }

absl::Status TenantNotSetUp(std::string_view detail) {
  return absl::FailedPreconditionError(
      fmt::format("the tenant is not set up in contact-store (SetupTenant first): {}", detail));
}

// The caller's tenant, for StartImport and StartDelete, which a tenant never set up cannot take.
// contact-store answers such a tenant with a blank record (no primary key attribute) rather than
// NOT_FOUND; either way the caller hears FAILED_PRECONDITION, not "not found" or a mapping error.
absl::StatusOr<v1::Tenant> SetUpTenant(StoreClient& store, const Caller& caller) {
  absl::StatusOr<v1::Tenant> tenant = store.GetTenant(caller.credentials, caller.incoming);
  if (absl::IsNotFound(tenant.status())) return TenantNotSetUp(std::string(tenant.status().message()));
  if (!tenant.ok()) return tenant.status();
  if (tenant->primary_key_attribute().empty()) {
    return TenantNotSetUp(fmt::format("tenant \"{}\" has no primary key attribute", caller.tenant));
  }
  return tenant;
}

// Said of a job whose state the jobs db refused to record (JobManager::unsaved_).
constexpr char kNotSaved[] = "this state is not saved";
constexpr char kResumesAtRestart[] = "the job resumes from its last checkpoint when import-processor restarts";

constexpr std::array<v1::JobState, 6> kAllStates = {v1::QUEUED, v1::RUNNING,  v1::COMPLETED, v1::COMPLETED_WITH_ERRORS,
                                                    v1::FAILED, v1::CANCELLED};

}  // namespace

JobManager::JobManager(JobStore& jobs, StoreClient& store, JobManagerOptions options, prometheus::Registry* metrics)
    : jobs_(jobs), store_(store), options_(std::move(options)) {
  if (metrics != nullptr) {
    rows_family_ = &prometheus::BuildCounter()
                        .Name("import_rows_processed_total")
                        .Help("Data rows read by import and delete jobs (received), whatever their outcome")
                        .Register(*metrics);
    rows_processed_ = &rows_family_->Add({});
    jobs_family_ =
        &prometheus::BuildGauge().Name("import_jobs").Help("Jobs in the jobs database by state").Register(*metrics);
    for (v1::JobState state : kAllStates) {
      jobs_by_state_[state] = &jobs_family_->Add({{"state", v1::JobState_Name(state)}});
    }
    jobs_purged_ = &prometheus::BuildCounter()
                        .Name("import_jobs_purged_total")
                        .Help("Finished jobs deleted with their error logs after the retention (--job_retention_hours)")
                        .Register(*metrics)
                        .Add({});
  }
}

JobManager::~JobManager() { Shutdown(); }

absl::Status JobManager::Start() {
  std::vector<internal::StoredJob> unfinished;
  absl::flat_hash_map<int, int64_t> by_state;
  // A record that cannot be read is left alone (whether its job is unfinished cannot be known),
  // rather than keeping the service, and every tenant's jobs, from starting.
  std::vector<std::string> unreadable;
  RETURN_IF_ERROR(jobs_.ScanJobs(
      "",
      [&](internal::StoredJob&& job) {
        ++by_state[job.job().state()];
        if (!IsFinalState(job.job().state())) unfinished.push_back(std::move(job));
        return true;
      },
      &unreadable));
  for (const std::string& id : unreadable) spdlog::error("job {}: record unreadable (corrupt): not resumed", id);
  std::reverse(unfinished.begin(), unfinished.end());  // oldest first
  {
    std::lock_guard lock(mu_);
    for (auto& [state, n] : by_state) {
      if (auto it = jobs_by_state_.find(state); it != jobs_by_state_.end()) it->second->Set(static_cast<double>(n));
    }
    for (internal::StoredJob& job : unfinished) {
      const std::string id = job.job().id();
      absl::StatusOr<bool> cancel = jobs_.CancelRequested(id);
      if (!cancel.ok()) spdlog::warn("job {}: cancel request not read, resuming: {}", id, cancel.status().ToString());
      if (cancel.value_or(false) && job.job().state() == v1::QUEUED) {
        // Never picked, so nothing of it reached the store: it ends here, as it would have then.
        internal::StoredJob cancelled = job;
        cancelled.mutable_job()->set_state(v1::CANCELLED);
        cancelled.mutable_job()->set_finished_at_micros(NowMicros());
        cancelled.clear_credentials();
        absl::Status saved = jobs_.PutJob(cancelled);
        if (saved.ok()) {
          spdlog::info("job {} CANCELLED while queued, before the restart", id);
          CountState(v1::QUEUED, v1::CANCELLED);
          continue;
        }
        spdlog::warn("job {}: CANCELLED not saved, it runs and ends CANCELLED: {}", id, saved.ToString());
      }
      spdlog::info(
          "job {} ({}) found {}, {}", id, v1::JobKind_Name(job.job().kind()), v1::JobState_Name(job.job().state()),
          cancel.value_or(false) ? "cancelled before the restart: resending what may have been in flight" : "resuming");
      received_seen_[id] = job.job().counts().received();
      Active& active = active_[id];
      active.job = job.job();
      active.control = std::make_shared<JobControl>();
      active.resumed_running = job.job().state() == v1::RUNNING;
      if (cancel.value_or(false)) active.control->RequestCancelAfterResend();
      queue_.push_back(id);
    }
  }
  RemoveOrphanSpoolFiles();
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { WorkerLoop(); });
  if (options_.upload_ttl.count() > 0 || options_.job_retention.count() > 0) {
    janitor_ = std::thread([this] { JanitorLoop(); });
  }
  return absl::OkStatus();
}

void JobManager::RemoveOrphanSpoolFiles() {
  // At start no upload is in progress, so a spool file that no upload record names is the
  // remains of an upload cut off by a crash.
  absl::flat_hash_set<std::string> known;
  absl::Status scanned = jobs_.ScanUploads([&](internal::StoredUpload&& upload) {
    known.insert(std::filesystem::path(upload.spool_path()).filename().string());
    return true;
  });
  if (!scanned.ok()) {
    spdlog::warn("spool cleanup skipped: {}", scanned.ToString());
    return;
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options_.spool_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || known.contains(name)) continue;
    std::filesystem::remove(entry.path(), ec);
    spdlog::info("removed {} (left by an interrupted upload)", entry.path().string());
  }
}

// Held by StartImport / StartDelete from before they read the upload until their job is in
// active_ (which then keeps the upload): ExpireUploads leaves a claimed upload alone.
class JobManager::UploadClaim {
 public:
  UploadClaim(JobManager& manager, std::string upload_id) : manager_(manager), upload_id_(std::move(upload_id)) {
    std::lock_guard lock(manager_.mu_);
    ++manager_.starting_uploads_[upload_id_];
  }
  ~UploadClaim() {
    std::lock_guard lock(manager_.mu_);
    auto it = manager_.starting_uploads_.find(upload_id_);
    if (--it->second == 0) manager_.starting_uploads_.erase(it);
  }
  UploadClaim(const UploadClaim&) = delete;
  UploadClaim& operator=(const UploadClaim&) = delete;

 private:
  JobManager& manager_;
  const std::string upload_id_;
};

bool JobManager::UploadInUse(const std::string& upload_id) const {
  if (starting_uploads_.contains(upload_id)) return true;
  for (const auto& [id, active] : active_) {
    if (active.job.upload_id() == upload_id) return true;
  }
  return false;
}

size_t JobManager::ExpireUploads(int64_t now_micros) {
  if (options_.upload_ttl.count() <= 0) return 0;  // kept forever (the janitor may run for jobs)
  const int64_t cutoff =
      now_micros - std::chrono::duration_cast<std::chrono::microseconds>(options_.upload_ttl).count();
  std::vector<internal::StoredUpload> expired;
  absl::Status scanned = jobs_.ScanUploads([&](internal::StoredUpload&& upload) {
    if (upload.created_at_micros() < cutoff) expired.push_back(std::move(upload));
    return true;
  });
  if (!scanned.ok()) spdlog::warn("upload expiry: {}", scanned.ToString());
  size_t removed = 0;
  for (const internal::StoredUpload& upload : expired) {
    // Checked and deleted under mu_, under which StartImport / StartDelete claim an upload before
    // they read it: either they find it gone, or it is kept for them. The record goes first, so
    // that a failure leaves a usable upload rather than a record without its file.
    std::lock_guard lock(mu_);
    if (UploadInUse(upload.id())) continue;
    if (absl::Status s = jobs_.DeleteUpload(upload.id()); !s.ok()) {
      spdlog::warn("upload {}: cannot delete: {}", upload.id(), s.ToString());
      continue;
    }
    std::error_code ec;
    std::filesystem::remove(upload.spool_path(), ec);
    ++removed;
    spdlog::info("upload {} expired and deleted", upload.id());
  }
  return removed;
}

size_t JobManager::ExpireJobs(int64_t now_micros) {
  if (options_.job_retention.count() <= 0) return 0;  // kept forever
  const int64_t cutoff =
      now_micros - std::chrono::duration_cast<std::chrono::microseconds>(options_.job_retention).count();
  if (cutoff <= 0) return 0;
  struct Expired {
    std::string id;
    v1::JobState state;
  };
  std::vector<Expired> expired;
  // A job finishes after it is created, and its id begins with its creation time (NewId), so
  // only the jobs listed after this id can have finished before the cutoff: the scan skips the
  // retention period's jobs, which are nearly all of them.
  const std::string created_before = fmt::format("{:016x}", static_cast<uint64_t>(cutoff));
  // A record that cannot be read is left as it is (whether it finished cannot be known), and the
  // older jobs behind it still go.
  std::vector<std::string> unreadable;
  absl::Status scanned = jobs_.ScanJobs(
      created_before,
      [&](internal::StoredJob&& job) {
        const v1::Job& info = job.job();
        const int64_t finished = info.finished_at_micros() > 0 ? info.finished_at_micros() : info.created_at_micros();
        if (IsFinalState(info.state()) && finished < cutoff) expired.push_back({info.id(), info.state()});
        return true;
      },
      &unreadable);
  if (!scanned.ok()) spdlog::warn("job expiry: {}", scanned.ToString());
  for (const std::string& id : unreadable) spdlog::warn("job {}: record unreadable (corrupt): not purged", id);
  size_t purged = 0;
  uint64_t log_records = 0;
  for (const Expired& job : expired) {
    {
      // A job still in active_ has a worker between writing its final record and letting go of
      // it: left to the next pass. Once out of active_, a finished job is never written again.
      std::lock_guard lock(mu_);
      if (active_.contains(job.id)) continue;
    }
    absl::StatusOr<uint64_t> deleted = jobs_.DeleteJob(job.id);
    if (!deleted.ok()) {
      // The db refuses writes (usually until it is reopened): the next pass tries again.
      spdlog::warn("job {}: cannot purge: {}", job.id, deleted.status().ToString());
      break;
    }
    ++purged;
    log_records += *deleted;
    spdlog::debug("job {} ({}) purged with {} error log rows", job.id, v1::JobState_Name(job.state), *deleted);
    std::lock_guard lock(mu_);
    if (auto it = jobs_by_state_.find(job.state); it != jobs_by_state_.end()) it->second->Decrement();
    if (jobs_purged_ != nullptr) jobs_purged_->Increment();
  }
  if (purged > 0) {
    spdlog::info("purged {} finished job{} older than {}h, with {} error log rows", purged, purged == 1 ? "" : "s",
                 std::chrono::duration_cast<std::chrono::hours>(options_.job_retention).count(), log_records);
  }
  return purged;
}

void JobManager::JanitorLoop() {
  // Hourly, or as often as the shorter of the two periods if it is shorter than that.
  auto period = std::chrono::seconds(std::chrono::hours(1));
  for (std::chrono::seconds keep : {options_.upload_ttl, options_.job_retention}) {
    if (keep.count() > 0) period = std::min(period, keep);
  }
  std::unique_lock lock(mu_);
  while (!shutting_down_) {
    lock.unlock();
    const int64_t now = NowMicros();
    ExpireUploads(now);
    ExpireJobs(now);
    lock.lock();
    janitor_wake_.wait_for(lock, period, [&] { return shutting_down_; });
  }
}

void JobManager::Shutdown() {
  {
    std::lock_guard lock(mu_);
    if (shutting_down_ && workers_.empty()) return;
    shutting_down_ = true;
    for (auto& [id, active] : active_) active.control->RequestStop();
    work_.notify_all();
    changed_.notify_all();
    janitor_wake_.notify_all();
  }
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
  if (janitor_.joinable()) janitor_.join();
}

void JobManager::CountState(v1::JobState from, v1::JobState to) {
  if (from == to) return;
  if (auto it = jobs_by_state_.find(from); it != jobs_by_state_.end()) it->second->Decrement();
  if (auto it = jobs_by_state_.find(to); it != jobs_by_state_.end()) it->second->Increment();
}

void JobManager::WorkerLoop() {
  while (true) {
    std::string id;
    std::shared_ptr<JobControl> control;
    v1::Job queued;  // the job as queued, for when its record cannot be read
    {
      std::unique_lock lock(mu_);
      work_.wait(lock, [&] { return shutting_down_ || !queue_.empty(); });
      if (shutting_down_) return;
      id = std::move(queue_.front());
      queue_.pop_front();
      auto it = active_.find(id);
      if (it == active_.end() || IsFinalState(it->second.job.state())) continue;
      it->second.picked = true;
      control = it->second.control;
      queued = it->second.job;
    }
    absl::StatusOr<internal::StoredJob> job = jobs_.GetJob(id);
    if (!job.ok()) {
      // Nothing to run and no record to update: the job fails in this process only.
      spdlog::error("job {}: cannot load: {}", id, job.status().ToString());
      queued.set_state(v1::FAILED);
      queued.set_error(fmt::format("cannot load the job ({}); {}: {}", std::string(job.status().message()), kNotSaved,
                                   kResumesAtRestart));
      queued.set_finished_at_micros(NowMicros());
      std::lock_guard lock(mu_);
      EndActive(id, std::move(queued), /*on_disk=*/false);
      continue;
    }
    if (IsFinalState(job->job().state())) {
      std::lock_guard lock(mu_);
      EndActive(id, job->job(), /*on_disk=*/true);
      continue;
    }
    internal::StoredJob ran = RunJob(*std::move(job), jobs_, store_, *control, options_.runner,
                                     [this](const internal::StoredJob& changed) { OnProgress(changed); });
    const bool final = IsFinalState(ran.job().state());
    // Shutdown: the job stays RUNNING in the db and in active_, to resume at the next start.
    if (!final && control->stop_requested()) continue;
    {
      std::lock_guard lock(mu_);
      // OnProgress hears of every state the runner persisted, so a final state there is on disk.
      auto it = active_.find(id);
      if (final && it != active_.end() && IsFinalState(it->second.job.state())) {
        EndActive(id, ran.job(), /*on_disk=*/true);
        continue;
      }
    }
    EndUnsaved(std::move(ran));
  }
}

void JobManager::EndUnsaved(internal::StoredJob job) {
  // Either the final record was refused or (not final, no stop asked) even the one marking the job
  // RUNNING: nothing ran then, and the job fails like one whose checkpoint the db refused.
  v1::Job& info = *job.mutable_job();
  if (!IsFinalState(info.state())) {
    info.set_state(v1::FAILED);
    info.set_error("jobs db: the job could not be marked RUNNING");
    info.set_finished_at_micros(NowMicros());
    job.clear_credentials();  // as for every final state
  }
  // One more try, which also tells the caller why; a db that refuses again leaves the job to
  // unsaved_.
  absl::Status saved = jobs_.PutJob(job);
  if (saved.ok()) {
    OnProgress(job);
  } else {
    spdlog::error("job {}: {} not saved, it resumes at the next start: {}", info.id(), v1::JobState_Name(info.state()),
                  saved.ToString());
    info.set_error(fmt::format("{}{}{} ({}): {}", info.error(), info.error().empty() ? "" : "; ", kNotSaved,
                               std::string(saved.message()), kResumesAtRestart));
  }
  std::lock_guard lock(mu_);
  EndActive(info.id(), info, saved.ok());
}

void JobManager::EndActive(const std::string& id, v1::Job job, bool on_disk) {
  if (auto it = active_.find(id); it != active_.end()) {
    CountState(it->second.job.state(), job.state());  // the metric follows what GetJob says
    active_.erase(it);
  }
  received_seen_.erase(id);
  if (!on_disk) unsaved_[id] = std::move(job);
  changed_.notify_all();
}

void JobManager::OnProgress(const internal::StoredJob& job) {
  std::lock_guard lock(mu_);
  auto it = active_.find(job.job().id());
  if (it == active_.end()) return;
  CountState(it->second.job.state(), job.job().state());
  if (rows_processed_ != nullptr) {
    uint64_t& seen = received_seen_[job.job().id()];
    if (job.job().counts().received() > seen) rows_processed_->Increment(job.job().counts().received() - seen);
    seen = job.job().counts().received();
  }
  it->second.job = job.job();
  ++it->second.version;
  changed_.notify_all();
}

absl::StatusOr<internal::StoredJob> JobManager::LoadJob(const std::string& tenant, const std::string& job_id) const {
  if (job_id.empty()) return absl::InvalidArgumentError("job_id is required");
  absl::StatusOr<internal::StoredJob> job = jobs_.GetJob(job_id);
  if (!job.ok()) return job.status();
  if (job->tenant() != tenant) return absl::NotFoundError(fmt::format("job \"{}\" not found", job_id));
  return job;
}

absl::StatusOr<internal::StoredUpload> JobManager::LoadUpload(const std::string& tenant,
                                                              const std::string& upload_id) const {
  if (upload_id.empty()) return absl::InvalidArgumentError("upload_id is required");
  absl::StatusOr<internal::StoredUpload> upload = jobs_.GetUpload(upload_id);
  if (absl::IsNotFound(upload.status()) || (upload.ok() && upload->tenant() != tenant)) {
    return absl::InvalidArgumentError(fmt::format("upload_id \"{}\": no such upload", upload_id));
  }
  return upload;
}

// ----- Uploads -----

absl::StatusOr<std::unique_ptr<UploadSession>> JobManager::BeginUpload(const Caller& caller,
                                                                       const v1::UploadStart& start,
                                                                       std::string* upload_id) {
  if (start.size_bytes() > options_.upload_limits.max_upload_bytes) {
    return absl::ResourceExhaustedError(
        fmt::format("start.size_bytes: {} bytes is larger than the limit of {} bytes (--max_upload_bytes)",
                    start.size_bytes(), options_.upload_limits.max_upload_bytes));
  }
  std::string sha256;
  if (!start.sha256().empty()) {
    ASSIGN_OR_RETURN(sha256, CanonicalSha256Hex("start.sha256", start.sha256()));
  }
  *upload_id = NewId();
  ASSIGN_OR_RETURN(std::unique_ptr<UploadSession> session,
                   UploadSession::Begin(options_.spool_dir, *upload_id, start.file_name(), start.delimiter(),
                                        options_.upload_limits));
  session->Expect(start.size_bytes(), std::move(sha256));
  // The tenant's primary key, for the check that spares an import its first pass, and its country
  // code, for the preview's type inference: without them (contact-store unreachable, tenant not
  // set up) the upload goes on unchecked, inferring with the default options.
  absl::StatusOr<v1::Tenant> tenant = store_.GetTenant(caller.credentials, caller.incoming);
  if (tenant.ok() && !tenant->default_country_code().empty()) {
    ValueOptions inference_options;
    inference_options.default_country_code = tenant->default_country_code();
    session->InferWith(inference_options);
  }
  absl::StatusOr<v1::ListAttributesResponse> listed =
      tenant.ok() ? store_.ListAttributes(caller.credentials, caller.incoming) : tenant.status();
  if (!listed.ok()) {
    spdlog::debug("upload {}: primary keys not checked: {}", *upload_id, listed.status().ToString());
    return session;
  }
  PrimaryKeySpec spec;
  spec.attribute = tenant->primary_key_attribute();
  if (!tenant->default_country_code().empty()) spec.value_options.default_country_code = tenant->default_country_code();
  spec.email_fixer = options_.runner.email_fixer;
  std::vector<AttributeInfo> attributes = ToAttributeInfos(*listed);
  bool found = false;
  for (const AttributeInfo& attribute : attributes) {
    if (attribute.primary_key || EqualsIgnoreCase(attribute.name, spec.attribute)) {
      spec.attribute = attribute.name;  // as SuggestAttributes spells it
      spec.type = attribute.type;
      found = true;
    }
  }
  if (found) session->CheckDistinctKeys(std::make_unique<DistinctKeyCheck>(std::move(spec), std::move(attributes)));
  return session;
}

absl::StatusOr<v1::UploadResponse> JobManager::FinishUpload(const Caller& caller, const v1::UploadStart& start,
                                                            const std::string& upload_id, UploadSession& session) {
  ASSIGN_OR_RETURN(UploadPreview preview, session.Finish());
  internal::StoredUpload upload;
  upload.set_id(upload_id);
  upload.set_tenant(caller.tenant);
  upload.set_file_name(start.file_name());
  upload.set_spool_path(preview.data_path);
  upload.set_delimiter(std::string(1, preview.delimiter));
  upload.set_size_bytes(preview.size_bytes);
  upload.set_uploaded_bytes(preview.uploaded_bytes);
  upload.set_sha256(preview.sha256);
  upload.set_data_rows(preview.data_rows);
  upload.set_created_at_micros(NowMicros());
  for (const std::string& column : preview.columns) upload.add_columns(column);
  for (const CsvPosition& point : preview.split_points) {
    internal::CsvPoint* stored = upload.add_split_points();
    stored->set_byte_offset(point.byte_offset);
    stored->set_record_number(point.record_number);
    stored->set_line_number(point.line_number);
  }
  if (preview.distinct_keys) *upload.mutable_distinct_keys() = *preview.distinct_keys;
  if (absl::Status stored = jobs_.PutUpload(upload); !stored.ok()) {
    // No record, no upload: the file would stay until the next start otherwise.
    std::error_code ec;
    std::filesystem::remove(preview.data_path, ec);
    return stored;
  }
  spdlog::info("upload {} stored: {} bytes, {} rows, {} columns, sha256 {}", upload_id, preview.size_bytes,
               preview.data_rows, preview.columns.size(), preview.sha256);

  v1::UploadResponse response;
  response.set_upload_id(upload_id);
  response.set_size_bytes(preview.size_bytes);
  response.set_sha256(preview.sha256);
  response.set_delimiter(upload.delimiter());
  std::vector<AttributeInfo> attributes;
  if (absl::StatusOr<v1::ListAttributesResponse> listed = store_.ListAttributes(caller.credentials, caller.incoming);
      listed.ok()) {
    attributes = ToAttributeInfos(*listed);
  } else {
    spdlog::warn("upload {}: no mapping suggestions, contact-store said: {}", upload_id, listed.status().ToString());
  }
  const std::vector<std::string> suggestions = SuggestAttributes(preview.columns, attributes);
  for (size_t i = 0; i < preview.columns.size(); ++i) {
    v1::ColumnPreview* column = response.add_columns();
    column->set_index(static_cast<uint32_t>(i));
    column->set_name(preview.columns[i]);
    column->set_suggested_attribute(suggestions[i]);
    AttributeType type = preview.inferred_types[i];
    for (const AttributeInfo& attribute : attributes) {
      if (attribute.name == suggestions[i]) type = attribute.type;  // what the values will be checked against
    }
    column->set_inferred_type(ToProto(type));
  }
  for (const SampleRow& row : preview.sample_rows) {
    v1::PreviewRow* out = response.add_sample_rows();
    for (const std::string& value : row.values) out->add_values(value);
    out->set_line(row.line);
    out->set_problem(row.problem);
  }
  if (start.has_import()) {
    v1::StartImportRequest request = start.import();
    request.set_upload_id(upload_id);
    absl::StatusOr<v1::Job> job = StartImport(caller, request);
    if (!job.ok()) {
      return absl::Status(job.status().code(), fmt::format("upload {} is stored, but the import was refused: {}",
                                                           upload_id, std::string(job.status().message())));
    }
    *response.mutable_job() = *std::move(job);
  }
  return response;
}

// ----- Starting jobs -----

absl::Status JobManager::CheckLists(const Caller& caller, const google::protobuf::RepeatedField<uint64_t>& list_ids) {
  if (list_ids.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(v1::ListListsResponse lists, store_.ListLists(caller.credentials, caller.incoming));
  absl::flat_hash_set<uint64_t> known;
  for (const v1::ContactList& list : lists.lists()) known.insert(list.id());
  for (uint64_t id : list_ids) {
    if (!known.contains(id)) return absl::InvalidArgumentError(fmt::format("list_ids: no list with id {}", id));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> JobManager::StartImport(const Caller& caller, const v1::StartImportRequest& request) {
  UploadClaim claim(*this, request.upload_id());  // until Enqueue: the janitor must not delete it
  ASSIGN_OR_RETURN(internal::StoredUpload upload, LoadUpload(caller.tenant, request.upload_id()));
  if (!v1::WriteMode_IsValid(request.mode())) {
    return absl::InvalidArgumentError(fmt::format("mode: unknown write mode {}", static_cast<int>(request.mode())));
  }
  ASSIGN_OR_RETURN(v1::Tenant tenant, SetUpTenant(store_, caller));
  ASSIGN_OR_RETURN(v1::ListAttributesResponse listed, store_.ListAttributes(caller.credentials, caller.incoming));

  std::vector<ColumnMappingSpec> mapping;
  for (const v1::ColumnMapping& m : request.mapping()) mapping.push_back({m.column(), m.attribute()});
  std::vector<NewAttributeSpec> create;
  for (const v1::NewAttribute& a : request.create_attributes()) {
    create.push_back({a.name(), static_cast<AttributeType>(static_cast<int>(a.type())), a.indexed()});
  }
  ValueOptions value_options;
  if (!tenant.default_country_code().empty()) value_options.default_country_code = tenant.default_country_code();
  const std::vector<std::string> header(upload.columns().begin(), upload.columns().end());
  ASSIGN_OR_RETURN(ImportPlan plan,
                   BuildImportPlan(header, mapping, ToAttributeInfos(listed), create, tenant.primary_key_attribute(),
                                   request.fix_email_typos(), value_options));
  RETURN_IF_ERROR(CheckLists(caller, request.list_ids()));

  absl::flat_hash_set<std::string> local_only;
  for (const NewAttributeSpec& spec : plan.to_create) {
    if (request.dry_run()) {  // a dry run changes nothing, the schema included
      local_only.insert(AsciiLower(spec.name));
      continue;
    }
    v1::CreateAttributeRequest create_request;
    create_request.set_name(spec.name);
    create_request.set_type(ToProto(spec.type));
    create_request.set_indexed(spec.indexed);
    absl::StatusOr<v1::Attribute> created = store_.CreateAttribute(caller.credentials, caller.incoming, create_request);
    if (created.ok() || absl::IsAlreadyExists(created.status())) {
      // Created meanwhile by someone else: fine if the type agrees.
      if (!created.ok()) {
        ASSIGN_OR_RETURN(v1::ListAttributesResponse again, store_.ListAttributes(caller.credentials, caller.incoming));
        for (const v1::Attribute& a : again.attributes()) {
          if (EqualsIgnoreCase(a.name(), spec.name) && a.type() != ToProto(spec.type)) {
            return absl::InvalidArgumentError(
                fmt::format("create_attributes: attribute \"{}\" already exists with "
                            "type {}",
                            a.name(), v1::AttributeType_Name(a.type())));
          }
        }
      }
      continue;
    }
    return created.status();
  }

  internal::StoredJob job;
  v1::Job& info = *job.mutable_job();
  info.set_id(NewId());
  info.set_kind(v1::IMPORT);
  info.set_state(v1::QUEUED);
  info.set_upload_id(upload.id());
  info.set_file_name(upload.file_name());
  info.set_file_sha256(upload.sha256());
  info.set_bytes_total(upload.size_bytes());
  info.set_created_at_micros(NowMicros());
  info.set_dry_run(request.dry_run());
  job.set_tenant(caller.tenant);
  *job.mutable_import() = request;
  for (const MappedColumn& column : plan.columns) {
    internal::PlannedColumn* out = job.add_columns();
    out->set_column_index(static_cast<uint32_t>(column.column_index));
    out->set_column(column.column);
    out->set_attribute(column.attribute);
    out->set_type(ToProto(column.type));
    out->set_local_only(local_only.contains(AsciiLower(column.attribute)));
  }
  job.set_primary_key_column(static_cast<uint32_t>(plan.primary_key));
  job.set_header_fields(static_cast<uint32_t>(plan.header_fields));
  job.set_default_country_code(value_options.default_country_code);
  const MappedColumn& key_column = plan.columns[plan.primary_key];
  job.set_keys_distinct(
      KeysDistinctFor(upload, key_column.column_index, key_column.type, value_options.default_country_code));
  return Enqueue(upload, caller, std::move(job));
}

absl::StatusOr<v1::Job> JobManager::StartDelete(const Caller& caller, const v1::StartDeleteRequest& request) {
  internal::StoredUpload upload;
  std::optional<UploadClaim> claim;  // until Enqueue: the janitor must not delete the upload
  if (request.has_keys()) {
    if (request.keys().keys().empty()) return absl::InvalidArgumentError("keys: the key list is empty");
    if (static_cast<size_t>(request.keys().keys_size()) > kMaxInlineKeys) {
      return absl::InvalidArgumentError(
          fmt::format("keys: at most {} keys inline; upload a file for more", kMaxInlineKeys));
    }
  } else if (request.upload_id().empty()) {
    return absl::InvalidArgumentError("either upload_id or keys is required");
  } else {
    claim.emplace(*this, request.upload_id());
    ASSIGN_OR_RETURN(upload, LoadUpload(caller.tenant, request.upload_id()));
  }
  if (!v1::BatchDeleteRequest::KeyKind_IsValid(request.key_kind())) {
    return absl::InvalidArgumentError("key_kind: unknown key kind");
  }
  ASSIGN_OR_RETURN(v1::Tenant tenant, SetUpTenant(store_, caller));
  ASSIGN_OR_RETURN(v1::ListAttributesResponse listed, store_.ListAttributes(caller.credentials, caller.incoming));
  RETURN_IF_ERROR(CheckLists(caller, request.list_ids()));

  internal::StoredJob job;
  v1::Job& info = *job.mutable_job();
  info.set_id(NewId());
  info.set_kind(v1::DELETE);
  info.set_state(v1::QUEUED);
  info.set_upload_id(upload.id());
  info.set_file_name(upload.file_name());
  info.set_file_sha256(upload.sha256());
  info.set_bytes_total(upload.size_bytes());
  info.set_created_at_micros(NowMicros());
  job.set_tenant(caller.tenant);
  *job.mutable_delete_() = request;
  for (const v1::Attribute& a : listed.attributes()) {
    if (a.primary_key() || EqualsIgnoreCase(a.name(), tenant.primary_key_attribute())) {
      job.set_primary_key_type(a.type());
    }
  }
  job.set_default_country_code(tenant.default_country_code());
  return Enqueue(upload, caller, std::move(job));
}

absl::StatusOr<v1::Job> JobManager::Enqueue(const internal::StoredUpload& upload, const Caller& caller,
                                            internal::StoredJob job) {
  // What every job shares: the file it reads, its batch size and window, whose credentials it uses.
  job.set_spool_path(upload.spool_path());
  job.set_delimiter(upload.delimiter());
  *job.mutable_split_points() = upload.split_points();
  job.set_batch_rows(options_.batch_rows);
  job.set_batches_in_flight(static_cast<uint32_t>(std::max(1, options_.runner.batches_in_flight)));
  job.set_next_batch_sequence(1);
  for (const auto& [key, value] : caller.credentials) {
    internal::CallHeader* header = job.add_credentials();
    header->set_key(key);
    header->set_value(value);
  }
  RETURN_IF_ERROR(jobs_.PutJob(job));
  spdlog::info("job {} ({}) queued for tenant {}", job.job().id(), v1::JobKind_Name(job.job().kind()), job.tenant());
  std::lock_guard lock(mu_);
  if (auto it = jobs_by_state_.find(v1::QUEUED); it != jobs_by_state_.end()) it->second->Increment();
  Active& active = active_[job.job().id()];
  active.job = job.job();
  active.control = std::make_shared<JobControl>();
  if (shutting_down_) active.control->RequestStop();
  queue_.push_back(job.job().id());
  work_.notify_one();
  return job.job();
}

// ----- Reading and controlling jobs -----

absl::StatusOr<v1::Job> JobManager::GetJob(const std::string& tenant, const std::string& job_id) const {
  ASSIGN_OR_RETURN(internal::StoredJob job, LoadJob(tenant, job_id));  // also checks the tenant
  // An active job's in-memory copy is as new as its last checkpoint.
  std::lock_guard lock(mu_);
  if (auto it = active_.find(job_id); it != active_.end()) return it->second.job;
  if (auto it = unsaved_.find(job_id); it != unsaved_.end()) return it->second;
  return job.job();
}

absl::StatusOr<v1::ListJobsResponse> JobManager::ListJobs(const std::string& tenant,
                                                          const v1::ListJobsRequest& request) const {
  uint32_t page_size = request.page_size() == 0 ? kDefaultPageSize : std::min(request.page_size(), kMaxPageSize);
  const std::string& token = request.page_token();
  if (!token.empty() && (token.size() != 24 || token.find_first_not_of("0123456789abcdef") != std::string::npos)) {
    return absl::InvalidArgumentError("page_token: not a token from ListJobs");
  }
  if (!v1::JobState_IsValid(request.state())) {
    return absl::InvalidArgumentError(fmt::format("state: unknown job state {}", static_cast<int>(request.state())));
  }
  v1::ListJobsResponse response;
  std::string last_id;
  bool more = false;
  absl::flat_hash_map<std::string, v1::Job> unsaved;  // usually empty
  {
    std::lock_guard lock(mu_);
    unsaved = unsaved_;
  }
  // A record that cannot be read is skipped: its tenant cannot be known, and another tenant's
  // corrupt record must not fail this listing.
  std::vector<std::string> unreadable;
  RETURN_IF_ERROR(jobs_.ScanJobs(
      token,
      [&](internal::StoredJob&& job) {
        if (job.tenant() != tenant) return true;
        // Before the state filter, which must see what GetJob would say.
        if (auto it = unsaved.find(job.job().id()); it != unsaved.end()) *job.mutable_job() = it->second;
        if (request.state() != v1::JOB_STATE_UNSPECIFIED && job.job().state() != request.state()) return true;
        if (static_cast<uint32_t>(response.jobs_size()) == page_size) {
          more = true;
          return false;
        }
        last_id = job.job().id();
        *response.add_jobs() = std::move(*job.mutable_job());
        return true;
      },
      &unreadable));
  for (const std::string& id : unreadable) spdlog::error("job {}: record unreadable (corrupt): not listed", id);
  if (more) response.set_next_page_token(last_id);
  std::lock_guard lock(mu_);
  for (v1::Job& job : *response.mutable_jobs()) {
    if (auto it = active_.find(job.id()); it != active_.end()) {
      job = it->second.job;
    } else if (auto ended = unsaved_.find(job.id()); ended != unsaved_.end()) {
      job = ended->second;
    }
  }
  return response;
}

absl::StatusOr<v1::Job> JobManager::CancelJob(const std::string& tenant, const std::string& job_id) {
  ASSIGN_OR_RETURN(internal::StoredJob stored, LoadJob(tenant, job_id));
  // The answer for a job this process no longer runs: its end, known here or on disk.
  auto ended = [&]() -> absl::StatusOr<v1::Job> {
    if (auto it = unsaved_.find(job_id); it != unsaved_.end()) return it->second;
    // Finished (or finishing right now): re-read so the answer is the final record.
    ASSIGN_OR_RETURN(internal::StoredJob final_record, jobs_.GetJob(job_id));
    return final_record.job();
  };
  {
    std::lock_guard lock(mu_);
    if (!active_.contains(job_id)) return ended();
  }
  // On disk before the answer, and outside the lock (a synced write): should the process die
  // before the job stops, the next start still cancels it (Start). Without it, no cancel.
  RETURN_IF_ERROR(jobs_.RecordCancelRequest(job_id));
  std::lock_guard lock(mu_);
  auto it = active_.find(job_id);
  if (it == active_.end()) return ended();
  Active& active = it->second;
  if (active.resumed_running) {
    // It was RUNNING when the process stopped, so batches after its checkpoint may have reached
    // the store uncounted: as for a cancel recorded before the restart (Start), it sends them
    // again (replays answer their outcomes) so that its counts match the store, then ends.
    active.control->RequestCancelAfterResend();
    spdlog::info("job {}: cancel requested; it first sends again what may have been in flight before the restart",
                 job_id);
    return active.job;
  }
  if (!active.picked) {
    // Queued in this process or found QUEUED at start: nothing of it reached the store.
    stored.mutable_job()->set_state(v1::CANCELLED);
    stored.mutable_job()->set_finished_at_micros(NowMicros());
    stored.clear_credentials();
    RETURN_IF_ERROR(jobs_.PutJob(stored));
    spdlog::info("job {} CANCELLED while queued", job_id);
    CountState(active.job.state(), v1::CANCELLED);
    v1::Job job = stored.job();
    active_.erase(it);
    received_seen_.erase(job_id);
    changed_.notify_all();
    return job;
  }
  active.control->RequestCancel();
  spdlog::info("job {}: cancel requested", job_id);
  return active.job;
}

absl::Status JobManager::WatchJob(const std::string& tenant, const std::string& job_id,
                                  absl::FunctionRef<bool(const v1::Job&)> send, absl::FunctionRef<bool()> stopped) {
  ASSIGN_OR_RETURN(internal::StoredJob stored, LoadJob(tenant, job_id));
  uint64_t sent_version = 0;
  bool sent_any = false;
  std::unique_lock lock(mu_);
  while (true) {
    auto it = active_.find(job_id);
    if (it == active_.end()) {
      if (auto ended = unsaved_.find(job_id); ended != unsaved_.end()) {
        const v1::Job job = ended->second;  // finished, but only this process knows
        lock.unlock();
        send(job);
        return absl::OkStatus();
      }
      lock.unlock();
      ASSIGN_OR_RETURN(stored, jobs_.GetJob(job_id));  // finished: the final record is on disk
      send(stored.job());
      return absl::OkStatus();
    }
    if (!sent_any || it->second.version != sent_version) {
      v1::Job job = it->second.job;
      sent_version = it->second.version;
      sent_any = true;
      lock.unlock();
      if (!send(job) || IsFinalState(job.state())) return absl::OkStatus();
      lock.lock();
      continue;
    }
    if (shutting_down_ || stopped()) return absl::OkStatus();
    // Woken by every change; the timeout only bounds how late a vanished client is noticed.
    changed_.wait_for(lock, std::chrono::milliseconds(200));
  }
}

absl::Status JobManager::ScanJobLog(const std::string& tenant, const std::string& job_id, JobLogKind kind,
                                    absl::FunctionRef<bool(v1::JobError&&)> visit) const {
  ASSIGN_OR_RETURN(internal::StoredJob job, LoadJob(tenant, job_id));
  return jobs_.ScanLog(job_id, kind, visit);
}

}  // namespace contacts
