#include "services/contact_store/staggered_hash_map.h"

#include <map>
#include <random>

#include <gtest/gtest.h>

namespace contacts::store {
namespace {

TEST(StaggeredHashMapTest, BehavesAsAMap) {
  StaggeredHashMap<uint32_t> map;
  std::map<uint64_t, uint32_t> reference;
  std::mt19937_64 random(3);
  std::vector<uint64_t> keys(3000);
  for (uint64_t& key : keys) key = random();
  for (int step = 0; step < 100000; ++step) {
    const uint64_t key = keys[random() % keys.size()];
    switch (random() % 4) {
      case 0: {
        auto [value, inserted] = map.TryEmplace(key, step);
        auto [it, ref_inserted] = reference.try_emplace(key, step);
        ASSERT_EQ(inserted, ref_inserted);
        ASSERT_EQ(*value, it->second);
        break;
      }
      case 1:
        ++map[key];
        ++reference[key];
        break;
      case 2:
        map.Erase(key);
        reference.erase(key);
        break;
      default: {
        const uint32_t* value = map.Find(key);
        auto it = reference.find(key);
        ASSERT_EQ(value != nullptr, it != reference.end());
        ASSERT_EQ(map.Contains(key), it != reference.end());
        if (value != nullptr) {
          ASSERT_EQ(*value, it->second);
        }
      }
    }
  }
  EXPECT_EQ(map.size(), reference.size());
}

TEST(StaggeredHashMapTest, ShardsTakeGrowingSharesOfTheTopBits) {
  using Map = StaggeredHashMap<uint32_t>;
  std::vector<int> share(Map::kShards);
  int previous = 0;
  for (uint32_t top = 0; top < (1u << Map::kTopBits); ++top) {
    const int shard = Map::ShardOfTopBits(top);
    ASSERT_GE(shard, previous);  // runs of values, in shard order
    previous = shard;
    ++share[shard];
  }
  for (size_t s = 1; s < share.size(); ++s) {
    EXPECT_GE(share[s], share[s - 1]) << s;
    EXPECT_GT(share[s - 1], 0) << s;
  }
  EXPECT_GT(share.back(), share.front() * 3 / 2);  // ~2^(15/16) times as many
}

// The point of the shards: no growth of the table moves more than a small part of its entries
// (one flat_hash_map moves all of them each time it doubles), and the growths come at different
// sizes (shards of equal shares would all grow within a batch or two of each other).
TEST(StaggeredHashMapTest, GrowthsRehashAFewEntriesEachAtSizesSpreadApart) {
  StaggeredHashMap<uint32_t> map;
  std::mt19937_64 random(5);
  size_t capacity = map.capacity();
  size_t largest_growth = 0;
  std::vector<size_t> growth_sizes;
  for (uint32_t i = 0; i < 1000000; ++i) {
    map.TryEmplace(random(), i);
    if (map.capacity() != capacity) {
      if (map.size() > 100000) {
        largest_growth = std::max(largest_growth, map.capacity() - capacity);
        growth_sizes.push_back(map.size());
      }
      capacity = map.capacity();
    }
  }
  EXPECT_EQ(map.size(), 1000000u);
  // A shard's share of the capacity doubles when it grows: at most ~1/10 of the total here.
  EXPECT_LT(largest_growth, capacity / 8) << capacity;
  // About kShards growths per doubling of the entries, ~4.4% of the size apart.
  EXPECT_GE(growth_sizes.size(), 2u * StaggeredHashMap<uint32_t>::kShards);
  for (size_t i = 0; i < growth_sizes.size(); ++i) {
    size_t within_2_percent = 0;
    for (size_t j = i; j < growth_sizes.size() && growth_sizes[j] < growth_sizes[i] * 1.02; ++j) ++within_2_percent;
    EXPECT_LE(within_2_percent, 2u) << "at " << growth_sizes[i];
  }
}

}  // namespace
}  // namespace contacts::store
