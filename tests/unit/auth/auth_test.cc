#include "common/auth/auth.h"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <grpcpp/server_context.h>
#include <grpcpp/test/server_context_test_spouse.h>
#include <sys/stat.h>

#include "common/auth/grpc_auth.h"
#include "gtest/gtest.h"

namespace contacts {
namespace {

constexpr char kKeys[] = R"(# keys for tests
k-reader-1  acme    reader
k-writer-1  acme    writer

k-admin-1	globex	ADMIN
)";

Authenticator MustParse(std::string_view text) {
  absl::StatusOr<Authenticator> auth = Authenticator::FromText(text);
  EXPECT_TRUE(auth.ok()) << auth.status();
  return auth.ok() ? *std::move(auth) : Authenticator::Disabled();
}

TEST(AuthenticatorTest, KeyMapsToItsTenantAndRole) {
  Authenticator auth = MustParse(kKeys);
  EXPECT_TRUE(auth.enabled());
  EXPECT_EQ(auth.key_count(), 3u);
  absl::StatusOr<CallIdentity> id = auth.Authenticate("k-admin-1", std::nullopt, Role::kAdmin);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->tenant, "globex");
  EXPECT_EQ(id->role, Role::kAdmin);
}

TEST(AuthenticatorTest, HigherRoleSatisfiesLowerRequirement) {
  Authenticator auth = MustParse(kKeys);
  EXPECT_TRUE(auth.Authenticate("k-writer-1", std::nullopt, Role::kReader).ok());
  EXPECT_TRUE(auth.Authenticate("k-writer-1", std::nullopt, Role::kWriter).ok());
  EXPECT_TRUE(auth.Authenticate("k-admin-1", std::nullopt, Role::kWriter).ok());
}

TEST(AuthenticatorTest, RoleTooLowIsPermissionDenied) {
  Authenticator auth = MustParse(kKeys);
  EXPECT_EQ(auth.Authenticate("k-reader-1", std::nullopt, Role::kWriter).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(auth.Authenticate("k-writer-1", std::nullopt, Role::kAdmin).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(AuthenticatorTest, MissingOrUnknownKeyIsUnauthenticated) {
  Authenticator auth = MustParse(kKeys);
  EXPECT_EQ(auth.Authenticate(std::nullopt, std::nullopt, Role::kReader).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authenticate("", std::nullopt, Role::kReader).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authenticate("k-reader-", std::nullopt, Role::kReader).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authenticate("k-reader-11", std::nullopt, Role::kReader).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(AuthenticatorTest, ErrorsNeverContainTheKey) {
  Authenticator auth = MustParse(kKeys);
  absl::Status status = auth.Authenticate("k-reader-1", std::nullopt, Role::kAdmin).status();
  EXPECT_EQ(status.message().find("k-reader-1"), absl::string_view::npos) << status;
  status = auth.Authenticate("secret-guess", std::nullopt, Role::kReader).status();
  EXPECT_EQ(status.message().find("secret-guess"), absl::string_view::npos) << status;
}

TEST(AuthenticatorTest, TenantHeaderMustMatchTheKeysTenant) {
  Authenticator auth = MustParse(kKeys);
  EXPECT_TRUE(auth.Authenticate("k-writer-1", "acme", Role::kWriter).ok());
  EXPECT_EQ(auth.Authenticate("k-writer-1", "globex", Role::kReader).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(AuthenticatorTest, FileErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* expected;
  } cases[] = {
      {"k1 acme reader\nk2 acme\n", "line 2"}, {"# c\n\nk1 Acme reader\n", "line 3"},
      {"k1 acme superuser\n", "line 1"},       {"k1 acme reader\nk1 other writer\n", "line 2"},
      {"k1 acme reader extra\n", "line 1"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Authenticator> auth = Authenticator::FromText(c.text);
    ASSERT_FALSE(auth.ok()) << c.text;
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(auth.status().message().find(c.expected), absl::string_view::npos) << auth.status();
  }
}

// Windows editors save a UTF-8 byte order mark: it must not become part of the first key (which
// then never matched) nor turn a first comment line into a malformed one.
TEST(AuthenticatorTest, ByteOrderMarkAtTheStartOfTheFileIsIgnored) {
  absl::StatusOr<Authenticator> keys = Authenticator::FromText("\xEF\xBB\xBFk1 acme reader\r\nk2 acme writer\r\n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_TRUE(keys->Authenticate("k1", std::nullopt, Role::kReader).ok());
  absl::StatusOr<Authenticator> commented = Authenticator::FromText("\xEF\xBB\xBF# key tenant role\nk1 acme reader\n");
  ASSERT_TRUE(commented.ok()) << commented.status();
  EXPECT_TRUE(commented->Authenticate("k1", std::nullopt, Role::kReader).ok());
}

TEST(AuthenticatorTest, DuplicateKeyErrorDoesNotRevealTheKey) {
  absl::StatusOr<Authenticator> auth = Authenticator::FromText("topsecret acme reader\ntopsecret b writer\n");
  ASSERT_FALSE(auth.ok());
  EXPECT_EQ(auth.status().message().find("topsecret"), absl::string_view::npos) << auth.status();
}

TEST(AuthenticatorTest, FileWithoutKeysIsAnError) {
  EXPECT_EQ(Authenticator::FromText("# nothing\n\n").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AuthenticatorTest, FromFileReadsKeysAndReportsMissingFile) {
  const char* tmpdir = getenv("TMPDIR");
  std::string tmp = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") + "/auth_test_XXXXXX";
  ASSERT_NE(mkdtemp(tmp.data()), nullptr);
  std::string path = tmp + "/keys.txt";
  {
    std::ofstream out(path);
    out << "k9 tenant-9 writer\r\n";  // CRLF files work too
  }
  absl::StatusOr<Authenticator> auth = Authenticator::FromFile(path);
  ASSERT_TRUE(auth.ok()) << auth.status();
  absl::StatusOr<CallIdentity> id = auth->Authenticate("k9", std::nullopt, Role::kWriter);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->tenant, "tenant-9");

  absl::StatusOr<Authenticator> missing = Authenticator::FromFile(tmp + "/absent.txt");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("absent.txt"), absl::string_view::npos);
  // A folder where the file should be (a Secret mounted at the wrong path) is refused too, naming it.
  absl::StatusOr<Authenticator> folder = Authenticator::FromFile(tmp);
  EXPECT_FALSE(folder.ok());
  EXPECT_EQ(folder.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(folder.status().message().find("\"" + tmp + "\" is a directory"), absl::string_view::npos)
      << folder.status();
  unlink(path.c_str());
  rmdir(tmp.c_str());
}

// A fresh folder under $TMPDIR (or /tmp) for one test; removed with its files at the end.
class ScopedTempDir {
 public:
  ScopedTempDir() {
    const char* tmpdir = getenv("TMPDIR");
    path_ = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") + "/auth_test_XXXXXX";
    if (mkdtemp(path_.data()) == nullptr) path_.clear();
  }
  ~ScopedTempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(AuthenticatorTest, MissingFileIsNotFoundWithTheSystemsReason) {
  ScopedTempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  absl::Status missing = Authenticator::FromFile(tmp.path() + "/absent.txt").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  EXPECT_NE(missing.message().find("absent.txt"), absl::string_view::npos) << missing;
  EXPECT_NE(missing.message().find(std::strerror(ENOENT)), absl::string_view::npos) << missing;

  // A file where a folder of the path should be: the keys file is not there either.
  std::string file = tmp.path() + "/plain";
  std::ofstream(file) << "k t reader\n";
  absl::Status under_file = Authenticator::FromFile(file + "/api_keys").status();
  EXPECT_EQ(under_file.code(), absl::StatusCode::kNotFound) << under_file;
  EXPECT_NE(under_file.message().find(std::strerror(ENOTDIR)), absl::string_view::npos) << under_file;
}

// Neither missing nor forbidden: the path must be fixed first.
TEST(AuthenticatorTest, SymlinkLoopIsFailedPreconditionWithTheSystemsReason) {
  ScopedTempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  std::string link = tmp.path() + "/loop";
  ASSERT_EQ(symlink(link.c_str(), link.c_str()), 0) << std::strerror(errno);
  absl::Status status = Authenticator::FromFile(link).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find(std::strerror(ELOOP)), absl::string_view::npos) << status;
}

// Tests run as root, who may read anything; the child process drops to "nobody" first, and then
// cannot enter the test's 0700 folder.
TEST(AuthenticatorDeathTest, UnreadableFileIsPermissionDeniedWithTheSystemsReason) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ScopedTempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  std::string path = tmp.path() + "/api_keys";
  std::ofstream(path) << "k t reader\n";
  ASSERT_EQ(chmod(path.c_str(), 0), 0);
  EXPECT_EXIT(
      {
        if (geteuid() == 0 && setuid(65534) != 0) std::_Exit(100);
        absl::Status status = Authenticator::FromFile(path).status();
        std::fprintf(stderr, "%s\n", status.ToString().c_str());
        std::_Exit(static_cast<int>(status.code()));
      },
      testing::ExitedWithCode(static_cast<int>(absl::StatusCode::kPermissionDenied)), std::strerror(EACCES));
}

absl::StatusOr<CallIdentity> AuthenticateWithHeader(const Authenticator& auth, const std::string& name,
                                                    const std::string& value) {
  grpc::ServerContext ctx;
  grpc::testing::ServerContextTestSpouse spouse(&ctx);
  spouse.AddClientMetadata(name, value);
  return AuthenticateCall(auth, ctx, Role::kReader);
}

// The authentication scheme is case-insensitive (RFC 7235 section 2.1): "bearer <key>" is a key.
TEST(AuthenticateCallTest, BearerSchemeIsCaseInsensitive) {
  Authenticator auth = MustParse(kKeys);
  for (const char* value : {"Bearer k-reader-1", "bearer k-reader-1", "BEARER k-reader-1"}) {
    absl::StatusOr<CallIdentity> id = AuthenticateWithHeader(auth, "authorization", value);
    ASSERT_TRUE(id.ok()) << value << ": " << id.status();
    EXPECT_EQ(id->tenant, "acme");
  }
  EXPECT_EQ(AuthenticateWithHeader(auth, "authorization", "Basic k-reader-1").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(AuthenticateWithHeader(auth, "x-api-key", "k-reader-1").ok());
}

TEST(DisabledAuthenticatorTest, DefaultTenantAndAdminRole) {
  Authenticator auth = Authenticator::Disabled();
  EXPECT_FALSE(auth.enabled());
  absl::StatusOr<CallIdentity> id = auth.Authenticate(std::nullopt, std::nullopt, Role::kAdmin);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->tenant, "default");
  EXPECT_EQ(id->role, Role::kAdmin);
}

TEST(DisabledAuthenticatorTest, TenantHeaderChoosesTenant) {
  Authenticator auth = Authenticator::Disabled();
  absl::StatusOr<CallIdentity> id = auth.Authenticate("ignored-key", "shop_2", Role::kWriter);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->tenant, "shop_2");
}

TEST(DisabledAuthenticatorTest, MalformedTenantHeaderIsRejected) {
  Authenticator auth = Authenticator::Disabled();
  for (const char* bad : {"", "Upper", "-lead", "_lead", "has space", "a/b", "x\xff"}) {
    EXPECT_EQ(auth.Authenticate(std::nullopt, bad, Role::kReader).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(auth.Authenticate(std::nullopt, std::string(64, 'a'), Role::kReader).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(auth.Authenticate(std::nullopt, std::string(63, 'a'), Role::kReader).ok());
}

TEST(TenantNameTest, FollowsThePattern) {
  EXPECT_TRUE(IsValidTenantName("a"));
  EXPECT_TRUE(IsValidTenantName("0abc-d_e"));
  EXPECT_FALSE(IsValidTenantName("a.b"));
  EXPECT_FALSE(IsValidTenantName("-a"));
}

TEST(RoleTest, ParsesAndNamesRoles) {
  EXPECT_EQ(*ParseRole("Writer"), Role::kWriter);
  EXPECT_FALSE(ParseRole("root").ok());
  EXPECT_EQ(RoleName(Role::kReader), "reader");
}

}  // namespace
}  // namespace contacts
