#include "common/config/flags.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace contacts {
namespace {

// Sets an environment variable for one test and restores the previous state afterwards.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

TEST(FlagSetTest, DefaultsApplyWhenNothingIsGiven) {
  FlagSet flags("prog");
  std::string* name = flags.String("zz_name", "alice", "a name");
  int64_t* count = flags.Int("zz_count", 7, "a count");
  bool* verbose = flags.Bool("zz_verbose", true, "verbose");
  ASSERT_TRUE(flags.ParseArgs({}).ok());
  EXPECT_EQ(*name, "alice");
  EXPECT_EQ(*count, 7);
  EXPECT_TRUE(*verbose);
  EXPECT_NE(flags.Describe().find("zz_count=7 (default)"), std::string::npos) << flags.Describe();
}

TEST(FlagSetTest, EnvOverridesDefault) {
  ScopedEnv env("CONTACTS_ZZ_DATA_DIR", "/srv/data");
  ScopedEnv env_int("CONTACTS_ZZ_COUNT", "42");
  FlagSet flags("prog");
  std::string* dir = flags.String("zz_data_dir", "/var/lib", "dir");
  int64_t* count = flags.Int("zz_count", 7, "count");
  ASSERT_TRUE(flags.ParseArgs({}).ok());
  EXPECT_EQ(*dir, "/srv/data");
  EXPECT_EQ(*count, 42);
  EXPECT_NE(flags.Describe().find("zz_data_dir=/srv/data (env)"), std::string::npos) << flags.Describe();
}

TEST(FlagSetTest, CommandLineWinsOverEnv) {
  ScopedEnv env("CONTACTS_ZZ_DATA_DIR", "/srv/data");
  FlagSet flags("prog");
  std::string* dir = flags.String("zz_data_dir", "/var/lib", "dir");
  ASSERT_TRUE(flags.ParseArgs({"--zz_data_dir=/mnt/x"}).ok());
  EXPECT_EQ(*dir, "/mnt/x");
  EXPECT_NE(flags.Describe().find("zz_data_dir=/mnt/x (flag)"), std::string::npos) << flags.Describe();
}

TEST(FlagSetTest, AcceptsSeparateValueAndBooleanForms) {
  FlagSet flags("prog");
  std::string* listen = flags.String("listen", "127.0.0.1:1", "listen");
  int64_t* count = flags.Int("count", 1, "count");
  bool* a = flags.Bool("a", false, "a");
  bool* b = flags.Bool("b", true, "b");
  bool* c = flags.Bool("c", true, "c");
  ASSERT_TRUE(flags.ParseArgs({"--listen", "0.0.0.0:5", "--count=-3", "--a", "--nob", "--c=false"}).ok());
  EXPECT_EQ(*listen, "0.0.0.0:5");
  EXPECT_EQ(*count, -3);
  EXPECT_TRUE(*a);
  EXPECT_FALSE(*b);
  EXPECT_FALSE(*c);
}

TEST(FlagSetTest, UnknownFlagIsInvalidArgumentNamingIt) {
  FlagSet flags("prog");
  flags.String("listen", "", "listen");
  absl::Status status = flags.ParseArgs({"--lisen=1"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("lisen"), absl::string_view::npos) << status;
}

TEST(FlagSetTest, BadNumberIsInvalidArgumentNamingTheFlag) {
  FlagSet flags("prog");
  flags.Int("grace_period_ms", 1, "grace");
  absl::Status status = flags.ParseArgs({"--grace_period_ms=ten"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("grace_period_ms"), absl::string_view::npos) << status;
}

TEST(FlagSetTest, BadNumberInEnvNamesTheVariable) {
  ScopedEnv env("CONTACTS_ZZ_PORT", "12x");
  FlagSet flags("prog");
  flags.Int("zz_port", 1, "port");
  absl::Status status = flags.ParseArgs({});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("CONTACTS_ZZ_PORT"), absl::string_view::npos) << status;
}

TEST(FlagSetTest, MissingValueIsAnError) {
  FlagSet flags("prog");
  flags.String("listen", "", "listen");
  EXPECT_EQ(flags.ParseArgs({"--listen"}).code(), absl::StatusCode::kInvalidArgument);
}

// A forgotten value must not swallow the next flag: "--data_dir --listen=x" would otherwise set
// data_dir to "--listen=x" and silently leave listen at its default.
TEST(FlagSetTest, SeparateValueThatIsAFlagIsRefusedNamingTheFlag) {
  FlagSet flags("prog");
  std::string* dir = flags.String("data_dir", "./data", "dir");
  std::string* listen = flags.String("listen", "127.0.0.1:1", "listen");
  absl::Status status = flags.ParseArgs({"--data_dir", "--listen=0.0.0.0:1"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("--data_dir needs a value"), absl::string_view::npos) << status;
  EXPECT_NE(status.message().find("--data_dir=<value>"), absl::string_view::npos) << status;
  EXPECT_EQ(*dir, "./data");
  EXPECT_EQ(*listen, "127.0.0.1:1");
  // The single-dash spelling of a known flag, and -h, are flags too.
  EXPECT_EQ(flags.ParseArgs({"--data_dir", "-listen=0.0.0.0:1"}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(flags.ParseArgs({"--data_dir", "-h"}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*dir, "./data");
}

TEST(FlagSetTest, IntFlagFollowedByAFlagSaysTheValueIsMissing) {
  FlagSet flags("prog");
  flags.Int("grace_period_ms", 1, "grace");
  flags.String("listen", "", "listen");
  absl::Status status = flags.ParseArgs({"--grace_period_ms", "--listen=x"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("--grace_period_ms needs a value"), absl::string_view::npos) << status;
}

TEST(FlagSetTest, ValuesStartingWithADashStillWork) {
  FlagSet flags("prog");
  std::string* dir = flags.String("data_dir", "", "dir");
  std::string* name = flags.String("name", "", "name");
  int64_t* count = flags.Int("count", 0, "count");
  ASSERT_TRUE(flags.ParseArgs({"--data_dir=--x", "--count", "-5", "--name", "-"}).ok());
  EXPECT_EQ(*dir, "--x");
  EXPECT_EQ(*count, -5);
  EXPECT_EQ(*name, "-");
  ASSERT_TRUE(flags.ParseArgs({"--name", "-not-a-flag"}).ok());
  EXPECT_EQ(*name, "-not-a-flag");
}

// A boolean takes no separate value, so "--verbose false" leaves "false" as a stray argument: the
// error says how to write it.
TEST(FlagSetTest, SeparateValueAfterABooleanFlagExplainsTheEqualsForm) {
  FlagSet flags("prog");
  flags.Bool("verbose", false, "verbose");
  absl::Status status = flags.ParseArgs({"--verbose", "false"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("--verbose=false"), absl::string_view::npos) << status;
}

TEST(FlagSetTest, PositionalArgumentIsAnError) {
  FlagSet flags("prog");
  EXPECT_EQ(flags.ParseArgs({"stray"}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(FlagSetTest, HelpPrintsUsageAndReturnsHelpStatus) {
  FlagSet flags("prog");
  flags.String("listen", "127.0.0.1:1", "Where to listen.");
  testing::internal::CaptureStdout();
  absl::Status status = flags.ParseArgs({"--help"});
  std::string out = testing::internal::GetCapturedStdout();
  EXPECT_TRUE(IsHelpRequested(status)) << status;
  EXPECT_FALSE(IsHelpRequested(absl::CancelledError("other")));
  EXPECT_NE(out.find("--listen"), std::string::npos) << out;
  EXPECT_NE(out.find("Where to listen."), std::string::npos) << out;
  EXPECT_NE(out.find("CONTACTS_LISTEN"), std::string::npos) << out;
}

TEST(FlagSetTest, ParseFromArgv) {
  FlagSet flags("prog");
  int64_t* n = flags.Int("n", 0, "n");
  std::string a0 = "prog", a1 = "--n=5";
  char* argv[] = {a0.data(), a1.data()};
  ASSERT_TRUE(flags.Parse(2, argv).ok());
  EXPECT_EQ(*n, 5);
}

TEST(CommonFlagsTest, RegistersSharedFlagsWithDefaults) {
  FlagSet flags("prog");
  CommonFlags common = RegisterCommonFlags(flags, "127.0.0.1:50051", "127.0.0.1:9464", "./data");
  ASSERT_TRUE(flags.ParseArgs({"--data_dir=/d"}).ok());
  EXPECT_EQ(*common.listen, "127.0.0.1:50051");
  EXPECT_EQ(*common.metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(*common.data_dir, "/d");
  EXPECT_EQ(*common.log_level, "info");
  EXPECT_EQ(*common.api_keys_file, "");
  EXPECT_EQ(*common.grace_period_ms, 10000);
  EXPECT_EQ(*common.deadline_cap_ms, 300000);
  EXPECT_EQ(*common.max_message_bytes, 64 << 20);
}

// A range is checked by Parse() for every source, so a value out of range is a usage error found
// before the service opens or binds anything; its ends are accepted.
TEST(FlagSetTest, IntOutsideItsRangeIsRefusedNamingTheFlagAndTheRange) {
  FlagSet flags("prog");
  int64_t* workers = flags.Int("workers", 2, "workers", {.min = 1, .max = 64});
  int64_t* ttl = flags.Int("ttl", 0, "ttl", {.min = 0});
  int64_t* limit = flags.Int("limit", 0, "limit", {.max = 10});
  ASSERT_TRUE(flags.ParseArgs({"--workers=1", "--ttl=0", "--limit=-99"}).ok());
  ASSERT_TRUE(flags.ParseArgs({"--workers=64", "--limit=10"}).ok());
  EXPECT_EQ(*workers, 64);
  EXPECT_EQ(*ttl, 0);
  EXPECT_EQ(*limit, 10);

  absl::Status status = flags.ParseArgs({"--workers=0"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "--workers must be 1 to 64, got 0");
  EXPECT_EQ(flags.ParseArgs({"--workers", "65"}).message(), "--workers must be 1 to 64, got 65");
  EXPECT_EQ(flags.ParseArgs({"--ttl=-1"}).message(), "--ttl must be 0 or more, got -1");
  EXPECT_EQ(flags.ParseArgs({"--limit=11"}).message(), "--limit must be 10 or less, got 11");
  EXPECT_EQ(*workers, 64);
}

TEST(FlagSetTest, IntOutsideItsRangeInEnvNamesTheVariableAndTheFlag) {
  ScopedEnv env("CONTACTS_ZZ_WORKERS", "99");
  FlagSet flags("prog");
  flags.Int("zz_workers", 2, "workers", {.min = 1, .max = 64});
  absl::Status status = flags.ParseArgs({});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "environment variable CONTACTS_ZZ_WORKERS: --zz_workers must be 1 to 64, got 99");
}

TEST(FlagSetTest, UsageShowsTheRange) {
  FlagSet flags("prog");
  flags.Int("workers", 2, "Jobs at once.", {.min = 1, .max = 64});
  flags.Int("any", 2, "Anything.");
  const std::string usage = flags.Usage();
  EXPECT_NE(usage.find("Jobs at once. Range: 1 to 64. Default: \"2\"."), std::string::npos) << usage;
  EXPECT_NE(usage.find("Anything. Default: \"2\"."), std::string::npos) << usage;
}

TEST(FlagSetDeathTest, DefaultOutsideItsRangeIsAProgrammingError) {
  EXPECT_DEATH(
      {
        FlagSet flags("prog");
        flags.Int("workers", 0, "workers", {.min = 1, .max = 64});
      },
      "outside its range");
}

// An integer's or boolean's bad value names the flag once (the variable and the flag from the
// environment).
TEST(FlagSetTest, BadValueMessagesNameTheFlagOnce) {
  FlagSet flags("prog");
  flags.Int("count", 1, "count");
  flags.Bool("verbose", false, "verbose");
  EXPECT_EQ(flags.ParseArgs({"--count=ten"}).message(), "flag --count: \"ten\" is not an integer");
  EXPECT_EQ(flags.ParseArgs({"--verbose=maybe"}).message(),
            "flag --verbose: \"maybe\" is not a boolean (use true or false)");
  ScopedEnv env("CONTACTS_VERBOSE", "maybe");
  EXPECT_EQ(flags.ParseArgs({}).message(),
            "environment variable CONTACTS_VERBOSE: \"maybe\" is not a boolean (flag --verbose; use true or false)");
}

// The rule FlagSet and contactsctl share: "--" always starts a flag; one dash only when the parser
// says the name after it is one of its flags.
TEST(LooksLikeFlagTest, DoubleDashAlwaysSingleDashOnlyForNamesTheParserTakes) {
  EXPECT_TRUE(LooksLikeFlag("--wait"));
  EXPECT_TRUE(LooksLikeFlag("--listen=x"));
  EXPECT_TRUE(LooksLikeFlag("--"));
  EXPECT_FALSE(LooksLikeFlag("-wait"));  // no single-dash flags: a value
  EXPECT_FALSE(LooksLikeFlag("-"));
  EXPECT_FALSE(LooksLikeFlag("value"));
  EXPECT_FALSE(LooksLikeFlag(""));
  std::vector<std::string> asked;
  auto is_listen = [&](std::string_view name) {
    asked.emplace_back(name);
    return name == "listen";
  };
  EXPECT_TRUE(LooksLikeFlag("-listen", is_listen));
  EXPECT_TRUE(LooksLikeFlag("-listen=0.0.0.0:1", is_listen));
  EXPECT_FALSE(LooksLikeFlag("-5", is_listen));
  EXPECT_FALSE(LooksLikeFlag("-", is_listen));
  EXPECT_TRUE(LooksLikeFlag("--anything", is_listen));
  EXPECT_EQ(asked, (std::vector<std::string>{"listen", "listen", "5"}));
}

TEST(CommonFlagsTest, DurationsAndMessageSizeHaveRanges) {
  FlagSet flags("prog");
  RegisterCommonFlags(flags, "127.0.0.1:50051", "127.0.0.1:9464", "./data");
  EXPECT_TRUE(flags.ParseArgs({"--grace_period_ms=0", "--deadline_cap_ms=1", "--max_message_bytes=2147483647"}).ok());
  EXPECT_EQ(flags.ParseArgs({"--grace_period_ms=-1"}).message(), "--grace_period_ms must be 0 or more, got -1");
  EXPECT_EQ(flags.ParseArgs({"--deadline_cap_ms=0"}).message(), "--deadline_cap_ms must be 1 or more, got 0");
  EXPECT_EQ(flags.ParseArgs({"--max_message_bytes=0"}).message(), "--max_message_bytes must be 1 to 2147483647, got 0");
  EXPECT_EQ(flags.ParseArgs({"--max_message_bytes=2147483648"}).message(),
            "--max_message_bytes must be 1 to 2147483647, got 2147483648");
}

TEST(CommonFlagsTest, EnvNameIsPrefixedAndCapitalised) { EXPECT_EQ(FlagSet::EnvName("data_dir"), "CONTACTS_DATA_DIR"); }

}  // namespace
}  // namespace contacts
