#include "common/tls/certificate_monitor.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <prometheus/registry.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/service_process.h"
#include "tests/testing/test_authority.h"

namespace contacts {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Certificates made once for the suite with the openssl CLI (tests/testing/test_authority.h).
class CertificateMonitorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("certificate_monitor");
    ASSERT_TRUE(dir_->ok());
    made_after_ = absl::Now();
    for (const auto& [name, days] : {std::pair{"two", 2}, std::pair{"ten", 10}, std::pair{"thirty", 30}}) {
      absl::StatusOr<test::TestAuthority> authority = test::MakeTestAuthority(dir_->path(), name, days);
      ASSERT_TRUE(authority.ok()) << authority.status();
      authorities_[days] = *authority;
    }
    made_before_ = absl::Now();
  }
  static void TearDownTestSuite() { delete dir_; }

  void SetUp() override {
    previous_logger_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_));
    logger->set_pattern("%l %v");
    spdlog::set_default_logger(logger);
    // Live copies the tests may break and restore, as a renewal rewrites a mounted Secret.
    live_ = dir_->path() + "/live-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(live_);
    cert_ = live_ + "/tls.crt";
    key_ = live_ + "/tls.key";
    Install(Authority(30).server_cert_file, cert_);
    Install(Authority(30).server_key_file, key_);
    staging_parent_ = live_ + "/staging";
    std::filesystem::create_directories(staging_parent_);
  }
  void TearDown() override { spdlog::set_default_logger(previous_logger_); }

  static const test::TestAuthority& Authority(int days) { return authorities_.at(days); }

  // Replaces `to` with a copy of `from` in one step (rename), as a Secret volume's update does.
  static void Install(const std::string& from, const std::string& to) {
    std::filesystem::copy_file(from, to + ".new", std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(to + ".new", to);
  }

  static int Shell(const std::string& command) {
    std::string output;
    return test::RunShell(command, &output);
  }

  // The notAfter of the file's first certificate as the openssl CLI and date(1) read it.
  static absl::Time OpensslNotAfter(const std::string& path) {
    std::string output;
    const std::string command =
        fmt::format("date -u -d \"$(openssl x509 -noout -enddate -in '{}' | cut -d= -f2)\" +%s", path);
    EXPECT_EQ(test::RunShell(command, &output), 0) << command;
    int64_t seconds = 0;
    EXPECT_TRUE(absl::SimpleAtoi(output, &seconds)) << output;
    return absl::FromUnixSeconds(seconds);
  }

  // The value of the gauge `name` for flag=`flag`; nullopt when there is no such series.
  std::optional<double> Gauge(const std::string& name, const std::string& flag) {
    for (const prometheus::MetricFamily& family : registry_.Collect()) {
      if (family.name != name) continue;
      for (const prometheus::ClientMetric& metric : family.metric) {
        if (metric.label.size() == 1 && metric.label[0].name == "flag" && metric.label[0].value == flag) {
          return metric.gauge.value;
        }
      }
    }
    return std::nullopt;
  }
  std::optional<double> Valid(const std::string& flag) { return Gauge("tls_files_valid", flag); }
  std::optional<double> Expiry(const std::string& flag) {
    return Gauge("tls_certificate_expiry_timestamp_seconds", flag);
  }

  // The log written since the last call.
  std::string TakeLog() {
    std::string text = log_.str();
    log_.str("");
    return text;
  }

  // A monitor of `file_sets` staging in the test's folder, exporting to registry_ (null and a test
  // failure if it cannot be made).
  std::unique_ptr<CertificateMonitor> Monitor(std::vector<TlsFileSet> file_sets,
                                              absl::Duration interval = absl::Seconds(60)) {
    absl::StatusOr<std::unique_ptr<CertificateMonitor>> monitor =
        CertificateMonitor::Create(std::move(file_sets), interval, {staging_parent_});
    EXPECT_TRUE(monitor.ok()) << monitor.status();
    if (!monitor.ok()) return nullptr;
    (*monitor)->ExportMetrics(registry_);
    return *std::move(monitor);
  }
  std::unique_ptr<CertificateMonitor> ServerMonitor() {
    return Monitor({TlsFileSet::KeyPair("tls_cert_file", cert_, "tls_key_file", key_)});
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
  }

  static test::TempDir* dir_;
  static absl::Time made_after_;                           // before the first certificate was made
  static absl::Time made_before_;                          // after the last one
  static std::map<int, test::TestAuthority> authorities_;  // by days of validity

  std::string live_;
  std::string cert_;
  std::string key_;
  std::string staging_parent_;  // where the monitors stage the files
  prometheus::Registry registry_;
  std::ostringstream log_;
  std::shared_ptr<spdlog::logger> previous_logger_;
};
test::TempDir* CertificateMonitorTest::dir_ = nullptr;
absl::Time CertificateMonitorTest::made_after_;
absl::Time CertificateMonitorTest::made_before_;
std::map<int, test::TestAuthority> CertificateMonitorTest::authorities_;

TEST_F(CertificateMonitorTest, ExpiryIsTheLeafCertificatesNotAfter) {
  // A chain file, leaf first then its CA (valid 30 days too, but made a moment earlier).
  std::filesystem::remove(cert_);
  ASSERT_EQ(Shell(fmt::format("cat '{}' '{}' > '{}'", Authority(30).server_cert_file, Authority(30).ca_file, cert_)),
            0);
  auto monitor = ServerMonitor();
  monitor->Check(absl::Now());

  const absl::Time leaf_not_after = OpensslNotAfter(Authority(30).server_cert_file);
  EXPECT_GE(leaf_not_after, made_after_ + absl::Hours(30 * 24) - absl::Seconds(1));
  EXPECT_LE(leaf_not_after, made_before_ + absl::Hours(30 * 24) + absl::Seconds(1));
  EXPECT_EQ(Expiry("tls_cert_file"), static_cast<double>(absl::ToUnixSeconds(leaf_not_after)));
  EXPECT_EQ(Valid("tls_cert_file"), 1);
  const std::string log = TakeLog();
  EXPECT_THAT(log, Not(HasSubstr("warning"))) << "nothing to warn of in a certificate valid for 30 days";
  EXPECT_THAT(log, Not(HasSubstr("error")));
}

TEST_F(CertificateMonitorTest, StagesCopiesOfTheFilesForGrpc) {
  auto monitor = ServerMonitor();
  ASSERT_NE(monitor, nullptr);
  const std::string staging = monitor->staging_dir();
  EXPECT_EQ(std::filesystem::path(staging).parent_path(), staging_parent_);
  EXPECT_EQ(monitor->StagedPath("tls_cert_file"), staging + "/current/tls_cert_file");
  EXPECT_EQ(monitor->StagedPath("tls_key_file"), staging + "/current/tls_key_file");
  EXPECT_EQ(monitor->StagedPath("tls_client_ca_file"), "") << "not watched";
  EXPECT_EQ(ReadFile(monitor->StagedPath("tls_cert_file")), ReadFile(cert_));
  EXPECT_EQ(ReadFile(monitor->StagedPath("tls_key_file")), ReadFile(key_));
  EXPECT_THAT(TakeLog(), HasSubstr("info TLS files staged for gRPC in " + staging));

  monitor.reset();
  EXPECT_FALSE(std::filesystem::exists(staging)) << "the copies go with the monitor";
}

TEST_F(CertificateMonitorTest, NoFileSetNoFolder) {
  auto monitor = Monitor({});
  ASSERT_NE(monitor, nullptr);
  EXPECT_EQ(monitor->staging_dir(), "");
  monitor->Start();
  EXPECT_TRUE(registry_.Collect().empty()) << "no metrics either";
  EXPECT_TRUE(std::filesystem::is_empty(staging_parent_));
}

TEST_F(CertificateMonitorTest, UnusableFilesAreNotStagedAndTheLastGoodOnesStay) {
  auto monitor = ServerMonitor();
  ASSERT_NE(monitor, nullptr);
  monitor->Check(absl::Now());
  ASSERT_EQ(Valid("tls_cert_file"), 1);
  const std::optional<double> good_expiry = Expiry("tls_cert_file");
  ASSERT_TRUE(good_expiry.has_value());
  const std::string good_cert = ReadFile(cert_);
  const std::string good_key = ReadFile(key_);
  const std::string good_until =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", OpensslNotAfter(Authority(30).server_cert_file), absl::UTCTimeZone());
  TakeLog();

  // A renewal that wrote another key beside the certificate.
  Install(Authority(10).server_key_file, key_);
  monitor->Check(absl::Now());
  EXPECT_EQ(Valid("tls_cert_file"), 0);
  EXPECT_EQ(Expiry("tls_cert_file"), good_expiry) << "the staged certificate's expiry: what gRPC still serves";
  EXPECT_EQ(ReadFile(monitor->StagedPath("tls_key_file")), good_key) << "the wrong key was staged";
  EXPECT_THAT(TakeLog(), HasSubstr(fmt::format(
                             "error TLS files of --tls_cert_file are unusable: --tls_key_file: \"{}\" is not the "
                             "private key of the certificate in --tls_cert_file; they are not staged for gRPC: the "
                             "certificate staged before stays in use until it expires at {}",
                             key_, good_until)));
  monitor->Check(absl::Now());
  EXPECT_EQ(Valid("tls_cert_file"), 0);
  EXPECT_EQ(TakeLog(), "") << "the same failure is logged once";

  // Truncated to nothing (gRPC aborts on an empty key), or to half a PEM block.
  std::ofstream(key_, std::ios::trunc).close();
  monitor->Check(absl::Now());
  EXPECT_EQ(Valid("tls_cert_file"), 0);
  EXPECT_EQ(ReadFile(monitor->StagedPath("tls_key_file")), good_key) << "the empty key was staged";
  EXPECT_THAT(TakeLog(), HasSubstr(fmt::format("--tls_key_file: \"{}\" is not PEM", key_)));
  std::ofstream(cert_, std::ios::trunc) << good_cert.substr(0, good_cert.size() / 2);
  Install(Authority(30).server_key_file, key_);
  monitor->Check(absl::Now());
  EXPECT_EQ(Valid("tls_cert_file"), 0);
  EXPECT_EQ(ReadFile(monitor->StagedPath("tls_cert_file")), good_cert) << "the truncated certificate was staged";
  EXPECT_THAT(TakeLog(), HasSubstr("holds no usable PEM certificate"));

  // The renewal completed: a new pair, staged together, valid again.
  Install(Authority(10).server_key_file, key_);
  Install(Authority(10).server_cert_file, cert_);
  monitor->Check(absl::Now());
  EXPECT_EQ(Valid("tls_cert_file"), 1);
  EXPECT_EQ(Expiry("tls_cert_file"),
            static_cast<double>(absl::ToUnixSeconds(OpensslNotAfter(Authority(10).server_cert_file))));
  EXPECT_EQ(ReadFile(monitor->StagedPath("tls_cert_file")), ReadFile(Authority(10).server_cert_file));
  EXPECT_EQ(ReadFile(monitor->StagedPath("tls_key_file")), ReadFile(Authority(10).server_key_file));
  std::string log = TakeLog();
  EXPECT_THAT(log, HasSubstr(fmt::format("info TLS files of --tls_cert_file (\"{}\") are usable again", cert_)));
  EXPECT_THAT(
      log, HasSubstr(fmt::format("info TLS files of --tls_cert_file (\"{}\") staged for gRPC, generation 2", cert_)));
  monitor->Check(absl::Now());
  EXPECT_EQ(TakeLog(), "") << "nothing new to stage";
}

// Only the set that changed gets new content; the generation holds every set's files.
TEST_F(CertificateMonitorTest, ASetRenewedAloneKeepsTheOthersStagedAsTheyWere) {
  const std::string ca = live_ + "/ca.crt";
  Install(Authority(30).ca_file, ca);
  auto monitor = Monitor({TlsFileSet::KeyPair("tls_cert_file", cert_, "tls_key_file", key_),
                          TlsFileSet::CaFile("tls_client_ca_file", ca)});
  ASSERT_NE(monitor, nullptr);
  monitor->Check(absl::Now());
  const std::string good_key = ReadFile(key_);
  Install(Authority(10).server_key_file, key_);  // refused
  Install(Authority(10).ca_file, ca);            // good
  monitor->Check(absl::Now());
  EXPECT_EQ(Valid("tls_cert_file"), 0);
  EXPECT_EQ(Valid("tls_client_ca_file"), 1);
  EXPECT_EQ(ReadFile(monitor->StagedPath("tls_client_ca_file")), ReadFile(Authority(10).ca_file));
  EXPECT_EQ(ReadFile(monitor->StagedPath("tls_key_file")), good_key);
  EXPECT_EQ(Expiry("tls_client_ca_file"),
            static_cast<double>(absl::ToUnixSeconds(OpensslNotAfter(Authority(10).ca_file))));
}

// Files that pass but cannot be staged (here a generation's name taken): gRPC keeps the staged
// ones, and the gauge keeps their expiry.
TEST_F(CertificateMonitorTest, FailureToStageKeepsTheStagedFilesAndSaysSo) {
  auto monitor = ServerMonitor();
  ASSERT_NE(monitor, nullptr);
  monitor->Check(absl::Now());
  const std::optional<double> good_expiry = Expiry("tls_cert_file");
  const std::string good_key = ReadFile(key_);
  TakeLog();
  std::ofstream(monitor->staging_dir() + "/gen-2") << "in the way";
  Install(Authority(10).server_key_file, key_);
  Install(Authority(10).server_cert_file, cert_);
  monitor->Check(absl::Now());
  EXPECT_EQ(Valid("tls_cert_file"), 1) << "the files the flags name are good";
  EXPECT_EQ(Expiry("tls_cert_file"), good_expiry);
  EXPECT_EQ(ReadFile(monitor->StagedPath("tls_key_file")), good_key);
  EXPECT_THAT(TakeLog(), HasSubstr("error cannot stage the new TLS files of --tls_cert_file: cannot create"));
  monitor->Check(absl::Now());
  EXPECT_EQ(TakeLog(), "") << "logged once";

  std::filesystem::remove(monitor->staging_dir() + "/gen-2");
  monitor->Check(absl::Now());
  EXPECT_EQ(ReadFile(monitor->StagedPath("tls_key_file")), ReadFile(Authority(10).server_key_file));
  EXPECT_EQ(Expiry("tls_cert_file"),
            static_cast<double>(absl::ToUnixSeconds(OpensslNotAfter(Authority(10).server_cert_file))));
}

TEST_F(CertificateMonitorTest, CreateRefusesUnusableFilesAndAFolderItCannotMake) {
  absl::StatusOr<std::unique_ptr<CertificateMonitor>> missing = CertificateMonitor::Create(
      {TlsFileSet::CaFile("tls_client_ca_file", live_ + "/none.pem")}, absl::Seconds(60), {staging_parent_});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("--tls_client_ca_file: cannot read \"" + live_ + "/none.pem\""));
  EXPECT_TRUE(std::filesystem::is_empty(staging_parent_)) << "no folder for files refused";

  absl::StatusOr<std::unique_ptr<CertificateMonitor>> nowhere = CertificateMonitor::Create(
      {TlsFileSet::KeyPair("tls_cert_file", cert_, "tls_key_file", key_)}, absl::Seconds(60), {live_ + "/missing"});
  ASSERT_FALSE(nowhere.ok());
  EXPECT_EQ(nowhere.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(nowhere.status().message()),
              HasSubstr("cannot create the private folder for the TLS files gRPC reads: in \"" + live_ + "/missing\""));
}

TEST_F(CertificateMonitorTest, MissingFileIsInvalidAndNamed) {
  auto monitor = ServerMonitor();
  ASSERT_NE(monitor, nullptr);
  monitor->Check(absl::Now());
  ASSERT_EQ(Valid("tls_cert_file"), 1);
  std::filesystem::remove(cert_);
  monitor->Check(absl::Now());
  EXPECT_EQ(Valid("tls_cert_file"), 0);
  EXPECT_TRUE(Expiry("tls_cert_file").has_value());
  EXPECT_THAT(TakeLog(),
              HasSubstr(fmt::format("--tls_cert_file: cannot read \"{}\": No such file or directory", cert_)));
}

TEST_F(CertificateMonitorTest, CaFileExpiryIsItsEarliestCertificate) {
  const std::string bundle = live_ + "/ca.crt";
  // The later CA first: the earliest is not simply the first.
  ASSERT_EQ(Shell(fmt::format("cat '{}' '{}' '{}' > '{}'", Authority(30).ca_file, Authority(10).ca_file,
                              Authority(30).ca_file, bundle)),
            0);
  auto monitor = Monitor({TlsFileSet::CaFile("store_tls_ca_file", bundle),
                          TlsFileSet::KeyPair("store_tls_cert_file", cert_, "store_tls_key_file", key_)});
  ASSERT_NE(monitor, nullptr);
  monitor->Check(absl::Now());
  EXPECT_EQ(Valid("store_tls_ca_file"), 1);
  EXPECT_EQ(Expiry("store_tls_ca_file"),
            static_cast<double>(absl::ToUnixSeconds(OpensslNotAfter(Authority(10).ca_file))));
  EXPECT_EQ(Valid("store_tls_cert_file"), 1);
  EXPECT_EQ(Expiry("store_tls_cert_file"),
            static_cast<double>(absl::ToUnixSeconds(OpensslNotAfter(Authority(30).server_cert_file))));

  // A bundle that turns into something else (a key) is refused; the other set is unaffected.
  Install(Authority(10).server_key_file, bundle);
  monitor->Check(absl::Now());
  EXPECT_EQ(Valid("store_tls_ca_file"), 0);
  EXPECT_EQ(Valid("store_tls_cert_file"), 1);
  EXPECT_THAT(TakeLog(), HasSubstr("holds no usable PEM CA certificate"));
}

TEST_F(CertificateMonitorTest, WarnsOnceOfACertificateThatExpiresWithinAWeekOrHasExpired) {
  Install(Authority(2).server_cert_file, cert_);
  Install(Authority(2).server_key_file, key_);
  auto monitor = ServerMonitor();
  const absl::Time now = absl::Now();
  monitor->Check(now);
  EXPECT_EQ(Valid("tls_cert_file"), 1) << "a certificate about to expire is still usable";
  std::string log = TakeLog();
  EXPECT_THAT(log,
              HasSubstr(fmt::format("warning --tls_cert_file: the certificate in \"{}\" expires in 2.0 days", cert_)));
  monitor->Check(now + absl::Minutes(1));
  EXPECT_EQ(TakeLog(), "") << "warned once per certificate";

  // Seen first after its expiry (a service started with an old certificate).
  auto late = ServerMonitor();
  late->Check(now + absl::Hours(3 * 24));
  EXPECT_THAT(TakeLog(),
              HasSubstr(fmt::format("warning --tls_cert_file: the certificate in \"{}\" expired at", cert_)));
  EXPECT_EQ(Valid("tls_cert_file"), 1);

  // Renewed for 30 days: nothing to warn of.
  Install(Authority(30).server_cert_file, cert_);
  Install(Authority(30).server_key_file, key_);
  monitor->Check(now + absl::Minutes(2));
  EXPECT_THAT(TakeLog(), Not(HasSubstr("warning")));
}

TEST_F(CertificateMonitorTest, StartChecksAtOnceThenFollowsTheFiles) {
  auto monitor = Monitor({TlsFileSet::KeyPair("tls_cert_file", cert_, "tls_key_file", key_)}, absl::Milliseconds(20));
  ASSERT_NE(monitor, nullptr);
  monitor->Start();
  EXPECT_EQ(Valid("tls_cert_file"), 1) << "checked before Start returns";
  Install(Authority(10).server_key_file, key_);
  EXPECT_TRUE(test::WaitFor([&] { return Valid("tls_cert_file") == 0; }, std::chrono::seconds(10)));
  monitor.reset();  // stops its thread
}

// The services stop the checks before their metrics go (the staged files must last longer, until
// the server is gone): no check writes a gauge after Stop.
TEST_F(CertificateMonitorTest, StopEndsTheChecksAndKeepsTheStagedFiles) {
  auto monitor = Monitor({TlsFileSet::KeyPair("tls_cert_file", cert_, "tls_key_file", key_)}, absl::Milliseconds(10));
  ASSERT_NE(monitor, nullptr);
  monitor->Start();
  monitor->Stop();
  Install(Authority(10).server_key_file, key_);
  absl::SleepFor(absl::Milliseconds(100));  // ten intervals
  EXPECT_EQ(Valid("tls_cert_file"), 1);
  EXPECT_EQ(ReadFile(monitor->StagedPath("tls_cert_file")), ReadFile(cert_));
  monitor->Stop();  // again: nothing to stop
}

}  // namespace
}  // namespace contacts
