#include "services/contact_store/chunked_column.h"

#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "absl/numeric/int128.h"

namespace contacts::store {
namespace {

using Column = ChunkedColumn<int64_t>;

TEST(ChunkedColumnTest, StartsEmptyAndGrowsToWhatIsAsked) {
  Column column;
  EXPECT_EQ(column.size(), 0u);
  column.EnsureSize(1);
  EXPECT_EQ(column.size(), Column::kFirstSize);
  column.EnsureSize(Column::kFirstSize + 1);
  EXPECT_EQ(column.size(), 2 * Column::kFirstSize);
  column.EnsureSize(Column::kChunkSize - 1);
  EXPECT_EQ(column.size(), Column::kChunkSize);
  column.EnsureSize(Column::kChunkSize + 1);
  EXPECT_EQ(column.size(), 2 * Column::kChunkSize);
  column.EnsureSize(5 * Column::kChunkSize);
  EXPECT_EQ(column.size(), 5 * Column::kChunkSize);
  column.EnsureSize(3);  // never shrinks
  EXPECT_EQ(column.size(), 5 * Column::kChunkSize);
}

TEST(ChunkedColumnTest, AJumpPastTheFirstChunkFillsItFirst) {
  Column column;
  column.EnsureSize(10);
  column[9] = 9;
  column.EnsureSize(3 * Column::kChunkSize + 7);
  EXPECT_EQ(column.size(), 4 * Column::kChunkSize);
  EXPECT_EQ(column[9], 9);
  EXPECT_EQ(column[Column::kChunkSize - 1], 0);
  column[Column::kChunkSize - 1] = -1;
  column[Column::kChunkSize] = -2;
  EXPECT_EQ(column[Column::kChunkSize - 1], -1);
  EXPECT_EQ(column[Column::kChunkSize], -2);
  EXPECT_GE(column.MemoryBytes(), 4 * Column::kChunkSize * sizeof(int64_t));
}

// Against a std::vector grown the same way: every value set stays, every value not set reads 0,
// across the first chunk's doublings and the chunks after it.
template <typename T>
void MatchesAVector(uint64_t seed) {
  ChunkedColumn<T> column;
  std::vector<T> reference;
  std::mt19937_64 random(seed);
  size_t highest = 0;
  for (int step = 0; step < 100000; ++step) {
    // Mostly the next ordinals, as contacts arrive; sometimes a jump ahead (up to two chunks, ~50
    // times in all) or a rewrite behind.
    size_t ordinal = highest;
    const uint64_t draw = random() % 2000;
    if (draw == 0) ordinal = highest + random() % (2 * ChunkedColumn<T>::kChunkSize);
    if (draw >= 1800 && highest > 0) ordinal = random() % highest;
    highest = std::max(highest, ordinal + 1);
    column.EnsureSize(ordinal + 1);
    if (reference.size() <= ordinal) reference.resize(ordinal + 1);
    const T value = static_cast<T>(random());
    column[ordinal] = value;
    reference[ordinal] = value;
  }
  ASSERT_GE(column.size(), reference.size());
  for (size_t i = 0; i < reference.size(); ++i) ASSERT_EQ(column[i], reference[i]) << "ordinal " << i;
  for (size_t i = reference.size(); i < column.size(); ++i) ASSERT_EQ(column[i], T{}) << "ordinal " << i;
}

TEST(ChunkedColumnTest, MatchesAVectorForEachValueWidth) {
  MatchesAVector<int64_t>(1);
  MatchesAVector<uint32_t>(2);
  MatchesAVector<absl::int128>(3);
}

}  // namespace
}  // namespace contacts::store
