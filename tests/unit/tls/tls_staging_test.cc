#include "common/tls/tls_staging.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "absl/strings/match.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/service_process.h"

namespace contacts {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

mode_t Mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

time_t Mtime(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mtime;
}

absl::Status Accept(const std::string&) { return absl::OkStatus(); }

class TlsStagingFolderTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(dir_.ok()); }

  // A staging folder under the test's own folder.
  std::unique_ptr<TlsStagingFolder> Folder() {
    absl::StatusOr<std::unique_ptr<TlsStagingFolder>> folder = TlsStagingFolder::Create({dir_.path()});
    EXPECT_TRUE(folder.ok()) << folder.status();
    return folder.ok() ? *std::move(folder) : nullptr;
  }

  test::TempDir dir_{"tls_staging"};
};

TEST_F(TlsStagingFolderTest, FolderIsPrivateAndInTheFirstParentThatAllowsIt) {
  const std::string missing = dir_.path() + "/missing";
  absl::StatusOr<std::unique_ptr<TlsStagingFolder>> folder = TlsStagingFolder::Create({missing, dir_.path()});
  ASSERT_TRUE(folder.ok()) << folder.status();
  const std::string path = (*folder)->path();
  EXPECT_EQ(std::filesystem::path(path).parent_path(), dir_.path());
  EXPECT_TRUE(
      absl::StartsWith(std::filesystem::path(path).filename().string(), fmt::format("contacts-tls-{}-", ::getpid())))
      << path;
  EXPECT_EQ(Mode(path), 0700u);
}

TEST_F(TlsStagingFolderTest, NoFolderIsAStartFailureNamingEveryParentTried) {
  const std::string first = dir_.path() + "/missing";
  const std::string second = dir_.path() + "/a-file";
  std::ofstream(second) << "not a folder";
  absl::StatusOr<std::unique_ptr<TlsStagingFolder>> folder = TlsStagingFolder::Create({first, second});
  ASSERT_FALSE(folder.ok());
  EXPECT_EQ(folder.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(folder.status().message()),
              HasSubstr(fmt::format("cannot create the private folder for the TLS files gRPC reads: in \"{}\": No such "
                                    "file or directory; in \"{}\": Not a directory",
                                    first, second)));
}

TEST_F(TlsStagingFolderTest, DefaultParentsAreDevShmWhenWritableThenTmpdirThenTmp) {
  const char* previous = std::getenv("TMPDIR");
  const std::string saved = previous == nullptr ? "" : previous;
  ::setenv("TMPDIR", dir_.path().c_str(), 1);
  const std::vector<std::string> parents = TlsStagingFolder::DefaultParents();
  if (previous == nullptr) {
    ::unsetenv("TMPDIR");
  } else {
    ::setenv("TMPDIR", saved.c_str(), 1);
  }
  if (::access("/dev/shm", W_OK | X_OK) == 0) {
    EXPECT_THAT(parents, ElementsAre("/dev/shm", dir_.path(), "/tmp"));
  } else {
    EXPECT_THAT(parents, ElementsAre(dir_.path(), "/tmp"));
  }
}

TEST_F(TlsStagingFolderTest, GenerationsSwapAsAWholeBehindCurrent) {
  std::unique_ptr<TlsStagingFolder> folder = Folder();
  ASSERT_NE(folder, nullptr);
  EXPECT_EQ(folder->CurrentPath("tls_key_file"), folder->path() + "/current/tls_key_file");
  ASSERT_TRUE(folder->Stage({{"tls_cert_file", "cert 1"}, {"tls_key_file", "key 1"}}, Accept).ok());
  EXPECT_EQ(folder->generation(), 1);
  EXPECT_EQ(std::filesystem::read_symlink(folder->path() + "/current"), "gen-1");
  EXPECT_EQ(ReadFile(folder->CurrentPath("tls_cert_file")), "cert 1");
  EXPECT_EQ(ReadFile(folder->CurrentPath("tls_key_file")), "key 1");
  EXPECT_EQ(Mode(folder->path() + "/gen-1/tls_key_file"), 0600u);
  EXPECT_EQ(Mode(folder->path() + "/gen-1"), 0700u);
  const time_t first_mtime = Mtime(folder->CurrentPath("tls_key_file"));
  EXPECT_EQ(Mtime(folder->CurrentPath("tls_cert_file")), first_mtime) << "one mtime per generation";

  // Staged at once, within the same second: gRPC notices the swap only by the files' mtimes.
  ASSERT_TRUE(folder->Stage({{"tls_cert_file", "cert 2"}, {"tls_key_file", "key 2"}}, Accept).ok());
  EXPECT_EQ(folder->generation(), 2);
  EXPECT_EQ(std::filesystem::read_symlink(folder->path() + "/current"), "gen-2");
  EXPECT_EQ(ReadFile(folder->CurrentPath("tls_cert_file")), "cert 2");
  EXPECT_EQ(ReadFile(folder->CurrentPath("tls_key_file")), "key 2");
  EXPECT_GT(Mtime(folder->CurrentPath("tls_key_file")), first_mtime);
  EXPECT_EQ(Mtime(folder->CurrentPath("tls_cert_file")), Mtime(folder->CurrentPath("tls_key_file")));
  EXPECT_FALSE(std::filesystem::exists(folder->path() + "/gen-1")) << "older generations are removed";
  EXPECT_FALSE(std::filesystem::exists(folder->path() + "/current.new"));
}

TEST_F(TlsStagingFolderTest, NothingIsStagedWhenVerifyRefusesTheNewGeneration) {
  std::unique_ptr<TlsStagingFolder> folder = Folder();
  ASSERT_NE(folder, nullptr);
  ASSERT_TRUE(folder->Stage({{"tls_key_file", "good key"}}, Accept).ok());
  std::string verified_dir;
  absl::Status staged = folder->Stage({{"tls_key_file", "bad key"}}, [&](const std::string& dir) {
    verified_dir = dir;
    EXPECT_EQ(ReadFile(dir + "/tls_key_file"), "bad key") << "verify sees the new generation's files";
    return absl::InvalidArgumentError("--tls_key_file: not a key");
  });
  EXPECT_EQ(staged, absl::InvalidArgumentError("--tls_key_file: not a key"));
  EXPECT_EQ(verified_dir, folder->path() + "/gen-2");
  EXPECT_FALSE(std::filesystem::exists(verified_dir)) << "the refused generation is removed";
  EXPECT_EQ(folder->generation(), 1);
  EXPECT_EQ(ReadFile(folder->CurrentPath("tls_key_file")), "good key");

  // A generation that cannot be written (its name taken by a file) stages nothing either.
  std::ofstream(folder->path() + "/gen-2") << "in the way";
  staged = folder->Stage({{"tls_key_file", "new key"}}, Accept);
  EXPECT_EQ(staged.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(staged.message()), HasSubstr("gen-2\": File exists"));
  EXPECT_EQ(ReadFile(folder->CurrentPath("tls_key_file")), "good key");
  EXPECT_TRUE(std::filesystem::is_regular_file(folder->path() + "/gen-2")) << "what was in the way is left alone";
}

TEST_F(TlsStagingFolderTest, FolderIsRemovedWithTheObject) {
  std::unique_ptr<TlsStagingFolder> folder = Folder();
  ASSERT_NE(folder, nullptr);
  ASSERT_TRUE(folder->Stage({{"tls_key_file", "key"}}, Accept).ok());
  const std::string path = folder->path();
  ASSERT_TRUE(std::filesystem::exists(path + "/current/tls_key_file"));
  folder.reset();
  EXPECT_FALSE(std::filesystem::exists(path));
}

// A killed service cannot remove its folder: the next one made in the same place removes it.
TEST_F(TlsStagingFolderTest, FoldersOfProcessesThatEndedAreRemoved) {
  const pid_t ended = ::fork();
  ASSERT_GE(ended, 0);
  if (ended == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(ended, nullptr, 0), ended);
  const std::string of_ended = fmt::format("{}/contacts-tls-{}-AbC123", dir_.path(), ended);
  const std::string of_this_before = fmt::format("{}/contacts-tls-{}-Old123", dir_.path(), ::getpid());
  const std::string of_running = dir_.path() + "/contacts-tls-1-Run123";  // init never ends
  const std::string unrelated = dir_.path() + "/contacts-tls-notes";
  for (const std::string& path : {of_ended, of_this_before, of_running, unrelated}) {
    std::filesystem::create_directories(path + "/gen-1");
  }
  std::unique_ptr<TlsStagingFolder> live = Folder();
  ASSERT_NE(live, nullptr);
  EXPECT_FALSE(std::filesystem::exists(of_ended));
  EXPECT_FALSE(std::filesystem::exists(of_this_before)) << "a container's pid 1 left it before a restart";
  EXPECT_TRUE(std::filesystem::exists(of_running));
  EXPECT_TRUE(std::filesystem::exists(unrelated));

  std::unique_ptr<TlsStagingFolder> another = Folder();
  ASSERT_NE(another, nullptr);
  EXPECT_TRUE(std::filesystem::exists(live->path())) << "this process's live folders are not stale";
}

// Containers that share /dev/shm (or a /tmp volume) run in PID namespaces of their own, so a live
// folder's pid may be one that has ended here, or this process's own (each container's pid 1).
// The owner lock decides: a folder whose lock is held stays, whatever its name says, and goes once
// it is released.
TEST_F(TlsStagingFolderTest, AFolderWhoseOwnerLockIsHeldStaysWhateverItsPid) {
  const pid_t ended = ::fork();
  ASSERT_GE(ended, 0);
  if (ended == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(ended, nullptr, 0), ended);
  std::vector<std::string> others;
  std::vector<int> locks;  // the "other containers'" holds
  for (int pid : {static_cast<int>(ended), static_cast<int>(::getpid())}) {
    const std::string path = fmt::format("{}/contacts-tls-{}-Oth{:03d}", dir_.path(), pid, others.size());
    std::filesystem::create_directories(path + "/gen-1");
    const int fd = ::open((path + "/owner.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
    others.push_back(path);
    locks.push_back(fd);
  }
  std::unique_ptr<TlsStagingFolder> mine = Folder();
  ASSERT_NE(mine, nullptr);
  EXPECT_TRUE(std::filesystem::exists(mine->path() + "/owner.lock"));
  for (const std::string& path : others) EXPECT_TRUE(std::filesystem::exists(path)) << path;

  for (int fd : locks) ::close(fd);  // those processes end
  std::unique_ptr<TlsStagingFolder> next = Folder();
  ASSERT_NE(next, nullptr);
  for (const std::string& path : others) EXPECT_FALSE(std::filesystem::exists(path)) << path;
  EXPECT_TRUE(std::filesystem::exists(mine->path())) << "held by this process";
}

}  // namespace
}  // namespace contacts
