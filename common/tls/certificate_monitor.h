// CertificateMonitor: makes sure gRPC only ever reads TLS files that passed our checks, and tells
// operators through /metrics and the log what it does. gRPC 1.51's FileWatcherCertificateProvider
// re-reads its files every --tls_refresh_interval_s and takes whatever it finds: files it can read
// but not use (a key that is not the certificate's, a truncated or non-PEM file) make every new
// handshake fail until they are fixed, an empty certificate or key file aborts the process (an
// assertion in its TLS security connector; measured in tests/integration/tls_integration_test.cc).
// So gRPC is given private copies (TlsStagingFolder, common/tls/tls_staging.h), not the files the
// flags name.
//
// At creation the monitor checks each file set as start-up does (common/tls/tls_files.h) and
// stages all of them. Then every `interval` it checks the files the flags name again: when a set
// passes and differs from what is staged, it stages the new files (all sets at once, in a new
// generation swapped in as a whole); when a set fails, nothing of it is staged and gRPC keeps the
// last good files until they expire. Each staged copy is checked again before it is swapped in.
//
// Metrics (ExportMetrics), one series per file set, labelled with the flag naming it
// (flag="tls_cert_file", "tls_client_ca_file", "store_tls_cert_file", "store_tls_ca_file"):
//   tls_files_valid: 1 while the files the flag names pass the checks, 0 while they fail them
//     (and gRPC keeps the files staged before);
//   tls_certificate_expiry_timestamp_seconds: the expiry (notAfter, Unix seconds) of the
//     certificate gRPC uses, the staged one: a certificate chain's first certificate (the leaf), or
//     the earliest of a CA file's certificates.
// Logs, once per change: an error naming the flag, the file and why when the files turn unusable,
// with the expiry of the certificate that stays in use; info when they are usable again and when
// new files are staged; a warning when a certificate first staged (at start, or renewed) has
// expired or expires within kExpiryWarning.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/tls/tls_staging.h"

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

  // Checks every file set and stages them all in a TlsStagingFolder made in the first of
  // `staging_parents` that allows it (no folder when `file_sets` is empty). Errors:
  // CheckTlsFileSet's (INVALID_ARGUMENT naming the flag and file); TlsStagingFolder's
  // (FAILED_PRECONDITION when no folder can be made, INTERNAL when the files cannot be written).
  static absl::StatusOr<std::unique_ptr<CertificateMonitor>> Create(
      std::vector<TlsFileSet> file_sets, absl::Duration interval,
      const std::vector<std::string>& staging_parents = TlsStagingFolder::DefaultParents());

  // Stops (Stop) and removes the staged files: destroy it after everything that reads them (the
  // server, the channels).
  ~CertificateMonitor();
  CertificateMonitor(const CertificateMonitor&) = delete;
  CertificateMonitor& operator=(const CertificateMonitor&) = delete;

  // The staged copy of the file `flag` names (a TlsFileSet's flag or key_flag): the path to give
  // gRPC. The path stays the same when new files are staged. "" for a flag not watched.
  std::string StagedPath(std::string_view flag) const;

  // The staging folder; "" when there is no file set.
  std::string staging_dir() const { return staging_ == nullptr ? "" : staging_->path(); }

  // Adds the metrics described above to `metrics`, which must outlive the monitor, with the state
  // of the last check. REQUIRES: called once at most, before Start.
  void ExportMetrics(prometheus::Registry& metrics);

  // Checks once now (so the metrics and warnings are there before the service serves), then
  // every `interval` on a thread of its own until Stop. No thread when there is no file set.
  void Start();

  // Stops the thread Start started, waiting for a check in progress; the staged files stay. Call
  // it before the metrics go: the files must outlive the server, which owns the metrics.
  void Stop();

  // One check of every file set at time `now` (the time expiries are compared with), staging the
  // sets that pass and changed. Only one thread at a time: Start's, or a test's.
  void Check(absl::Time now);

 private:
  struct WatchedFiles {
    TlsFileSet files;
    std::map<std::string, std::string> staged;  // by flag: the content gRPC reads
    absl::Time staged_expiry;
    std::optional<absl::Time> announced_expiry;  // in the gauge, and warned of
    std::string last_failure;                    // logged once; "" while the files are usable
    prometheus::Gauge* valid_gauge = nullptr;
    prometheus::Gauge* expiry_gauge = nullptr;
  };

  CertificateMonitor(std::vector<WatchedFiles> watched, absl::Duration interval,
                     std::unique_ptr<TlsStagingFolder> staging);

  // Stages every set with `renewed` content (by index in watched_) and the others as they are.
  absl::Status StageFiles(const std::map<size_t, std::map<std::string, std::string>>& renewed);
  void ReportFailure(WatchedFiles& watched, const absl::Status& failure);
  void Announce(WatchedFiles& watched, absl::Time now);
  void Run();

  const absl::Duration interval_;
  std::unique_ptr<TlsStagingFolder> staging_;
  prometheus::Family<prometheus::Gauge>* expiry_family_ = nullptr;
  std::vector<WatchedFiles> watched_;  // Check's state
  std::string last_staging_failure_;   // logged once

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// The expiry that matters for the file set: its leaf certificate's, or its CA certificates'
// earliest. Errors (INVALID_ARGUMENT naming the flag and file): the files fail CheckKeyPair or
// CheckCaFile, or a certificate cannot be parsed.
absl::StatusOr<absl::Time> CheckTlsFileSet(const TlsFileSet& files);

}  // namespace contacts
