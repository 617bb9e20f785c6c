// audience-query: the stateless read API. See services/audience_query/README.md.
#include <cstdio>
#include <string>

#include <spdlog/spdlog.h>

#include "common/auth/auth.h"
#include "common/config/flags.h"
#include "common/logging/logging.h"
#include "common/server/server_runner.h"
#include "common/server/service_main.h"
#include "services/audience_query/audience_query_service.h"

int main(int argc, char** argv) {
  using namespace contacts;  // NOLINT
  FlagSet flags("audience-query");
  CommonFlags common = RegisterCommonFlags(flags, "127.0.0.1:50053", "127.0.0.1:9466", "./data/audience-query");
  const StoreClientFlags store_flags = RegisterStoreClientFlags(flags);
  int64_t* store_timeout_ms = flags.Int("store_timeout_ms", 30000,
                                        "Deadline of each unary call to contact-store, in milliseconds (exports are "
                                        "bounded by deadline_cap_ms instead).",
                                        {.min = 1});
  absl::StatusOr<Authenticator> started = StartService("audience-query", flags, common, argc, argv);
  if (!started.ok()) return StartFailureExitCode("audience-query", started.status());
  if (absl::Status checked = CheckStoreClientFlags(store_flags); !checked.ok()) {
    return StartFailureExitCode("audience-query", checked);
  }
  Authenticator auth = *std::move(started);
  absl::StatusOr<std::unique_ptr<CertificateMonitor>> staged = StageTlsFiles(common, &store_flags);
  if (!staged.ok()) return StartFailureExitCode("audience-query", staged.status());
  const std::unique_ptr<CertificateMonitor> tls_files = *std::move(staged);

  // The channel connects lazily: audience-query starts (and reports SERVING) even when the store
  // is not up yet; calls then fail with UNAVAILABLE until it is.
  auto channel = MakeStoreChannel(store_flags, common, *tls_files);
  AudienceQueryService service(v1::ContactStore::NewStub(channel), &auth,
                               AudienceQueryOptions{.store_call_timeout_ms = *store_timeout_ms,
                                                    .deadline_cap_ms = *common.deadline_cap_ms,
                                                    .max_message_bytes = *common.max_message_bytes});
  ServerRunner runner(MakeServerOptions("audience-query", common, *tls_files));
  runner.AddService(&service);
  const std::unique_ptr<ApiKeysReloader> keys_reloader = FollowApiKeysFile(&auth, common, runner.metrics());
  const TlsMonitoring tls_monitoring = MonitorTlsFiles(*tls_files, runner.metrics());  // ends before runner
  if (absl::Status serving = runner.Start(); !serving.ok()) {
    spdlog::critical("{}", serving.ToString());
    return kRuntimeFailureExitCode;
  }
  spdlog::info("audience-query using contact-store at {}", *store_flags.address);
  runner.WaitForShutdownSignal();
  spdlog::info("audience-query stopped");
  return 0;
}
