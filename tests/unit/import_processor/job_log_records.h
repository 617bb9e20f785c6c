// A job's log as the retention tests write it, shared by the JobStore and JobManager tests.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "services/import_processor/job_store.h"

namespace contacts::test {

// Writes `job` with a log of `rejected` rejected rows (rows 1..n, reason ragged_row) and one email
// fix on row 1, as one checkpoint.
inline absl::Status CheckpointWithLog(JobStore& jobs, const internal::StoredJob& job, int rejected) {
  std::vector<v1::JobError> errors;
  for (int row = 1; row <= rejected; ++row) {
    v1::JobError error;
    error.set_row_number(row);
    error.set_reason("ragged_row");
    errors.push_back(error);
  }
  v1::JobError fix;
  fix.set_row_number(1);
  fix.set_value("a@gmial.com");
  return jobs.Checkpoint(job, errors, {fix});
}

}  // namespace contacts::test
