#include "common/tls/certificate_monitor.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

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

namespace {

// The files of the set the flags name, read after they passed the checks: what to stage.
absl::StatusOr<std::map<std::string, std::string>> ReadCheckedFiles(const TlsFileSet& files) {
  RETURN_IF_ERROR(CheckTlsFileSet(files).status());
  std::map<std::string, std::string> contents;
  ASSIGN_OR_RETURN(contents[files.flag], ReadPemFile("--" + files.flag, files.path));
  if (!files.key_flag.empty()) {
    ASSIGN_OR_RETURN(contents[files.key_flag], ReadPemFile("--" + files.key_flag, files.key_path));
  }
  return contents;
}

// The set as staged in `dir`.
TlsFileSet StagedFileSet(const TlsFileSet& files, const std::string& dir) {
  if (files.key_flag.empty()) return TlsFileSet::CaFile(files.flag, dir + "/" + files.flag);
  return TlsFileSet::KeyPair(files.flag, dir + "/" + files.flag, files.key_flag, dir + "/" + files.key_flag);
}

// What gRPC keeps using while the files the flags name are refused.
std::string StillInUse(const TlsFileSet& files, absl::Time expiry) {
  if (files.key_flag.empty()) {
    return fmt::format("the CA certificates staged before stay in use (the first expires at {})", FormatUtc(expiry));
  }
  return fmt::format("the certificate staged before stays in use until it expires at {}", FormatUtc(expiry));
}

}  // namespace

absl::StatusOr<std::unique_ptr<CertificateMonitor>> CertificateMonitor::Create(
    std::vector<TlsFileSet> file_sets, absl::Duration interval, const std::vector<std::string>& staging_parents) {
  std::vector<WatchedFiles> watched;
  std::map<std::string, std::string> files_to_stage;
  for (TlsFileSet& files : file_sets) {
    using Contents = std::map<std::string, std::string>;
    ASSIGN_OR_RETURN(Contents contents, ReadCheckedFiles(files));
    files_to_stage.insert(contents.begin(), contents.end());
    watched.push_back(WatchedFiles{.files = std::move(files), .staged = std::move(contents)});
  }
  std::unique_ptr<TlsStagingFolder> staging;
  if (!watched.empty()) {
    ASSIGN_OR_RETURN(staging, TlsStagingFolder::Create(staging_parents));
    // Checked again as staged: the files the flags name may have changed since they were checked.
    RETURN_IF_ERROR(staging->Stage(files_to_stage, [&](const std::string& dir) -> absl::Status {
      for (WatchedFiles& set : watched) {
        ASSIGN_OR_RETURN(set.staged_expiry, CheckTlsFileSet(StagedFileSet(set.files, dir)));
      }
      return absl::OkStatus();
    }));
    spdlog::info("TLS files staged for gRPC in {}", staging->path());
  }
  return std::unique_ptr<CertificateMonitor>(new CertificateMonitor(std::move(watched), interval, std::move(staging)));
}

CertificateMonitor::CertificateMonitor(std::vector<WatchedFiles> watched, absl::Duration interval,
                                       std::unique_ptr<TlsStagingFolder> staging)
    : interval_(interval), staging_(std::move(staging)), watched_(std::move(watched)) {}

CertificateMonitor::~CertificateMonitor() { Stop(); }

void CertificateMonitor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::string CertificateMonitor::StagedPath(std::string_view flag) const {
  for (const WatchedFiles& watched : watched_) {
    if (watched.files.flag == flag || (!watched.files.key_flag.empty() && watched.files.key_flag == flag)) {
      return staging_->CurrentPath(flag);
    }
  }
  return "";
}

void CertificateMonitor::ExportMetrics(prometheus::Registry& metrics) {
  if (watched_.empty()) return;
  auto& valid_family =
      prometheus::BuildGauge()
          .Name("tls_files_valid")
          .Help(
              "1 while the TLS files a flag names pass the start-up checks; 0 while they fail them, and gRPC keeps "
              "using the files that passed before")
          .Register(metrics);
  expiry_family_ = &prometheus::BuildGauge()
                        .Name("tls_certificate_expiry_timestamp_seconds")
                        .Help(
                            "Expiry (notAfter, Unix seconds) of the certificate gRPC uses for a TLS flag (the last "
                            "files that passed the checks): the leaf of a chain, the earliest of CA certificates")
                        .Register(metrics);
  for (WatchedFiles& watched : watched_) {
    watched.valid_gauge = &valid_family.Add({{"flag", watched.files.flag}});
    watched.valid_gauge->Set(watched.last_failure.empty() ? 1 : 0);
    if (watched.announced_expiry.has_value()) {
      watched.expiry_gauge = &expiry_family_->Add({{"flag", watched.files.flag}});
      watched.expiry_gauge->Set(static_cast<double>(absl::ToUnixSeconds(*watched.announced_expiry)));
    }
  }
}

void CertificateMonitor::Start() {
  Check(absl::Now());
  if (watched_.empty()) return;
  thread_ = std::thread([this] { Run(); });
}

void CertificateMonitor::Run() {
  absl::MutexLock lock(&mu_);
  while (true) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval_);  // woken early only by Stop
    if (stopping_) return;
    mu_.Unlock();
    Check(absl::Now());
    mu_.Lock();
  }
}

void CertificateMonitor::Check(absl::Time now) {
  std::map<size_t, std::map<std::string, std::string>> renewed;
  for (size_t i = 0; i < watched_.size(); ++i) {
    WatchedFiles& watched = watched_[i];
    absl::StatusOr<std::map<std::string, std::string>> contents = ReadCheckedFiles(watched.files);
    if (!contents.ok()) {
      ReportFailure(watched, contents.status());
      continue;
    }
    if (watched.valid_gauge != nullptr) watched.valid_gauge->Set(1);
    if (!watched.last_failure.empty()) {
      spdlog::info("TLS files of --{} (\"{}\") are usable again", watched.files.flag, watched.files.path);
      watched.last_failure.clear();
    }
    if (*contents != watched.staged) renewed[i] = *std::move(contents);
  }
  if (!renewed.empty()) {
    if (absl::Status staged = StageFiles(renewed); !staged.ok()) {
      std::string failure(staged.message());
      if (failure != last_staging_failure_) {
        for (const auto& [i, contents] : renewed) {
          spdlog::error("cannot stage the new TLS files of --{}: {}; {}", watched_[i].files.flag, failure,
                        StillInUse(watched_[i].files, watched_[i].staged_expiry));
        }
        last_staging_failure_ = std::move(failure);
      }
    } else {
      last_staging_failure_.clear();
    }
  }
  for (WatchedFiles& watched : watched_) Announce(watched, now);
}

absl::Status CertificateMonitor::StageFiles(const std::map<size_t, std::map<std::string, std::string>>& renewed) {
  std::map<std::string, std::string> files_to_stage;
  for (size_t i = 0; i < watched_.size(); ++i) {
    auto found = renewed.find(i);
    const std::map<std::string, std::string>& contents = found == renewed.end() ? watched_[i].staged : found->second;
    files_to_stage.insert(contents.begin(), contents.end());
  }
  std::map<size_t, absl::Time> expiries;
  RETURN_IF_ERROR(staging_->Stage(files_to_stage, [&](const std::string& dir) -> absl::Status {
    for (const auto& [i, contents] : renewed) {
      absl::StatusOr<absl::Time> expiry = CheckTlsFileSet(StagedFileSet(watched_[i].files, dir));
      if (!expiry.ok()) {
        return absl::AbortedError(
            fmt::format("the files changed while they were copied ({}); trying again at the next check",
                        std::string(expiry.status().message())));
      }
      expiries[i] = *expiry;
    }
    return absl::OkStatus();
  }));
  for (const auto& [i, contents] : renewed) {
    WatchedFiles& watched = watched_[i];
    watched.staged = contents;
    watched.staged_expiry = expiries[i];
    spdlog::info("TLS files of --{} (\"{}\") staged for gRPC, generation {}: new connections get them",
                 watched.files.flag, watched.files.path, staging_->generation());
  }
  return absl::OkStatus();
}

void CertificateMonitor::ReportFailure(WatchedFiles& watched, const absl::Status& status) {
  if (watched.valid_gauge != nullptr) watched.valid_gauge->Set(0);
  std::string failure(status.message());
  if (failure == watched.last_failure) return;
  spdlog::error("TLS files of --{} are unusable: {}; they are not staged for gRPC: {}", watched.files.flag, failure,
                StillInUse(watched.files, watched.staged_expiry));
  watched.last_failure = std::move(failure);
}

// The gauge and warnings for a certificate staged for the first time: at start, or renewed.
void CertificateMonitor::Announce(WatchedFiles& watched, absl::Time now) {
  if (watched.announced_expiry == watched.staged_expiry) return;
  const TlsFileSet& files = watched.files;
  const absl::Time expiry = watched.staged_expiry;
  watched.announced_expiry = expiry;
  if (expiry_family_ != nullptr) {
    if (watched.expiry_gauge == nullptr) watched.expiry_gauge = &expiry_family_->Add({{"flag", files.flag}});
    watched.expiry_gauge->Set(static_cast<double>(absl::ToUnixSeconds(expiry)));
  }
  const char* what = files.key_flag.empty() ? "a CA certificate" : "the certificate";
  if (expiry <= now) {
    spdlog::warn("--{}: {} in \"{}\" expired at {}: {}", files.flag, what, files.path, FormatUtc(expiry),
                 files.key_flag.empty() ? "the certificates it signed no longer verify" : "peers refuse it");
  } else if (expiry - now < kExpiryWarning) {
    spdlog::warn("--{}: {} in \"{}\" expires in {:.1f} days, at {}: renew it", files.flag, what, files.path,
                 absl::ToDoubleHours(expiry - now) / 24, FormatUtc(expiry));
  }
}

}  // namespace contacts
