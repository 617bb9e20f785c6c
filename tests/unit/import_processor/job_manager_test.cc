#include "services/import_processor/job_manager.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "tests/unit/import_processor/job_log_records.h"
#include "tests/unit/import_processor/job_test_base.h"

namespace contacts::test {
namespace {

// A moment a test thread waits for, signalled by another (a batch reaching the "store", a cancel
// having been asked for).
class Moment {
 public:
  void Signal() {
    std::lock_guard lock(mu_);
    happened_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return happened_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool happened_ = false;
};

class JobManagerTest : public JobTestBase {
 protected:
  // A header "id" and `n` rows k0, k1, ...
  static std::string IdRows(int n) {
    std::string content = "id\n";
    for (int i = 0; i < n; ++i) content += fmt::format("k{}\n", i);
    return content;
  }

  // Batch `sequence` waits in the "store", once there (`reached`), until `release` is signalled.
  // Two imports of 30 rows, queued in this order: the older one to keep the only worker busy at the
  // next start (RestartAndCancelWhileTheWorkerIsBusy), the other to run and "crash" before it.
  std::pair<absl::StatusOr<v1::Job>, absl::StatusOr<v1::Job>> OlderAndResumedImports() {
    std::string older_content = "id\n";
    for (int i = 0; i < 30; ++i) older_content += fmt::format("a{}\n", i);
    auto older = manager_->StartImport(caller_, ImportRequest(UploadId(older_content), {{"id", "customer_id"}}));
    auto resumed = manager_->StartImport(caller_, ImportRequest(UploadId(IdRows(30)), {{"id", "customer_id"}}));
    return {std::move(older), std::move(resumed)};
  }

  // Starts a recreated manager whose only worker is kept busy by the older of the jobs it
  // resumes (its batch 1 is held), cancels `job_id` meanwhile, then lets the worker go on.
  absl::StatusOr<v1::Job> RestartAndCancelWhileTheWorkerIsBusy(const std::string& job_id) {
    Moment reached;
    Moment release;
    HoldBatch(1, reached, release);
    RecreateManager();
    if (absl::Status started = manager_->Start(); !started.ok()) return started;
    reached.Wait();
    auto asked = manager_->CancelJob("default", job_id);
    release.Signal();
    return asked;
  }

  void HoldBatch(uint64_t sequence, Moment& reached, Moment& release) {
    store_.batch_hook = [sequence, &reached, &release](uint64_t batch, bool*) {
      if (batch != sequence) return absl::OkStatus();
      reached.Signal();
      release.Wait();
      return absl::OkStatus();
    };
  }

  std::string UploadId(const std::string& content) {
    auto upload = Upload(content);
    EXPECT_TRUE(upload.ok()) << upload.status();
    return upload.ok() ? upload->upload_id() : "";
  }

  // Follows the job with WatchJob until it ends, or for at most 30 s (a job that never ends fails
  // the test instead of hanging it); returns every state seen.
  std::vector<v1::Job> Watch(const std::string& id) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::vector<v1::Job> seen;
    absl::Status s = manager_->WatchJob(
        "default", id,
        [&](const v1::Job& job) {
          seen.push_back(job);
          return true;
        },
        [&] { return std::chrono::steady_clock::now() > deadline; });
    EXPECT_TRUE(s.ok()) << s;
    return seen;
  }

  // GetJob, CancelJob and ListJobs (filtered by the state too) all answer `expected`.
  void ExpectEveryCallSays(const v1::Job& expected) {
    auto got = manager_->GetJob("default", expected.id());
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->state(), expected.state());
    EXPECT_EQ(got->error(), expected.error());
    auto cancelled = manager_->CancelJob("default", expected.id());
    ASSERT_TRUE(cancelled.ok()) << cancelled.status();
    EXPECT_EQ(cancelled->state(), expected.state());
    EXPECT_EQ(cancelled->error(), expected.error());
    v1::ListJobsRequest request;
    request.set_state(expected.state());
    auto page = manager_->ListJobs("default", request);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_EQ(page->jobs_size(), 1);
    EXPECT_EQ(page->jobs(0).id(), expected.id());
    EXPECT_EQ(page->jobs(0).error(), expected.error());
  }

  // An import of `content` queued by a manager that is then replaced, so that only the next
  // Start() queues the job, as after a restart. Returns its id.
  std::string QueuedBeforeStart(const std::string& content) {
    auto job = manager_->StartImport(caller_, ImportRequest(UploadId(content), {{"id", "customer_id"}}));
    EXPECT_TRUE(job.ok()) << job.status();
    RecreateManager();
    return job.ok() ? job->id() : "";
  }

  // Watches the job to its end: FAILED with `cause` in its error and the promise to resume at
  // the next start, and every other call agreeing. Returns that last state.
  v1::Job ExpectFailedUntilRestart(const std::string& id, std::string_view cause) {
    std::vector<v1::Job> seen = Watch(id);
    if (seen.empty()) {
      ADD_FAILURE() << "WatchJob sent nothing";
      return {};
    }
    const v1::Job& last = seen.back();
    EXPECT_EQ(last.state(), v1::FAILED);
    EXPECT_NE(last.error().find(cause), std::string::npos) << last.error();
    EXPECT_NE(last.error().find("resumes"), std::string::npos) << last.error();
    ExpectEveryCallSays(last);
    return last;
  }

  // A new manager runs the job to COMPLETED.
  void ExpectCompletesAfterRestart(const std::string& id) {
    RecreateManager();
    ASSERT_TRUE(manager_->Start().ok());
    EXPECT_EQ(Watch(id).back().state(), v1::COMPLETED);
  }
};

// Removes a test's fault from the jobs db before the test's locals it reads go away.
class ScopedFault {
 public:
  ScopedFault(JobStore& jobs, std::function<absl::Status(std::string_view)> fault) : jobs_(jobs) {
    jobs_.SetFaultForTesting(std::move(fault));
  }
  ~ScopedFault() { jobs_.SetFaultForTesting(nullptr); }
  ScopedFault(const ScopedFault&) = delete;
  ScopedFault& operator=(const ScopedFault&) = delete;

 private:
  JobStore& jobs_;
};

TEST_F(JobManagerTest, UploadPreviewSuggestsAttributesAndInfersTypes) {
  auto upload = Upload(
      "\xEF\xBB\xBFID;E-mail;Phone;Joined;Score\r\nc1;a@b.co;+91 98765 43210;2024-01-02;1.5\r\n"
      "c2;b@c.co;;2023-12-31;2\r\n");
  ASSERT_TRUE(upload.ok()) << upload.status();
  EXPECT_EQ(upload->delimiter(), ";");
  ASSERT_EQ(upload->columns_size(), 5);
  EXPECT_EQ(upload->columns(0).name(), "ID");
  EXPECT_EQ(upload->columns(1).suggested_attribute(), "email");
  EXPECT_EQ(upload->columns(1).inferred_type(), v1::EMAIL);
  EXPECT_EQ(upload->columns(2).suggested_attribute(), "mobile");
  EXPECT_EQ(upload->columns(3).suggested_attribute(), "");
  EXPECT_EQ(upload->columns(3).inferred_type(), v1::DATE);
  EXPECT_EQ(upload->columns(4).inferred_type(), v1::DECIMAL);
  ASSERT_EQ(upload->sample_rows_size(), 2);
  EXPECT_EQ(upload->sample_rows(1).values(3), "2023-12-31");
}

// The preview infers with the tenant's country code, as the import will check the values: 14
// digits are a mobile number with country code 1, one digit too many with the default 91.
TEST_F(JobManagerTest, UploadPreviewInfersWithTheTenantsCountryCode) {
  store_.SetDefaultCountryCode("1");
  auto upload = Upload("id,phone\nc1,1234-5678-901234\nc2,1234-5678-901235\n");
  ASSERT_TRUE(upload.ok()) << upload.status();
  ASSERT_EQ(upload->columns_size(), 2);
  EXPECT_EQ(upload->columns(1).inferred_type(), v1::MOBILE);
}

// Suggestions read the display names contact-store lists: "First Name" is the column of fname,
// which the tenant shows as "First Name", and the preview gives that attribute's type.
TEST_F(JobManagerTest, PreviewSuggestsTheAttributeWhoseDisplayNameTheColumnHas) {
  store_.AddAttribute("fname", v1::TEXT, false, "First Name");
  store_.AddAttribute("joined_on", v1::DATE, false, "Member since");
  auto upload = Upload("customer_id,First Name,Member Since\nk1,12,2024-01-02\n");
  ASSERT_TRUE(upload.ok()) << upload.status();
  ASSERT_EQ(upload->columns_size(), 3);
  EXPECT_EQ(upload->columns(0).suggested_attribute(), "customer_id");
  EXPECT_EQ(upload->columns(1).suggested_attribute(), "fname");
  EXPECT_EQ(upload->columns(1).inferred_type(), v1::TEXT);  // the attribute's, not INTEGER from "12"
  EXPECT_EQ(upload->columns(2).suggested_attribute(), "joined_on");
}

// A header as spreadsheets write it: no-break spaces, curly quotes, a column named twice; zip
// codes with leading zeros. The preview suggests a mapping StartImport takes as it is, and the
// zeros survive the import of the column as the TEXT the preview infers.
TEST_F(JobManagerTest, PreviewOfASpreadsheetHeaderSuggestsAMappingThatStarts) {
  const std::string content =
      "Customer\u00A0ID,\u201CE-mail\u201D,Mobile\u00A0No.\u00A0,Zip,City,City\n"
      "k1,a@b.co,09876543210,01234,Pune,Goa\n"
      "k2,c@d.co,09123456789,98765,Pune,Goa\n";
  auto upload = Upload(content);
  ASSERT_TRUE(upload.ok()) << upload.status();
  ASSERT_EQ(upload->columns_size(), 6);
  EXPECT_EQ(upload->columns(0).suggested_attribute(), "customer_id");
  EXPECT_EQ(upload->columns(1).suggested_attribute(), "email");
  EXPECT_EQ(upload->columns(2).suggested_attribute(), "mobile");
  EXPECT_EQ(upload->columns(3).suggested_attribute(), "");
  EXPECT_EQ(upload->columns(3).inferred_type(), v1::TEXT);  // as an INTEGER, 01234 would be 1234
  EXPECT_EQ(upload->columns(4).suggested_attribute(), "");  // "City" twice: StartImport cannot map it
  EXPECT_EQ(upload->columns(5).suggested_attribute(), "");

  v1::StartImportRequest request = ImportRequest(upload->upload_id(), {});
  for (const v1::ColumnPreview& column : upload->columns()) {
    if (column.suggested_attribute().empty()) continue;
    v1::ColumnMapping* m = request.add_mapping();
    m->set_column(column.name());
    m->set_attribute(column.suggested_attribute());
  }
  v1::ColumnMapping* zip = request.add_mapping();
  zip->set_column("Zip");
  zip->set_attribute("zip");
  v1::NewAttribute* zip_attribute = request.add_create_attributes();
  zip_attribute->set_name("zip");
  zip_attribute->set_type(upload->columns(3).inferred_type());
  auto job = manager_->StartImport(caller_, request);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(manager_->Start().ok());
  EXPECT_EQ(Watch(job->id()).back().state(), v1::COMPLETED);
  EXPECT_EQ(store_.contacts["k1"]["email"], "a@b.co");
  EXPECT_EQ(store_.contacts["k1"]["mobile"], "+919876543210");
  EXPECT_EQ(store_.contacts["k1"]["zip"], "01234");

  // Typed as the preview shows them, with plain spaces, the columns are found too.
  auto typed = manager_->StartImport(
      caller_, ImportRequest(upload->upload_id(), {{"Customer ID", "customer_id"}, {"Mobile No.", "mobile"}}));
  EXPECT_TRUE(typed.ok()) << typed.status();
}

// The preview's sample values are cut (where a character starts) to what the job log quotes: ten
// rows of long fields (a record may reach 16 MiB) made an answer larger than a client takes (4 MiB
// by default, 64 MiB at most), refused after the upload, and the job asked for with it, had been
// stored. The file, and so the import, keep every byte.
TEST_F(JobManagerTest, PreviewSampleValuesAreCutButTheImportKeepsThemWhole) {
  std::string notes;
  for (int i = 0; i < 1000; ++i) notes += "\xC3\xA9";  // 2000 bytes of e-acute
  std::string content = "id,city\n";
  for (int i = 0; i < 12; ++i) content += fmt::format("k{},{}\n", i, notes);
  auto upload = Upload(content, "contacts.csv", 4096);
  ASSERT_TRUE(upload.ok()) << upload.status();
  ASSERT_EQ(upload->sample_rows_size(), 10);
  for (const v1::PreviewRow& row : upload->sample_rows()) {
    ASSERT_EQ(row.values_size(), 2);
    EXPECT_EQ(row.values(1).size(), kMaxReportedValueBytes);
    EXPECT_TRUE(notes.starts_with(row.values(1)));
  }
  auto job =
      manager_->StartImport(caller_, ImportRequest(upload->upload_id(), {{"id", "customer_id"}, {"city", "city"}}));
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(manager_->Start().ok());
  EXPECT_EQ(Watch(job->id()).back().state(), v1::COMPLETED);
  EXPECT_TRUE(store_.contacts["k11"]["city"] == notes) << store_.contacts["k11"]["city"].size();
}

// A declared size over the limit is refused before a byte is sent, not after 2 GiB of them.
TEST_F(JobManagerTest, ADeclaredSizeOverTheLimitIsRefusedAtOnce) {
  options_.upload_limits.max_upload_bytes = 100;
  RecreateManager();
  v1::UploadStart start;
  start.set_file_name("big.csv");
  start.set_size_bytes(101);
  std::string id;
  absl::Status refused = manager_->BeginUpload(caller_, start, &id).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.message(),
            "start.size_bytes: 101 bytes is larger than the limit of 100 bytes (--max_upload_bytes)");
  EXPECT_TRUE(std::filesystem::is_empty(options_.spool_dir));
  start.set_size_bytes(100);
  EXPECT_TRUE(manager_->BeginUpload(caller_, start, &id).ok());
}

TEST_F(JobManagerTest, UploadWithImportStartsTheJob) {
  v1::UploadStart start;
  start.set_file_name("x.csv");
  *start.mutable_import() = ImportRequest("", {{"id", "customer_id"}});
  std::string id;
  auto session = manager_->BeginUpload(caller_, start, &id);
  ASSERT_TRUE(session.ok());
  ASSERT_TRUE((*session)->Append("id\nk1\n").ok());
  auto response = manager_->FinishUpload(caller_, start, id, **session);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->job().state(), v1::QUEUED);
  EXPECT_EQ(response->job().upload_id(), id);
}

TEST_F(JobManagerTest, StartImportValidatesBeforeCreatingAnything) {
  const std::string upload = UploadId("id,email\nk1,a@b.co\n");
  auto no_pk = manager_->StartImport(caller_, ImportRequest(upload, {{"email", "email"}}));
  EXPECT_EQ(no_pk.status().code(), absl::StatusCode::kInvalidArgument);

  auto unknown_upload = manager_->StartImport(caller_, ImportRequest("feedfeed", {{"id", "customer_id"}}));
  EXPECT_EQ(unknown_upload.status().code(), absl::StatusCode::kInvalidArgument);

  v1::StartImportRequest bad_list = ImportRequest(upload, {{"id", "customer_id"}});
  bad_list.add_list_ids(99);
  v1::NewAttribute* notes = bad_list.add_create_attributes();
  notes->set_name("notes");
  notes->set_type(v1::TEXT);
  auto list = manager_->StartImport(caller_, bad_list);
  EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(list.status().message().find("99"), std::string_view::npos);
  EXPECT_TRUE(store_.created.empty());

  v1::StartImportRequest bad_mode = ImportRequest(upload, {{"id", "customer_id"}});
  bad_mode.set_mode(static_cast<v1::WriteMode>(99));
  auto mode = manager_->StartImport(caller_, bad_mode);
  EXPECT_EQ(mode.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(mode.status().message().find("mode: unknown write mode 99"), std::string_view::npos) << mode.status();

  store_.tenant_ready = false;
  auto tenant = manager_->StartImport(caller_, ImportRequest(upload, {{"id", "customer_id"}}));
  EXPECT_EQ(tenant.status().code(), absl::StatusCode::kFailedPrecondition);

  auto jobs = manager_->ListJobs("default", {});
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->jobs_size(), 0);
}

// contact-store answers a tenant it never set up with a blank record (no primary key), not
// NOT_FOUND: imports and deletes for such a tenant are refused as FAILED_PRECONDITION, and no job
// is created.
TEST_F(JobManagerTest, ImportsAndDeletesOfATenantNotSetUpAreAFailedPrecondition) {
  const std::string upload = UploadId("id\nk1\n");
  store_.tenant_ready = false;
  absl::Status import = manager_->StartImport(caller_, ImportRequest(upload, {{"id", "customer_id"}})).status();
  EXPECT_EQ(import.code(), absl::StatusCode::kFailedPrecondition) << import;
  EXPECT_NE(import.message().find("SetupTenant first"), std::string_view::npos) << import;
  v1::StartDeleteRequest request;
  request.mutable_keys()->add_keys("k1");
  absl::Status del = manager_->StartDelete(caller_, request).status();
  EXPECT_EQ(del.code(), absl::StatusCode::kFailedPrecondition) << del;
  EXPECT_NE(del.message().find("SetupTenant first"), std::string_view::npos) << del;
  auto jobs = manager_->ListJobs("default", {});
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_EQ(jobs->jobs_size(), 0);
}

TEST_F(JobManagerTest, AnotherTenantSeesNeitherUploadsNorJobs) {
  const std::string upload = UploadId("id\nk1\n");
  auto job = manager_->StartImport(caller_, ImportRequest(upload, {{"id", "customer_id"}}));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(manager_->GetJob("other", job->id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->CancelJob("other", job->id()).status().code(), absl::StatusCode::kNotFound);
  auto listed = manager_->ListJobs("other", {});
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->jobs_size(), 0);
  Caller other{"other", {}};
  EXPECT_EQ(manager_->StartImport(other, ImportRequest(upload, {{"id", "customer_id"}})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(JobManagerTest, WorkersRunJobsAndWatchSeesEveryChangeToTheEnd) {
  ASSERT_TRUE(manager_->Start().ok());
  std::string content = "id,city\n";
  for (int i = 0; i < 20; ++i) content += fmt::format("k{},c{}\n", i, i);
  auto job =
      manager_->StartImport(caller_, ImportRequest(UploadId(content), {{"id", "customer_id"}, {"city", "city"}}));
  ASSERT_TRUE(job.ok()) << job.status();
  std::vector<v1::Job> seen = Watch(job->id());
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().state(), v1::COMPLETED);
  EXPECT_EQ(seen.back().counts().inserted(), 20u);
  for (size_t i = 1; i < seen.size(); ++i) {
    EXPECT_GE(seen[i].counts().received(), seen[i - 1].counts().received());
  }
  auto got = manager_->GetJob("default", job->id());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state(), v1::COMPLETED);
  EXPECT_GT(got->finished_at_micros(), 0);
}

TEST_F(JobManagerTest, CancellingAQueuedJobIsImmediate) {
  auto job = manager_->StartImport(caller_, ImportRequest(UploadId("id\nk1\n"), {{"id", "customer_id"}}));
  ASSERT_TRUE(job.ok());
  auto cancelled = manager_->CancelJob("default", job->id());
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), v1::CANCELLED);
  ASSERT_TRUE(manager_->Start().ok());
  std::vector<v1::Job> seen = Watch(job->id());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].state(), v1::CANCELLED);
  EXPECT_TRUE(store_.contacts.empty());
}

TEST_F(JobManagerTest, CancellingARunningJobStopsItAtABatchBoundary) {
  const std::string content = IdRows(30);
  ASSERT_TRUE(manager_->Start().ok());
  Moment reached;
  Moment cancel_requested;
  HoldBatch(2, reached, cancel_requested);  // until the cancel has been asked for
  auto job = manager_->StartImport(caller_, ImportRequest(UploadId(content), {{"id", "customer_id"}}));
  ASSERT_TRUE(job.ok());
  reached.Wait();
  auto asked = manager_->CancelJob("default", job->id());
  cancel_requested.Signal();
  ASSERT_TRUE(asked.ok()) << asked.status();
  EXPECT_EQ(asked->state(), v1::RUNNING);  // it stops at the next batch boundary
  std::vector<v1::Job> seen = Watch(job->id());
  ASSERT_FALSE(seen.empty());
  const v1::Job& last = seen.back();
  EXPECT_EQ(last.state(), v1::CANCELLED);
  // The batches sent before the cancel (batch 3 may have gone out with batch 2) are counted, and
  // the counts match what the store holds.
  EXPECT_TRUE(last.counts().received() == 6u || last.counts().received() == 9u) << last.counts().received();
  EXPECT_EQ(store_.contacts.size(), last.counts().received());
  // Cancelling it again answers with the final record.
  auto again = manager_->CancelJob("default", job->id());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->state(), v1::CANCELLED);
  EXPECT_EQ(again->counts().received(), last.counts().received());
}

// The process dies (here: the job's writes fail from the cancel on, so its end is never saved)
// between the answer to a cancel of a running job and the batch boundary where it stops. The
// cancel holds after the restart: the job sends again the batches that may have been in flight,
// then ends CANCELLED with counts that match the store, instead of running to its end.
TEST_F(JobManagerTest, ACancelAnsweredBeforeTheProcessDiedEndsTheJobAfterTheRestart) {
  const std::string content = IdRows(30);
  const std::string id = QueuedBeforeStart(content);
  Moment reached;
  Moment cancel_requested;
  HoldBatch(2, reached, cancel_requested);
  {
    std::atomic<bool> broken{false};
    ScopedFault fault(*jobs_, [&](std::string_view what) {
      if (broken && (what == "write job" || what == "write checkpoint")) return absl::UnavailableError("disk full");
      return absl::OkStatus();
    });
    ASSERT_TRUE(manager_->Start().ok());
    reached.Wait();
    // Batch 1's checkpoint is written once its answer is in, batch 2 held or not.
    for (int i = 0; i < 1000 && Stored(id).next_batch_sequence() != 2; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    broken = true;
    auto asked = manager_->CancelJob("default", id);
    cancel_requested.Signal();
    ASSERT_TRUE(asked.ok()) << asked.status();
    EXPECT_EQ(asked->state(), v1::RUNNING);
    Watch(id);  // the job ends in memory only
    EXPECT_EQ(Stored(id).job().state(), v1::RUNNING);
    EXPECT_EQ(Stored(id).next_batch_sequence(), 2u);
    manager_->Shutdown();
  }
  store_.batch_hook = nullptr;
  EXPECT_GE(store_.contacts.size(), 6u);  // batch 2 reached the store, unacknowledged

  RecreateManager();
  ASSERT_TRUE(manager_->Start().ok());
  std::vector<v1::Job> seen = Watch(id);
  ASSERT_FALSE(seen.empty());
  const v1::Job& last = seen.back();
  EXPECT_EQ(last.state(), v1::CANCELLED) << last.error();
  EXPECT_EQ(Stored(id).job().state(), v1::CANCELLED);
  // Batches 2 and 3 sent again (the jobs keep two in flight), nothing after them.
  EXPECT_EQ(last.counts().received(), 9u);
  EXPECT_EQ(last.counts().inserted(), 9u);
  EXPECT_EQ(store_.contacts.size(), 9u);
}

// A job that was RUNNING when the process died, queued again by Start() and not yet picked by a
// worker, may have had batches in flight that the store applied. A cancel then does not end it at
// once as if it had never run: it first sends those batches again (replays answer their
// outcomes), then ends CANCELLED with counts that match the store.
TEST_F(JobManagerTest, ACancelOfAResumedJobWaitingForAWorkerCountsWhatTheStoreApplied) {
  auto imports = OlderAndResumedImports();
  const absl::StatusOr<v1::Job>& older = imports.first;
  const absl::StatusOr<v1::Job>& resumed = imports.second;
  ASSERT_TRUE(older.ok() && resumed.ok());
  // The resumed job's run before the "crash": the store applies batch 2 (and batch 3 behind it
  // may follow), and the process dies before batch 2's answer arrives.
  JobControl control;
  bool lost = false;
  store_.batch_hook = [&](uint64_t sequence, bool* apply_first) {
    if (sequence != 2 || lost) return absl::OkStatus();
    lost = true;
    *apply_first = true;
    control.RequestStop();
    return absl::UnavailableError("connection reset");
  };
  internal::StoredJob paused = Run(resumed->id(), &control);
  ASSERT_EQ(paused.job().state(), v1::RUNNING);
  ASSERT_EQ(paused.next_batch_sequence(), 2u);
  ASSERT_EQ(paused.job().counts().received(), 3u);
  ASSERT_GE(store_.contacts.size(), 6u);

  auto asked = RestartAndCancelWhileTheWorkerIsBusy(resumed->id());
  ASSERT_TRUE(asked.ok()) << asked.status();
  EXPECT_EQ(asked->state(), v1::RUNNING);
  const v1::Job last = Watch(resumed->id()).back();
  EXPECT_EQ(last.state(), v1::CANCELLED) << last.error();
  EXPECT_EQ(Stored(resumed->id()).job().state(), v1::CANCELLED);
  // Batches 2 and 3 sent again (jobs keep two in flight), nothing after them.
  EXPECT_EQ(last.counts().received(), 9u);
  EXPECT_EQ(last.counts().inserted(), 9u);
  size_t stored_rows = 0;
  for (const auto& [key, contact] : store_.contacts) stored_rows += key.starts_with("k") ? 1 : 0;
  EXPECT_EQ(stored_rows, 9u);
  EXPECT_EQ(Watch(older->id()).back().state(), v1::COMPLETED);
}

// The window is the job's, fixed when it was queued: after a restart with a smaller
// --batches_in_flight, a cancel still sends again every batch the run before may have had out (it
// sent as many as the process's flag said then, and re-sent only as many as it says now).
TEST_F(JobManagerTest, ACancelAfterARestartWithASmallerWindowSendsTheWholeOldWindowAgain) {
  options_.runner.batches_in_flight = 3;
  RecreateManager();
  auto imports = OlderAndResumedImports();
  const absl::StatusOr<v1::Job>& older = imports.first;
  const absl::StatusOr<v1::Job>& resumed = imports.second;
  ASSERT_TRUE(older.ok() && resumed.ok());
  // The run before the "crash": batches 2, 3 and 4 are applied but their answers lost, and the
  // process dies once batch 4 is in.
  JobControl control;
  store_.batch_hook = [&](uint64_t sequence, bool* apply_first) {
    if (sequence < 2) return absl::OkStatus();
    *apply_first = true;
    if (sequence == 4) control.RequestStop();
    return absl::UnavailableError("connection reset");
  };
  internal::StoredJob paused = Run(resumed->id(), &control);
  ASSERT_EQ(paused.job().state(), v1::RUNNING);
  ASSERT_EQ(paused.next_batch_sequence(), 2u);
  const auto stored_rows = [&] {
    size_t rows = 0;
    for (const auto& [key, contact] : store_.contacts) rows += key.starts_with("k") ? 1 : 0;
    return rows;
  };
  ASSERT_EQ(stored_rows(), 12u);

  options_.runner.batches_in_flight = 1;
  auto asked = RestartAndCancelWhileTheWorkerIsBusy(resumed->id());
  ASSERT_TRUE(asked.ok()) << asked.status();
  const v1::Job last = Watch(resumed->id()).back();
  EXPECT_EQ(last.state(), v1::CANCELLED) << last.error();
  // Batches 2 to 4 sent again and counted, nothing after them.
  EXPECT_EQ(last.counts().received(), 12u);
  EXPECT_EQ(last.counts().inserted(), 12u);
  EXPECT_EQ(stored_rows(), 12u);
}

// A queued job whose CANCELLED record could not be written (the caller was told so) is cancelled
// at the next start all the same, without sending anything: the cancel was asked for.
TEST_F(JobManagerTest, AQueuedJobWhoseCancelWasNotSavedEndsCancelledAtTheNextStart) {
  auto job = manager_->StartImport(caller_, ImportRequest(UploadId("id\nk1\nk2\n"), {{"id", "customer_id"}}));
  ASSERT_TRUE(job.ok()) << job.status();
  {
    ScopedFault fault(*jobs_, [](std::string_view what) {
      return what == "write job" ? absl::UnavailableError("disk full") : absl::OkStatus();
    });
    EXPECT_EQ(manager_->CancelJob("default", job->id()).status().code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_EQ(Stored(job->id()).job().state(), v1::QUEUED);
  RecreateManager();
  ASSERT_TRUE(manager_->Start().ok());
  EXPECT_EQ(Watch(job->id()).back().state(), v1::CANCELLED);
  EXPECT_EQ(Stored(job->id()).job().state(), v1::CANCELLED);
  EXPECT_TRUE(Stored(job->id()).credentials().empty());
  EXPECT_TRUE(store_.contacts.empty());
}

// A cancel the jobs database refuses to record is refused: the job runs on.
TEST_F(JobManagerTest, ACancelThatCannotBeRecordedIsRefusedAndTheJobRunsOn) {
  auto job = manager_->StartImport(caller_, ImportRequest(UploadId("id\nk1\nk2\n"), {{"id", "customer_id"}}));
  ASSERT_TRUE(job.ok()) << job.status();
  {
    ScopedFault fault(*jobs_, [](std::string_view what) {
      return what == "write cancel request" ? absl::UnavailableError("disk full") : absl::OkStatus();
    });
    absl::Status refused = manager_->CancelJob("default", job->id()).status();
    EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
    EXPECT_NE(refused.message().find("write cancel request"), std::string::npos) << refused;
  }
  ASSERT_TRUE(manager_->Start().ok());
  EXPECT_EQ(Watch(job->id()).back().state(), v1::COMPLETED);
  EXPECT_EQ(store_.contacts.size(), 2u);
}

// One job record that cannot be read (corrupt) keeps neither import-processor from starting nor
// any tenant from listing its jobs: Start() and ListJobs skip it (and log it), the rest goes on.
TEST_F(JobManagerTest, AnUnreadableJobRecordIsSkippedByStartAndListJobs) {
  auto job = manager_->StartImport(caller_, ImportRequest(UploadId("id\nk1\nk2\n"), {{"id", "customer_id"}}));
  ASSERT_TRUE(job.ok()) << job.status();
  const std::string corrupt = NewId();  // newer than the job, so met first
  ASSERT_TRUE(jobs_->PutRawJobForTesting(corrupt, "\xff\xff not a job record").ok());
  RecreateManager();
  absl::Status started = manager_->Start();
  ASSERT_TRUE(started.ok()) << started;
  EXPECT_EQ(Watch(job->id()).back().state(), v1::COMPLETED);
  auto listed = manager_->ListJobs("default", {});
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->jobs_size(), 1);
  EXPECT_EQ(listed->jobs(0).id(), job->id());
  auto other = manager_->ListJobs("other", {});
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->jobs_size(), 0);
}

TEST_F(JobManagerTest, ListJobsIsNewestFirstWithPagesAndStateFilter) {
  const std::string upload = UploadId("id\nk1\n");
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto job = manager_->StartImport(caller_, ImportRequest(upload, {{"id", "customer_id"}}));
    ASSERT_TRUE(job.ok());
    ids.push_back(job->id());
  }
  ASSERT_TRUE(manager_->CancelJob("default", ids[1]).ok());
  v1::ListJobsRequest request;
  request.set_page_size(2);
  std::vector<std::string> listed;
  while (true) {
    auto page = manager_->ListJobs("default", request);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const v1::Job& job : page->jobs()) listed.push_back(job.id());
    if (page->next_page_token().empty()) break;
    request.set_page_token(page->next_page_token());
  }
  EXPECT_EQ(listed, (std::vector<std::string>{ids[4], ids[3], ids[2], ids[1], ids[0]}));

  v1::ListJobsRequest cancelled;
  cancelled.set_state(v1::CANCELLED);
  auto page = manager_->ListJobs("default", cancelled);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->jobs_size(), 1);
  EXPECT_EQ(page->jobs(0).id(), ids[1]);

  v1::ListJobsRequest bad;
  bad.set_page_token("nonsense");
  EXPECT_EQ(manager_->ListJobs("default", bad).status().code(), absl::StatusCode::kInvalidArgument);
}

// Bad input names the field: a missing job id is not "job \"\" not found", and a state filter this
// binary does not know is refused rather than answered with an empty page.
TEST_F(JobManagerTest, AMissingJobIdOrAnUnknownStateFilterIsInvalidArgument) {
  for (const absl::Status& status :
       {manager_->GetJob("default", "").status(), manager_->CancelJob("default", "").status(),
        manager_->WatchJob(
            "default", "", [](const v1::Job&) { return true; }, [] { return false; }),
        manager_->ScanJobLog("default", "", JobLogKind::kRejected, [](v1::JobError&&) { return true; })}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_NE(status.message().find("job_id"), std::string::npos) << status;
  }
  v1::ListJobsRequest request;
  request.set_state(static_cast<v1::JobState>(42));
  absl::Status status = manager_->ListJobs("default", request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find("state"), std::string::npos) << status;
}

TEST_F(JobManagerTest, UnfinishedJobsResumeOnStart) {
  auto job = manager_->StartImport(caller_, ImportRequest(UploadId("id\nk1\nk2\n"), {{"id", "customer_id"}}));
  ASSERT_TRUE(job.ok());
  RecreateManager();  // "restart" before any worker ran
  ASSERT_TRUE(manager_->Start().ok());
  std::vector<v1::Job> seen = Watch(job->id());
  EXPECT_EQ(seen.back().state(), v1::COMPLETED);
  EXPECT_EQ(store_.contacts.size(), 2u);
}

TEST_F(JobManagerTest, ShutdownLeavesARunningJobResumable) {
  const std::string content = IdRows(30);
  ASSERT_TRUE(manager_->Start().ok());
  Moment reached;
  std::atomic<bool> down{true};
  // From batch 2 on the store is down, so the job waits in its retry loop until shutdown.
  store_.batch_hook = [&](uint64_t sequence, bool*) {
    if (sequence < 2 || !down) return absl::OkStatus();
    reached.Signal();
    return absl::UnavailableError("down");
  };
  auto job = manager_->StartImport(caller_, ImportRequest(UploadId(content), {{"id", "customer_id"}}));
  ASSERT_TRUE(job.ok());
  reached.Wait();
  manager_->Shutdown();
  internal::StoredJob paused = Stored(job->id());
  EXPECT_EQ(paused.job().state(), v1::RUNNING);
  EXPECT_EQ(paused.next_batch_sequence(), 2u);
  EXPECT_FALSE(paused.credentials().empty());  // still needed to resume

  down = false;
  RecreateManager();
  ASSERT_TRUE(manager_->Start().ok());
  std::vector<v1::Job> seen = Watch(job->id());
  EXPECT_EQ(seen.back().state(), v1::COMPLETED);
  EXPECT_EQ(seen.back().counts().inserted(), 30u);
  EXPECT_EQ(store_.contacts.size(), 30u);
}

TEST_F(JobManagerTest, OldUploadsExpireUnlessAnUnfinishedJobReadsThem) {
  auto old = Upload("id\nk1\n");
  auto used = Upload("id\nk2\n");
  ASSERT_TRUE(old.ok() && used.ok());
  auto job = manager_->StartImport(caller_, ImportRequest(used->upload_id(), {{"id", "customer_id"}}));
  ASSERT_TRUE(job.ok());  // queued: no worker runs
  const std::string old_path = jobs_->GetUpload(old->upload_id())->spool_path();
  ASSERT_TRUE(std::filesystem::exists(old_path));

  const int64_t later = job->created_at_micros() + int64_t{73} * 3600 * 1000000;
  EXPECT_EQ(manager_->ExpireUploads(job->created_at_micros()), 0u);  // too young
  EXPECT_EQ(manager_->ExpireUploads(later), 1u);
  EXPECT_FALSE(std::filesystem::exists(old_path));
  EXPECT_EQ(manager_->StartImport(caller_, ImportRequest(old->upload_id(), {{"id", "customer_id"}})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(jobs_->GetUpload(used->upload_id()).ok());
  EXPECT_TRUE(std::filesystem::exists(jobs_->GetUpload(used->upload_id())->spool_path()));
}

// The janitor runs while a StartImport / StartDelete has read the upload but not yet queued its
// job: the upload is kept, so the job finds its file.
TEST_F(JobManagerTest, AnUploadIsNotExpiredWhileAJobIsBeingStartedFromIt) {
  const int64_t later =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count() +
      int64_t{100} * 3600 * 1000000;
  std::vector<std::string> ids;
  for (bool import : {true, false}) {
    SCOPED_TRACE(import ? "StartImport" : "StartDelete");
    const std::string upload = UploadId("id\nk1\n");
    const std::string path = jobs_->GetUpload(upload)->spool_path();
    Moment in_store;
    Moment expired;
    // StartImport / StartDelete ask the store for the tenant after they have read the upload.
    store_.get_tenant_hook = [&] {
      in_store.Signal();
      expired.Wait();
    };
    absl::StatusOr<v1::Job> job;
    std::thread start([&] {
      if (import) {
        job = manager_->StartImport(caller_, ImportRequest(upload, {{"id", "customer_id"}}));
      } else {
        v1::StartDeleteRequest request;
        request.set_upload_id(upload);
        job = manager_->StartDelete(caller_, request);
      }
    });
    in_store.Wait();
    EXPECT_EQ(manager_->ExpireUploads(later), 0u);
    expired.Signal();
    start.join();
    store_.get_tenant_hook = nullptr;
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_TRUE(std::filesystem::exists(path));
    EXPECT_TRUE(jobs_->GetUpload(upload).ok());
    ids.push_back(job->id());
  }
  EXPECT_EQ(manager_->ExpireUploads(later), 0u);  // both jobs are queued
  ASSERT_TRUE(manager_->Start().ok());
  for (const std::string& id : ids) EXPECT_EQ(Watch(id).back().state(), v1::COMPLETED) << id;
}

// A spool file is only kept with its upload's record: when the record cannot be written, the
// file goes too (it used to stay until the next restart).
TEST_F(JobManagerTest, AnUploadWhoseRecordCannotBeWrittenLeavesNoFile) {
  ScopedFault fault(*jobs_, [](std::string_view what) {
    return what == "write upload" ? absl::UnavailableError("disk full") : absl::OkStatus();
  });
  auto upload = Upload("id\nk1\n");
  EXPECT_EQ(upload.status().code(), absl::StatusCode::kUnavailable) << upload.status();
  EXPECT_TRUE(std::filesystem::is_empty(options_.spool_dir));
}

// The worker cannot read the job's record: the job ends FAILED for this process instead of
// staying QUEUED with nobody running it. Its record still says QUEUED, so it runs after a restart.
TEST_F(JobManagerTest, AJobWhoseRecordCannotBeReadFailsUntilTheNextStart) {
  const std::string id = QueuedBeforeStart("id\nk1\n");
  Moment refused;
  std::atomic<bool> armed{true};
  ScopedFault fault(*jobs_, [&](std::string_view what) {
    if (what != "read job" || !armed.exchange(false)) return absl::OkStatus();
    refused.Signal();
    return absl::UnavailableError("disk on fire");
  });
  ASSERT_TRUE(manager_->Start().ok());
  refused.Wait();  // the worker's read; the calls below read the record fine
  EXPECT_GT(ExpectFailedUntilRestart(id, "disk on fire").finished_at_micros(), 0);
  EXPECT_EQ(Stored(id).job().state(), v1::QUEUED);
  EXPECT_TRUE(store_.contacts.empty());

  ExpectCompletesAfterRestart(id);
  EXPECT_EQ(store_.contacts.size(), 1u);
}

// The runner cannot even mark the job RUNNING, and the database stays broken: the job ends FAILED
// in memory (watchers return, a cancel is not left pending) and runs again after a restart.
TEST_F(JobManagerTest, AJobThatCannotBeMarkedRunningFailsUntilTheNextStart) {
  const std::string id = QueuedBeforeStart("id\nk1\n");
  {
    ScopedFault fault(*jobs_, [](std::string_view what) {
      return what == "write job" ? absl::UnavailableError("disk full") : absl::OkStatus();
    });
    ASSERT_TRUE(manager_->Start().ok());
    ExpectFailedUntilRestart(id, "disk full");
  }
  EXPECT_EQ(Stored(id).job().state(), v1::QUEUED);
  EXPECT_TRUE(store_.contacts.empty());
  ExpectCompletesAfterRestart(id);
}

// The write that marks the job RUNNING fails once: the worker records the job FAILED, like any
// job whose checkpoint could not be written, and the record agrees.
TEST_F(JobManagerTest, AJobThatCouldNotBeMarkedRunningIsRecordedFailed) {
  const std::string id = QueuedBeforeStart("id\nk1\n");
  std::atomic<bool> armed{true};
  ScopedFault fault(*jobs_, [&](std::string_view what) {
    if (what != "write job" || !armed.exchange(false)) return absl::OkStatus();
    return absl::UnavailableError("disk full");
  });
  ASSERT_TRUE(manager_->Start().ok());
  std::vector<v1::Job> seen = Watch(id);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().state(), v1::FAILED);
  ExpectEveryCallSays(seen.back());
  internal::StoredJob stored = Stored(id);
  EXPECT_EQ(stored.job().state(), v1::FAILED);
  EXPECT_EQ(stored.job().error(), seen.back().error());
  EXPECT_TRUE(stored.credentials().empty());
  EXPECT_TRUE(store_.contacts.empty());
}

// A checkpoint fails and so does every later write: the job's final state (FAILED) exists only in
// memory, its record still says RUNNING. WatchJob ends with that final state and the other calls
// agree with it, instead of the record's RUNNING; after a restart the job resumes.
TEST_F(JobManagerTest, AFinalStateTheDatabaseRefusedIsWhatEveryCallSays) {
  std::string content = "id\n";
  for (int i = 0; i < 10; ++i) content += fmt::format("k{}\n", i);
  const std::string id = QueuedBeforeStart(content);
  {
    std::atomic<bool> broken{false};
    ScopedFault fault(*jobs_, [&](std::string_view what) {
      if (what == "write checkpoint") broken = true;
      if (broken && what.starts_with("write")) return absl::UnavailableError("disk full");
      return absl::OkStatus();
    });
    ASSERT_TRUE(manager_->Start().ok());
    ExpectFailedUntilRestart(id, "write checkpoint");
    EXPECT_EQ(Stored(id).job().state(), v1::RUNNING);
    manager_->Shutdown();
  }
  ExpectCompletesAfterRestart(id);
  EXPECT_EQ(store_.contacts.size(), 10u);
}

TEST_F(JobManagerTest, StartRemovesFilesOfInterruptedUploads) {
  auto kept = Upload("id\nk1\n");
  ASSERT_TRUE(kept.ok());
  const std::string stray = options_.spool_dir + "/0000000000000000deadbeef.csv";
  std::ofstream(stray) << "id\n";
  ASSERT_TRUE(manager_->Start().ok());
  EXPECT_FALSE(std::filesystem::exists(stray));
  EXPECT_TRUE(std::filesystem::exists(jobs_->GetUpload(kept->upload_id())->spool_path()));
}

// ----- Job retention -----

constexpr int64_t kHourMicros = int64_t{3600} * 1000000;
constexpr int64_t kDayMicros = 24 * kHourMicros;

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class JobRetentionTest : public JobManagerTest {
 protected:
  // A job record of the default tenant written straight to the jobs db, with an id that begins
  // with `created_micros` as NewId's do, in `state`, finished at `finished_micros` (0 for an
  // unfinished one), with `rejected` rejected rows and one email fix in its log. Returns its id.
  std::string PutJob(int64_t created_micros, v1::JobState state, int64_t finished_micros, int rejected = 2) {
    internal::StoredJob job;
    v1::Job& info = *job.mutable_job();
    info.set_id(fmt::format("{:016x}{:08x}", static_cast<uint64_t>(created_micros), next_suffix_++));
    info.set_state(state);
    info.set_created_at_micros(created_micros);
    info.set_finished_at_micros(finished_micros);
    job.set_tenant("default");
    EXPECT_TRUE(CheckpointWithLog(*jobs_, job, rejected).ok());
    return info.id();
  }

  // An old job: created 100 days and finished 91 days before `now`, past the default 90 days.
  std::string PutOldFinishedJob(int64_t now, v1::JobState state = v1::COMPLETED_WITH_ERRORS) {
    return PutJob(now - 100 * kDayMicros, state, now - 91 * kDayMicros);
  }

  bool InDb(const std::string& id) { return jobs_->GetJob(id).ok(); }

  // The ids ListJobs pages through, `page_size` at a time, from `token`.
  std::vector<std::string> Listed(uint32_t page_size = 1000, std::string token = "") {
    std::vector<std::string> ids;
    v1::ListJobsRequest request;
    request.set_page_size(page_size);
    request.set_page_token(token);
    while (true) {
      auto page = manager_->ListJobs("default", request);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) return ids;
      for (const v1::Job& job : page->jobs()) ids.push_back(job.id());
      if (page->next_page_token().empty()) return ids;
      request.set_page_token(page->next_page_token());
    }
  }

  // Every call about a job answers as it does for an id that never existed.
  void ExpectUnknown(const std::string& id) {
    const absl::Status unknown = manager_->GetJob("default", "00000000000000000000000f").status();
    ASSERT_EQ(unknown.code(), absl::StatusCode::kNotFound) << unknown;
    const std::string message = fmt::format("job \"{}\" not found", id);
    for (const absl::Status& status :
         {manager_->GetJob("default", id).status(), manager_->CancelJob("default", id).status(),
          manager_->WatchJob(
              "default", id, [](const v1::Job&) { return true; }, [] { return false; }),
          manager_->ScanJobLog("default", id, JobLogKind::kRejected, [](v1::JobError&&) { return true; }),
          manager_->ScanJobLog("default", id, JobLogKind::kFixed, [](v1::JobError&&) { return true; })}) {
      EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
      EXPECT_EQ(status.message(), message) << status;
    }
    EXPECT_TRUE(Log(id, JobLogKind::kRejected).empty());
    EXPECT_TRUE(Log(id, JobLogKind::kFixed).empty());
  }

  uint32_t next_suffix_ = 1;
};

// The whole way: a job with rejected rows and email fixes runs to its end, stays for the
// retention, and then goes with its log.
TEST_F(JobRetentionTest, AFinishedJobGoesWithItsLogOnceOlderThanTheRetention) {
  ASSERT_TRUE(manager_->Start().ok());
  v1::StartImportRequest request = ImportRequest(UploadId("id,email\nk1,a@gmial.com\nk2\nk3,c@example.com,x\n"),
                                                 {{"id", "customer_id"}, {"email", "email"}});
  request.set_fix_email_typos(true);
  auto job = manager_->StartImport(caller_, request);
  ASSERT_TRUE(job.ok()) << job.status();
  const v1::Job finished = Watch(job->id()).back();
  ASSERT_EQ(finished.state(), v1::COMPLETED_WITH_ERRORS);
  ASSERT_EQ(Log(job->id(), JobLogKind::kRejected).size(), 2u);
  ASSERT_EQ(Log(job->id(), JobLogKind::kFixed).size(), 1u);
  // WatchJob can see the final state before the worker lets go of the job, which a purge waits
  // for (AJobTheProcessStillHoldsIsNotPurged): the worker is done once Shutdown returns.
  manager_->Shutdown();
  const int64_t retention = int64_t{90} * kDayMicros;

  EXPECT_EQ(manager_->ExpireJobs(finished.finished_at_micros() + retention - 1), 0u);
  EXPECT_TRUE(manager_->GetJob("default", job->id()).ok());
  EXPECT_EQ(Log(job->id(), JobLogKind::kRejected).size(), 2u);

  EXPECT_EQ(manager_->ExpireJobs(finished.finished_at_micros() + retention + 1), 1u);
  EXPECT_FALSE(InDb(job->id()));
  ExpectUnknown(job->id());
  EXPECT_TRUE(Listed().empty());
  EXPECT_EQ(manager_->ExpireJobs(finished.finished_at_micros() + retention + 1), 0u);  // nothing left
}

// What counts is when a job finished, not when it was created; QUEUED and RUNNING jobs stay
// however old they are.
TEST_F(JobRetentionTest, OnlyJobsThatFinishedBeforeTheRetentionGo) {
  const int64_t now = NowMicros();
  std::vector<std::string> purged;
  for (v1::JobState state : {v1::COMPLETED, v1::COMPLETED_WITH_ERRORS, v1::FAILED, v1::CANCELLED}) {
    purged.push_back(PutOldFinishedJob(now, state));
  }
  const std::string queued = PutJob(now - 200 * kDayMicros, v1::QUEUED, 0);
  const std::string running = PutJob(now - 200 * kDayMicros, v1::RUNNING, 0);
  const std::string finished_lately = PutJob(now - 200 * kDayMicros, v1::COMPLETED, now - 89 * kDayMicros);
  const std::string recent = PutJob(now - 2 * kHourMicros, v1::FAILED, now - kHourMicros);

  EXPECT_EQ(manager_->ExpireJobs(now), 4u);
  for (const std::string& id : purged) {
    SCOPED_TRACE(id);
    EXPECT_FALSE(InDb(id));
    ExpectUnknown(id);
  }
  for (const std::string& id : {queued, running, finished_lately, recent}) {
    SCOPED_TRACE(id);
    EXPECT_TRUE(InDb(id));
    EXPECT_EQ(Log(id, JobLogKind::kRejected).size(), 2u);
    EXPECT_EQ(Log(id, JobLogKind::kFixed).size(), 1u);
  }
  EXPECT_EQ(Listed(), (std::vector<std::string>{recent, finished_lately, running, queued}));  // newest id first
}

// A record that cannot be parsed stays (whether its job finished cannot be known), and the older
// jobs the scan meets after it still go.
TEST_F(JobRetentionTest, AnUnreadableRecordDoesNotKeepOlderJobsFromGoing) {
  const int64_t now = NowMicros();
  const std::string older = PutOldFinishedJob(now);  // created 100 days ago
  const std::string corrupt = fmt::format("{:016x}{:08x}", static_cast<uint64_t>(now - 95 * kDayMicros), 7u);
  ASSERT_TRUE(jobs_->PutRawJobForTesting(corrupt, "\xff\xff not a job record").ok());
  EXPECT_EQ(manager_->ExpireJobs(now), 1u);
  EXPECT_FALSE(InDb(older));
  EXPECT_EQ(jobs_->GetJob(corrupt).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(JobRetentionTest, ARetentionOfZeroKeepsEveryJob) {
  options_.job_retention = std::chrono::seconds(0);
  RecreateManager();
  const int64_t now = NowMicros();
  const std::string old = PutOldFinishedJob(now);
  EXPECT_EQ(manager_->ExpireJobs(now + 100 * 365 * kDayMicros), 0u);
  EXPECT_TRUE(InDb(old));
  EXPECT_EQ(Log(old, JobLogKind::kRejected).size(), 2u);
}

// A page token names the last job of its page: the next page starts after it even when that job,
// and the one after it, were purged in between.
TEST_F(JobRetentionTest, ListJobsPagesOnAcrossAPurge) {
  const int64_t now = NowMicros();
  const int64_t created = now - 100 * kDayMicros;
  std::vector<std::string> ids;  // oldest first
  for (int i = 0; i < 5; ++i) {
    const bool old = i == 2 || i == 3;
    ids.push_back(PutJob(created + i, v1::COMPLETED, old ? now - 91 * kDayMicros : now - kDayMicros));
  }
  v1::ListJobsRequest request;
  request.set_page_size(2);
  auto first = manager_->ListJobs("default", request);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->jobs_size(), 2);
  EXPECT_EQ(first->jobs(0).id(), ids[4]);
  EXPECT_EQ(first->jobs(1).id(), ids[3]);
  ASSERT_EQ(first->next_page_token(), ids[3]);

  EXPECT_EQ(manager_->ExpireJobs(now), 2u);
  EXPECT_EQ(Listed(2, first->next_page_token()), (std::vector<std::string>{ids[1], ids[0]}));
  EXPECT_EQ(Listed(2), (std::vector<std::string>{ids[4], ids[1], ids[0]}));
}

// A job this process still holds (here: queued, its record overwritten to look finished long
// ago, as a worker's job is between writing its final record and letting go of it) is left to
// the next pass.
TEST_F(JobRetentionTest, AJobTheProcessStillHoldsIsNotPurged) {
  auto job = manager_->StartImport(caller_, ImportRequest(UploadId("id\nk1\n"), {{"id", "customer_id"}}));
  ASSERT_TRUE(job.ok()) << job.status();
  internal::StoredJob stored = Stored(job->id());
  stored.mutable_job()->set_state(v1::COMPLETED);
  stored.mutable_job()->set_finished_at_micros(job->created_at_micros());
  ASSERT_TRUE(jobs_->PutJob(stored).ok());
  EXPECT_EQ(manager_->ExpireJobs(job->created_at_micros() + 91 * kDayMicros), 0u);
  EXPECT_TRUE(InDb(job->id()));
}

// The jobs db refuses the delete: the job stays whole, and the next pass purges it.
TEST_F(JobRetentionTest, APurgeTheDatabaseRefusesIsRetriedAtTheNextPass) {
  const int64_t now = NowMicros();
  const std::string old = PutOldFinishedJob(now);
  {
    ScopedFault fault(*jobs_, [](std::string_view what) {
      return what == "delete job" ? absl::UnavailableError("disk full") : absl::OkStatus();
    });
    EXPECT_EQ(manager_->ExpireJobs(now), 0u);
  }
  EXPECT_TRUE(manager_->GetJob("default", old).ok());
  EXPECT_EQ(Log(old, JobLogKind::kRejected).size(), 2u);
  EXPECT_EQ(manager_->ExpireJobs(now), 1u);
  EXPECT_FALSE(InDb(old));
}

// The value of metric `name` (with label state=`state` when given) in `registry`, or -1.
double Metric(prometheus::Registry& registry, const std::string& name, const std::string& state = "") {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      const bool match = state.empty() || std::any_of(metric.label.begin(), metric.label.end(),
                                                      [&](const auto& l) { return l.value == state; });
      if (match) return family.type == prometheus::MetricType::Counter ? metric.counter.value : metric.gauge.value;
    }
  }
  return -1;
}

// The janitor purges at Start, also with uploads kept forever; the job gauges follow and the
// purged jobs are counted.
TEST_F(JobRetentionTest, TheJanitorPurgesAtStartAndTheMetricsFollow) {
  const int64_t now = NowMicros();
  const std::string old_completed = PutOldFinishedJob(now, v1::COMPLETED);
  const std::string old_cancelled = PutOldFinishedJob(now, v1::CANCELLED);
  const std::string recent = PutJob(now - 2 * kHourMicros, v1::COMPLETED, now - kHourMicros);
  options_.upload_ttl = std::chrono::seconds(0);
  prometheus::Registry registry;
  manager_.reset();
  manager_ = std::make_unique<JobManager>(*jobs_, store_, options_, &registry);
  EXPECT_EQ(Metric(registry, "import_jobs_purged_total"), 0);
  ASSERT_TRUE(manager_->Start().ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((InDb(old_completed) || InDb(old_cancelled)) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_FALSE(InDb(old_completed));
  EXPECT_FALSE(InDb(old_cancelled));
  EXPECT_TRUE(InDb(recent));
  manager_->Shutdown();  // the pass is over: the metrics are final
  EXPECT_EQ(Metric(registry, "import_jobs_purged_total"), 2);
  EXPECT_EQ(Metric(registry, "import_jobs", "COMPLETED"), 1);
  EXPECT_EQ(Metric(registry, "import_jobs", "CANCELLED"), 0);
  manager_.reset();  // before the registry goes
}

// With the janitor running for job retention alone, uploads are still kept forever.
TEST_F(JobRetentionTest, AnUploadTtlOfZeroKeepsUploadsWhileJobsExpire) {
  options_.upload_ttl = std::chrono::seconds(0);
  RecreateManager();
  const std::string upload = UploadId("id\nk1\n");
  EXPECT_EQ(manager_->ExpireUploads(NowMicros() + 100 * 365 * kDayMicros), 0u);
  EXPECT_TRUE(jobs_->GetUpload(upload).ok());
}

}  // namespace
}  // namespace contacts::test
