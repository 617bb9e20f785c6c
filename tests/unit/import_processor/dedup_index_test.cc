#include "services/import_processor/dedup_index.h"

#include <string>

#include <gtest/gtest.h>

namespace contacts {
namespace {

TEST(LastOccurrenceIndexTest, LaterRowWins) {
  LastOccurrenceIndex index;
  index.Record("a", 1);
  index.Record("b", 2);
  index.Record("a", 3);
  EXPECT_FALSE(index.IsLast("a", 1));
  EXPECT_TRUE(index.IsLast("a", 3));
  EXPECT_TRUE(index.IsLast("b", 2));
  EXPECT_EQ(index.size(), 2u);
}

TEST(LastOccurrenceIndexTest, UnknownKeyCountsAsLast) {
  LastOccurrenceIndex index;
  EXPECT_TRUE(index.IsLast("never", 9));
}

TEST(LastOccurrenceIndexTest, FirstHashCollisionIsResolvedExactly) {
  LastOccurrenceIndex index;
  // Two different keys sharing the first 64-bit hash.
  const std::pair<uint64_t, uint64_t> x{42, 1};
  const std::pair<uint64_t, uint64_t> y{42, 2};
  index.RecordFingerprint(x, 1);
  index.RecordFingerprint(y, 2);
  index.RecordFingerprint(y, 5);
  index.RecordFingerprint(x, 7);
  EXPECT_TRUE(index.IsLastFingerprint(x, 7));
  EXPECT_FALSE(index.IsLastFingerprint(x, 1));
  EXPECT_TRUE(index.IsLastFingerprint(y, 5));
  EXPECT_FALSE(index.IsLastFingerprint(y, 2));
  EXPECT_EQ(index.size(), 2u);
}

TEST(LastOccurrenceIndexTest, FingerprintsOfManyKeysAreDistinct) {
  LastOccurrenceIndex index;
  for (uint64_t i = 0; i < 100000; ++i) index.Record("key" + std::to_string(i), i);
  EXPECT_EQ(index.size(), 100000u);
  for (uint64_t i = 0; i < 100000; i += 997) EXPECT_TRUE(index.IsLast("key" + std::to_string(i), i));
}

}  // namespace
}  // namespace contacts
