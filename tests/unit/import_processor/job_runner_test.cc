#include "services/import_processor/job_runner.h"

#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/import_processor/job_test_base.h"

namespace contacts::test {
namespace {

using ::testing::ElementsAre;

class JobRunnerTest : public JobTestBase {
 protected:
  std::string StartImport(const std::string& content, v1::StartImportRequest request = {}) {
    auto upload = Upload(content);
    EXPECT_TRUE(upload.ok()) << upload.status();
    if (request.mapping().empty()) {
      request = ImportRequest(upload->upload_id(),
                              {{"id", "customer_id"}, {"email", "email"}, {"age", "age"}, {"city", "city"}});
    } else {
      request.set_upload_id(upload->upload_id());
    }
    auto job = manager_->StartImport(caller_, request);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? job->id() : "";
  }

  // For SplitFile(rows): every key's last valid row is stored, the rest counted.
  void ExpectLaterValidRowsWon(const internal::StoredJob& job, int rows) {
    const v1::JobCounts& c = job.job().counts();
    EXPECT_EQ(c.received(), static_cast<uint64_t>(rows));
    EXPECT_EQ(c.inserted(), 500u);
    EXPECT_EQ(c.rejected(), 10u);
    EXPECT_EQ(c.duplicate(), static_cast<uint64_t>(rows - 500 - 10));
    EXPECT_EQ(Sum(c), c.received());
    ASSERT_EQ(store_.contacts.size(), 500u);
    for (int key = 0; key < 500; ++key) {
      int winner = rows - 1 - ((rows - 1 - key) % 500);  // the key's last row
      if (key < 10) winner -= 500;
      EXPECT_EQ(store_.contacts[fmt::format("k{}", key)]["city"], fmt::format("row{:06}", winner)) << key;
    }
  }
};

const char kMixed[] =
    "id,email,age,city\r\n"
    "c1,a@x.com,30,Pune\r\n"             // 1: earlier duplicate of row 5
    "c2,b@x.com,forty,Delhi\r\n"         // 2: bad age
    "c3,c@x.com,31\r\n"                  // 3: ragged
    ",d@x.com,32,Goa\r\n"                // 4: no primary key
    "c1,a2@x.com,33,Mumbai\r\n"          // 5: wins over row 1
    "c4,E@X.COM,,Agra\r\n"               // 6: fine, age not set
    "c5,\"multi\nline\",34,X\r\n"        // 7: bad email (embedded newline)
    "c2,b@x.com,35,\"Delhi, NCR\"\r\n";  // 8: valid: row 2 was rejected, so this is c2's only row

TEST_F(JobRunnerTest, CountsAddUpAndTheLaterRowWins) {
  const std::string id = StartImport(kMixed);
  internal::StoredJob job = Run(id);
  const v1::JobCounts& c = job.job().counts();
  EXPECT_EQ(job.job().state(), v1::COMPLETED_WITH_ERRORS);
  EXPECT_EQ(c.received(), 8u);
  EXPECT_EQ(c.inserted(), 3u);
  EXPECT_EQ(c.duplicate(), 1u);
  EXPECT_EQ(c.rejected(), 4u);
  EXPECT_EQ(Sum(c), c.received());
  EXPECT_EQ(c.rejected_by_reason().at("invalid_value:age"), 1u);
  EXPECT_EQ(c.rejected_by_reason().at("invalid_value:email"), 1u);
  EXPECT_EQ(c.rejected_by_reason().at("ragged_row"), 1u);
  EXPECT_EQ(c.rejected_by_reason().at("missing_primary_key"), 1u);

  ASSERT_EQ(store_.contacts.size(), 3u);
  EXPECT_EQ(store_.contacts["c1"]["email"], "a2@x.com");
  EXPECT_EQ(store_.contacts["c1"]["city"], "Mumbai");
  EXPECT_EQ(store_.contacts["c4"]["email"], "e@x.com");
  EXPECT_FALSE(store_.contacts["c4"].contains("age"));
  EXPECT_EQ(store_.contacts["c2"]["city"], "Delhi, NCR");

  std::vector<v1::JobError> errors = Log(id);
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_EQ(errors[0].row_number(), 2u);
  EXPECT_EQ(errors[0].column(), "age");
  EXPECT_EQ(errors[0].value(), "forty");
  EXPECT_TRUE(errors[0].reason().starts_with("invalid_value:age: ")) << errors[0].reason();
  EXPECT_EQ(errors[1].row_number(), 3u);
  EXPECT_TRUE(errors[1].reason().starts_with("ragged_row")) << errors[1].reason();
  EXPECT_EQ(errors[2].row_number(), 4u);
  EXPECT_TRUE(errors[2].reason().starts_with("missing_primary_key"));
  EXPECT_EQ(errors[3].row_number(), 7u);
  EXPECT_EQ(errors[3].value(), "multi\nline");
  EXPECT_TRUE(job.credentials().empty());
  EXPECT_EQ(job.job().bytes_done(), job.job().bytes_total());
}

// An upload whose rows all hold different keys spares the import its first pass
// (distinct_keys.h); the mapping must read the key from the column the upload checked.
class DistinctKeysTest : public JobRunnerTest {
 protected:
  static constexpr char kDistinct[] =
      "customer_id,alt,age,city\n"
      "c1,a1,30,Pune\n"
      "c2,a1,forty,Delhi\n"  // bad age
      "c3,a2,31,Goa\n"
      "c4,a2,32,Agra\n";
  static constexpr char kRepeated[] =
      "customer_id,alt,age,city\n"
      "c1,a1,30,Pune\n"
      " c1 ,a2,31,Goa\n";  // the same key once trimmed: wins over row 1

  std::string Start(const std::string& content, const std::string& key_column = "customer_id") {
    v1::StartImportRequest request = ImportRequest("", {{key_column, "customer_id"}, {"age", "age"}, {"city", "city"}});
    return StartImport(content, request);
  }
};

TEST_F(DistinctKeysTest, AFileOfDistinctKeysSkipsTheFirstPassAndImportsEveryValidRow) {
  const std::string id = Start(kDistinct);
  EXPECT_TRUE(Stored(id).keys_distinct());
  const v1::JobCounts c = Run(id).job().counts();
  EXPECT_EQ(c.received(), 4u);
  EXPECT_EQ(c.inserted(), 3u);
  EXPECT_EQ(c.rejected(), 1u);
  EXPECT_EQ(c.duplicate(), 0u);
  EXPECT_EQ(store_.contacts["c4"]["city"], "Agra");
}

TEST_F(DistinctKeysTest, AKeyRepeatedOnceNormalisedLeavesTheFirstPassToFindIt) {
  const std::string id = Start(kRepeated);
  EXPECT_FALSE(Stored(id).keys_distinct());
  const v1::JobCounts c = Run(id).job().counts();
  EXPECT_EQ(c.inserted(), 1u);
  EXPECT_EQ(c.duplicate(), 1u);
  EXPECT_EQ(store_.contacts["c1"]["city"], "Goa");
}

TEST_F(DistinctKeysTest, KeysReadFromAnotherColumnOrWithAnotherCountryAreNotTakenAsChecked) {
  // `alt` repeats its values; only `customer_id` was checked.
  const std::string id = Start(kDistinct, "alt");
  EXPECT_FALSE(Stored(id).keys_distinct());
  const v1::JobCounts c = Run(id).job().counts();
  EXPECT_EQ(c.inserted(), 2u);
  EXPECT_EQ(c.duplicate(), 1u);
  EXPECT_EQ(c.rejected(), 1u);
  EXPECT_EQ(store_.contacts["a1"]["city"], "Pune");  // row 2, the later one, has a bad age

  // MOBILE keys depend on the default country code, which may change between upload and import.
  auto upload = Upload(kDistinct);
  ASSERT_TRUE(upload.ok()) << upload.status();
  store_.SetDefaultCountryCode("44");
  auto job = manager_->StartImport(caller_, ImportRequest(upload->upload_id(), {{"customer_id", "customer_id"}}));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_FALSE(Stored(job->id()).keys_distinct());
}

TEST_F(DistinctKeysTest, TheRunnerTrustsTheMark) {
  // Marked by hand on a file that does repeat a key: both rows are sent, so the mark is what
  // spared the job its first pass.
  const std::string id = Start(kRepeated);
  internal::StoredJob job = Stored(id);
  job.set_keys_distinct(true);
  ASSERT_TRUE(jobs_->PutJob(job).ok());
  const v1::JobCounts c = Run(id).job().counts();
  EXPECT_EQ(c.duplicate(), 0u);
  EXPECT_EQ(c.inserted() + c.updated(), 2u);
}

// A file of ~100 KiB has a split point (UploadSession), so the first pass reads it in two halves
// at once. Keys repeat within and across the halves; the later valid row wins either way.
std::string SplitFile(int rows) {
  std::string content = "id,email,age,city\n";
  for (int i = 0; i < rows; ++i) {
    // Key k<i % 500>: every key on ~8 rows spread over the file. Its last row has a bad age for
    // keys below 10, so the row before it wins for those.
    const int key = i % 500;
    const bool last = i + 500 >= rows;
    content += fmt::format("k{},,{},row{:06}\n", key, last && key < 10 ? "old" : "30", i);
  }
  return content;
}

TEST_F(JobRunnerTest, FirstPassSplitBetweenTwoReadersKeepsTheLaterRow) {
  constexpr int kRows = 6000;
  const std::string content = SplitFile(kRows);
  ASSERT_GT(content.size(), 96u << 10);
  const std::string id = StartImport(content);
  internal::StoredJob job = Run(id);
  ASSERT_FALSE(job.split_points().empty());
  ExpectLaterValidRowsWon(job, kRows);
}

TEST_F(JobRunnerTest, SplitPointThatIsNoRecordStartIsLeftAndTheFileReadAlone) {
  constexpr int kRows = 6000;
  auto upload = Upload(SplitFile(kRows));
  ASSERT_TRUE(upload.ok()) << upload.status();
  auto stored = jobs_->GetUpload(upload->upload_id());
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_FALSE(stored->split_points().empty());
  for (auto& point : *stored->mutable_split_points()) point.set_byte_offset(point.byte_offset() + 3);  // mid-row
  ASSERT_TRUE(jobs_->PutUpload(*stored).ok());
  auto job = manager_->StartImport(
      caller_, ImportRequest(upload->upload_id(),
                             {{"id", "customer_id"}, {"email", "email"}, {"age", "age"}, {"city", "city"}}));
  ASSERT_TRUE(job.ok()) << job.status();
  ExpectLaterValidRowsWon(Run(job->id()), kRows);
}

TEST_F(JobRunnerTest, ForwardsTheJobsCredentialsToTheStore) {
  caller_.credentials = {{"x-api-key", "secret"}};
  Run(StartImport(kMixed));
  ASSERT_EQ(store_.last_credentials.size(), 1u);
  EXPECT_EQ(store_.last_credentials[0].second, "secret");
}

std::string GeneratedFile(int rows) {
  std::string content = "id,email,age,city\n";
  for (int i = 0; i < rows; ++i) content += fmt::format("k{},u{}@example.com,{},City {}\n", i, i, 20 + i % 50, i % 7);
  return content;
}

TEST_F(JobRunnerTest, ResumeAfterALostAnswerAppliesNoBatchTwice) {
  const std::string id = StartImport(GeneratedFile(50));
  JobControl control;
  bool lost = false;
  store_.batch_hook = [&](uint64_t sequence, bool* apply_first) {
    if (sequence == 4 && !lost) {
      lost = true;
      *apply_first = true;    // the store applied batch 4 ...
      control.RequestStop();  // ... and the process "dies" before the answer arrives
      return absl::UnavailableError("connection reset");
    }
    return absl::OkStatus();
  };
  internal::StoredJob paused = Run(id, &control);
  EXPECT_EQ(paused.job().state(), v1::RUNNING);
  EXPECT_EQ(paused.next_batch_sequence(), 4u);
  EXPECT_EQ(paused.job().counts().received(), 9u);
  EXPECT_EQ(Stored(id).next_batch_sequence(), 4u);  // persisted

  internal::StoredJob done = Run(id);
  EXPECT_EQ(done.job().state(), v1::COMPLETED);
  EXPECT_EQ(done.job().counts().received(), 50u);
  EXPECT_EQ(done.job().counts().inserted(), 50u);
  // Batch 4 is replayed; batch 5, in flight with it, may have been applied before the stop too.
  EXPECT_GE(store_.replays, 1);
  EXPECT_LE(store_.replays, 2);
  EXPECT_EQ(store_.applied_batches, 17);  // ceil(50 / 3), each applied once
  EXPECT_EQ(store_.contacts.size(), 50u);
}

TEST_F(JobRunnerTest, RetriesWhileTheStoreIsUnavailable) {
  const std::string id = StartImport(GeneratedFile(4));
  int failures = 0;
  store_.batch_hook = [&](uint64_t, bool*) {
    return ++failures <= 2 ? absl::UnavailableError("down") : absl::OkStatus();
  };
  internal::StoredJob job = Run(id);
  EXPECT_EQ(job.job().state(), v1::COMPLETED);
  EXPECT_EQ(job.job().counts().inserted(), 4u);
}

TEST_F(JobRunnerTest, NonRetryableStoreErrorFailsTheJob) {
  const std::string id = StartImport(GeneratedFile(4));
  store_.batch_hook = [&](uint64_t, bool*) { return absl::InvalidArgumentError("attribute gone"); };
  internal::StoredJob job = Run(id);
  EXPECT_EQ(job.job().state(), v1::FAILED);
  EXPECT_NE(job.job().error().find("attribute gone"), std::string::npos);
}

TEST_F(JobRunnerTest, CancelStopsAtTheNextBatchBoundary) {
  const std::string id = StartImport(GeneratedFile(30));
  JobControl control;
  store_.batch_hook = [&](uint64_t sequence, bool*) {
    if (sequence == 2) control.RequestCancel();
    return absl::OkStatus();
  };
  internal::StoredJob job = Run(id, &control);
  EXPECT_EQ(job.job().state(), v1::CANCELLED);
  // Batches already sent are answered and counted (batch 3 may have gone out with batch 2), and
  // the counts match what the store holds.
  EXPECT_TRUE(job.job().counts().received() == 6u || job.job().counts().received() == 9u)
      << job.job().counts().received();
  EXPECT_EQ(job.job().counts().inserted(), job.job().counts().received());
  EXPECT_EQ(store_.contacts.size(), job.job().counts().received());
}

// A cancel that comes before the first batch goes out (after a worker picked the job) sends
// nothing: the cancel is checked before each batch, not only once one is answered.
TEST_F(JobRunnerTest, ACancelBeforeTheFirstBatchSendsNothing) {
  const std::string id = StartImport(GeneratedFile(30));
  JobControl control;
  control.RequestCancel();
  internal::StoredJob job = Run(id, &control);
  EXPECT_EQ(job.job().state(), v1::CANCELLED);
  EXPECT_EQ(store_.applied_batches, 0);
  EXPECT_TRUE(store_.contacts.empty());
  EXPECT_EQ(job.job().counts().received(), 0u);
}

// A batch the store applied but whose answer was lost (DEADLINE_EXCEEDED) is retried; a cancel
// during that retry does not drop it: the retry's replay answers its outcomes, which are counted,
// so the counts of the CANCELLED job match what the store holds.
TEST_F(JobRunnerTest, ACancelDuringTheRetryOfABatchTheStoreMayHaveAppliedStillCountsIt) {
  const std::string id = StartImport(GeneratedFile(30));
  JobControl control;
  bool lost = false;
  store_.batch_hook = [&](uint64_t sequence, bool* apply_first) {
    if (sequence != 2 || lost) return absl::OkStatus();
    lost = true;
    *apply_first = true;      // applied ...
    control.RequestCancel();  // ... and the cancel comes while the job waits to retry it
    return absl::DeadlineExceededError("deadline exceeded");
  };
  internal::StoredJob job = Run(id, &control);
  EXPECT_EQ(job.job().state(), v1::CANCELLED) << job.job().error();
  EXPECT_GE(job.job().counts().received(), 6u);
  EXPECT_EQ(job.job().counts().inserted(), job.job().counts().received());
  EXPECT_EQ(store_.contacts.size(), job.job().counts().received());
  EXPECT_GE(store_.replays, 1);
}

// The same for a delete batch.
TEST_F(JobRunnerTest, ACancelDuringTheRetryOfADeleteBatchTheStoreMayHaveAppliedStillCountsIt) {
  for (int i = 0; i < 9; ++i) store_.contacts[fmt::format("k{}", i)] = {{"customer_id", fmt::format("k{}", i)}};
  v1::StartDeleteRequest request;
  for (int i = 0; i < 9; ++i) request.mutable_keys()->add_keys(fmt::format("k{}", i));
  auto started = manager_->StartDelete(caller_, request);  // 3 batches of 3 keys
  ASSERT_TRUE(started.ok()) << started.status();
  JobControl control;
  bool lost = false;
  store_.delete_answer_hook = [&](uint64_t sequence) {
    if (sequence != 2 || lost) return absl::OkStatus();
    lost = true;              // batch 2 is applied, its answer lost ...
    control.RequestCancel();  // ... and the cancel comes while the job waits to retry it
    return absl::DeadlineExceededError("deadline exceeded");
  };
  internal::StoredJob done = Run(started->id(), &control);
  const v1::JobCounts& c = done.job().counts();
  EXPECT_EQ(done.job().state(), v1::CANCELLED) << done.job().error();
  EXPECT_EQ(c.received(), 6u);  // batch 2 counted, batch 3 not sent
  EXPECT_EQ(c.deleted(), 6u);
  EXPECT_EQ(store_.contacts.size(), 3u);
}

TEST_F(JobRunnerTest, KeepsTwoBatchesInFlightAndTheStoreAppliesThemInOrder) {
  const std::string id = StartImport(GeneratedFile(30));  // 10 batches of 3 rows
  store_.batch_hook = [&](uint64_t sequence, bool*) {
    // Batch 1 is slow: batch 2 goes out meanwhile (and waits in the store for batch 1).
    if (sequence == 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return absl::OkStatus();
  };
  internal::StoredJob job = Run(id);
  EXPECT_EQ(job.job().state(), v1::COMPLETED);
  EXPECT_EQ(job.job().counts().inserted(), 30u);
  EXPECT_EQ(store_.max_upserts_in_flight, 2);
  EXPECT_EQ(store_.applied_sequences, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(job.next_batch_sequence(), 11u);
}

// Every batch tells the store what its rows were checked against, so that the store refuses it
// should the tenant's primary key, country code or an attribute's type have changed since the
// job's start (contact-store's CheckExpectations; tested there).
TEST_F(JobRunnerTest, BatchesCarryTheSettingsTheirRowsWereCheckedAgainst) {
  const std::string id = StartImport(GeneratedFile(5));
  EXPECT_EQ(Run(id).job().state(), v1::COMPLETED);
  EXPECT_EQ(store_.last_expect.primary_key_attribute(), "customer_id");
  EXPECT_EQ(store_.last_expect.default_country_code(), "91");
  EXPECT_EQ(store_.last_columns, (std::vector<std::string>{"customer_id", "email", "age", "city"}));
  EXPECT_THAT(store_.last_expect.column_types(), ElementsAre(v1::TEXT, v1::EMAIL, v1::INTEGER, v1::TEXT));
}

TEST_F(JobRunnerTest, OneBatchInFlightWhenConfigured) {
  options_.runner.batches_in_flight = 1;
  RecreateManager();  // which fixes the window into the jobs it queues
  const std::string id = StartImport(GeneratedFile(30));
  store_.batch_hook = [&](uint64_t sequence, bool*) {
    if (sequence == 1) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return absl::OkStatus();
  };
  internal::StoredJob job = Run(id);
  EXPECT_EQ(job.job().counts().inserted(), 30u);
  EXPECT_EQ(store_.max_upserts_in_flight, 1);
}

TEST_F(JobRunnerTest, AFailedBatchFailsTheJobAndTheOneInFlightBehindItIsNotApplied) {
  const std::string id = StartImport(GeneratedFile(30));
  store_.batch_hook = [&](uint64_t sequence, bool*) {
    return sequence == 2 ? absl::InvalidArgumentError("attribute gone") : absl::OkStatus();
  };
  internal::StoredJob job = Run(id);
  EXPECT_EQ(job.job().state(), v1::FAILED);
  EXPECT_EQ(job.job().counts().inserted(), 3u);  // batch 1 only
  EXPECT_EQ(store_.applied_sequences, (std::vector<uint64_t>{1}));
  EXPECT_EQ(Stored(id).next_batch_sequence(), 2u);
}

TEST_F(JobRunnerTest, StoreRejectionsAreCountedAndLogged) {
  store_.reject_value = {"city", "Nowhere"};
  const std::string id = StartImport("id,email,age,city\nk1,a@b.co,1,Nowhere\nk2,c@d.co,2,Pune\n");
  internal::StoredJob job = Run(id);
  EXPECT_EQ(job.job().state(), v1::COMPLETED_WITH_ERRORS);
  EXPECT_EQ(job.job().counts().rejected_by_reason().at("rejected_by_store:city"), 1u);
  EXPECT_EQ(Sum(job.job().counts()), 2u);
  std::vector<v1::JobError> errors = Log(id);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].row_number(), 1u);
  EXPECT_EQ(errors[0].column(), "city");
  EXPECT_EQ(errors[0].value(), "Nowhere");
}

// The log quotes at most 256 bytes of a value the store refused, cut where a character starts,
// as it does for a value refused here: a log of long cells would not fit a GetJobErrors message.
TEST_F(JobRunnerTest, AValueTheStoreRejectedIsLoggedCutAtACharacterBoundary) {
  const std::string city = std::string(255, 'x') + "\u00e9" + std::string(700, 'y');  // the "é" straddles byte 256
  store_.reject_value = {"city", city};
  const std::string id = StartImport(fmt::format("id,email,age,city\nk1,a@b.co,1,{}\nk2,c@d.co,2,Pune\n", city));
  internal::StoredJob job = Run(id);
  EXPECT_EQ(job.job().counts().rejected_by_reason().at("rejected_by_store:city"), 1u);
  std::vector<v1::JobError> errors = Log(id);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].column(), "city");
  EXPECT_EQ(errors[0].value(), std::string(255, 'x'));
}

TEST_F(JobRunnerTest, AddOnlyModeSkipsExistingKeys) {
  store_.contacts["k1"] = {{"customer_id", "k1"}};
  v1::StartImportRequest request = ImportRequest("", {{"id", "customer_id"}, {"city", "city"}});
  request.set_mode(v1::ADD_ONLY);
  request.add_list_ids(7);
  internal::StoredJob job = Run(StartImport("id,email,age,city\nk1,,,A\nk2,,,B\n", request));
  EXPECT_EQ(job.job().counts().skipped(), 1u);
  EXPECT_EQ(job.job().counts().inserted(), 1u);
  EXPECT_FALSE(store_.contacts["k1"].contains("city"));
  EXPECT_EQ(store_.memberships[7], (std::set<std::string>{"k2"}));
}

TEST_F(JobRunnerTest, FixesEmailTyposAndKeepsTheOriginals) {
  v1::StartImportRequest request = ImportRequest("", {{"id", "customer_id"}, {"email", "email"}});
  request.set_fix_email_typos(true);
  const std::string id = StartImport("id,email,age,city\nk1,Ann@GMIAL.com,,\nk2,bob@gmail.com,,\n", request);
  internal::StoredJob job = Run(id);
  EXPECT_EQ(job.job().counts().emails_fixed(), 1u);
  EXPECT_EQ(store_.contacts["k1"]["email"], "ann@gmail.com");
  std::vector<v1::JobError> fixes = Log(id, JobLogKind::kFixed);
  ASSERT_EQ(fixes.size(), 1u);
  EXPECT_EQ(fixes[0].row_number(), 1u);
  EXPECT_EQ(fixes[0].value(), "ann@gmial.com");
  EXPECT_EQ(fixes[0].reason(), "email typo fixed to ann@gmail.com");
  EXPECT_TRUE(Log(id).empty());
}

// emails_fixed counts rows imported with a corrected address: a row the store skips (ADD_ONLY, the
// key exists) or rejects keeps nothing, so neither its count nor its fix log entry stays; a row
// whose two EMAIL columns were both fixed counts once and logs both fixes.
TEST_F(JobRunnerTest, EmailFixesCountOnlyRowsTheStoreImported) {
  store_.AddAttribute("work_email", v1::EMAIL, false);
  store_.contacts["k1"] = {{"customer_id", "k1"}};
  store_.reject_value = {"city", "Nowhere"};
  v1::StartImportRequest request =
      ImportRequest("", {{"id", "customer_id"}, {"email", "email"}, {"work", "work_email"}, {"city", "city"}});
  request.set_fix_email_typos(true);
  request.set_mode(v1::ADD_ONLY);
  const std::string id = StartImport(
      "id,email,work,city\n"
      "k1,a@gmial.com,,Pune\n"            // skipped: k1 exists
      "k2,b@gmial.com,,Nowhere\n"         // rejected by the store
      "k3,c@gmial.com,c@gmial.com,Goa\n"  // imported, two fixes
      "k4,d@gmail.com,,Agra\n",           // imported, nothing to fix
      request);
  internal::StoredJob job = Run(id);
  const v1::JobCounts& c = job.job().counts();
  EXPECT_EQ(c.skipped(), 1u);
  EXPECT_EQ(c.rejected(), 1u);
  EXPECT_EQ(c.inserted(), 2u);
  EXPECT_EQ(c.emails_fixed(), 1u);
  std::vector<v1::JobError> fixes = Log(id, JobLogKind::kFixed);
  ASSERT_EQ(fixes.size(), 2u);
  EXPECT_EQ(fixes[0].row_number(), 3u);
  EXPECT_EQ(fixes[0].column(), "email");
  EXPECT_EQ(fixes[1].row_number(), 3u);
  EXPECT_EQ(fixes[1].column(), "work");
}

TEST_F(JobRunnerTest, DryRunCreatesNothingAndWritesNothing) {
  v1::StartImportRequest request = ImportRequest("", {{"id", "customer_id"}, {"city", "notes"}});
  request.set_dry_run(true);
  v1::NewAttribute* notes = request.add_create_attributes();
  notes->set_name("notes");
  notes->set_type(v1::TEXT);
  internal::StoredJob job = Run(StartImport("id,email,age,city\nk1,,,A\nk2,,,B\n", request));
  EXPECT_EQ(job.job().state(), v1::COMPLETED);
  EXPECT_TRUE(job.job().dry_run());
  EXPECT_EQ(job.job().counts().inserted(), 2u);
  EXPECT_TRUE(store_.contacts.empty());
  EXPECT_TRUE(store_.created.empty());
}

TEST_F(JobRunnerTest, CreatesRequestedAttributes) {
  v1::StartImportRequest request = ImportRequest("", {{"id", "customer_id"}, {"city", "notes"}});
  v1::NewAttribute* notes = request.add_create_attributes();
  notes->set_name("notes");
  notes->set_type(v1::TEXT);
  Run(StartImport("id,email,age,city\nk1,,,A\n", request));
  EXPECT_EQ(store_.created, (std::vector<std::string>{"notes"}));
  EXPECT_EQ(store_.contacts["k1"]["notes"], "A");
}

class DeleteJobTest : public JobTestBase {
 protected:
  void SetUp() override {
    JobTestBase::SetUp();
    for (int i = 0; i < 5; ++i) {
      const std::string pk = fmt::format("k{}", i);
      store_.contacts[pk] = {{"customer_id", pk}, {"email", fmt::format("u{}@x.com", i)}};
      store_.memberships[7].insert(pk);
    }
  }

  // Starts a delete of three inline emails, two of them "bad..." (which StoreRefusingKeys finds
  // invalid), and runs it against `store`.
  internal::StoredJob DeleteThreeEmails(StoreClient& store) {
    v1::StartDeleteRequest request;
    for (const char* key : {"u0@x.com", "bad1@x.com", "bad2@x.com"}) request.mutable_keys()->add_keys(key);
    request.set_key_kind(v1::BatchDeleteRequest::EMAIL);
    auto job = manager_->StartDelete(caller_, request);
    if (!job.ok()) {
      ADD_FAILURE() << job.status();
      return {};
    }
    JobControl control;
    return RunJob(Stored(job->id()), *jobs_, store, control, options_.runner, nullptr);
  }
};

TEST_F(DeleteJobTest, DeletesInlinePrimaryKeys) {
  v1::StartDeleteRequest request;
  for (const char* key : {"k0", "k1", "nope", "k2", "", "k3"}) request.mutable_keys()->add_keys(key);
  auto job = manager_->StartDelete(caller_, request);
  ASSERT_TRUE(job.ok()) << job.status();
  internal::StoredJob done = Run(job->id());
  const v1::JobCounts& c = done.job().counts();
  EXPECT_EQ(done.job().state(), v1::COMPLETED_WITH_ERRORS);
  EXPECT_EQ(c.received(), 6u);
  EXPECT_EQ(c.deleted(), 4u);
  EXPECT_EQ(c.not_found(), 1u);
  EXPECT_EQ(c.rejected_by_reason().at("empty_key"), 1u);
  EXPECT_EQ(c.deleted() + c.not_found() + c.rejected(), c.received());
  EXPECT_EQ(store_.contacts.size(), 1u);
}

// The log quotes at most 256 bytes of a rejected key, cut where a character starts: its records
// are proto3 strings, and one cut inside a character could not be read back, which made the
// job's whole rejected-rows report fail with DATA_LOSS.
TEST_F(DeleteJobTest, ALongRejectedKeyIsLoggedCutAtACharacterBoundary) {
  std::string key;
  for (int i = 0; i < 100; ++i) key += "\xE2\x82\xAC";  // the euro sign, 3 bytes: byte 256 is inside one
  auto upload = Upload("email\n" + key + "\n");
  ASSERT_TRUE(upload.ok()) << upload.status();
  for (bool inline_keys : {true, false}) {
    v1::StartDeleteRequest request;
    if (inline_keys) {
      request.mutable_keys()->add_keys(key);
    } else {
      request.set_upload_id(upload->upload_id());
    }
    request.set_key_kind(v1::BatchDeleteRequest::EMAIL);
    auto job = manager_->StartDelete(caller_, request);
    ASSERT_TRUE(job.ok()) << job.status();
    internal::StoredJob done = Run(job->id());
    EXPECT_EQ(done.job().counts().rejected_by_reason().at("invalid_key"), 1u);
    std::vector<v1::JobError> errors = Log(job->id());
    ASSERT_EQ(errors.size(), 1u) << inline_keys;
    EXPECT_EQ(errors[0].value(), key.substr(0, 255)) << inline_keys;
  }
}

TEST_F(DeleteJobTest, RemovesEmailsFromAListOnly) {
  auto upload = Upload("email\nU1@X.com\nu4@x.com\nnot-an-email\nu9@x.com\n");
  ASSERT_TRUE(upload.ok()) << upload.status();
  v1::StartDeleteRequest request;
  request.set_upload_id(upload->upload_id());
  request.set_key_kind(v1::BatchDeleteRequest::EMAIL);
  request.add_list_ids(7);
  auto job = manager_->StartDelete(caller_, request);
  ASSERT_TRUE(job.ok()) << job.status();
  internal::StoredJob done = Run(job->id());
  const v1::JobCounts& c = done.job().counts();
  EXPECT_EQ(c.received(), 4u);
  EXPECT_EQ(c.deleted(), 2u);
  EXPECT_EQ(c.not_found(), 1u);
  EXPECT_EQ(c.rejected_by_reason().at("invalid_key"), 1u);
  EXPECT_EQ(store_.contacts.size(), 5u);  // kept, only removed from the list
  EXPECT_EQ(store_.memberships[7], (std::set<std::string>{"k0", "k2", "k3"}));
  std::vector<v1::JobError> errors = Log(job->id());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].row_number(), 3u);
}

// A FakeStore whose BatchDelete, like contact-store, also finds keys invalid that import-processor
// let through (contact-store checks them against the tenant as it is then): emails starting with
// "bad" are answered as invalid keys, the others applied by the fake. `break_answer` may spoil an
// answer; `lose_answer` (a sequence) applies that batch the first time and answers UNAVAILABLE.
class StoreRefusingKeys : public FakeStore {
 public:
  std::function<void(v1::BatchDeleteResponse*)> break_answer;
  uint64_t lose_answer = 0;

  absl::StatusOr<v1::BatchDeleteResponse> BatchDelete(const StoreCredentials& credentials,
                                                      const v1::BatchDeleteRequest& request) override {
    v1::BatchDeleteRequest valid = request;
    valid.clear_keys();
    std::vector<int> invalid;
    for (int i = 0; i < request.keys_size(); ++i) {
      if (request.keys(i).starts_with("bad")) {
        invalid.push_back(i);
      } else {
        valid.add_keys(request.keys(i));
      }
    }
    absl::StatusOr<v1::BatchDeleteResponse> response = FakeStore::BatchDelete(credentials, valid);
    if (!response.ok()) return response;
    for (int i : invalid) {
      v1::BatchDeleteResponse::KeyProblem* problem = response->add_invalid_keys();
      problem->set_index(static_cast<uint32_t>(i));
      problem->set_reason(fmt::format("\"{}\" is refused by the fake store", request.keys(i)));
    }
    response->set_invalid(invalid.size());
    if (break_answer) break_answer(&*response);
    if (request.batch_sequence() == lose_answer) {
      lose_answer = 0;
      return absl::UnavailableError("the answer was lost");
    }
    return response;
  }
};

// Keys contact-store finds invalid are rejected rows like those found invalid here: counted and
// logged with their row number, value and the store's reason, so the log lists every rejected row.
// They used to be counted only.
TEST_F(DeleteJobTest, KeysTheStoreFindsInvalidAreLoggedAsRejectedRows) {
  const std::vector<std::string> keys = {"u0@x.com",   "bad1@x.com",   "not-an-email", "u1@x.com",
                                         "bad2@x.com", "nobody@x.com", "bad3@x.com",   "u2@x.com"};
  std::string file = "email\n";
  for (const std::string& key : keys) file += key + "\n";
  auto upload = Upload(file);
  ASSERT_TRUE(upload.ok()) << upload.status();
  for (bool inline_keys : {true, false}) {
    SCOPED_TRACE(inline_keys ? "inline keys" : "uploaded file");
    StoreRefusingKeys store;
    for (int i = 0; i < 5; ++i) {
      const std::string pk = fmt::format("k{}", i);
      store.contacts[pk] = {{"customer_id", pk}, {"email", fmt::format("u{}@x.com", i)}};
    }
    store.lose_answer = 2;  // its replay must name the same keys
    v1::StartDeleteRequest request;
    if (inline_keys) {
      for (const std::string& key : keys) request.mutable_keys()->add_keys(key);
    } else {
      request.set_upload_id(upload->upload_id());
    }
    request.set_key_kind(v1::BatchDeleteRequest::EMAIL);
    auto job = manager_->StartDelete(caller_, request);  // batches of 3 keys sent
    ASSERT_TRUE(job.ok()) << job.status();
    JobControl control;
    internal::StoredJob done = RunJob(Stored(job->id()), *jobs_, store, control, options_.runner, nullptr);
    const v1::JobCounts& c = done.job().counts();
    EXPECT_EQ(done.job().state(), v1::COMPLETED_WITH_ERRORS) << done.job().error();
    EXPECT_EQ(c.received(), 8u);
    EXPECT_EQ(c.deleted(), 3u);
    EXPECT_EQ(c.not_found(), 1u);
    EXPECT_EQ(c.rejected(), 4u);
    EXPECT_EQ(c.rejected_by_reason().at("invalid_key"), 4u);
    EXPECT_EQ(store.contacts.size(), 2u);
    std::vector<v1::JobError> errors = Log(job->id());
    ASSERT_EQ(errors.size(), c.rejected());
    const std::vector<uint64_t> rows = {2, 3, 5, 7};
    for (size_t i = 0; i < errors.size(); ++i) {
      EXPECT_EQ(errors[i].row_number(), rows[i]);
      EXPECT_EQ(errors[i].value(), keys[rows[i] - 1]);
      EXPECT_THAT(errors[i].reason(), testing::StartsWith("invalid_key: "));
    }
    EXPECT_EQ(errors[0].reason(), "invalid_key: \"bad1@x.com\" is refused by the fake store");
    EXPECT_THAT(errors[1].reason(), testing::HasSubstr("not-an-email"));
  }
}

// An answer that names a key the batch did not send, one key twice, or more or fewer keys than it
// counts as invalid fails the job.
TEST_F(DeleteJobTest, AnAnswerWhoseInvalidKeysDoNotAddUpFailsTheJob) {
  const std::vector<std::function<void(v1::BatchDeleteResponse*)>> breakers = {
      [](v1::BatchDeleteResponse* answer) { answer->mutable_invalid_keys(0)->set_index(3); },
      [](v1::BatchDeleteResponse* answer) { answer->mutable_invalid_keys()->RemoveLast(); },
      [](v1::BatchDeleteResponse* answer) { *answer->add_invalid_keys() = answer->invalid_keys(0); },
      [](v1::BatchDeleteResponse* answer) { answer->mutable_invalid_keys(1)->set_index(1); },  // named twice
  };
  for (size_t b = 0; b < breakers.size(); ++b) {
    SCOPED_TRACE(b);
    StoreRefusingKeys store;
    store.break_answer = breakers[b];
    internal::StoredJob done = DeleteThreeEmails(store);
    EXPECT_EQ(done.job().state(), v1::FAILED);
    EXPECT_THAT(done.job().error(), testing::HasSubstr("INTERNAL"));
    EXPECT_TRUE(Log(done.job().id()).empty());
  }
}

TEST_F(DeleteJobTest, AnAnswerCountingInvalidKeysWithoutNamingThemIsAnOlderStoreAndIsCounted) {
  StoreRefusingKeys store;
  store.break_answer = [](v1::BatchDeleteResponse* answer) { answer->clear_invalid_keys(); };
  internal::StoredJob done = DeleteThreeEmails(store);
  EXPECT_EQ(done.job().state(), v1::COMPLETED_WITH_ERRORS);
  EXPECT_EQ(done.job().counts().rejected(), 2u);
  EXPECT_TRUE(Log(done.job().id()).empty());  // nothing to name them by
}

TEST_F(DeleteJobTest, CancelStopsAtTheNextBatchBoundary) {
  v1::StartDeleteRequest request;
  for (const char* key : {"k0", "k1", "k2", "k3", "k4", "x1", "x2", "x3", "x4"}) request.mutable_keys()->add_keys(key);
  auto job = manager_->StartDelete(caller_, request);  // 3 batches of 3 keys
  ASSERT_TRUE(job.ok()) << job.status();
  JobControl control;
  store_.delete_hook = [&](uint64_t sequence) {
    if (sequence == 2) control.RequestCancel();
  };
  internal::StoredJob done = Run(job->id(), &control);
  const v1::JobCounts& c = done.job().counts();
  EXPECT_EQ(done.job().state(), v1::CANCELLED);
  EXPECT_EQ(c.received(), 6u);  // the batch under way when the cancel came is applied and counted
  EXPECT_EQ(c.deleted(), 5u);
  EXPECT_EQ(c.not_found(), 1u);
  EXPECT_TRUE(store_.contacts.empty());
}

TEST_F(DeleteJobTest, ACancelBeforeTheFirstBatchDeletesNothing) {
  v1::StartDeleteRequest request;
  for (const char* key : {"k0", "k1", "k2", "k3"}) request.mutable_keys()->add_keys(key);
  auto job = manager_->StartDelete(caller_, request);
  ASSERT_TRUE(job.ok()) << job.status();
  JobControl control;
  control.RequestCancel();
  internal::StoredJob done = Run(job->id(), &control);
  EXPECT_EQ(done.job().state(), v1::CANCELLED);
  EXPECT_EQ(done.job().counts().received(), 0u);
  EXPECT_EQ(store_.contacts.size(), 5u);
}

TEST_F(DeleteJobTest, AStopLeavesTheJobRunningAndItResumesWhereItStopped) {
  auto upload = Upload("customer_id\nk0\nx1\nk1\nx2\nk2\nx3\nk3\nx4\nk4\n");
  ASSERT_TRUE(upload.ok()) << upload.status();
  v1::StartDeleteRequest request;
  request.set_upload_id(upload->upload_id());
  auto job = manager_->StartDelete(caller_, request);  // 3 batches of 3 keys
  ASSERT_TRUE(job.ok()) << job.status();
  JobControl control;
  store_.delete_hook = [&](uint64_t sequence) {
    if (sequence == 1) control.RequestStop();
  };
  internal::StoredJob paused = Run(job->id(), &control);
  EXPECT_EQ(paused.job().state(), v1::RUNNING);
  EXPECT_EQ(paused.job().counts().received(), 3u);
  EXPECT_EQ(store_.contacts.size(), 3u);  // k0 and k1 went with the first batch

  store_.delete_hook = nullptr;
  internal::StoredJob done = Run(job->id());
  const v1::JobCounts& c = done.job().counts();
  EXPECT_EQ(done.job().state(), v1::COMPLETED);
  EXPECT_EQ(c.received(), 9u);
  EXPECT_EQ(c.deleted(), 5u);
  EXPECT_EQ(c.not_found(), 4u);
  EXPECT_TRUE(store_.contacts.empty());
}

TEST_F(DeleteJobTest, RejectsAnEmptyRequest) {
  v1::StartDeleteRequest request;
  EXPECT_EQ(manager_->StartDelete(caller_, request).status().code(), absl::StatusCode::kInvalidArgument);
  request.mutable_keys();
  EXPECT_EQ(manager_->StartDelete(caller_, request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DeleteJobTest, RejectsTooManyInlineKeysAndAnUnknownKeyKindNamingTheField) {
  v1::StartDeleteRequest request;
  for (int i = 0; i <= 100000; ++i) request.mutable_keys()->add_keys(fmt::format("k{}", i));
  absl::StatusOr<v1::Job> refused = manager_->StartDelete(caller_, request);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), testing::HasSubstr("keys: at most 100000 keys inline"));

  request.mutable_keys()->mutable_keys()->DeleteSubrange(1, 100000);
  request.set_key_kind(static_cast<v1::BatchDeleteRequest::KeyKind>(99));
  refused = manager_->StartDelete(caller_, request);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), testing::HasSubstr("key_kind: unknown key kind"));
  EXPECT_EQ(store_.contacts.size(), 5u);  // nothing deleted
}

}  // namespace
}  // namespace contacts::test
