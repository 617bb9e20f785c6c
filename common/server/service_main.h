// The start-up every service's main.cc shares: parse flags (with env overrides), set up logging,
// check the common flags' values, log the effective flags, load the API keys; and the
// ServerOptions built from the common flags.
//
// Exit status of a service: 0 after --help or a clean shutdown; kUsageErrorExitCode (2) when a flag
// or its value is wrong (unknown flag, malformed or out-of-range value, missing or unreadable API
// keys file, a bad combination of TLS flags or a TLS file that is missing, unreadable or unusable):
// fix the configuration, restarting will not help; kRuntimeFailureExitCode (1) when the service
// could not start with good flags (cannot bind, cannot open the data folder or RocksDB, cannot make
// the private folder for the TLS files).
//
// TLS: gRPC reads private copies of the TLS files (StageTlsFiles), made only of files that passed
// the start-up checks. They are checked again every --tls_refresh_interval_s and copied anew when
// they changed and pass, so a renewed certificate (cert-manager rewriting a mounted Secret) is used
// for new connections without a restart, and a bad write leaves the last good certificate in use.
// MonitorTlsFiles shows in /metrics whether the files the flags name are usable and when the
// certificate in use expires.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <grpcpp/channel.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/status/statusor.h"
#include "common/auth/api_keys_reloader.h"
#include "common/auth/auth.h"
#include "common/config/flags.h"
#include "common/server/server_runner.h"
#include "common/tls/certificate_monitor.h"

namespace contacts {

inline constexpr int kUsageErrorExitCode = 2;
inline constexpr int kRuntimeFailureExitCode = 1;

// Errors: CANCELLED("help") after --help printed the usage; INVALID_ARGUMENT naming the flag for
// a usage error: the parser's, a --log_level that is no level, a --listen or --metrics_listen that
// is not HOST:PORT or both on one port, an empty --data_dir, an --api_keys_file that names
// nothing, cannot be read by the service or is malformed, --tls_cert_file without --tls_key_file
// (or the reverse), --tls_client_ca_file without them, a TLS file that does not exist, cannot be
// read or is not what the flag needs (common/tls/tls_files.h: no PEM block, no usable certificate
// or key, a key that is not the certificate's); another code, still naming the flag,
// when reading the keys file fails (DATA_LOSS, FAILED_PRECONDITION). Hand them to
// StartFailureExitCode.
absl::StatusOr<Authenticator> StartService(std::string_view service, FlagSet& flags, const CommonFlags& common,
                                           int argc, char** argv);

// Follows --api_keys_file while the service runs (ApiKeysReloader, checking every
// --api_keys_reload_ms), with its metrics in `metrics`; null, changing nothing, when auth is off or
// the interval is 0. Keep it until the server has stopped: it updates `auth` in place.
std::unique_ptr<ApiKeysReloader> FollowApiKeysFile(Authenticator* auth, const CommonFlags& common,
                                                   prometheus::Registry& metrics);

// Prints "<service>: <message>" to stderr (nothing for --help) and returns main's exit code: 0 for
// --help, kUsageErrorExitCode for INVALID_ARGUMENT, kRuntimeFailureExitCode otherwise. Mains also
// use it for their own flags' checks (INVALID_ARGUMENT naming the flag).
int StartFailureExitCode(std::string_view service, const absl::Status& status);

// Checks the TLS files the service uses (--tls_cert_file with --tls_key_file, --tls_client_ca_file
// and, given `store`, the --store_tls_* files) and stages copies of them in a private folder for
// gRPC to read (CertificateMonitor, common/tls/tls_staging.h): under /dev/shm when usable, else
// $TMPDIR or /tmp. No folder when the service uses none. Keep the monitor until the server and the
// store channel are gone: destroying it removes the copies. Errors: INVALID_ARGUMENT naming the
// flag when a file turned unusable since StartService checked it; FAILED_PRECONDITION naming the
// folders tried when none allows a private folder; INTERNAL when the copies cannot be written.
// Hand them to StartFailureExitCode. REQUIRES: StartService (and CheckStoreClientFlags for
// `store`) accepted the flags.
absl::StatusOr<std::unique_ptr<CertificateMonitor>> StageTlsFiles(const CommonFlags& common,
                                                                  const StoreClientFlags* store);

// Stops the checks MonitorTlsFiles started when it goes (CertificateMonitor::Stop).
using TlsMonitoring = std::unique_ptr<CertificateMonitor, void (*)(CertificateMonitor*)>;

// Exports the metrics tls_files_valid and tls_certificate_expiry_timestamp_seconds of `tls_files`
// in `metrics` and starts it: every --tls_refresh_interval_s it checks the files the flags name and
// stages those that changed and pass, until the answer goes. Keep the answer in a variable
// declared after the ServerRunner that owns `metrics`, so that the checks end first.
[[nodiscard]] TlsMonitoring MonitorTlsFiles(CertificateMonitor& tls_files, prometheus::Registry& metrics);

// The gRPC listener's credentials: plaintext when --tls_cert_file is empty; else TLS with the
// staged copies of that certificate and --tls_key_file, and with --tls_client_ca_file clients must
// present a certificate that CA signed. REQUIRES: `tls_files` came from StageTlsFiles.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const CommonFlags& common,
                                                               const CertificateMonitor& tls_files);

// The common flags as ServerRunner takes them, credentials from MakeServerCredentials included.
ServerOptions MakeServerOptions(std::string service, const CommonFlags& common, const CertificateMonitor& tls_files);

// Errors: INVALID_ARGUMENT naming the flag: an empty --store; --store_tls_cert_file without
// --store_tls_key_file (or the reverse); a client certificate or server name without
// --store_tls_ca_file; a TLS file that does not exist, cannot be read or is not what the flag
// needs (common/tls/tls_files.h).
absl::Status CheckStoreClientFlags(const StoreClientFlags& store);

// The channel to contact-store, as import-processor and audience-query open it: plaintext, or TLS
// per the --store_tls_* flags (their staged copies, re-read every --tls_refresh_interval_s);
// message size limits of --max_message_bytes both ways (at least 4 MiB); connects lazily. Logs
// which it is. REQUIRES: CheckStoreClientFlags(store) succeeded; `tls_files` came from
// StageTlsFiles given `store`.
std::shared_ptr<grpc::Channel> MakeStoreChannel(const StoreClientFlags& store, const CommonFlags& common,
                                                const CertificateMonitor& tls_files);

}  // namespace contacts
