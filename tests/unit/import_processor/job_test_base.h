// Fixture shared by the job runner and job manager tests: a temp folder with a jobs db and spool,
// a FakeStore, and helpers to upload content and start jobs through JobManager.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "services/import_processor/job_manager.h"
#include "tests/unit/import_processor/fake_store.h"

namespace contacts::test {

inline std::optional<std::string> FakeTypoFixer(std::string_view email) {
  constexpr std::string_view kTypo = "@gmial.com";
  if (email.size() > kTypo.size() && email.substr(email.size() - kTypo.size()) == kTypo) {
    return std::string(email.substr(0, email.size() - kTypo.size())) + "@gmail.com";
  }
  return std::nullopt;
}

class JobTestBase : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    std::filesystem::create_directories(dir_.path() + "/spool");
    auto jobs = JobStore::Open(dir_.path() + "/jobs", /*sync=*/false);
    ASSERT_TRUE(jobs.ok()) << jobs.status();
    jobs_ = *std::move(jobs);
    options_.spool_dir = dir_.path() + "/spool";
    options_.workers = 1;
    options_.batch_rows = 3;
    options_.runner.email_fixer = FakeTypoFixer;
    options_.runner.store_retry_budget = std::chrono::milliseconds(5000);
    manager_ = std::make_unique<JobManager>(*jobs_, store_, options_, nullptr);
    caller_.tenant = "default";
    caller_.credentials = {{"x-tenant", "default"}};
  }

  void RecreateManager() {
    manager_.reset();
    manager_ = std::make_unique<JobManager>(*jobs_, store_, options_, nullptr);
  }

  absl::StatusOr<v1::UploadResponse> Upload(const std::string& content, const std::string& name = "contacts.csv",
                                            size_t chunk = 7) {
    v1::UploadStart start;
    start.set_file_name(name);
    std::string id;
    auto session = manager_->BeginUpload(caller_, start, &id);
    if (!session.ok()) return session.status();
    for (size_t i = 0; i < content.size(); i += chunk) {
      if (auto s = (*session)->Append(content.substr(i, chunk)); !s.ok()) return s;
    }
    return manager_->FinishUpload(caller_, start, id, **session);
  }

  static v1::StartImportRequest ImportRequest(const std::string& upload_id,
                                              std::vector<std::pair<std::string, std::string>> mapping) {
    v1::StartImportRequest request;
    request.set_upload_id(upload_id);
    for (auto& [column, attribute] : mapping) {
      v1::ColumnMapping* m = request.add_mapping();
      m->set_column(column);
      m->set_attribute(attribute);
    }
    return request;
  }

  internal::StoredJob Stored(const std::string& job_id) {
    auto job = jobs_->GetJob(job_id);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : internal::StoredJob();
  }

  // Runs a job synchronously on this thread.
  internal::StoredJob Run(const std::string& job_id, JobControl* control = nullptr) {
    JobControl own;
    return RunJob(Stored(job_id), *jobs_, store_, control != nullptr ? *control : own, options_.runner, nullptr);
  }

  std::vector<v1::JobError> Log(const std::string& job_id, JobLogKind kind = JobLogKind::kRejected) {
    std::vector<v1::JobError> out;
    EXPECT_TRUE(jobs_
                    ->ScanLog(job_id, kind,
                              [&](v1::JobError&& e) {
                                out.push_back(std::move(e));
                                return true;
                              })
                    .ok());
    return out;
  }

  static uint64_t Sum(const v1::JobCounts& c) {
    return c.inserted() + c.updated() + c.unchanged() + c.duplicate() + c.skipped() + c.rejected();
  }

  ScopedTempDir dir_;
  FakeStore store_;
  std::unique_ptr<JobStore> jobs_;
  JobManagerOptions options_;
  std::unique_ptr<JobManager> manager_;
  Caller caller_;
};

}  // namespace contacts::test
