// import-processor: uploads, previews, import and delete jobs. See services/import_processor/README.md.
#include <cstdio>
#include <filesystem>
#include <string>

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "common/auth/auth.h"
#include "common/config/flags.h"
#include "common/email/typo_fix.h"
#include "common/logging/logging.h"
#include "common/server/server_runner.h"
#include "common/server/service_main.h"
#include "services/import_processor/grpc_store_client.h"
#include "services/import_processor/import_processor_service.h"
#include "services/import_processor/job_manager.h"
#include "services/import_processor/job_store.h"

int main(int argc, char** argv) {
  using namespace contacts;  // NOLINT
  FlagSet flags("import-processor");
  CommonFlags common = RegisterCommonFlags(flags, "127.0.0.1:50052", "127.0.0.1:9465", "./data/import-processor");
  // The durations' upper bounds keep now + duration (in nanoseconds, microseconds for the TTL)
  // from overflowing: a TTL of INT64_MAX hours wrapped to an hour in the future and deleted every
  // upload, a timeout that wraps puts every call's deadline in the past.
  constexpr int64_t kYearMs = int64_t{365} * 24 * 3600 * 1000;
  const StoreClientFlags store_flags = RegisterStoreClientFlags(flags);
  int64_t* workers = flags.Int("workers", 2, "Jobs run at the same time.", {.min = 1, .max = 64});
  // contact-store's batch limit.
  int64_t* batch_rows =
      flags.Int("batch_rows", 25000, "Rows per BatchUpsert (keys per BatchDelete).", {.min = 1, .max = 50000});
  int64_t* batches_in_flight =
      flags.Int("batches_in_flight", 2, "Batches of one job sent to contact-store before the oldest is answered.",
                {.min = 1, .max = 8});
  int64_t* max_upload_bytes = flags.Int("max_upload_bytes", int64_t{2} << 30,
                                        "Largest upload accepted, in bytes (the .zip for archives).", {.min = 1});
  int64_t* store_timeout_ms =
      flags.Int("store_timeout_ms", 60000, "Deadline of each call to contact-store.", {.min = 1, .max = kYearMs});
  int64_t* upload_ttl_hours = flags.Int(
      "upload_ttl_hours", 72, "Uploads older than this are deleted unless an unfinished job reads them; 0 keeps them.",
      {.min = 0, .max = 10 * 365 * 24});
  int64_t* job_retention_hours = flags.Int(
      "job_retention_hours", 90 * 24,
      "Finished jobs older than this are deleted with their error logs; 0 keeps them. Unfinished jobs are kept.",
      {.min = 0, .max = 10 * 365 * 24});
  int64_t* store_retry_ms = flags.Int("store_retry_ms", 300000,
                                      "How long a job retries contact-store while it is unavailable before it FAILS.",
                                      {.min = 0, .max = kYearMs});
  absl::StatusOr<Authenticator> started = StartService("import-processor", flags, common, argc, argv);
  if (!started.ok()) return StartFailureExitCode("import-processor", started.status());
  if (absl::Status checked = CheckStoreClientFlags(store_flags); !checked.ok()) {
    return StartFailureExitCode("import-processor", checked);
  }
  Authenticator auth = *std::move(started);
  absl::StatusOr<std::unique_ptr<CertificateMonitor>> staged = StageTlsFiles(common, &store_flags);
  if (!staged.ok()) return StartFailureExitCode("import-processor", staged.status());
  const std::unique_ptr<CertificateMonitor> tls_files = *std::move(staged);

  // The data folder holds spooled uploads and, while jobs run, the callers' API keys: owner only.
  const std::string data_dir = *common.data_dir;
  const std::string spool_dir = data_dir + "/spool";
  std::error_code ec;
  std::filesystem::create_directories(spool_dir, ec);
  if (ec) {
    spdlog::critical("cannot create {}: {}", spool_dir, ec.message());
    return kRuntimeFailureExitCode;
  }
  ::chmod(data_dir.c_str(), 0700);
  auto jobs = JobStore::Open(data_dir + "/jobs");
  if (!jobs.ok()) {
    spdlog::critical("{}", jobs.status().ToString());
    return kRuntimeFailureExitCode;
  }

  GrpcStoreClient store(v1::ContactStore::NewStub(MakeStoreChannel(store_flags, common, *tls_files)),
                        std::chrono::milliseconds(*store_timeout_ms));
  ServerRunner runner(MakeServerOptions("import-processor", common, *tls_files));
  JobManagerOptions options;
  options.spool_dir = spool_dir;
  options.workers = static_cast<int>(*workers);
  options.batch_rows = static_cast<uint32_t>(*batch_rows);
  options.upload_limits.max_upload_bytes = static_cast<uint64_t>(*max_upload_bytes);
  options.upload_limits.zip.max_entry_bytes = static_cast<uint64_t>(*max_upload_bytes);
  options.upload_limits.zip.max_total_bytes = static_cast<uint64_t>(*max_upload_bytes);
  options.upload_ttl = std::chrono::hours(*upload_ttl_hours);
  options.job_retention = std::chrono::hours(*job_retention_hours);
  options.runner.email_fixer = FixEmailTypo;
  options.runner.store_retry_budget = std::chrono::milliseconds(*store_retry_ms);
  options.runner.batches_in_flight = static_cast<int>(*batches_in_flight);
  JobManager manager(**jobs, store, options, &runner.metrics());
  ImportProcessorService service(&manager, &auth,
                                 ImportProcessorServiceOptions{.deadline_cap_ms = *common.deadline_cap_ms});
  runner.AddService(&service);
  if (absl::Status started = manager.Start(); !started.ok()) {
    spdlog::critical("{}", started.ToString());
    return kRuntimeFailureExitCode;
  }
  const std::unique_ptr<ApiKeysReloader> keys_reloader = FollowApiKeysFile(&auth, common, runner.metrics());
  const TlsMonitoring tls_monitoring = MonitorTlsFiles(*tls_files, runner.metrics());  // ends before runner
  if (absl::Status serving = runner.Start(); !serving.ok()) {
    spdlog::critical("{}", serving.ToString());
    return kRuntimeFailureExitCode;
  }
  spdlog::info("import-processor using contact-store at {}", *store_flags.address);
  runner.WaitForShutdownSignal();
  manager.Shutdown();  // running jobs stop at a batch boundary and resume at the next start
  spdlog::info("import-processor stopped");
  return 0;
}
