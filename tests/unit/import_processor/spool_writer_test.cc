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
namespace {

using test::ScopedTempDir;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::unique_ptr<SpoolWriter> StartOn(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0600);
  EXPECT_GE(fd, 0) << path;
  absl::StatusOr<std::unique_ptr<SpoolWriter>> writer = SpoolWriter::Start(fd, path);
  EXPECT_TRUE(writer.ok()) << writer.status();
  return writer.ok() ? *std::move(writer) : nullptr;
}

TEST(SpoolWriterTest, WritesEveryChunkInOrderBeyondTheQueueBound) {
  ScopedTempDir dir;
  const std::string path = dir.path() + "/spool.csv";
  std::unique_ptr<SpoolWriter> writer = StartOn(path, O_WRONLY | O_CREAT | O_TRUNC);
  ASSERT_NE(writer, nullptr);
  std::string expected;
  // 40 chunks of 1 MiB: more than kMaxQueuedBytes, so Write waits for the writer at times.
  for (int i = 0; i < 40; ++i) {
    auto chunk = std::make_shared<std::string>(1 << 20, static_cast<char>('a' + i % 26));
    (*chunk)[0] = static_cast<char>('0' + i % 10);
    expected += *chunk;
    ASSERT_TRUE(writer->Write(chunk).ok());
  }
  EXPECT_EQ(writer->sha256(), "");  // not before Finish
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(ReadFile(path), expected);
  Sha256 whole;
  whole.Update(expected);
  EXPECT_EQ(writer->sha256(), whole.FinishHex());
  EXPECT_EQ(writer->Finish().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(writer->Write(std::make_shared<std::string>("late")).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(SpoolWriterTest, AWriteErrorIsReportedByFinishAndLaterWrites) {
  ScopedTempDir dir;
  const std::string path = dir.path() + "/read-only.csv";
  ::close(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  std::unique_ptr<SpoolWriter> writer = StartOn(path, O_RDONLY);  // every write fails
  ASSERT_NE(writer, nullptr);
  writer->Write(std::make_shared<std::string>("id\n")).IgnoreError();  // may be queued before it fails
  const absl::Status finished = writer->Finish();                      // waits for the queue
  EXPECT_EQ(finished.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(finished.message()), HasSubstr(path));
  EXPECT_EQ(writer->Write(std::make_shared<std::string>("k1\n")), finished);
}

TEST(SpoolWriterTest, DroppedWithChunksQueuedJoinsItsThreadAndClosesTheFile) {
  ScopedTempDir dir;
  const std::string path = dir.path() + "/dropped.csv";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  {
    absl::StatusOr<std::unique_ptr<SpoolWriter>> writer = SpoolWriter::Start(fd, path);
    ASSERT_TRUE(writer.ok());
    for (int i = 0; i < 8; ++i) ASSERT_TRUE((*writer)->Write(std::make_shared<std::string>(1 << 20, 'x')).ok());
  }                                     // returns: the thread stops after the chunk it holds and drops the rest
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // closed
  EXPECT_EQ(ReadFile(path).size() % (1 << 20), 0u);  // whole chunks only, never half of one
}

}  // namespace
}  // namespace contacts
