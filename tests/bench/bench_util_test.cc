#include "tests/bench/bench_util.h"

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace contacts::bench {
namespace {

// Reads the flags a bench would, then checks the command line the way each bench's Main does.
void ParseLikeABench(std::vector<std::string> args) {
  args.insert(args.begin(), "contacts_bench_x");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  const int argc = static_cast<int>(argv.size());
  IntFlag(argc, argv.data(), "rows", 1000);
  BoolFlag(argc, argv.data(), "skip_pg");
  StringFlag(argc, argv.data(), "store_flags", "");
  ExitOnUnknownFlags(argc, argv.data());
}

TEST(ExitOnUnknownFlagsTest, AcceptsTheFlagsTheBenchAskedFor) {
  ParseLikeABench({"--rows", "5", "--skip_pg", "--store_flags", "--rocksdb_memory_mb=512"});
  ParseLikeABench({"--rows=5", "--skip_pg=true", "--store_flags=--a=1 --b=2"});
  ParseLikeABench({});
}

TEST(ExitOnUnknownFlagsDeathTest, RefusesAFlagNoneAskedFor) {
  EXPECT_EXIT(ParseLikeABench({"--rows", "5", "--skip-pg"}), testing::ExitedWithCode(2),
              "unknown flag \"--skip-pg\"; flags: --rows --skip_pg --store_flags");
  EXPECT_EXIT(ParseLikeABench({"--row=5"}), testing::ExitedWithCode(2), "unknown flag \"--row=5\"");
}

TEST(ExitOnUnknownFlagsDeathTest, RefusesAStrayArgument) {
  EXPECT_EXIT(ParseLikeABench({"--skip_pg", "--rows", "5", "6"}), testing::ExitedWithCode(2),
              "unexpected argument \"6\"");
}

TEST(ExitOnUnknownFlagsDeathTest, HelpExitsWithoutRunning) {
  EXPECT_EXIT(ParseLikeABench({"--rows", "5", "--help"}), testing::ExitedWithCode(0), "");
}

std::optional<std::string> KeyOrderOf(std::vector<std::string> args) {
  args.insert(args.begin(), "contacts_bench_x");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  return ApplyKeyOrderFlag(static_cast<int>(argv.size()), argv.data());
}

TEST(ApplyKeyOrderFlagTest, SetsTheKeyOrder) {
  EXPECT_EQ(KeyOrderOf({"--key_order", "sequential"}), "sequential");
  EXPECT_TRUE(SequentialKeys());
  EXPECT_EQ(CustomerId(7), "C0000000007");
  EXPECT_EQ(KeyOrderOf({}), "scrambled");
  EXPECT_FALSE(SequentialKeys());
  EXPECT_NE(CustomerId(7), "C0000000007");
}

TEST(ApplyKeyOrderFlagTest, RefusesAnotherOrder) { EXPECT_EQ(KeyOrderOf({"--key_order=sorted"}), std::nullopt); }

TEST(MedianTest, MiddleValueOrMeanOfTheTwoMiddleOnes) {
  EXPECT_EQ(Median({3.0, 1.0, 2.0}), 2.0);
  EXPECT_EQ(Median({4.0, 1.0, 3.0, 2.0}), 2.5);
  EXPECT_EQ(Median({5.0}), 5.0);
  EXPECT_EQ(Median({}), -1);
}

}  // namespace
}  // namespace contacts::bench
