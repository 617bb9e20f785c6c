#include "common/logging/logging.h"

#include "gtest/gtest.h"
#include "spdlog/spdlog.h"

namespace contacts {
namespace {

TEST(RedactEmailTest, KeepsFirstLetterAndDomain) {
  EXPECT_EQ(RedactEmail("john.doe@example.com"), "j***@example.com");
  EXPECT_EQ(RedactEmail("a@b.co"), "a***@b.co");
}

TEST(RedactEmailTest, NeverReturnsTheLocalPart) {
  std::string redacted = RedactEmail("secretname@example.com");
  EXPECT_EQ(redacted.find("secretname"), std::string::npos);
  EXPECT_EQ(RedactEmail("no-at-sign"), "***");
  EXPECT_EQ(RedactEmail("@example.com"), "***");
  EXPECT_EQ(RedactEmail(""), "***");
}

TEST(RedactMobileTest, KeepsCountryCodeAndLastFourDigits) {
  EXPECT_EQ(RedactMobile("+919876543210"), "+91******3210");
  EXPECT_EQ(RedactMobile("9876543210"), "98****3210");
}

TEST(RedactMobileTest, ShortNumbersAreFullyMasked) {
  EXPECT_EQ(RedactMobile("+12345"), "+*****");
  EXPECT_EQ(RedactMobile(""), "");
}

TEST(InitLoggingTest, SetsLevelAndServiceName) {
  ASSERT_TRUE(InitLogging("debug", "unit-service").ok());
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::debug);
  EXPECT_EQ(spdlog::default_logger()->name(), "unit-service");
  ASSERT_TRUE(InitLogging("WARN", "unit-service").ok());
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::warn);
}

TEST(InitLoggingTest, UnknownLevelIsInvalidArgumentAndFallsBackToInfo) {
  absl::Status status = InitLogging("loud", "unit-service");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("loud"), absl::string_view::npos);
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::info);
}

}  // namespace
}  // namespace contacts
