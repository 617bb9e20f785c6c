#include "common/tls/certificate_monitor.h"

#include <algorithm>
#include <utility>

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include "common/status/status_macros.h"
#include "common/tls/tls_files.h"
#include "fmt/format.h"

namespace contacts {
namespace {

std::string FormatUtc(absl::Time time) { return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone()); }

}  // namespace

TlsFileSet TlsFileSet::KeyPair(std::string cert_flag, std::string cert_path, std::string key_flag,
                               std::string key_path) {
  return TlsFileSet{.flag = std::move(cert_flag),
                    .path = std::move(cert_path),
                    .key_flag = std::move(key_flag),
                    .key_path = std::move(key_path)};
}

TlsFileSet TlsFileSet::CaFile(std::string flag, std::string path) {
  return TlsFileSet{.flag = std::move(flag), .path = std::move(path)};
}

absl::StatusOr<absl::Time> CheckTlsFileSet(const TlsFileSet& files) {
  const std::string flag = "--" + files.flag;
  if (files.key_flag.empty()) {
    RETURN_IF_ERROR(CheckCaFile(flag, files.path));
  } else {
    RETURN_IF_ERROR(CheckKeyPair(flag, files.path, "--" + files.key_flag, files.key_path));
  }
  ASSIGN_OR_RETURN(std::vector<absl::Time> expiries, ReadCertificateExpiries(flag, files.path));
  // A chain is served leaf first, and the leaf is what expires for the peer; a CA bundle is as good
  // as its first CA to expire (the certificates it signed stop verifying then).
  if (!files.key_flag.empty()) return expiries.front();
  return *std::min_element(expiries.begin(), expiries.end());
}

CertificateMonitor::CertificateMonitor(std::vector<TlsFileSet> file_sets, absl::Duration interval,
                                       prometheus::Registry* metrics)
    : interval_(interval) {
  prometheus::Family<prometheus::Gauge>* valid_family = nullptr;
  if (metrics != nullptr) {
    valid_family = &prometheus::BuildGauge()
                        .Name("tls_files_valid")
                        .Help(
                            "1 while the TLS files a flag names pass the start-up checks; 0 while they would be "
                            "refused (new TLS connections fail, or get the certificate loaded before)")
                        .Register(*metrics);
    expiry_family_ = &prometheus::BuildGauge()
                          .Name("tls_certificate_expiry_timestamp_seconds")
                          .Help(
                              "Expiry (notAfter, Unix seconds) of the certificate a TLS flag names, at the last good "
                              "read: the leaf of a chain, the earliest of CA certificates")
                          .Register(*metrics);
  }
  for (TlsFileSet& files : file_sets) {
    WatchedFiles watched{.files = std::move(files)};
    if (valid_family != nullptr) watched.valid_gauge = &valid_family->Add({{"flag", watched.files.flag}});
    watched_.push_back(std::move(watched));
  }
}

CertificateMonitor::~CertificateMonitor() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void CertificateMonitor::Start() {
  Check(absl::Now());
  thread_ = std::thread([this] { Run(); });
}

void CertificateMonitor::Run() {
  absl::MutexLock lock(&mu_);
  while (true) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval_);  // woken early only by the destructor
    if (stopping_) return;
    mu_.Unlock();
    Check(absl::Now());
    mu_.Lock();
  }
}

void CertificateMonitor::Check(absl::Time now) {
  for (WatchedFiles& watched : watched_) CheckFiles(watched, now);
}

void CertificateMonitor::CheckFiles(WatchedFiles& watched, absl::Time now) {
  const TlsFileSet& files = watched.files;
  absl::StatusOr<absl::Time> expiry = CheckTlsFileSet(files);
  if (!expiry.ok()) {
    if (watched.valid_gauge != nullptr) watched.valid_gauge->Set(0);
    std::string failure(expiry.status().message());
    if (failure == watched.last_failure) return;
    spdlog::error(
        "TLS files of --{} are unusable: {}; until they are fixed, new TLS connections fail or at best get the "
        "certificate loaded before{}",
        files.flag, failure,
        watched.expiry.has_value() ? fmt::format(" (which expires {})", FormatUtc(*watched.expiry)) : "");
    watched.last_failure = std::move(failure);
    return;
  }
  if (watched.valid_gauge != nullptr) watched.valid_gauge->Set(1);
  if (!watched.last_failure.empty()) {
    spdlog::info("TLS files of --{} (\"{}\") are usable again", files.flag, files.path);
    watched.last_failure.clear();
  }
  if (watched.expiry == *expiry) return;
  // A certificate seen for the first time: at start, or renewed.
  watched.expiry = *expiry;
  if (expiry_family_ != nullptr) {
    if (watched.expiry_gauge == nullptr) watched.expiry_gauge = &expiry_family_->Add({{"flag", files.flag}});
    watched.expiry_gauge->Set(static_cast<double>(absl::ToUnixSeconds(*expiry)));
  }
  const char* what = files.key_flag.empty() ? "a CA certificate" : "the certificate";
  if (*expiry <= now) {
    spdlog::warn("--{}: {} in \"{}\" expired at {}: {}", files.flag, what, files.path, FormatUtc(*expiry),
                 files.key_flag.empty() ? "the certificates it signed no longer verify" : "peers refuse it");
  } else if (*expiry - now < kExpiryWarning) {
    spdlog::warn("--{}: {} in \"{}\" expires in {:.1f} days, at {}: renew it", files.flag, what, files.path,
                 absl::ToDoubleHours(*expiry - now) / 24, FormatUtc(*expiry));
  }
}

}  // namespace contacts
