#include "common/server/service_main.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <spdlog/spdlog.h>

#include "absl/synchronization/mutex.h"
#include "common/logging/logging.h"
#include "common/status/status_macros.h"

namespace contacts {

absl::StatusOr<Authenticator> StartService(std::string_view service, FlagSet& flags, const CommonFlags& common,
                                           int argc, char** argv) {
  // Debian builds Abseil with deadlock detection on, so every absl::Mutex lock (gRPC takes many
  // per call) records a lock graph: measured 280 ns against 83 ns per lock/unlock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  RETURN_IF_ERROR(flags.Parse(argc, argv));
  RETURN_IF_ERROR(InitLogging(*common.log_level, service));
  spdlog::info("{} starting with flags:\n{}", service, flags.Describe());
  if (common.api_keys_file->empty()) return Authenticator::Disabled();
  auto loaded = Authenticator::FromFile(*common.api_keys_file);
  if (!loaded.ok()) return absl::InvalidArgumentError("api keys: " + std::string(loaded.status().message()));
  return loaded;
}

int StartFailureExitCode(std::string_view service, const absl::Status& status) {
  if (IsHelpRequested(status)) return 0;
  std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(service.size()), service.data(),
               std::string(status.message()).c_str());
  return 2;
}

ServerOptions MakeServerOptions(std::string service, const CommonFlags& common) {
  return ServerOptions{.service_name = std::move(service),
                       .listen = *common.listen,
                       .metrics_listen = *common.metrics_listen,
                       .grace_period_ms = *common.grace_period_ms,
                       .max_message_bytes = *common.max_message_bytes,
                       .deadline_cap_ms = *common.deadline_cap_ms};
}

std::shared_ptr<grpc::Channel> MakeStoreChannel(const std::string& address, int64_t max_message_bytes) {
  grpc::ChannelArguments args;
  const int limit = static_cast<int>(std::clamp<int64_t>(max_message_bytes, 4 << 20, INT32_MAX));
  args.SetMaxReceiveMessageSize(limit);
  args.SetMaxSendMessageSize(limit);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

}  // namespace contacts
