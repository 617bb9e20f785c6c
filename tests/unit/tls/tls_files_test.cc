#include "common/tls/tls_files.h"

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/time/clock.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace contacts {
namespace {

using ::testing::HasSubstr;

// Files made once for the suite with the openssl CLI (scripts/setup.sh installs it).
class TlsFilesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmp = (std::filesystem::temp_directory_path() / "tls_files_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmp.data()), nullptr);
    dir_ = new std::string(tmp);
    const std::string command = fmt::format(
        "cd '{}' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=a "
        "-keyout a.key -out a.crt && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out b.key && "
        "openssl pkey -in a.key -aes256 -passout pass:secret -out encrypted.key && "
        "openssl x509 -in a.crt -outform der -out a.der",
        *dir_);
    ASSERT_EQ(std::system((command + " >/dev/null 2>&1").c_str()), 0) << command;
    std::ofstream(Path("fake.pem")) << "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string Path(const std::string& name) { return *dir_ + "/" + name; }

  static std::string* dir_;
};
std::string* TlsFilesTest::dir_ = nullptr;

TEST_F(TlsFilesTest, ReadPemFileNamesTheFlagAndWhy) {
  absl::StatusOr<std::string> text = ReadPemFile("--ca", Path("a.crt"));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(*text, HasSubstr("-----BEGIN CERTIFICATE-----"));
  EXPECT_EQ(ReadPemFile("--ca", Path("none.pem")).status().message(),
            fmt::format("--ca: cannot read \"{}\": No such file or directory", Path("none.pem")));
  EXPECT_EQ(ReadPemFile("--ca", *dir_).status().message(),
            fmt::format("--ca: \"{}\" is a folder, not a PEM file", *dir_));
  EXPECT_THAT(ReadPemFile("--ca", Path("a.der")).status().message(), HasSubstr("is not PEM"));
  EXPECT_EQ(ReadPemFile("--ca", Path("a.der")).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TlsFilesTest, KeyPairMustBeACertificateAndItsOwnUnencryptedKey) {
  EXPECT_TRUE(CheckKeyPair("--cert", Path("a.crt"), "--key", Path("a.key")).ok());
  EXPECT_EQ(CheckKeyPair("--cert", Path("a.crt"), "--key", Path("b.key")).message(),
            fmt::format("--key: \"{}\" is not the private key of the certificate in --cert", Path("b.key")));
  EXPECT_THAT(CheckKeyPair("--cert", Path("a.crt"), "--key", Path("encrypted.key")).message(),
              HasSubstr("holds no usable PEM private key"));
  EXPECT_THAT(CheckKeyPair("--cert", Path("a.crt"), "--key", Path("a.crt")).message(),
              HasSubstr("--key: \"" + Path("a.crt") + "\" holds no usable PEM private key"));
  EXPECT_THAT(CheckKeyPair("--cert", Path("fake.pem"), "--key", Path("a.key")).message(),
              HasSubstr("--cert: \"" + Path("fake.pem") + "\" holds no usable PEM certificate"));
  EXPECT_THAT(CheckKeyPair("--cert", Path("a.der"), "--key", Path("a.key")).message(), HasSubstr("is not PEM"));
}

TEST_F(TlsFilesTest, CaFileNeedsAUsableCertificate) {
  EXPECT_TRUE(CheckCaFile("--ca", Path("a.crt")).ok());
  EXPECT_THAT(CheckCaFile("--ca", Path("a.key")).message(), HasSubstr("holds no usable PEM CA certificate"));
  EXPECT_THAT(CheckCaFile("--ca", Path("fake.pem")).message(), HasSubstr("holds no usable PEM CA certificate"));
  EXPECT_EQ(CheckCaFile("--ca", Path("a.key")).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TlsFilesTest, CertificateExpiriesAreReadInFileOrderSkippingKeys) {
  // a.crt was made with -days 1 when the suite started.
  absl::StatusOr<std::vector<absl::Time>> one = ReadCertificateExpiries("--cert", Path("a.crt"));
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_LT(absl::AbsDuration((*one)[0] - (absl::Now() + absl::Hours(24))), absl::Minutes(5));

  ASSERT_EQ(std::system(fmt::format("cd '{}' && cat a.key a.crt a.key a.crt > mixed.pem", *dir_).c_str()), 0);
  absl::StatusOr<std::vector<absl::Time>> mixed = ReadCertificateExpiries("--cert", Path("mixed.pem"));
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_EQ(*mixed, std::vector<absl::Time>({(*one)[0], (*one)[0]}));

  EXPECT_EQ(ReadCertificateExpiries("--cert", Path("a.key")).status().message(),
            fmt::format("--cert: \"{}\" holds no PEM certificate", Path("a.key")));
  EXPECT_THAT(ReadCertificateExpiries("--cert", Path("fake.pem")).status().message(),
              HasSubstr(fmt::format("--cert: certificate 1 in \"{}\" cannot be parsed", Path("fake.pem"))));
  EXPECT_THAT(ReadCertificateExpiries("--cert", Path("a.der")).status().message(), HasSubstr("is not PEM"));
}

}  // namespace
}  // namespace contacts
