// test-echo-server: the smallest service built on FlagSet + ServerRunner (health and reflection
// only), so integration tests can check the shared bootstrap before any real service exists.
#include <cstdio>

#include "common/config/flags.h"
#include "common/logging/logging.h"
#include "common/server/server_runner.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  contacts::FlagSet flags("test-echo-server");
  contacts::CommonFlags common = contacts::RegisterCommonFlags(flags, "127.0.0.1:50099", "127.0.0.1:9499", "");
  if (absl::Status status = flags.Parse(argc, argv); !status.ok()) {
    if (contacts::IsHelpRequested(status)) return 0;
    std::fprintf(stderr, "test-echo-server: %s\n", std::string(status.message()).c_str());
    return 2;
  }
  if (absl::Status status = contacts::InitLogging(*common.log_level, "test-echo-server"); !status.ok()) {
    spdlog::error("{}", std::string(status.message()));
    return 2;
  }
  spdlog::info("flags:\n{}", flags.Describe());

  contacts::ServerRunner runner(contacts::ServerOptions{
      .service_name = "test-echo-server",
      .listen = *common.listen,
      .metrics_listen = *common.metrics_listen,
      .grace_period_ms = *common.grace_period_ms,
      .max_message_bytes = *common.max_message_bytes,
      .deadline_cap_ms = *common.deadline_cap_ms,
  });
  if (absl::Status status = runner.Start(); !status.ok()) {
    spdlog::critical("cannot start: {}", status.ToString());
    return 1;
  }
  runner.WaitForShutdownSignal();
  return 0;
}
