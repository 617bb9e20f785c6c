#include "common/server/service_main.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/support/channel_arguments.h>
#include <spdlog/spdlog.h>

#include "absl/synchronization/mutex.h"
#include "common/logging/logging.h"
#include "common/status/status_macros.h"
#include "common/tls/tls_files.h"

namespace contacts {
namespace {

// A certificate and its key: both or neither.
absl::Status CheckCertAndKey(std::string_view cert_flag, const std::string& cert, std::string_view key_flag,
                             const std::string& key) {
  if (!cert.empty() && key.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("--{} is set but --{} is not: give both or neither", cert_flag, key_flag));
  }
  if (cert.empty() && !key.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("--{} is set but --{} is not: give both or neither", key_flag, cert_flag));
  }
  if (cert.empty()) return absl::OkStatus();
  return CheckKeyPair(fmt::format("--{}", cert_flag), cert, fmt::format("--{}", key_flag), key);
}

absl::Status CheckServerTlsFlags(const CommonFlags& common) {
  RETURN_IF_ERROR(CheckCertAndKey("tls_cert_file", *common.tls_cert_file, "tls_key_file", *common.tls_key_file));
  if (common.tls_client_ca_file->empty()) return absl::OkStatus();
  if (common.tls_cert_file->empty()) {
    return absl::InvalidArgumentError(
        "--tls_client_ca_file needs --tls_cert_file and --tls_key_file: client certificates are checked only over TLS");
  }
  return CheckCaFile("--tls_client_ca_file", *common.tls_client_ca_file);
}

void LogServerTls(std::string_view service, const CommonFlags& common) {
  if (common.tls_cert_file->empty()) {
    spdlog::info("{} serves gRPC in plaintext (no --tls_cert_file)", service);
  } else if (common.tls_client_ca_file->empty()) {
    spdlog::info("{} serves gRPC over TLS with {} (files checked every {} s)", service, *common.tls_cert_file,
                 *common.tls_refresh_interval_s);
  } else {
    spdlog::info(
        "{} serves gRPC over mutual TLS with {}: clients need a certificate signed by {} (files checked "
        "every {} s)",
        service, *common.tls_cert_file, *common.tls_client_ca_file, *common.tls_refresh_interval_s);
  }
}

std::shared_ptr<grpc::ChannelCredentials> MakeStoreChannelCredentials(const StoreClientFlags& store,
                                                                      int64_t refresh_interval_s,
                                                                      const CertificateMonitor& tls_files) {
  if (store.tls_ca_file->empty()) return grpc::InsecureChannelCredentials();
  // Empty key and certificate paths (no client certificate): the provider watches only the CA.
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls_files.StagedPath("store_tls_key_file"), tls_files.StagedPath("store_tls_cert_file"),
      tls_files.StagedPath("store_tls_ca_file"), static_cast<unsigned int>(refresh_interval_s));
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(std::move(provider));
  options.watch_root_certs();
  if (!store.tls_cert_file->empty()) options.watch_identity_key_cert_pairs();
  return grpc::experimental::TlsCredentials(options);
}

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
  return CheckServerTlsFlags(common);
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
  LogServerTls(service, common);
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

std::unique_ptr<ApiKeysReloader> FollowApiKeysFile(Authenticator* auth, const CommonFlags& common,
                                                   prometheus::Registry& metrics) {
  if (!auth->enabled() || *common.api_keys_reload_ms == 0) return nullptr;
  const absl::Duration interval = absl::Milliseconds(*common.api_keys_reload_ms);
  // A file being written is applied once it has read the same twice this far apart.
  const absl::Duration settle = std::min(interval, absl::Seconds(1));
  auto reloader = std::make_unique<ApiKeysReloader>(
      auth, *common.api_keys_file, ApiKeysReloader::Options{.interval = interval, .settle = settle}, &metrics);
  reloader->Start();
  spdlog::info("following {}: changes apply within {} ms", *common.api_keys_file,
               *common.api_keys_reload_ms + absl::ToInt64Milliseconds(settle));
  return reloader;
}

absl::StatusOr<std::unique_ptr<CertificateMonitor>> StageTlsFiles(const CommonFlags& common,
                                                                  const StoreClientFlags* store) {
  std::vector<TlsFileSet> file_sets;
  if (!common.tls_cert_file->empty()) {
    file_sets.push_back(
        TlsFileSet::KeyPair("tls_cert_file", *common.tls_cert_file, "tls_key_file", *common.tls_key_file));
  }
  if (!common.tls_client_ca_file->empty()) {
    file_sets.push_back(TlsFileSet::CaFile("tls_client_ca_file", *common.tls_client_ca_file));
  }
  if (store != nullptr && !store->tls_cert_file->empty()) {
    file_sets.push_back(
        TlsFileSet::KeyPair("store_tls_cert_file", *store->tls_cert_file, "store_tls_key_file", *store->tls_key_file));
  }
  if (store != nullptr && !store->tls_ca_file->empty()) {
    file_sets.push_back(TlsFileSet::CaFile("store_tls_ca_file", *store->tls_ca_file));
  }
  return CertificateMonitor::Create(std::move(file_sets), absl::Seconds(*common.tls_refresh_interval_s));
}

TlsMonitoring MonitorTlsFiles(CertificateMonitor& tls_files, prometheus::Registry& metrics) {
  tls_files.ExportMetrics(metrics);
  tls_files.Start();
  return TlsMonitoring(&tls_files, [](CertificateMonitor* monitor) { monitor->Stop(); });
}

int StartFailureExitCode(std::string_view service, const absl::Status& status) {
  if (IsHelpRequested(status)) return 0;
  std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(service.size()), service.data(),
               std::string(status.message()).c_str());
  return absl::IsInvalidArgument(status) ? kUsageErrorExitCode : kRuntimeFailureExitCode;
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const CommonFlags& common,
                                                               const CertificateMonitor& tls_files) {
  if (common.tls_cert_file->empty()) return grpc::InsecureServerCredentials();
  // Empty CA path (no --tls_client_ca_file): the provider watches only the certificate and key.
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls_files.StagedPath("tls_key_file"), tls_files.StagedPath("tls_cert_file"),
      tls_files.StagedPath("tls_client_ca_file"), static_cast<unsigned int>(*common.tls_refresh_interval_s));
  grpc::experimental::TlsServerCredentialsOptions options(std::move(provider));
  options.watch_identity_key_cert_pairs();
  if (common.tls_client_ca_file->empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

ServerOptions MakeServerOptions(std::string service, const CommonFlags& common, const CertificateMonitor& tls_files) {
  return ServerOptions{.service_name = std::move(service),
                       .listen = *common.listen,
                       .metrics_listen = *common.metrics_listen,
                       .grace_period_ms = *common.grace_period_ms,
                       .max_message_bytes = *common.max_message_bytes,
                       .deadline_cap_ms = *common.deadline_cap_ms,
                       .credentials = MakeServerCredentials(common, tls_files)};
}

absl::Status CheckStoreClientFlags(const StoreClientFlags& store) {
  if (store.address->empty()) return absl::InvalidArgumentError("--store must not be empty");
  // The flags that go together first: a missing CA is the mistake to name, not the files it would
  // have been used with.
  if (store.tls_ca_file->empty()) {
    for (const auto& [flag, value] :
         {std::pair{"store_tls_cert_file", store.tls_cert_file}, std::pair{"store_tls_key_file", store.tls_key_file}}) {
      if (!value->empty()) {
        return absl::InvalidArgumentError(
            fmt::format("--{} needs --store_tls_ca_file: a client certificate is sent only over TLS", flag));
      }
    }
    if (!store.tls_server_name->empty()) {
      return absl::InvalidArgumentError(
          "--store_tls_server_name needs --store_tls_ca_file: the name is checked only over TLS");
    }
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(
      CheckCertAndKey("store_tls_cert_file", *store.tls_cert_file, "store_tls_key_file", *store.tls_key_file));
  return CheckCaFile("--store_tls_ca_file", *store.tls_ca_file);
}

std::shared_ptr<grpc::Channel> MakeStoreChannel(const StoreClientFlags& store, const CommonFlags& common,
                                                const CertificateMonitor& tls_files) {
  grpc::ChannelArguments args;
  const int limit = static_cast<int>(std::clamp<int64_t>(*common.max_message_bytes, 4 << 20, INT32_MAX));
  args.SetMaxReceiveMessageSize(limit);
  args.SetMaxSendMessageSize(limit);
  if (!store.tls_server_name->empty()) args.SetSslTargetNameOverride(*store.tls_server_name);
  if (store.tls_ca_file->empty()) {
    spdlog::info("contact-store at {} in plaintext (no --store_tls_ca_file)", *store.address);
  } else {
    spdlog::info("contact-store at {} over {}TLS: its certificate must be signed by {} and name {}", *store.address,
                 store.tls_cert_file->empty() ? "" : "mutual ", *store.tls_ca_file,
                 store.tls_server_name->empty() ? "the host of --store" : *store.tls_server_name);
  }
  return grpc::CreateCustomChannel(*store.address,
                                   MakeStoreChannelCredentials(store, *common.tls_refresh_interval_s, tls_files), args);
}

}  // namespace contacts
