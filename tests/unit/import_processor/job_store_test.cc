// JobStore::DeleteJob: a job goes with its whole log in one step, and no neighbour's log with it;
// cancel requests last until then.
#include "services/import_processor/job_store.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/import_processor/fake_store.h"
#include "tests/unit/import_processor/job_log_records.h"

namespace contacts::test {
namespace {

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    Reopen();
  }

  void Reopen() {
    jobs_.reset();  // RocksDB's lock is released before the next Open takes it
    auto jobs = JobStore::Open(dir_.path() + "/jobs", /*sync=*/false);
    ASSERT_TRUE(jobs.ok()) << jobs.status();
    jobs_ = *std::move(jobs);
  }

  // A finished job with `rejected` rejected rows (rows 1..n) and one email fix on row 1.
  void PutJob(const std::string& id, int rejected) {
    internal::StoredJob job;
    job.mutable_job()->set_id(id);
    job.mutable_job()->set_state(v1::COMPLETED_WITH_ERRORS);
    ASSERT_TRUE(CheckpointWithLog(*jobs_, job, rejected).ok());
  }

  size_t LogSize(const std::string& id, JobLogKind kind) {
    size_t n = 0;
    EXPECT_TRUE(jobs_
                    ->ScanLog(id, kind,
                              [&](v1::JobError&&) {
                                ++n;
                                return true;
                              })
                    .ok());
    return n;
  }

  ScopedTempDir dir_;
  std::unique_ptr<JobStore> jobs_;
};

// Ids that differ only in the last hex digit, across the '9' -> 'a' gap in ASCII: the range delete
// of one job must stop exactly at its own prefix.
constexpr char kBefore[] = "0000018c0000000000000008";
constexpr char kPurged[] = "0000018c0000000000000009";
constexpr char kAfter[] = "0000018c000000000000000a";

TEST_F(JobStoreTest, DeleteJobRemovesTheRecordAndItsWholeLogButNoOtherJobs) {
  PutJob(kBefore, 2);
  PutJob(kPurged, 3);
  PutJob(kAfter, 4);
  absl::StatusOr<uint64_t> deleted = jobs_->DeleteJob(kPurged);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 4u);  // 3 rejected rows and 1 fix
  for (bool reopened : {false, true}) {
    SCOPED_TRACE(reopened ? "after reopening" : "at once");
    EXPECT_EQ(jobs_->GetJob(kPurged).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(LogSize(kPurged, JobLogKind::kRejected), 0u);
    EXPECT_EQ(LogSize(kPurged, JobLogKind::kFixed), 0u);
    EXPECT_TRUE(jobs_->GetJob(kBefore).ok());
    EXPECT_TRUE(jobs_->GetJob(kAfter).ok());
    EXPECT_EQ(LogSize(kBefore, JobLogKind::kRejected), 2u);
    EXPECT_EQ(LogSize(kAfter, JobLogKind::kRejected), 4u);
    EXPECT_EQ(LogSize(kBefore, JobLogKind::kFixed), 1u);
    EXPECT_EQ(LogSize(kAfter, JobLogKind::kFixed), 1u);
    std::vector<std::string> listed;
    ASSERT_TRUE(jobs_
                    ->ScanJobs("",
                               [&](internal::StoredJob&& job) {
                                 listed.push_back(job.job().id());
                                 return true;
                               })
                    .ok());
    EXPECT_EQ(listed, (std::vector<std::string>{kAfter, kBefore}));
    Reopen();
  }
}

TEST_F(JobStoreTest, ACancelRequestLastsAcrossReopeningUntilTheJobIsDeleted) {
  PutJob(kBefore, 1);
  PutJob(kPurged, 1);
  ASSERT_TRUE(jobs_->RecordCancelRequest(kPurged).ok());
  Reopen();
  EXPECT_EQ(jobs_->CancelRequested(kPurged).value_or(false), true);
  EXPECT_EQ(jobs_->CancelRequested(kBefore).value_or(true), false);
  ASSERT_TRUE(jobs_->DeleteJob(kPurged).ok());
  EXPECT_EQ(jobs_->CancelRequested(kPurged).value_or(true), false);
}

TEST_F(JobStoreTest, DeletingAJobWithoutARecordIsNotAnError) {
  absl::StatusOr<uint64_t> deleted = jobs_->DeleteJob(kPurged);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 0u);
  EXPECT_EQ(jobs_->DeleteJob("").status().code(), absl::StatusCode::kInvalidArgument);
}

// A delete the database refuses removes nothing: the job and its log stay whole.
TEST_F(JobStoreTest, ARefusedDeleteLeavesTheJobWhole) {
  PutJob(kPurged, 3);
  jobs_->SetFaultForTesting([](std::string_view what) {
    return what == "delete job" ? absl::UnavailableError("disk full") : absl::OkStatus();
  });
  absl::Status refused = jobs_->DeleteJob(kPurged).status();
  jobs_->SetFaultForTesting(nullptr);
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_NE(refused.message().find("jobs db: delete job"), std::string::npos) << refused;
  EXPECT_TRUE(jobs_->GetJob(kPurged).ok());
  EXPECT_EQ(LogSize(kPurged, JobLogKind::kRejected), 3u);
  EXPECT_EQ(LogSize(kPurged, JobLogKind::kFixed), 1u);
}

}  // namespace
}  // namespace contacts::test
