#include "common/values/text_case.h"

#include <gtest/gtest.h>

namespace contacts {
namespace {

TEST(TextCaseTest, AsciiLowerFoldsOnlyAsciiLetters) {
  EXPECT_EQ(AsciiLower("Hello WORLD 123 @[`{"), "hello world 123 @[`{");
  EXPECT_EQ(AsciiLower(""), "");
  // UTF-8 bytes (here "É" = C3 89) are left exactly as they are.
  EXPECT_EQ(AsciiLower("\xC3\x89T\xC3\xA9"), "\xC3\x89t\xC3\xA9");
  std::string s = "MiXeD";
  AsciiLowerInPlace(s);
  EXPECT_EQ(s, "mixed");
}

TEST(TextCaseTest, EqualsIgnoreCase) {
  EXPECT_TRUE(EqualsIgnoreCase("Email", "eMAIL"));
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
  EXPECT_FALSE(EqualsIgnoreCase("email", "emails"));
  EXPECT_FALSE(EqualsIgnoreCase("@", "`"));  // 0x40 vs 0x60 differ only in the case bit
  EXPECT_FALSE(EqualsIgnoreCase("[", "{"));
}

TEST(TextCaseTest, ContainsIgnoreCase) {
  EXPECT_TRUE(ContainsIgnoreCase("John Smith", "SMITH"));
  EXPECT_TRUE(ContainsIgnoreCase("John Smith", "n s"));
  EXPECT_TRUE(ContainsIgnoreCase("John Smith", ""));
  EXPECT_TRUE(ContainsIgnoreCase("", ""));
  EXPECT_TRUE(ContainsIgnoreCase("aaab", "AAB"));  // needs a restart after a partial match
  EXPECT_TRUE(ContainsIgnoreCase("abc", "ABC"));
  EXPECT_FALSE(ContainsIgnoreCase("John Smith", "smyth"));
  EXPECT_FALSE(ContainsIgnoreCase("ab", "abc"));
  EXPECT_FALSE(ContainsIgnoreCase("", "a"));
  EXPECT_FALSE(ContainsIgnoreCase("smit", "smith"));
}

TEST(TextCaseTest, StartsAndEndsWithIgnoreCase) {
  EXPECT_TRUE(StartsWithIgnoreCase("Mumbai", "MUM"));
  EXPECT_TRUE(StartsWithIgnoreCase("Mumbai", ""));
  EXPECT_TRUE(StartsWithIgnoreCase("Mumbai", "mumbai"));
  EXPECT_FALSE(StartsWithIgnoreCase("Mumbai", "umb"));
  EXPECT_FALSE(StartsWithIgnoreCase("Mu", "Mum"));
  EXPECT_TRUE(EndsWithIgnoreCase("bob@Example.COM", "@example.com"));
  EXPECT_FALSE(EndsWithIgnoreCase("bob@example.co", "example.com"));
}

}  // namespace
}  // namespace contacts
