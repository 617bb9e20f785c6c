// TLS and mutual TLS on the services' gRPC listeners (--tls_cert_file, --tls_key_file,
// --tls_client_ca_file) and on the channel import-processor and audience-query open to
// contact-store (--store_tls_*), and contactsctl's --tls-* flags, against the real binaries. The
// certificates are made at test time with the openssl CLI (scripts/setup.sh installs it) in a
// temporary folder: two throwaway CAs, each with a server certificate for 127.0.0.1 and localhost
// and a client certificate. The bad flag combinations' exit status 2 is pinned in
// startup_flags_test.cc.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include "contacts/v1/audience_query.grpc.pb.h"
#include "contacts/v1/contact_store.grpc.pb.h"
#include "contacts/v1/import_processor.grpc.pb.h"

#include "absl/strings/match.h"
#include "tests/testing/service_process.h"
#include "tests/testing/test_authority.h"

namespace contacts::test {
namespace {

constexpr char kTenant[] = "tls";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

using Authority = TestAuthority;

// What a test client trusts and, for mutual TLS, the certificate it presents.
struct ClientTls {
  std::string ca_file;
  std::string cert_file;  // "": no client certificate
  std::string key_file;
};

std::shared_ptr<grpc::ChannelCredentials> Credentials(const ClientTls& tls) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(tls.ca_file);
  if (!tls.cert_file.empty()) {
    ssl.pem_cert_chain = ReadFile(tls.cert_file);
    ssl.pem_private_key = ReadFile(tls.key_file);
  }
  return grpc::SslCredentials(ssl);
}

// A fresh connection each time (no subchannel shared with an earlier channel), so every check
// makes its own handshake.
std::shared_ptr<grpc::Channel> TlsChannel(const std::string& address, const ClientTls& tls) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, Credentials(tls), args);
}

std::shared_ptr<grpc::Channel> PlaintextChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// Health/Check over `channel`: SERVING, or the failure as text.
std::string Health(const std::shared_ptr<grpc::Channel>& channel) {
  absl::StatusOr<bool> serving = HealthServing(channel, "", std::chrono::seconds(5));
  if (!serving.ok()) return serving.status().ToString();
  return *serving ? "SERVING" : "NOT_SERVING";
}

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  ctx->AddMetadata("x-tenant", kTenant);
  return ctx;
}

std::vector<std::string> ListenerFlags(const Authority& authority, bool require_client_cert = false) {
  std::vector<std::string> flags = {"--tls_cert_file=" + authority.server_cert_file,
                                    "--tls_key_file=" + authority.server_key_file};
  if (require_client_cert) flags.push_back("--tls_client_ca_file=" + authority.ca_file);
  return flags;
}

// The notAfter (Unix seconds) of the file's first certificate, as the openssl CLI and date(1) read
// it; -1 on failure.
double OpensslNotAfter(const std::string& path) {
  std::string output;
  if (RunShell(fmt::format("date -u -d \"$(openssl x509 -noout -enddate -in '{}' | cut -d= -f2)\" +%s", path),
               &output) != 0) {
    return -1;
  }
  return std::atof(output.c_str());
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    auto ours = MakeTestAuthority(dir_.path(), "ours");
    ASSERT_TRUE(ours.ok()) << ours.status();
    ours_ = *ours;
    auto theirs = MakeTestAuthority(dir_.path(), "theirs");
    ASSERT_TRUE(theirs.ok()) << theirs.status();
    theirs_ = *theirs;
  }

  void TearDown() override {
    if (!HasFailure()) return;
    for (const auto& process : processes_) std::cerr << "--- " << process->log_path() << "\n" << process->log();
  }

  // Starts `binary` with `flags` and waits until a client with `client` TLS sees it SERVING.
  // nullptr (and a test failure) if not.
  ServiceProcess* StartTls(const std::string& binary, const std::vector<std::string>& flags, const ClientTls& client) {
    auto started =
        ServiceProcess::Start({.binary = binary, .flags = flags, .channel_credentials = Credentials(client)});
    EXPECT_TRUE(started.ok()) << binary << " not SERVING over TLS: " << started.status();
    if (!started.ok()) return nullptr;
    processes_.push_back(*std::move(started));
    return processes_.back().get();
  }

  // A plaintext listener, for tests about the store channel alone.
  ServiceProcess* StartPlaintext(const std::string& binary, const std::vector<std::string>& flags) {
    auto started = ServiceProcess::Start({.binary = binary, .flags = flags});
    EXPECT_TRUE(started.ok()) << started.status();
    if (!started.ok()) return nullptr;
    processes_.push_back(*std::move(started));
    return processes_.back().get();
  }

  ClientTls TrustingOurs() const { return {.ca_file = ours_.ca_file}; }
  ClientTls OurClient() const {
    return {.ca_file = ours_.ca_file, .cert_file = ours_.client_cert_file, .key_file = ours_.client_key_file};
  }
  std::vector<std::string> StoreTlsFlags(const ServiceProcess& store) const {
    return {"--store=" + store.address(), "--store_tls_ca_file=" + ours_.ca_file,
            "--store_tls_cert_file=" + ours_.client_cert_file, "--store_tls_key_file=" + ours_.client_key_file};
  }

  static grpc::Status SetupTenant(const std::shared_ptr<grpc::Channel>& channel) {
    v1::SetupTenantRequest setup;
    setup.set_primary_key_attribute("customer_id");
    v1::Tenant tenant;
    return v1::ContactStore::NewStub(channel)->SetupTenant(Ctx().get(), setup, &tenant);
  }

  static grpc::Status CountAll(const std::shared_ptr<grpc::Channel>& audience_channel, uint64_t* count) {
    v1::CountRequest request;
    v1::CountResponse response;
    grpc::Status status = v1::AudienceQuery::NewStub(audience_channel)->Count(Ctx().get(), request, &response);
    *count = response.count();
    return status;
  }

  TempDir dir_{"tls_test"};
  Authority ours_;
  Authority theirs_;
  std::vector<std::unique_ptr<ServiceProcess>> processes_;
};

TEST_F(TlsTest, TlsListenerServesTlsClientsAndRefusesPlaintextOnes) {
  ServiceProcess* store = StartTls("contact-store", ListenerFlags(ours_), TrustingOurs());
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(absl::StrContains(store->log(), "serves gRPC over TLS")) << store->log();

  // A real call, and the certificate's DNS name works as well as its IP address.
  grpc::Status setup = SetupTenant(TlsChannel(store->address(), TrustingOurs()));
  EXPECT_TRUE(setup.ok()) << setup.error_message();
  EXPECT_EQ(Health(TlsChannel(fmt::format("localhost:{}", store->port()), TrustingOurs())), "SERVING");

  EXPECT_NE(Health(PlaintextChannel(store->address())), "SERVING");
  EXPECT_NE(Health(TlsChannel(store->address(), {.ca_file = theirs_.ca_file})), "SERVING")
      << "a client that does not trust the server's CA must refuse it";
  // /metrics stays plain HTTP.
  EXPECT_TRUE(HttpGet(store->metrics_address(), "/metrics").ok());
}

TEST_F(TlsTest, EveryServiceServesTls) {
  for (const char* binary : {"import-processor", "audience-query"}) {
    ServiceProcess* process = StartTls(binary, ListenerFlags(ours_), TrustingOurs());
    ASSERT_NE(process, nullptr) << binary;
    EXPECT_NE(Health(PlaintextChannel(process->address())), "SERVING") << binary;
  }
}

TEST_F(TlsTest, MutualTlsRefusesClientsWithoutACertificateItsCaSigned) {
  ServiceProcess* store = StartTls("contact-store", ListenerFlags(ours_, /*require_client_cert=*/true), OurClient());
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(absl::StrContains(store->log(), "serves gRPC over mutual TLS")) << store->log();

  grpc::Status setup = SetupTenant(TlsChannel(store->address(), OurClient()));
  EXPECT_TRUE(setup.ok()) << setup.error_message();
  EXPECT_NE(Health(TlsChannel(store->address(), TrustingOurs())), "SERVING") << "no client certificate";
  const ClientTls foreign{
      .ca_file = ours_.ca_file, .cert_file = theirs_.client_cert_file, .key_file = theirs_.client_key_file};
  EXPECT_NE(Health(TlsChannel(store->address(), foreign)), "SERVING") << "a client certificate from another CA";
  EXPECT_NE(Health(PlaintextChannel(store->address())), "SERVING");
}

// Production's shape: every listener on TLS and the store requiring client certificates; an
// import goes through import-processor's store channel, the count through audience-query's.
TEST_F(TlsTest, ImportAndCountGoThroughMutualTlsToTheStore) {
  ServiceProcess* store = StartTls("contact-store", ListenerFlags(ours_, /*require_client_cert=*/true), OurClient());
  ASSERT_NE(store, nullptr);
  std::vector<std::string> client_flags = ListenerFlags(ours_);
  for (const std::string& flag : StoreTlsFlags(*store)) client_flags.push_back(flag);
  ServiceProcess* importer = StartTls("import-processor", client_flags, TrustingOurs());
  ASSERT_NE(importer, nullptr);
  EXPECT_TRUE(absl::StrContains(importer->log(), "over mutual TLS: its certificate must be signed by"))
      << importer->log();
  ServiceProcess* audience = StartTls("audience-query", client_flags, TrustingOurs());
  ASSERT_NE(audience, nullptr);

  grpc::Status setup = SetupTenant(TlsChannel(store->address(), OurClient()));
  ASSERT_TRUE(setup.ok()) << setup.error_message();

  auto importer_stub = v1::ImportProcessor::NewStub(TlsChannel(importer->address(), TrustingOurs()));
  v1::UploadResponse upload;
  {
    auto ctx = Ctx();
    auto writer = importer_stub->Upload(ctx.get(), &upload);
    v1::UploadRequest start;
    start.mutable_start()->set_file_name("contacts.csv");
    v1::ColumnMapping* mapping = start.mutable_start()->mutable_import()->add_mapping();
    mapping->set_column("customer_id");
    mapping->set_attribute("customer_id");
    v1::UploadRequest chunk;
    chunk.set_chunk("customer_id\nk1\nk2\nk3\n");
    ASSERT_TRUE(writer->Write(start) && writer->Write(chunk));
    writer->WritesDone();
    grpc::Status uploaded = writer->Finish();
    ASSERT_TRUE(uploaded.ok()) << uploaded.error_message();
  }
  ASSERT_FALSE(upload.job().id().empty());
  v1::Job job;
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::GetJobRequest request;
        request.set_job_id(upload.job().id());
        return importer_stub->GetJob(Ctx().get(), request, &job).ok() && job.state() >= v1::COMPLETED;
      },
      std::chrono::seconds(60)))
      << job.ShortDebugString();
  EXPECT_EQ(job.state(), v1::COMPLETED) << job.ShortDebugString();
  EXPECT_EQ(job.counts().inserted(), 3u);

  uint64_t count = 0;
  grpc::Status counted = CountAll(TlsChannel(audience->address(), TrustingOurs()), &count);
  ASSERT_TRUE(counted.ok()) << counted.error_message();
  EXPECT_EQ(count, 3u);

  // Every TLS file set each service uses is checked, under the flag that names it.
  const double ca_not_after = OpensslNotAfter(ours_.ca_file);
  const double client_not_after = OpensslNotAfter(ours_.client_cert_file);
  ASSERT_GT(ca_not_after, 0);
  ASSERT_GT(client_not_after, 0);
  for (const auto& [process, flags] :
       {std::pair{store, std::vector<std::string>{"tls_cert_file", "tls_client_ca_file"}},
        std::pair{importer, std::vector<std::string>{"tls_cert_file", "store_tls_cert_file", "store_tls_ca_file"}},
        std::pair{audience, std::vector<std::string>{"tls_cert_file", "store_tls_cert_file", "store_tls_ca_file"}}}) {
    absl::StatusOr<std::string> metrics = HttpGet(process->metrics_address(), "/metrics");
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    for (const std::string& flag : flags) {
      EXPECT_EQ(MetricValue(*metrics, "tls_files_valid", {{"flag", flag}}), 1) << process->log_path() << " " << flag;
    }
    EXPECT_EQ(MetricValue(*metrics, "tls_files_valid", {}), static_cast<double>(flags.size())) << "no other sets";
  }
  absl::StatusOr<std::string> importer_metrics = HttpGet(importer->metrics_address(), "/metrics");
  ASSERT_TRUE(importer_metrics.ok()) << importer_metrics.status();
  EXPECT_EQ(MetricValue(*importer_metrics, "tls_certificate_expiry_timestamp_seconds", {{"flag", "store_tls_ca_file"}}),
            ca_not_after);
  EXPECT_EQ(
      MetricValue(*importer_metrics, "tls_certificate_expiry_timestamp_seconds", {{"flag", "store_tls_cert_file"}}),
      client_not_after);
}

// The store channel verifies the store: a client that does not trust its CA, expects another name
// or speaks plaintext gets no answer; --store_tls_server_name is the name checked.
TEST_F(TlsTest, StoreChannelRefusesAStoreItCannotVerify) {
  ServiceProcess* store = StartTls("contact-store", ListenerFlags(ours_), TrustingOurs());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(SetupTenant(TlsChannel(store->address(), TrustingOurs())).ok());
  const std::string store_flag = "--store=" + store->address();  // 127.0.0.1:PORT
  struct Case {
    std::vector<std::string> flags;
    bool answers;
  };
  const std::vector<Case> cases = {
      {{store_flag, "--store_tls_ca_file=" + ours_.ca_file}, true},
      {{store_flag, "--store_tls_ca_file=" + ours_.ca_file, "--store_tls_server_name=localhost"}, true},
      {{store_flag, "--store_tls_ca_file=" + ours_.ca_file, "--store_tls_server_name=store.example"}, false},
      {{store_flag, "--store_tls_ca_file=" + theirs_.ca_file}, false},
      {{store_flag}, false},
  };
  for (const Case& c : cases) {
    std::vector<std::string> flags = c.flags;
    flags.push_back("--store_timeout_ms=5000");
    ServiceProcess* audience = StartPlaintext("audience-query", flags);
    ASSERT_NE(audience, nullptr);
    uint64_t count = 0;
    grpc::Status counted = CountAll(audience->Channel(), &count);
    EXPECT_EQ(counted.ok(), c.answers) << fmt::format("{}", fmt::join(c.flags, " ")) << ": " << counted.error_message();
    if (!c.answers) {
      EXPECT_EQ(counted.error_code(), grpc::StatusCode::UNAVAILABLE) << counted.error_message();
    }
  }
}

// Copies the authority's server certificate and key to `dir`/tls.crt and tls.key, as a Secret
// volume would mount them; returns their paths.
std::pair<std::string, std::string> MountServerFiles(const std::string& dir, const Authority& authority) {
  std::filesystem::create_directories(dir);
  const std::string cert = dir + "/tls.crt";
  const std::string key = dir + "/tls.key";
  std::filesystem::copy_file(authority.server_cert_file, cert);
  std::filesystem::copy_file(authority.server_key_file, key);
  return {cert, key};
}

// Replaces `to` with a copy of `from` in one step (rename), as a Secret volume's update does.
void Install(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to + ".new");
  std::filesystem::rename(to + ".new", to);
}

// The folder the service logged it staged its TLS files in; "" if none.
std::string StagingDir(const ServiceProcess& process) {
  const std::string log = process.log();
  const std::string marker = "TLS files staged for gRPC in ";
  const size_t at = log.find(marker);
  if (at == std::string::npos) return "";
  const size_t start = at + marker.size();
  return log.substr(start, log.find('\n', start) - start);
}

// cert-manager renews a certificate by rewriting the mounted files: new connections get the new
// certificate within --tls_refresh_interval_s, without a restart, from a new generation of the
// staged copies; the expiry gauge follows it.
TEST_F(TlsTest, RenewedCertificateIsServedWithoutRestart) {
  const auto [cert, key] = MountServerFiles(dir_.path() + "/live", ours_);
  ServiceProcess* store =
      StartTls("contact-store", {"--tls_cert_file=" + cert, "--tls_key_file=" + key, "--tls_refresh_interval_s=1"},
               TrustingOurs());
  ASSERT_NE(store, nullptr);
  // Longer-lived than ours_, so that the expiry differs.
  absl::StatusOr<Authority> renewed = MakeTestAuthority(dir_.path(), "renewed", 10);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  const ClientTls trusting_renewed{.ca_file = renewed->ca_file};
  ASSERT_NE(Health(TlsChannel(store->address(), trusting_renewed)), "SERVING");
  const std::string staging = StagingDir(*store);
  EXPECT_TRUE(std::filesystem::exists(staging + "/current/tls_key_file")) << store->log();
  if (std::filesystem::is_directory("/dev/shm") && ::access("/dev/shm", W_OK) == 0) {
    EXPECT_TRUE(absl::StartsWith(staging, "/dev/shm/")) << "private keys stay in memory: " << staging;
  }

  // As a Secret volume does: new files in place at once (rename), the key first.
  Install(renewed->server_key_file, key);
  Install(renewed->server_cert_file, cert);
  std::string last;
  EXPECT_TRUE(WaitFor(
      [&] {
        last = Health(TlsChannel(store->address(), trusting_renewed));
        return last == "SERVING";
      },
      std::chrono::seconds(30)))
      << "the renewed certificate was not served: " << last;
  EXPECT_NE(Health(TlsChannel(store->address(), TrustingOurs())), "SERVING") << "the old certificate is still served";
  absl::StatusOr<std::string> metrics = HttpGet(store->metrics_address(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const double renewed_not_after = OpensslNotAfter(renewed->server_cert_file);
  ASSERT_GT(renewed_not_after, OpensslNotAfter(ours_.server_cert_file));
  EXPECT_EQ(MetricValue(*metrics, "tls_certificate_expiry_timestamp_seconds", {{"flag", "tls_cert_file"}}),
            renewed_not_after);
  EXPECT_TRUE(absl::StrContains(store->log(), "TLS files of --tls_cert_file (\"" + cert + "\") staged for gRPC"))
      << store->log();

  // The staged copies go with the process.
  absl::StatusOr<ExitInfo> exit = store->Terminate();
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->exited_cleanly());
  EXPECT_FALSE(std::filesystem::exists(staging)) << staging;
}

// gRPC only ever reads files that passed the checks: when the files the flags name are missing,
// replaced by a key that is not the certificate's or truncated to nothing, nothing is staged and
// the service keeps serving the last good certificate (gRPC 1.51 given such files directly fails
// every new handshake, or aborts on an empty file). /metrics says so: tls_files_valid drops to 0
// and comes back when the files are fixed; tls_certificate_expiry_timestamp_seconds stays the
// served certificate's notAfter.
TEST_F(TlsTest, UnusableTlsFilesAreNotStagedAndTheLastGoodCertificateStaysInUse) {
  const auto [cert, key] = MountServerFiles(dir_.path() + "/live", ours_);
  ServiceProcess* store =
      StartTls("contact-store", {"--tls_cert_file=" + cert, "--tls_key_file=" + key, "--tls_refresh_interval_s=1"},
               TrustingOurs());
  ASSERT_NE(store, nullptr);
  auto scrape = [&](const std::string& name) -> std::optional<double> {
    absl::StatusOr<std::string> metrics = HttpGet(store->metrics_address(), "/metrics");
    if (!metrics.ok()) return std::nullopt;
    return MetricValue(*metrics, name, {{"flag", "tls_cert_file"}});
  };
  auto valid_becomes = [&](double want) {
    return WaitFor([&] { return scrape("tls_files_valid") == want; }, std::chrono::seconds(15));
  };
  // New handshakes and calls keep working for a few refresh intervals; the first failure if not.
  auto keeps_serving = [&]() -> std::string {
    std::string failure;
    WaitFor(
        [&] {
          std::string health = Health(TlsChannel(store->address(), TrustingOurs()));
          if (health != "SERVING") failure = "Health: " + health;
          grpc::Status setup = SetupTenant(TlsChannel(store->address(), TrustingOurs()));
          if (!setup.ok()) failure = "SetupTenant: " + setup.error_message();
          return !failure.empty() || !store->running();
        },
        std::chrono::seconds(4));
    if (!store->running()) return "the process exited";
    return failure;
  };
  const double not_after = OpensslNotAfter(ours_.server_cert_file);
  ASSERT_GT(not_after, 0);
  EXPECT_EQ(scrape("tls_certificate_expiry_timestamp_seconds"), not_after);
  EXPECT_EQ(scrape("tls_files_valid"), 1);
  EXPECT_TRUE(
      absl::StrContains(store->log(), "--tls_cert_file: the certificate in \"" + cert + "\" expires in 2.0 days"))
      << "a certificate that expires within a week is warned of at start";

  // The key file gone.
  std::filesystem::rename(key, key + ".away");
  EXPECT_TRUE(valid_becomes(0)) << "tls_files_valid stayed " << scrape("tls_files_valid").value_or(-1);
  EXPECT_TRUE(absl::StrContains(
      store->log(), fmt::format("TLS files of --tls_cert_file are unusable: --tls_key_file: cannot read \"{}\"", key)))
      << store->log();
  EXPECT_EQ(keeps_serving(), "");
  std::filesystem::rename(key + ".away", key);
  EXPECT_TRUE(valid_becomes(1));
  EXPECT_TRUE(absl::StrContains(store->log(), "TLS files of --tls_cert_file (\"" + cert + "\") are usable again"))
      << store->log();

  // Another key written over it: refused and not staged.
  Install(theirs_.server_key_file, key);
  EXPECT_TRUE(valid_becomes(0));
  EXPECT_TRUE(absl::StrContains(
      store->log(),
      fmt::format("--tls_key_file: \"{}\" is not the private key of the certificate in --tls_cert_file; they are not "
                  "staged for gRPC: the certificate staged before stays in use until it expires at ",
                  key)))
      << store->log();
  EXPECT_EQ(keeps_serving(), "") << "gRPC read the wrong key";
  EXPECT_EQ(scrape("tls_certificate_expiry_timestamp_seconds"), not_after) << "the certificate still served";

  // The key truncated to nothing, as an interrupted write leaves it.
  std::ofstream(key, std::ios::trunc).close();
  ASSERT_EQ(std::filesystem::file_size(key), 0u);
  EXPECT_TRUE(
      WaitFor([&] { return absl::StrContains(store->log(), "\"" + key + "\" is not PEM"); }, std::chrono::seconds(15)))
      << store->log();
  EXPECT_EQ(keeps_serving(), "") << "gRPC read the empty key";
  EXPECT_EQ(scrape("tls_files_valid"), 0);

  Install(ours_.server_key_file, key);
  EXPECT_TRUE(valid_becomes(1));
  EXPECT_EQ(keeps_serving(), "");
  EXPECT_TRUE(store->running());
}

// Runs contactsctl with `args` (shell words) against `importer` as the test's tenant, after the
// shell words `env` (VAR=value ...); returns its exit code, with stdout and stderr in *output.
int RunContactsctl(const std::string& importer, const std::string& args, std::string* output,
                   const std::string& env = "") {
  return test::RunShell(fmt::format("CONTACTS_IMPORT={} CONTACTS_TENANT={} {} {} {} 2>&1", importer, kTenant, env,
                                    test::BinaryPath("contactsctl"), args),
                        output);
}

class ContactsctlTlsTest : public TlsTest {
 protected:
  // A plaintext store with the test's tenant, and an import-processor serving TLS (mutual TLS with
  // `require_client_cert`) in front of it. nullptr (and a test failure) if either does not start.
  ServiceProcess* StartTlsImporter(bool require_client_cert) {
    ServiceProcess* store = StartPlaintext("contact-store", {});
    if (store == nullptr) return nullptr;
    grpc::Status setup = SetupTenant(store->Channel());
    EXPECT_TRUE(setup.ok()) << setup.error_message();
    std::vector<std::string> flags = ListenerFlags(ours_, require_client_cert);
    flags.push_back("--store=" + store->address());
    return StartTls("import-processor", flags, require_client_cert ? OurClient() : TrustingOurs());
  }

  // A small CSV to preview with `contactsctl upload`.
  std::string CsvFile() const {
    const std::string file = dir_.path() + "/people.csv";
    std::ofstream(file) << "customer_id,email\nk1,a@example.com\n";
    return file;
  }
};

// --tls-ca (or CONTACTS_TLS_CA) turns TLS on and verifies import-processor against that CA;
// --tls-server-name is the name checked. Plaintext, another CA or another name fail with a hint.
TEST_F(ContactsctlTlsTest, ReachesATlsImportProcessorWithItsCa) {
  ServiceProcess* importer = StartTlsImporter(/*require_client_cert=*/false);
  ASSERT_NE(importer, nullptr);
  const std::string upload = "upload " + CsvFile();
  const std::string address = importer->address();  // 127.0.0.1:PORT
  std::string output;

  EXPECT_EQ(RunContactsctl(address, upload + " --tls-ca " + ours_.ca_file, &output), 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "-> email")) << output;  // the preview came back
  EXPECT_EQ(RunContactsctl(address, upload, &output, "CONTACTS_TLS_CA=" + ours_.ca_file), 0) << output;
  EXPECT_EQ(RunContactsctl(address, "jobs --tls-server-name=localhost --tls-ca=" + ours_.ca_file, &output), 0)
      << output;

  EXPECT_EQ(RunContactsctl(address, upload, &output), 1) << output;
  EXPECT_TRUE(absl::StrContains(output, "contactsctl: UNAVAILABLE")) << output;
  EXPECT_TRUE(absl::StrContains(output, "if import-processor serves TLS, give its CA with --tls-ca")) << output;

  EXPECT_EQ(RunContactsctl(address, upload + " --tls-ca " + theirs_.ca_file, &output), 1) << output;
  EXPECT_TRUE(absl::StrContains(output, "contactsctl: UNAVAILABLE")) << output;
  EXPECT_TRUE(absl::StrContains(output, "check that --tls-ca signed import-processor's certificate")) << output;

  EXPECT_EQ(RunContactsctl(address, "jobs --tls-ca " + ours_.ca_file + " --tls-server-name importer.example", &output),
            1)
      << output;
  EXPECT_TRUE(absl::StrContains(output, "the certificate names \"importer.example\"")) << output;
}

// Against mutual TLS, contactsctl gets through only with a client certificate that CA signed
// (--tls-cert and --tls-key, or CONTACTS_TLS_CERT and CONTACTS_TLS_KEY).
TEST_F(ContactsctlTlsTest, PresentsItsClientCertificateToMutualTls) {
  ServiceProcess* importer = StartTlsImporter(/*require_client_cert=*/true);
  ASSERT_NE(importer, nullptr);
  const std::string upload = "upload " + CsvFile() + " --tls-ca " + ours_.ca_file;
  std::string output;

  EXPECT_EQ(
      RunContactsctl(importer->address(),
                     upload + " --tls-cert " + ours_.client_cert_file + " --tls-key " + ours_.client_key_file, &output),
      0)
      << output;
  EXPECT_TRUE(absl::StrContains(output, "-> email")) << output;
  EXPECT_EQ(RunContactsctl(
                importer->address(), upload, &output,
                fmt::format("CONTACTS_TLS_CERT={} CONTACTS_TLS_KEY={}", ours_.client_cert_file, ours_.client_key_file)),
            0)
      << output;

  EXPECT_EQ(RunContactsctl(importer->address(), upload, &output), 1) << output;
  EXPECT_TRUE(absl::StrContains(output, "contactsctl: UNAVAILABLE")) << output;
  EXPECT_TRUE(absl::StrContains(output, "--tls-cert and --tls-key")) << output;
  EXPECT_EQ(RunContactsctl(importer->address(),
                           upload + " --tls-cert " + theirs_.client_cert_file + " --tls-key " + theirs_.client_key_file,
                           &output),
            1)
      << output;
  EXPECT_TRUE(absl::StrContains(output, "contactsctl: UNAVAILABLE")) << output;
}

}  // namespace
}  // namespace contacts::test
