#include "services/import_processor/spool_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/import_processor/fake_store.h"

namespace contacts {
using test::ScopedTempDir;
namespace {

using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TEST(SpoolWriterTest, WritesEveryChunkInOrderBeyondTheQueueBound) {
  ScopedTempDir dir;
  const std::string path = dir.path() + "/spool.csv";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  SpoolWriter writer(fd, path);
  std::string expected;
  // 40 chunks of 1 MiB: more than kMaxQueuedBytes, so Write waits for the writer at times.
  for (int i = 0; i < 40; ++i) {
    auto chunk = std::make_shared<std::string>(1 << 20, static_cast<char>('a' + i % 26));
    (*chunk)[0] = static_cast<char>('0' + i % 10);
    expected += *chunk;
    ASSERT_TRUE(writer.Write(chunk).ok());
  }
  ASSERT_TRUE(writer.Finish().ok());
  EXPECT_EQ(ReadFile(path), expected);
}

TEST(SpoolWriterTest, AWriteErrorIsReportedByLaterCallsAndFinish) {
  ScopedTempDir dir;
  const std::string path = dir.path() + "/read-only.csv";
  ::close(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // every write fails
  ASSERT_GE(fd, 0);
  SpoolWriter writer(fd, path);
  absl::Status status = writer.Write(std::make_shared<std::string>("id\n"));
  for (int i = 0; i < 100 && status.ok(); ++i) {
    ::usleep(1000);
    status = writer.Write(std::make_shared<std::string>("k1\n"));
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
  EXPECT_EQ(writer.Finish().code(), absl::StatusCode::kInternal);
}

TEST(SpoolWriterTest, DroppedWithChunksQueuedStopsWithoutWritingThemAll) {
  ScopedTempDir dir;
  const std::string path = dir.path() + "/dropped.csv";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  {
    SpoolWriter writer(fd, path);
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(writer.Write(std::make_shared<std::string>(1 << 20, 'x')).ok());
  }  // joins its thread and closes the file
  EXPECT_LE(ReadFile(path).size(), size_t{8} << 20);
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // closed
}

}  // namespace
}  // namespace contacts
