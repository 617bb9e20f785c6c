// Startup errors of the real binaries: every service exits with status 2 (a usage error) for each
// kind of bad flag value, with a message naming the flag, and with status 1 for a runtime failure
// with good flags; contactsctl's flag parsing (which shares "a value must not look like a flag"
// with FlagSet) keeps its exit codes and messages.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>

#include "absl/strings/match.h"
#include "fmt/format.h"
#include "gtest/gtest.h"
#include "tests/testing/service_process.h"

namespace contacts::test {
namespace {

constexpr const char* kServices[] = {"contact-store", "import-processor", "audience-query"};

struct BadStart {
  std::vector<std::string> flags;
  std::map<std::string, std::string> env;
  std::string says;  // part of the "<binary>: <message>" line, naming the flag
};

// The "<binary>: ..." line the service printed before it exited (the log also holds the command
// line the test ran, which names every flag, so only this line proves the message names it).
std::string ExitMessage(const std::string& binary, const std::string& log) {
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    if (absl::StartsWith(line, binary + ": ")) return line;
  }
  return "";
}

// Starts `binary` as ServiceProcess does (loopback ports, a fresh data folder) and expects it to
// exit during start with `exit_code` and an exit line containing `says`.
void ExpectStartFails(const std::string& binary, const BadStart& bad, int exit_code) {
  std::string what = binary;
  for (const std::string& flag : bad.flags) what += " " + flag;
  for (const auto& [name, value] : bad.env) what += fmt::format(" ({}={})", name, value);
  absl::StatusOr<std::unique_ptr<ServiceProcess>> process =
      ServiceProcess::Start({.binary = binary, .flags = bad.flags, .env = bad.env});
  ASSERT_FALSE(process.ok()) << what << " started";
  const std::string message(process.status().message());
  EXPECT_TRUE(absl::StrContains(message, fmt::format("(exit code {},", exit_code))) << what << "\n" << message;
  EXPECT_TRUE(absl::StrContains(ExitMessage(binary, message), bad.says))
      << what << ": no \"" << binary << ": ...\" line saying \"" << bad.says << "\"\n"
      << message;
}

class StartupFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    missing_keys_ = dir_.path() + "/no_such_keys";
    malformed_keys_ = dir_.path() + "/malformed_keys";
    std::ofstream(malformed_keys_) << "only-a-key\n";
    a_file_ = dir_.path() + "/a_file";
    std::ofstream(a_file_) << "not a folder\n";
    // A self-signed certificate (its own CA) and its key, another key, and a PEM block that is no
    // certificate: the start-up check loads them as the TLS library will.
    cert_ = dir_.path() + "/tls.crt";
    key_ = dir_.path() + "/tls.key";
    other_key_ = dir_.path() + "/other.key";
    ASSERT_EQ(std::system(fmt::format("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
                                      "-subj /CN=localhost -keyout '{}' -out '{}' >/dev/null 2>&1 && "
                                      "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '{}' "
                                      ">/dev/null 2>&1",
                                      key_, cert_, other_key_)
                              .c_str()),
              0)
        << "openssl (scripts/setup.sh installs it)";
    fake_pem_ = dir_.path() + "/fake.pem";
    std::ofstream(fake_pem_) << "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    missing_pem_ = dir_.path() + "/no_such.pem";
  }

  TempDir dir_{"startup_flags"};
  std::string missing_keys_;
  std::string malformed_keys_;
  std::string a_file_;
  std::string cert_;
  std::string key_;
  std::string other_key_;
  std::string fake_pem_;
  std::string missing_pem_;
};

// One bad value of each kind of common flag, for each service: the parser's own errors, integer
// ranges, addresses, the log level, the API keys file, an empty data folder, the environment.
TEST_F(StartupFlagsTest, EveryServiceExitsWithUsageErrorNamingABadCommonFlag) {
  const std::vector<BadStart> cases = {
      {.flags = {"--no_such_flag=1"}, .says = "unknown flag --no_such_flag"},
      {.flags = {"stray"}, .says = "unexpected argument \"stray\""},
      {.flags = {"--grace_period_ms=ten"}, .says = "flag --grace_period_ms: \"ten\" is not an integer"},
      {.flags = {"--grace_period_ms"}, .says = "--grace_period_ms needs a value"},
      {.flags = {"--data_dir", "--log_level=debug"}, .says = "--data_dir needs a value"},
      {.flags = {"--grace_period_ms=-1"}, .says = "--grace_period_ms must be 0 or more, got -1"},
      {.flags = {"--deadline_cap_ms=0"}, .says = "--deadline_cap_ms must be 1 or more, got 0"},
      {.flags = {"--max_message_bytes=0"}, .says = "--max_message_bytes must be 1 to 2147483647"},
      {.flags = {"--max_message_bytes=2147483648"}, .says = "--max_message_bytes must be 1 to 2147483647"},
      {.flags = {"--listen=nonsense"}, .says = "--listen: address \"nonsense\" is not HOST:PORT"},
      {.flags = {"--listen=127.0.0.1:65536"}, .says = "--listen: address \"127.0.0.1:65536\""},
      {.flags = {"--metrics_listen=localhost"}, .says = "--metrics_listen: address \"localhost\""},
      {.flags = {"--listen=0.0.0.0:50999", "--metrics_listen=127.0.0.1:50999"},
       .says = "--metrics_listen=127.0.0.1:50999 and --listen=0.0.0.0:50999 use the same port"},
      {.flags = {"--log_level=loud"}, .says = "--log_level: log level \"loud\""},
      {.flags = {"--api_keys_file=" + missing_keys_}, .says = "--api_keys_file: cannot open API keys file"},
      {.flags = {"--api_keys_file=" + malformed_keys_}, .says = "--api_keys_file: " + malformed_keys_},
      {.flags = {"--api_keys_file=" + dir_.path()}, .says = "--api_keys_file: API keys file"},
      {.flags = {"--data_dir="}, .says = "--data_dir must not be empty"},
      {.env = {{"CONTACTS_GRACE_PERIOD_MS", "-5"}},
       .says = "environment variable CONTACTS_GRACE_PERIOD_MS: --grace_period_ms must be 0 or more"},
      {.env = {{"CONTACTS_DEADLINE_CAP_MS", "soon"}},
       .says = "environment variable CONTACTS_DEADLINE_CAP_MS: \"soon\" is not an integer (flag --deadline_cap_ms)"},
  };
  for (const char* binary : kServices) {
    for (const BadStart& bad : cases) ExpectStartFails(binary, bad, 2);
  }
}

// The listener's TLS flags: certificate and key together, the client CA only on top of them, every
// file there, readable and PEM; checked before anything is opened or bound.
TEST_F(StartupFlagsTest, EveryServiceExitsWithUsageErrorNamingABadTlsFlag) {
  const std::string cert = "--tls_cert_file=" + cert_;
  const std::string key = "--tls_key_file=" + key_;
  const std::vector<BadStart> cases = {
      {.flags = {cert}, .says = "--tls_cert_file is set but --tls_key_file is not"},
      {.flags = {key}, .says = "--tls_key_file is set but --tls_cert_file is not"},
      {.env = {{"CONTACTS_TLS_KEY_FILE", key_}}, .says = "--tls_key_file is set but --tls_cert_file is not"},
      {.flags = {"--tls_client_ca_file=" + cert_}, .says = "--tls_client_ca_file needs --tls_cert_file"},
      {.flags = {"--tls_cert_file=" + missing_pem_, key},
       .says = "--tls_cert_file: cannot read \"" + missing_pem_ + "\": No such file"},
      {.flags = {cert, "--tls_key_file=" + a_file_}, .says = "--tls_key_file: \"" + a_file_ + "\" is not PEM"},
      {.flags = {"--tls_cert_file=" + dir_.path(), key},
       .says = "--tls_cert_file: \"" + dir_.path() + "\" is a folder"},
      {.flags = {cert, key, "--tls_client_ca_file=" + a_file_},
       .says = "--tls_client_ca_file: \"" + a_file_ + "\" is not PEM"},
      // PEM, but not what the flag needs: found by loading the files as the TLS library will.
      {.flags = {cert, "--tls_key_file=" + other_key_},
       .says = "--tls_key_file: \"" + other_key_ + "\" is not the private key of the certificate in --tls_cert_file"},
      {.flags = {"--tls_cert_file=" + fake_pem_, key},
       .says = "--tls_cert_file: \"" + fake_pem_ + "\" holds no usable PEM certificate"},
      {.flags = {"--tls_cert_file=" + key_, key},
       .says = "--tls_cert_file: \"" + key_ + "\" holds no usable PEM certificate"},
      {.flags = {cert, "--tls_key_file=" + cert_},
       .says = "--tls_key_file: \"" + cert_ + "\" holds no usable PEM private key"},
      {.flags = {cert, key, "--tls_client_ca_file=" + key_},
       .says = "--tls_client_ca_file: \"" + key_ + "\" holds no usable PEM CA certificate"},
      {.flags = {"--tls_refresh_interval_s=0"}, .says = "--tls_refresh_interval_s must be 1 to 86400, got 0"},
  };
  for (const char* binary : kServices) {
    for (const BadStart& bad : cases) ExpectStartFails(binary, bad, 2);
  }
}

// The store channel's TLS flags, in the two services that call contact-store: combinations first,
// then the files.
TEST_F(StartupFlagsTest, StoreClientsExitWithUsageErrorNamingABadStoreTlsFlag) {
  const std::string ca = "--store_tls_ca_file=" + cert_;
  const std::string cert = "--store_tls_cert_file=" + cert_;
  const std::string key = "--store_tls_key_file=" + key_;
  const std::vector<BadStart> cases = {
      {.flags = {ca, cert}, .says = "--store_tls_cert_file is set but --store_tls_key_file is not"},
      {.flags = {ca, key}, .says = "--store_tls_key_file is set but --store_tls_cert_file is not"},
      {.flags = {cert, key}, .says = "--store_tls_cert_file needs --store_tls_ca_file"},
      {.flags = {"--store_tls_cert_file=" + missing_pem_, key},
       .says = "--store_tls_cert_file needs --store_tls_ca_file"},
      {.flags = {"--store_tls_server_name=store.example"}, .says = "--store_tls_server_name needs --store_tls_ca_file"},
      {.flags = {"--store_tls_ca_file=" + missing_pem_}, .says = "--store_tls_ca_file: cannot read"},
      {.flags = {"--store_tls_ca_file=" + a_file_}, .says = "--store_tls_ca_file: \"" + a_file_ + "\" is not PEM"},
      {.flags = {"--store_tls_ca_file=" + fake_pem_},
       .says = "--store_tls_ca_file: \"" + fake_pem_ + "\" holds no usable PEM CA certificate"},
      {.flags = {ca, "--store_tls_cert_file=" + missing_pem_, key}, .says = "--store_tls_cert_file: cannot read"},
      {.flags = {ca, cert, "--store_tls_key_file=" + a_file_},
       .says = "--store_tls_key_file: \"" + a_file_ + "\" is not PEM"},
      {.flags = {ca, cert, "--store_tls_key_file=" + other_key_},
       .says = "--store_tls_key_file: \"" + other_key_ +
               "\" is not the private key of the certificate in "
               "--store_tls_cert_file"},
  };
  for (const char* binary : {"import-processor", "audience-query"}) {
    for (const BadStart& bad : cases) ExpectStartFails(binary, bad, 2);
  }
}

TEST_F(StartupFlagsTest, ContactStoreExitsWithUsageErrorNamingABadOwnFlag) {
  const std::vector<BadStart> cases = {
      {.flags = {"--sync_writes=maybe"}, .says = "flag --sync_writes: \"maybe\" is not a boolean"},
      {.flags = {"--sync_writes", "false"}, .says = "write --sync_writes=false"},
      {.flags = {"--rocksdb_memory_mb=0"}, .says = "--rocksdb_memory_mb must be 1 to 1048576, got 0"},
      {.flags = {"--rocksdb_memory_mb=-1"}, .says = "--rocksdb_memory_mb must be 1 to 1048576, got -1"},
      {.flags = {"--export_threads=17"}, .says = "--export_threads must be 1 to 16, got 17"},
      {.flags = {"--idle_compaction_ms=-1"}, .says = "--idle_compaction_ms must be 0 or more, got -1"},
      {.flags = {"--ingest_min_entries=-1"}, .says = "--ingest_min_entries must be 0 or more, got -1"},
  };
  for (const BadStart& bad : cases) ExpectStartFails("contact-store", bad, 2);
}

TEST_F(StartupFlagsTest, ImportProcessorExitsWithUsageErrorNamingABadOwnFlag) {
  const std::vector<BadStart> cases = {
      {.flags = {"--workers=0"}, .says = "--workers must be 1 to 64, got 0"},
      {.flags = {"--workers=65"}, .says = "--workers must be 1 to 64, got 65"},
      {.flags = {"--batch_rows=50001"}, .says = "--batch_rows must be 1 to 50000, got 50001"},
      {.flags = {"--batches_in_flight=9"}, .says = "--batches_in_flight must be 1 to 8, got 9"},
      {.flags = {"--max_upload_bytes=0"}, .says = "--max_upload_bytes must be 1 or more, got 0"},
      {.flags = {"--store_timeout_ms=0"}, .says = "--store_timeout_ms must be 1 to "},
      // Overflowed now + timeout: every call's deadline was in the past.
      {.flags = {"--store_timeout_ms=9223372036854775807"}, .says = "--store_timeout_ms must be 1 to "},
      {.flags = {"--store_retry_ms=-1"}, .says = "--store_retry_ms must be 0 to "},
      {.flags = {"--upload_ttl_hours=-1"}, .says = "--upload_ttl_hours must be 0 to 87600, got -1"},
      // Wrapped to an hour in the future: the janitor deleted every upload.
      {.flags = {"--upload_ttl_hours=9223372036854775807"}, .says = "--upload_ttl_hours must be 0 to 87600"},
      {.flags = {"--job_retention_hours=-1"}, .says = "--job_retention_hours must be 0 to 87600, got -1"},
      // Wrapped like the upload TTL, it would put the cutoff in the future and purge every finished job.
      {.flags = {"--job_retention_hours=9223372036854775807"}, .says = "--job_retention_hours must be 0 to 87600"},
      {.env = {{"CONTACTS_JOB_RETENTION_HOURS", "87601"}},
       .says = "environment variable CONTACTS_JOB_RETENTION_HOURS: --job_retention_hours must be 0 to 87600"},
      {.flags = {"--store="}, .says = "--store must not be empty"},
      {.env = {{"CONTACTS_WORKERS", "99"}}, .says = "environment variable CONTACTS_WORKERS: --workers must be 1 to 64"},
  };
  for (const BadStart& bad : cases) ExpectStartFails("import-processor", bad, 2);
}

TEST_F(StartupFlagsTest, AudienceQueryExitsWithUsageErrorNamingABadOwnFlag) {
  const std::vector<BadStart> cases = {
      {.flags = {"--store_timeout_ms=0"}, .says = "--store_timeout_ms must be 1 or more, got 0"},
      {.flags = {"--store="}, .says = "--store must not be empty"},
  };
  for (const BadStart& bad : cases) ExpectStartFails("audience-query", bad, 2);
}

// Good flags, but the machine says no: exit 1, not a usage error.
TEST_F(StartupFlagsTest, RuntimeFailuresExitWithOne) {
  {
    SCOPED_TRACE("contact-store, data folder is a file");
    absl::StatusOr<std::unique_ptr<ServiceProcess>> process =
        ServiceProcess::Start({.binary = "contact-store", .flags = {"--data_dir=" + a_file_}});
    ASSERT_FALSE(process.ok());
    EXPECT_TRUE(absl::StrContains(process.status().message(), "(exit code 1,")) << process.status();
    EXPECT_TRUE(absl::StrContains(process.status().message(), "cannot open the store")) << process.status();
  }
  {
    SCOPED_TRACE("import-processor, data folder is a file");
    absl::StatusOr<std::unique_ptr<ServiceProcess>> process =
        ServiceProcess::Start({.binary = "import-processor", .flags = {"--data_dir=" + a_file_}});
    ASSERT_FALSE(process.ok());
    EXPECT_TRUE(absl::StrContains(process.status().message(), "(exit code 1,")) << process.status();
    EXPECT_TRUE(absl::StrContains(process.status().message(), "cannot create")) << process.status();
  }
  for (const char* binary : kServices) {
    SCOPED_TRACE(fmt::format("{}, address not on this machine", binary));
    // 192.0.2.0/24 is TEST-NET-1: well-formed, never a local address, so binding it fails.
    absl::StatusOr<std::unique_ptr<ServiceProcess>> process =
        ServiceProcess::Start({.binary = binary, .flags = {"--listen=192.0.2.1:0", "--metrics_listen=off"}});
    ASSERT_FALSE(process.ok());
    EXPECT_TRUE(absl::StrContains(process.status().message(), "(exit code 1,")) << process.status();
    EXPECT_TRUE(absl::StrContains(process.status().message(), "cannot listen on 192.0.2.1:0")) << process.status();
  }
}

// Runs contactsctl with `args` (shell words) against a port where nothing listens, so a command
// that gets past its flags fails to connect (exit 1); returns the exit code, with stdout and
// stderr in *output.
int RunCtl(const std::string& args, std::string* output) {
  return RunShell(fmt::format("CONTACTS_IMPORT=127.0.0.1:1 {} {} 2>&1", BinaryPath("contactsctl"), args), output);
}

// contactsctl takes only "--" flags: a missing value before the next "--" flag is a usage error,
// a value starting with one dash is a value. --create's type and --state read case-insensitively.
TEST_F(StartupFlagsTest, ContactsctlKeepsItsFlagParsing) {
  const std::string file = dir_.path() + "/people.csv";
  std::ofstream(file) << "customer_id,age\nk1,30\n";
  const std::vector<std::pair<std::string, std::string>> usage_errors = {
      {"delete --keys --wait", "contactsctl: --keys needs a value"},
      {"delete --keys", "contactsctl: --keys needs a value"},
      {"upload " + file + " --map customer_id=customer_id --create age:attribute_type_unspecified",
       "contactsctl: --create takes NAME:TYPE[:indexed]"},
      {"upload " + file + " --map customer_id=customer_id --create age:number", "--create takes NAME:TYPE[:indexed]"},
      {"upload " + file + " --map customer_id=customer_id --create age:integer:index", "--create takes"},
      {"upload " + file + " --map customer_id=customer_id --create age", "--create takes"},
      {"jobs --state bogus", "contactsctl: --state takes"},
      {"jobs --limit -1", "contactsctl: --limit: \"-1\" is not a number"},
      {"delete --keys k1 --dry-run", "contactsctl: delete does not take --dry-run"},
  };
  std::string output;
  for (const auto& [args, says] : usage_errors) {
    EXPECT_EQ(RunCtl(args, &output), 2) << args << "\n" << output;
    EXPECT_TRUE(absl::StrContains(output, says)) << args << "\n" << output;
  }
  // Past the flags: the call fails to connect (exit 1), so these were accepted.
  const std::vector<std::string> accepted = {
      "delete --keys=--wait",
      "delete --keys -wait",
      "delete --keys a,,b",
      "upload " + file + " --map customer_id=customer_id --map age=age --create age:Integer:indexed",
      "jobs --state running",
  };
  for (const std::string& args : accepted) {
    EXPECT_EQ(RunCtl(args, &output), 1) << args << "\n" << output;
    EXPECT_TRUE(absl::StrContains(output, "contactsctl: UNAVAILABLE")) << args << "\n" << output;
  }
}

// contactsctl's TLS flags: a client certificate without its key (or the reverse), a certificate or
// a server name without --tls-ca, a file that is missing, a folder or not PEM, a key that is not
// the certificate's and a CA file without a usable certificate are usage errors
// naming the flag, or the environment variable the value came from. Checked before any connection.
TEST_F(StartupFlagsTest, ContactsctlRefusesTlsFlagsThatDoNotGoTogether) {
  const std::string& pem = cert_;  // self-signed: its own CA
  const std::string der = dir_.path() + "/ca.der";
  std::ofstream(der) << std::string("\x30\x82\x01\x0a\x02\x82", 6);
  const std::string missing = dir_.path() + "/missing.pem";
  const std::vector<std::pair<std::string, std::string>> usage_errors = {
      {"jobs --tls-ca " + pem + " --tls-cert " + pem, "contactsctl: --tls-cert is set but --tls-key is not"},
      {"jobs --tls-ca " + pem + " --tls-key " + pem, "contactsctl: --tls-key is set but --tls-cert is not"},
      {"jobs --tls-cert " + pem + " --tls-key " + pem, "contactsctl: --tls-cert needs --tls-ca"},
      {"jobs --tls-server-name localhost", "contactsctl: --tls-server-name needs --tls-ca"},
      {"jobs --tls-ca " + missing,
       fmt::format("contactsctl: --tls-ca: cannot read \"{}\": No such file or directory", missing)},
      {"jobs --tls-ca " + dir_.path(), fmt::format("contactsctl: --tls-ca: \"{}\" is a folder", dir_.path())},
      {"jobs --tls-ca " + der, fmt::format("contactsctl: --tls-ca: \"{}\" is not PEM", der)},
      {fmt::format("jobs --tls-ca {} --tls-cert {} --tls-key {}", pem, pem, der),
       fmt::format("contactsctl: --tls-key: \"{}\" is not PEM", der)},
      {fmt::format("jobs --tls-ca {} --tls-cert {} --tls-key {}", pem, pem, other_key_),
       fmt::format("contactsctl: --tls-key: \"{}\" is not the private key of the certificate in --tls-cert",
                   other_key_)},
      {"jobs --tls-ca " + fake_pem_,
       fmt::format("contactsctl: --tls-ca: \"{}\" holds no usable PEM CA certificate", fake_pem_)},
      {"jobs --tls-ca", "contactsctl: --tls-ca needs a value"},
      {"jobs --tls-ca --tls-server-name=localhost", "contactsctl: --tls-ca needs a value"},
  };
  std::string output;
  for (const auto& [args, says] : usage_errors) {
    EXPECT_EQ(RunCtl(args, &output), 2) << args << "\n" << output;
    EXPECT_TRUE(absl::StrContains(output, says)) << args << "\n" << output;
  }
  // From the environment (CONTACTS_TLS_CERT without CONTACTS_TLS_KEY), the variable is named; a
  // command-line flag wins over it.
  ASSERT_EQ(setenv("CONTACTS_TLS_CERT", pem.c_str(), 1), 0);
  EXPECT_EQ(RunCtl("jobs --tls-ca " + pem, &output), 2) << output;
  EXPECT_TRUE(absl::StrContains(output, "contactsctl: CONTACTS_TLS_CERT (--tls-cert) is set but --tls-key is not"))
      << output;
  EXPECT_EQ(RunCtl("jobs --tls-cert=", &output), 1) << output;
  EXPECT_TRUE(absl::StrContains(output, "contactsctl: UNAVAILABLE")) << output;
  ASSERT_EQ(unsetenv("CONTACTS_TLS_CERT"), 0);
  ASSERT_EQ(setenv("CONTACTS_TLS_CA", missing.c_str(), 1), 0);
  EXPECT_EQ(RunCtl("jobs", &output), 2) << output;
  EXPECT_TRUE(absl::StrContains(output, "contactsctl: CONTACTS_TLS_CA (--tls-ca): cannot read")) << output;
  ASSERT_EQ(unsetenv("CONTACTS_TLS_CA"), 0);
}

}  // namespace
}  // namespace contacts::test
