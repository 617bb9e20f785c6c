// The start-up every service's main.cc shares: parse flags (with env overrides), set up logging,
// check the common flags' values, log the effective flags, load the API keys; and the
// ServerOptions built from the common flags.
//
// Exit status of a service: 0 after --help or a clean shutdown; kUsageErrorExitCode (2) when a flag
// or its value is wrong (unknown flag, malformed or out-of-range value, missing or unreadable API
// keys file): fix the configuration, restarting will not help; kRuntimeFailureExitCode (1) when
// the service could not start with good flags (cannot bind, cannot open the data folder or RocksDB).
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

inline constexpr int kUsageErrorExitCode = 2;
inline constexpr int kRuntimeFailureExitCode = 1;

// Errors: CANCELLED("help") after --help printed the usage; INVALID_ARGUMENT naming the flag for
// a usage error: the parser's, a --log_level that is no level, a --listen or --metrics_listen that
// is not HOST:PORT or both on one port, an empty --data_dir, an --api_keys_file that names
// nothing, cannot be read by the service or is malformed; another code, still naming the flag,
// when reading the keys file fails (DATA_LOSS, FAILED_PRECONDITION). Hand them to
// StartFailureExitCode.
absl::StatusOr<Authenticator> StartService(std::string_view service, FlagSet& flags, const CommonFlags& common,
                                           int argc, char** argv);

// Prints "<service>: <message>" to stderr (nothing for --help) and returns main's exit code: 0 for
// --help, kUsageErrorExitCode for INVALID_ARGUMENT, kRuntimeFailureExitCode otherwise. Mains also
// use it for their own flags' checks (INVALID_ARGUMENT naming the flag).
int StartFailureExitCode(std::string_view service, const absl::Status& status);

ServerOptions MakeServerOptions(std::string service, const CommonFlags& common);

// An insecure channel to contact-store at `address` (HOST:PORT), as import-processor and
// audience-query open it: message size limits of `max_message_bytes` both ways (at least 4 MiB);
// connects lazily.
std::shared_ptr<grpc::Channel> MakeStoreChannel(const std::string& address, int64_t max_message_bytes);

}  // namespace contacts
