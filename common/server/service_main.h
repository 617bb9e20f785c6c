// The start-up every service's main.cc shares: parse flags (with env overrides), set up logging,
// log the effective flags, load the API keys; and the ServerOptions built from the common flags.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "common/auth/auth.h"
#include "common/config/flags.h"
#include "common/server/server_runner.h"

namespace contacts {

// Errors: CANCELLED("help") after --help printed the usage; INVALID_ARGUMENT for a bad flag, log
// level or API-key file (the message names it). Hand them to StartFailureExitCode.
absl::StatusOr<Authenticator> StartService(std::string_view service, FlagSet& flags, const CommonFlags& common,
                                           int argc, char** argv);

// Prints why the start failed (nothing for --help) and returns main's exit code: 0 for --help,
// 2 otherwise.
int StartFailureExitCode(std::string_view service, const absl::Status& status);

ServerOptions MakeServerOptions(std::string service, const CommonFlags& common);

// An insecure channel to contact-store at `address` (HOST:PORT), as import-processor and
// audience-query open it: message size limits of `max_message_bytes` both ways (at least 4 MiB);
// connects lazily.
std::shared_ptr<grpc::Channel> MakeStoreChannel(const std::string& address, int64_t max_message_bytes);

}  // namespace contacts
