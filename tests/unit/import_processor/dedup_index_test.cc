#include "services/import_processor/dedup_index.h"

#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace contacts {
namespace {

TEST(LastOccurrenceIndexTest, LaterRowWins) {
  LastOccurrenceIndex index;
  index.Record("a", 1);
  index.Record("b", 2);
  index.Record("a", 3);
  index.Finish();
  EXPECT_FALSE(index.IsLast(1));
  EXPECT_TRUE(index.IsLast(3));
  EXPECT_TRUE(index.IsLast(2));
  EXPECT_EQ(index.size(), 2u);
  EXPECT_EQ(index.superseded_rows(), 1u);
}

TEST(LastOccurrenceIndexTest, EveryEarlierRowOfAKeyIsSuperseded) {
  LastOccurrenceIndex index;
  for (uint64_t row = 10; row < 20; ++row) index.Record(row % 2 == 0 ? "even" : "odd", row);
  index.Record("once", 25);
  index.Finish();
  for (uint64_t row = 10; row < 18; ++row) EXPECT_FALSE(index.IsLast(row)) << row;
  EXPECT_TRUE(index.IsLast(18));
  EXPECT_TRUE(index.IsLast(19));
  EXPECT_TRUE(index.IsLast(25));
  EXPECT_EQ(index.size(), 3u);
  EXPECT_EQ(index.superseded_rows(), 8u);
}

TEST(LastOccurrenceIndexTest, AppendedHalfIsReadAsIfRecordedInOrder) {
  // The first half of a file recorded here, the second by another reader: a key in both halves
  // keeps its row from the second.
  LastOccurrenceIndex first;
  first.Record("a", 1);
  first.Record("b", 2);
  LastOccurrenceIndex second;
  second.Record("a", 3);
  second.Record("c", 4);
  second.Record("c", 5);
  first.Append(std::move(second));
  first.Finish();
  EXPECT_FALSE(first.IsLast(1));
  EXPECT_TRUE(first.IsLast(2));
  EXPECT_TRUE(first.IsLast(3));
  EXPECT_FALSE(first.IsLast(4));
  EXPECT_TRUE(first.IsLast(5));
  EXPECT_EQ(first.size(), 3u);
  EXPECT_EQ(first.superseded_rows(), 2u);
  // Into an empty index: the other's records as they are.
  LastOccurrenceIndex empty;
  LastOccurrenceIndex only;
  only.Record("x", 7);
  only.Record("x", 8);
  empty.Append(std::move(only));
  empty.Finish();
  EXPECT_FALSE(empty.IsLast(7));
  EXPECT_TRUE(empty.IsLast(8));
}

TEST(LastOccurrenceIndexTest, RowsNeverRecordedCountAsLast) {
  LastOccurrenceIndex empty;
  empty.Finish();
  EXPECT_TRUE(empty.IsLast(9));
  EXPECT_EQ(empty.size(), 0u);

  LastOccurrenceIndex index;
  index.Record("a", 1);
  index.Record("a", 5);
  index.Finish();
  EXPECT_TRUE(index.IsLast(3));  // a row whose key did not validate in the first pass
}

TEST(LastOccurrenceIndexTest, KeysSharingTheFirstHashStayApart) {
  LastOccurrenceIndex index;
  // Two different keys sharing the first 64-bit hash.
  const LastOccurrenceIndex::KeyFingerprint x{42, 1};
  const LastOccurrenceIndex::KeyFingerprint y{42, 2};
  index.RecordFingerprint(x, 1);
  index.RecordFingerprint(y, 2);
  index.RecordFingerprint(y, 5);
  index.RecordFingerprint(x, 7);
  index.Finish();
  EXPECT_TRUE(index.IsLast(7));
  EXPECT_FALSE(index.IsLast(1));
  EXPECT_TRUE(index.IsLast(5));
  EXPECT_FALSE(index.IsLast(2));
  EXPECT_EQ(index.size(), 2u);
}

TEST(LastOccurrenceIndexTest, FingerprintsOfManyKeysAreDistinct) {
  LastOccurrenceIndex index;
  for (uint64_t i = 0; i < 100000; ++i) index.Record("key" + std::to_string(i), i);
  index.Record("key77", 100000);
  index.Finish();
  EXPECT_EQ(index.size(), 100000u);
  EXPECT_EQ(index.superseded_rows(), 1u);
  EXPECT_FALSE(index.IsLast(77));
  for (uint64_t i = 0; i <= 100000; i += 997) {
    if (i != 77) {
      EXPECT_TRUE(index.IsLast(i)) << i;
    }
  }
}

TEST(LastOccurrenceIndexTest, AgreesWithAMapOfLastRowsOnManyRepeatedKeys) {
  // 200,000 rows over 150,000 keys, repeats anywhere in the file: Finish only sorts the records
  // whose bit in its filter was set before, so every repeat must be among those.
  std::mt19937_64 random(7);
  std::map<std::string, uint64_t> last_row;
  LastOccurrenceIndex index;
  for (uint64_t row = 0; row < 200000; ++row) {
    const std::string key = "k" + std::to_string(random() % 150000);
    index.Record(key, row);
    last_row[key] = row;
  }
  index.Finish();
  std::vector<bool> is_last(200000, false);
  for (const auto& [key, row] : last_row) is_last[row] = true;
  size_t wrong = 0;
  for (uint64_t row = 0; row < 200000; ++row) wrong += index.IsLast(row) != is_last[row];
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(index.size(), last_row.size());
  EXPECT_EQ(index.superseded_rows(), 200000 - last_row.size());
}

}  // namespace
}  // namespace contacts
