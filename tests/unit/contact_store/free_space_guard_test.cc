#include "services/contact_store/free_space_guard.h"

#include <chrono>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace contacts::store {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1 << 20;

TEST(FreeSpaceGuardTest, RefusesWritesBelowTheReserveSayingWhereAndHowMuch) {
  uint64_t free = 300 * kMiB;
  int looks = 0;
  FreeSpaceGuard guard(
      "/data/db", 256 * kMiB,
      [&](const std::string& path) -> absl::StatusOr<uint64_t> {
        EXPECT_EQ(path, "/data/db");
        ++looks;
        return free;
      },
      std::chrono::milliseconds(0));
  EXPECT_TRUE(guard.CheckWrite().ok());
  free = 100 * kMiB + kMiB / 2;
  absl::Status refused = guard.CheckWrite();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(), HasSubstr("100.5 MiB free on the volume of /data/db, below the 256 MiB"));
  EXPECT_THAT(refused.message(), HasSubstr("--min_free_disk_mb"));
  free = 256 * kMiB;  // space freed: writes go again
  EXPECT_TRUE(guard.CheckWrite().ok());
  EXPECT_EQ(looks, 3);
}

TEST(FreeSpaceGuardTest, LooksAtTheVolumeAtMostOncePerInterval) {
  uint64_t free = 10 * kMiB;
  int looks = 0;
  FreeSpaceGuard guard(
      "/d", 5 * kMiB,
      [&](const std::string&) -> absl::StatusOr<uint64_t> {
        ++looks;
        return free;
      },
      std::chrono::milliseconds(50));
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(guard.CheckWrite().ok());
  EXPECT_EQ(looks, 1);
  free = kMiB;
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(guard.CheckWrite().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(looks, 2);
}

TEST(FreeSpaceGuardTest, AReserveOfZeroOrAnUnreadableVolumeRefusesNothing) {
  int looks = 0;
  FreeSpaceGuard off("/d", 0, [&](const std::string&) -> absl::StatusOr<uint64_t> {
    ++looks;
    return 0;
  });
  EXPECT_TRUE(off.CheckWrite().ok());
  EXPECT_EQ(looks, 0);
  FreeSpaceGuard unknown("/d", kMiB, [](const std::string&) -> absl::StatusOr<uint64_t> {
    return absl::InternalError("statvfs: no such file");
  });
  EXPECT_TRUE(unknown.CheckWrite().ok());
}

TEST(FreeSpaceGuardTest, StatvfsReadsTheRealVolume) {
  absl::StatusOr<uint64_t> free = FreeSpaceGuard::StatvfsFreeBytes("/");
  ASSERT_TRUE(free.ok()) << free.status();
  EXPECT_GT(*free, 0u);
  EXPECT_FALSE(FreeSpaceGuard::StatvfsFreeBytes("/no/such/dir/here").ok());
}

}  // namespace
}  // namespace contacts::store
