#include "tests/bench/bench_util.h"

#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/tls/tls_files.h"
#include "tests/testing/service_process.h"

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

// --tls: the throwaway certificates are what the services' start-up checks accept (a server pair,
// a client pair, the CA that signed both), and the flags point at them.
TEST(MakeBenchTlsTest, MakesACaAndTheServerAndClientPairsItSigned) {
  test::TempDir dir("bench_tls");
  ASSERT_TRUE(dir.ok());
  absl::StatusOr<BenchTls> tls = MakeBenchTls(dir.path());
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_TRUE(CheckCaFile("ca", tls->ca_file).ok());
  EXPECT_TRUE(CheckKeyPair("server cert", tls->server_cert_file, "server key", tls->server_key_file).ok());
  EXPECT_TRUE(CheckKeyPair("client cert", tls->client_cert_file, "client key", tls->client_key_file).ok());
  std::string output;
  EXPECT_EQ(test::RunShell(fmt::format("openssl verify -CAfile '{}' '{}' '{}' 2>&1", tls->ca_file,
                                       tls->server_cert_file, tls->client_cert_file),
                           &output),
            0)
      << output;
  EXPECT_THAT(tls->ServerFlags(), testing::Contains("--tls_client_ca_file=" + tls->ca_file));
  EXPECT_THAT(tls->StoreClientFlags(), testing::Contains("--store_tls_ca_file=" + tls->ca_file));
}

TEST(ResultTableTest, NamesTheColumnOfItsOwnFigures) {
  ResultTable table("contact-store over mutual TLS", "plaintext", "TLS");
  table.Add(ResultLine{.metric = "GetContact p50", .ours = "120 us", .postgres = "100 us"});
  testing::internal::CaptureStdout();
  table.Print();
  const std::string printed = testing::internal::GetCapturedStdout();
  EXPECT_THAT(printed, testing::HasSubstr("| TLS "));
  EXPECT_THAT(printed, testing::HasSubstr("| plaintext "));
  EXPECT_THAT(printed, testing::Not(testing::HasSubstr("contacts")));
}

}  // namespace
}  // namespace contacts::bench
