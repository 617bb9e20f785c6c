// CertificateMonitor: tells operators, through /metrics and the log, what gRPC tells only its own
// log about the TLS files a service uses. gRPC's FileWatcherCertificateProvider re-reads them every
// --tls_refresh_interval_s. When a file is missing it keeps the credentials it loaded before (which
// then expire unnoticed); when the files can be read but are unusable (a key that is not the
// certificate's, a truncated or non-PEM file) gRPC 1.51 drops its credentials and every new TLS
// handshake fails until the files are fixed (measured; tests/integration/tls_integration_test.cc).
// An empty certificate or key file aborts the process inside gRPC (an assertion in its TLS
// security connector) before the monitor can report it.
//
// Every `interval` the monitor checks each file set as start-up does (common/tls/tls_files.h) and
// reads when its certificate expires: a certificate chain's first certificate (the leaf), or the
// earliest of a CA file's certificates.
//
// Metrics (when given a registry), one series per file set, labelled with the flag naming it
// (flag="tls_cert_file", "tls_client_ca_file", "store_tls_cert_file", "store_tls_ca_file"):
//   tls_files_valid: 1 while the files on disk pass the checks, 0 while they would be refused;
//   tls_certificate_expiry_timestamp_seconds: the expiry (notAfter, Unix seconds) of the
//     certificate on disk at the last good read (absent until one succeeded).
// Logs, once per change: an error naming the flag, the file and why when the files turn unusable;
// info when they are usable again; a warning when a certificate first seen (at start, or renewed)
// has expired or expires within kExpiryWarning.
#pragma once

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace prometheus {
class Gauge;
template <typename T>
class Family;
class Registry;
}  // namespace prometheus

namespace contacts {

// The files one TLS flag names: a certificate chain with its private key, or CA certificates.
// Flags are named without "--" (they are the metrics' label).
struct TlsFileSet {
  static TlsFileSet KeyPair(std::string cert_flag, std::string cert_path, std::string key_flag, std::string key_path);
  static TlsFileSet CaFile(std::string flag, std::string path);

  std::string flag;
  std::string path;
  std::string key_flag;  // "" for CA certificates
  std::string key_path;
};

class CertificateMonitor {
 public:
  // Below this a certificate's remaining validity is logged as a warning.
  static constexpr absl::Duration kExpiryWarning = absl::Hours(7 * 24);

  // `metrics` may be null; when given, it must outlive the monitor.
  CertificateMonitor(std::vector<TlsFileSet> file_sets, absl::Duration interval, prometheus::Registry* metrics);
  // Stops the thread started by Start(), waiting for a check in progress.
  ~CertificateMonitor();
  CertificateMonitor(const CertificateMonitor&) = delete;
  CertificateMonitor& operator=(const CertificateMonitor&) = delete;

  // Checks once now (so the metrics and warnings are there before the service serves), then
  // every `interval` on a thread of its own until destruction.
  void Start();

  // One check of every file set at time `now` (the time expiries are compared with). Only one
  // thread at a time: Start's, or a test's.
  void Check(absl::Time now);

 private:
  struct WatchedFiles {
    TlsFileSet files;
    std::string last_failure;  // logged once; "" while the files are usable
    std::optional<absl::Time> expiry;
    prometheus::Gauge* valid_gauge = nullptr;
    prometheus::Gauge* expiry_gauge = nullptr;  // added at the first good read
  };

  void CheckFiles(WatchedFiles& watched, absl::Time now);
  void Run();

  const absl::Duration interval_;
  prometheus::Family<prometheus::Gauge>* expiry_family_ = nullptr;
  std::vector<WatchedFiles> watched_;  // Check's state

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// The expiry that matters for the file set: its leaf certificate's, or its CA certificates'
// earliest. Errors (INVALID_ARGUMENT naming the flag and file): the files fail CheckKeyPair or
// CheckCaFile, or a certificate cannot be parsed.
absl::StatusOr<absl::Time> CheckTlsFileSet(const TlsFileSet& files);

}  // namespace contacts
