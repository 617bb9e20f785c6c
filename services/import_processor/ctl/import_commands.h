// contactsctl's commands on import-processor: upload (preview or import), follow, list and cancel
// jobs, their rejected rows and email fixes as CSV, and delete jobs.
#pragma once

#include "services/import_processor/ctl/cli.h"

namespace contacts::ctl {

// Each returns the exit status: 0 success (a job that ended COMPLETED or COMPLETED_WITH_ERRORS), 1
// error, 3 the job ended FAILED or CANCELLED; usage errors exit 2.
int Upload(Client& client, const Options& options);
int Delete(Client& client, const Options& options);
int Jobs(Client& client, const Options& options);
// The rejected rows, or with `fixes` the email typo fixes, of a job as CSV on stdout.
int Errors(Client& client, const Options& options, bool fixes);
// job ID, watch ID, cancel ID.
int JobCommand(Client& client, const Options& options);

}  // namespace contacts::ctl
