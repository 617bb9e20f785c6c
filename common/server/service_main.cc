#include "common/server/service_main.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include <fmt/format.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <spdlog/spdlog.h>

#include "absl/synchronization/mutex.h"
#include "common/logging/logging.h"
#include "common/status/status_macros.h"

namespace contacts {
namespace {

// The common string flags, checked before the service opens or binds anything: ServerRunner would
// refuse a malformed address too, but only after the store was opened and jobs resumed, and its
// failure reads as a runtime one (exit 1).
absl::Status CheckCommonFlags(const CommonFlags& common) {
  std::string host;
  int port = 0;
  if (absl::Status s = ParseHostPort(*common.listen, &host, &port); !s.ok()) {
    return absl::InvalidArgumentError(fmt::format("--listen: {}", std::string(s.message())));
  }
  if (!common.metrics_listen->empty() && *common.metrics_listen != "off") {
    std::string metrics_host;
    int metrics_port = 0;
    if (absl::Status s = ParseHostPort(*common.metrics_listen, &metrics_host, &metrics_port); !s.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("--metrics_listen: {} (\"off\" disables it)", std::string(s.message())));
    }
    // The two servers cannot share a port (0 picks a free one for each). Hosts that name the same
    // address differently ("localhost") are left to the bind.
    auto wildcard = [](const std::string& h) { return h == "0.0.0.0" || h == "[::]"; };
    if (port != 0 && port == metrics_port && (host == metrics_host || wildcard(host) || wildcard(metrics_host))) {
      return absl::InvalidArgumentError(
          fmt::format("--metrics_listen={} and --listen={} use the same port", *common.metrics_listen, *common.listen));
    }
  }
  // Empty, "<data_dir>/db" would be "/db": files at the root of the filesystem.
  if (common.data_dir->empty()) return absl::InvalidArgumentError("--data_dir must not be empty");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Authenticator> StartService(std::string_view service, FlagSet& flags, const CommonFlags& common,
                                           int argc, char** argv) {
  // Debian builds Abseil with deadlock detection on, so every absl::Mutex lock (gRPC takes many
  // per call) records a lock graph: measured 280 ns against 83 ns per lock/unlock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  RETURN_IF_ERROR(flags.Parse(argc, argv));
  if (absl::Status s = InitLogging(*common.log_level, service); !s.ok()) {
    return absl::InvalidArgumentError(fmt::format("--log_level: {}", std::string(s.message())));
  }
  RETURN_IF_ERROR(CheckCommonFlags(common));
  spdlog::info("{} starting with flags:\n{}", service, flags.Describe());
  if (common.api_keys_file->empty()) return Authenticator::Disabled();
  auto loaded = Authenticator::FromFile(*common.api_keys_file);
  if (!loaded.ok()) {
    // Nothing at the path, a file the service may not read, a folder or a malformed file: the flag
    // or the file it names must be fixed (a usage error). A failing disk is not.
    const absl::StatusCode code = loaded.status().code();
    std::string message = fmt::format("--api_keys_file: {}", std::string(loaded.status().message()));
    if (code == absl::StatusCode::kNotFound || code == absl::StatusCode::kPermissionDenied ||
        code == absl::StatusCode::kInvalidArgument) {
      return absl::InvalidArgumentError(message);
    }
    return absl::Status(code, message);
  }
  return loaded;
}

int StartFailureExitCode(std::string_view service, const absl::Status& status) {
  if (IsHelpRequested(status)) return 0;
  std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(service.size()), service.data(),
               std::string(status.message()).c_str());
  return absl::IsInvalidArgument(status) ? kUsageErrorExitCode : kRuntimeFailureExitCode;
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
