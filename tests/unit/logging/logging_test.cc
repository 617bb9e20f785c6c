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

// A log line must stay valid UTF-8: the whole first character is kept, never half of it.
TEST(RedactEmailTest, KeepsTheWholeFirstCharacterOfANonAsciiLocalPart) {
  EXPECT_EQ(RedactEmail("\xC3\xA9lodie@example.fr"), "\xC3\xA9***@example.fr");                // é, 2 bytes
  EXPECT_EQ(RedactEmail("\xE7\x8E\x8B.wei@example.cn"), "\xE7\x8E\x8B***@example.cn");         // 王, 3 bytes
  EXPECT_EQ(RedactEmail("\xF0\x9F\x98\x80x@example.com"), "\xF0\x9F\x98\x80***@example.com");  // 4 bytes
}

TEST(RedactEmailTest, KeepsNoFirstCharacterWhenItIsNotValidUtf8) {
  EXPECT_EQ(RedactEmail("\xFFjohn@example.com"), "***@example.com");
  EXPECT_EQ(RedactEmail("\xC3@example.com"), "***@example.com");           // truncated sequence
  EXPECT_EQ(RedactEmail("\xC0\xAFjohn@example.com"), "***@example.com");   // overlong '/'
  EXPECT_EQ(RedactEmail("\xED\xA0\x80x@example.com"), "***@example.com");  // surrogate
}

TEST(RedactMobileTest, KeepsCountryCodeAndLastFourDigitsOfAnE164Number) {
  EXPECT_EQ(RedactMobile("+919876543210"), "+91******3210");
  EXPECT_EQ(RedactMobile("+1 (555) 123-4567"), "+15*****4567");
}

// Without '+' there is no country code to show, and a short number must stay mostly hidden.
TEST(RedactMobileTest, OtherNumbersShowAtMostTheLastTwoDigits) {
  EXPECT_EQ(RedactMobile("9876543210"), "********10");
  EXPECT_EQ(RedactMobile("5551234"), "*****34");
  EXPECT_EQ(RedactMobile("+12345678"), "+******78");  // too short for E.164 with a country code
}

TEST(RedactMobileTest, ShortNumbersAreFullyMasked) {
  EXPECT_EQ(RedactMobile("+12345"), "+*****");
  EXPECT_EQ(RedactMobile("123456"), "******");
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
