#include "services/contact_store/write_ops.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace contacts::store {
namespace {

WriteOp Op(uint32_t family, std::string key, std::string value = "") {
  return WriteOp{nullptr, family, std::move(key), std::move(value), false};
}

std::vector<std::string> Describe(const std::vector<WriteOp>& ops) {
  std::vector<std::string> out;
  for (const WriteOp& op : ops) out.push_back(std::to_string(op.cf_id) + ":" + op.key + "=" + op.value);
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
  SortWriteOps(&ops);
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
    SortWriteOps(&ops);
    ASSERT_EQ(Describe(ops), Describe(expected)) << "round " << round;
  }
}

TEST(WriteOpsTest, RepeatedKeysAreFoundOnlyWithinAFamily) {
  std::vector<WriteOp> ops = {Op(1, "a"), Op(2, "a"), Op(1, "b")};
  SortWriteOps(&ops);
  EXPECT_FALSE(HasRepeatedKey(ops));
  ops.push_back(Op(2, "a", "again"));
  SortWriteOps(&ops);
  EXPECT_TRUE(HasRepeatedKey(ops));
  EXPECT_EQ(Describe(ops), (std::vector<std::string>{"1:a=", "1:b=", "2:a=", "2:a=again"}));
}

TEST(WriteOpsTest, EmptyBatchStaysEmpty) {
  std::vector<WriteOp> ops;
  SortWriteOps(&ops);
  EXPECT_TRUE(ops.empty());
  EXPECT_FALSE(HasRepeatedKey(ops));
}

}  // namespace
}  // namespace contacts::store
