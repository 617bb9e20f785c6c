#include "services/contact_store/pinned_string_map.h"

#include <map>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace contacts::store {
namespace {

TEST(PinnedStringMapTest, FindsAddsAndKeepsEveryEntryWhereItWas) {
  PinnedStringMap<int> map;
  map.reserve(3);  // far fewer than will come: blocks beyond the first are added as needed
  std::vector<const PinnedStringMap<int>::Entry*> first_seen;
  std::vector<std::string_view> key_views;
  std::vector<std::string> keys;  // the test's own copies, read without going through the map
  std::map<std::string, int> expected;
  std::mt19937 rng(7);
  for (int i = 0; i < 5000; ++i) {
    // Short keys (kept inside std::string) and long ones (on the heap) alike.
    const std::string key = rng() % 2 ? fmt::format("k{}", rng() % 3000) : fmt::format("a-long-key-{:020d}", i);
    const bool had = map.contains(key);
    EXPECT_EQ(had, expected.contains(key)) << key;
    auto& entry = map[key];
    EXPECT_EQ(entry.first, key);
    if (!had) {
      EXPECT_EQ(entry.second, 0);  // value-initialised
      first_seen.push_back(&entry);
      key_views.push_back(entry.first);
      keys.push_back(key);
    }
    entry.second += 1;
    expected[key] += 1;
  }
  EXPECT_EQ(map.size(), expected.size());
  EXPECT_EQ(first_seen.size(), expected.size());
  // Every entry is where it was first added: what the pointers and views taken then read is still
  // the entry (an entry moved by a later insertion would leave them on freed memory).
  for (size_t i = 0; i < first_seen.size(); ++i) {
    EXPECT_EQ(first_seen[i]->first, keys[i]);
    EXPECT_EQ(key_views[i], keys[i]);
    EXPECT_EQ(key_views[i].data(), first_seen[i]->first.data());
    EXPECT_EQ(first_seen[i]->second, expected.at(keys[i]));
    EXPECT_EQ(map.find(keys[i]), first_seen[i]);
  }
  EXPECT_EQ(map.find("absent"), nullptr);
  EXPECT_FALSE(map.contains("absent"));
  const PinnedStringMap<int>& read_only = map;
  EXPECT_EQ(read_only.find("k1"), map.find("k1"));
}

TEST(PinnedStringMapTest, TryEmplaceSaysWhetherItAddedAndLeavesAnEntryAsItWas) {
  PinnedStringMap<int> map;
  auto [added, was_added] = map.try_emplace("key");
  ASSERT_NE(added, nullptr);
  EXPECT_TRUE(was_added);
  EXPECT_EQ(added->first, "key");
  EXPECT_EQ(added->second, 0);
  added->second = 7;
  auto [again, added_again] = map.try_emplace("key");
  EXPECT_FALSE(added_again);
  EXPECT_EQ(again, added);
  EXPECT_EQ(again->second, 7);  // not value-initialised a second time
  EXPECT_TRUE(map.try_emplace("other").second);
  EXPECT_EQ(map.size(), 2u);
  EXPECT_EQ(&map["key"], added);
}

TEST(PinnedStringMapTest, ReservedRoomTakesTheEntriesWithoutMovingThem) {
  PinnedStringMap<std::string> map;
  map.reserve(2000);
  auto* first = &map["first"];
  first->second = "value";
  const char* first_key = first->first.data();
  for (int i = 0; i < 1999; ++i) map[fmt::format("{}", i)];
  EXPECT_EQ(first->first, "first");  // read through the pointer taken before the insertions
  EXPECT_EQ(first->second, "value");
  EXPECT_EQ(first->first.data(), first_key);
  EXPECT_EQ(map.find("first"), first);
  EXPECT_EQ(map.size(), 2000u);
}

}  // namespace
}  // namespace contacts::store
