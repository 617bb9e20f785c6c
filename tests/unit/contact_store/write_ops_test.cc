#include "services/contact_store/write_ops.h"

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace contacts::store {
namespace {

// The ops' bytes, for the whole test program (ops are views).
WriteOpBytes& TestBytes() {
  static WriteOpBytes* bytes = new WriteOpBytes();
  return *bytes;
}

WriteOp Op(uint32_t family, std::string_view key, std::string_view value = "") {
  return WriteOp{nullptr, family, TestBytes().Copy(key), TestBytes().Copy(value), false};
}

std::vector<std::string> Describe(const std::vector<WriteOp>& ops) {
  std::vector<std::string> out;
  for (const WriteOp& op : ops) {
    out.push_back(std::to_string(op.cf_id) + ":" + std::string(op.key) + "=" + std::string(op.value));
  }
  return out;
}

// What SortWriteOps must produce: a stable sort by family, then key.
std::vector<WriteOp> Expected(std::vector<WriteOp> ops) {
  std::stable_sort(ops.begin(), ops.end(), [](const WriteOp& a, const WriteOp& b) {
    if (a.cf_id != b.cf_id) return a.cf_id < b.cf_id;
    return a.key < b.key;
  });
  return ops;
}

TEST(WriteOpsTest, SortsByFamilyThenKeyBytewise) {
  // Keys share a 4-byte tenant prefix, some are prefixes of others, some hold zero and high bytes:
  // the 8-byte prefix compare must agree with the full compare in every case.
  const std::string tenant("\x00\x00\x00\x07", 4);
  std::vector<WriteOp> ops = {
      Op(1, tenant + "C0000000123"),
      Op(4, tenant + "b"),
      Op(1, tenant + "C000000012"),
      Op(1, tenant + std::string("C0000000\0", 9)),
      Op(1, tenant + "C0000000"),
      Op(1, tenant + "\xff\xfe"),
      Op(6, "applied"),
      Op(1, tenant + "C0000000123456789"),
      Op(1, tenant + "C0000000123456788"),
      Op(4, tenant + "a"),
      Op(1, tenant + std::string("\x00", 1)),
      Op(1, tenant),
  };
  std::vector<WriteOp> expected = Expected(ops);
  EXPECT_FALSE(SortWriteOps(&ops));
  EXPECT_EQ(Describe(ops), Describe(expected));
}

TEST(WriteOpsTest, MatchesAStableSortOnRandomBatches) {
  std::mt19937 random(7);
  for (int round = 0; round < 50; ++round) {
    std::vector<WriteOp> ops;
    const int size = std::uniform_int_distribution<int>(1, 400)(random);
    for (int i = 0; i < size; ++i) {
      const uint32_t family = std::uniform_int_distribution<uint32_t>(1, 3)(random);
      std::string key = "TTTT";  // a shared prefix, as a tenant's
      const int length = std::uniform_int_distribution<int>(0, 12)(random);
      for (int c = 0; c < length; ++c) key += static_cast<char>(std::uniform_int_distribution<int>(0, 3)(random) * 85);
      ops.push_back(Op(family, key, std::to_string(i)));  // the value tells equal keys apart
    }
    std::vector<WriteOp> expected = Expected(ops);
    const bool expected_repeat =
        std::adjacent_find(expected.begin(), expected.end(), [](const WriteOp& a, const WriteOp& b) {
          return a.cf_id == b.cf_id && a.key == b.key;
        }) != expected.end();
    EXPECT_EQ(SortWriteOps(&ops), expected_repeat) << "round " << round;
    ASSERT_EQ(Describe(ops), Describe(expected)) << "round " << round;
  }
}

TEST(WriteOpsTest, RepeatedKeysAreFoundOnlyWithinAFamily) {
  std::vector<WriteOp> ops = {Op(1, "a"), Op(2, "a"), Op(1, "b")};
  EXPECT_FALSE(SortWriteOps(&ops));
  ops.push_back(Op(2, "a", "again"));
  EXPECT_TRUE(SortWriteOps(&ops));
  EXPECT_EQ(Describe(ops), (std::vector<std::string>{"1:a=", "1:b=", "2:a=", "2:a=again"}));
}

TEST(WriteOpsTest, RepeatedKeysAreFoundInAFamilyAlreadyInOrder) {
  // A family staged in key order (a batch's new ordinals) skips the sort: its repeats must still
  // show, whether the equal keys share the tenant's prefix and the next 8 bytes or not.
  const std::string same_prefix = "TTTTC0000000";
  std::vector<WriteOp> in_order = {Op(1, "a"), Op(1, "b"), Op(1, "c")};
  EXPECT_FALSE(SortWriteOps(&in_order));
  std::vector<WriteOp> repeated = {Op(1, "a"), Op(1, "b"), Op(1, "b", "again"), Op(1, "c")};
  EXPECT_TRUE(SortWriteOps(&repeated));
  std::vector<WriteOp> long_keys = {Op(1, same_prefix + "9"), Op(1, same_prefix + "1"), Op(1, same_prefix + "5"),
                                    Op(1, same_prefix + "1", "again")};
  EXPECT_TRUE(SortWriteOps(&long_keys));
  EXPECT_EQ(Describe(long_keys), (std::vector<std::string>{"1:" + same_prefix + "1=", "1:" + same_prefix + "1=again",
                                                           "1:" + same_prefix + "5=", "1:" + same_prefix + "9="}));
}

TEST(WriteOpBytesTest, ViewsKeepTheirBytesAcrossBlocksAndAdoption) {
  // Enough bytes for several blocks, values of every size up to two blocks (own blocks above a
  // quarter of one), some built in the scratch string: each view must still read what it was given.
  std::mt19937 random(11);
  std::vector<std::string> expected;
  std::vector<std::string_view> views;
  WriteOpBytes bytes;
  {
    WriteOpBytes helper;  // as a helper thread's, adopted and then gone
    for (int i = 0; i < 3000; ++i) {
      const size_t size = i % 100 == 0 ? std::uniform_int_distribution<size_t>(0, 2 << 20)(random)
                                       : std::uniform_int_distribution<size_t>(0, 2000)(random);
      std::string value(size, '\0');
      for (char& c : value) c = static_cast<char>(random());
      WriteOpBytes& target = i % 2 == 0 ? bytes : helper;
      views.push_back(i % 3 == 0 ? target.Build([&](std::string* out) { *out += value; }) : target.Copy(value));
      expected.push_back(std::move(value));
    }
    bytes.Adopt(std::move(helper));
  }
  // Memory the helper's blocks would have gone back to, had they not been adopted, written over.
  std::vector<std::unique_ptr<char[]>> reuse;
  for (int i = 0; i < 64; ++i) {
    reuse.emplace_back(new char[1 << 20]);
    std::fill(reuse.back().get(), reuse.back().get() + (1 << 20), '\x5a');
  }
  for (size_t i = 0; i < views.size(); ++i) ASSERT_EQ(views[i], expected[i]) << "value " << i;
  char* room = bytes.Allocate(16);
  std::fill(room, room + 16, 'x');
  for (size_t i = 0; i < views.size(); ++i) ASSERT_EQ(views[i], expected[i]) << "value " << i;
}

TEST(WriteOpsTest, EmptyBatchStaysEmpty) {
  std::vector<WriteOp> ops;
  EXPECT_FALSE(SortWriteOps(&ops));
  EXPECT_TRUE(ops.empty());
}

}  // namespace
}  // namespace contacts::store
