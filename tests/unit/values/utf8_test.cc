#include "common/values/utf8.h"

#include <string>
#include <utility>

#include <gtest/gtest.h>

namespace contacts {
namespace {

using namespace std::string_literals;

TEST(Utf8Test, AcceptsWellFormedText) {
  for (const std::string& s : {
           ""s, "plain ascii long enough for the word-at-a-time path"s,
           "caf\xC3\xA9"s,               // 2-byte
           "\xE0\xA4\xA8\xE0\xA4\xAE"s,  // Devanagari, 3-byte
           "\xE2\x82\xAC 100"s,          // euro sign
           "\xF0\x9F\x98\x80"s,          // emoji, 4-byte
           "\xF4\x8F\xBF\xBF"s,          // U+10FFFF
           "\xED\x9F\xBF"s,              // U+D7FF, just below the surrogates
           "\xEE\x80\x80"s,              // U+E000, just above
           "\xC2\x80"s,                  // U+0080, smallest 2-byte
           "\xE0\xA0\x80"s,              // U+0800, smallest 3-byte
           "\xF0\x90\x80\x80"s,          // U+10000, smallest 4-byte
           "a\0b"s,                      // NUL is valid UTF-8
           "12345678\xC3\xA9"s
           "12345678"s,  // multibyte right after a fast-path word
       }) {
    EXPECT_TRUE(IsValidUtf8(s)) << testing::PrintToString(s);
  }
}

TEST(Utf8Test, RejectsMalformedText) {
  for (const std::string& s : {
           "\x80"s,              // lone continuation byte
           "abc\xBF"s,           // continuation byte after ASCII
           "\xC3"s,              // truncated 2-byte
           "caf\xC3"s,           // truncated at the end
           "\xE2\x82"s,          // truncated 3-byte
           "\xF0\x9F\x98"s,      // truncated 4-byte
           "\xC3\x28"s,          // bad continuation
           "\xC0\xAF"s,          // overlong '/'
           "\xC1\xBF"s,          // overlong
           "\xE0\x80\xAF"s,      // overlong 3-byte
           "\xE0\x9F\xBF"s,      // overlong 3-byte, top of the range
           "\xF0\x8F\xBF\xBF"s,  // overlong 4-byte
           "\xED\xA0\x80"s,      // U+D800, surrogate
           "\xED\xBF\xBF"s,      // U+DFFF, surrogate
           "\xF4\x90\x80\x80"s,  // U+110000
           "\xF5\x80\x80\x80"s,  // lead byte above F4
           "\xFF"s,
           "\xFE"s,
           "\xE2\x28\xA1"s,      // bad second byte of 3
           "\xE2\x82\x28"s,      // bad third byte of 3
           "\xF0\x9F\x98\x28"s,  // bad fourth byte of 4
           "12345678\xC3"s,      // truncated after a fast-path word
           "1234567\xE2\x82\xAC\xE2\x82"s,
       }) {
    EXPECT_FALSE(IsValidUtf8(s)) << testing::PrintToString(s);
  }
}

TEST(Utf8Test, AgreesWithABruteForceDecoderOnEveryTwoByteString) {
  // Reference: decode per the Unicode definition and compare for all 65536 two-byte inputs.
  auto reference = [](unsigned char a, unsigned char b) {
    if (a < 0x80) return b < 0x80;  // ASCII first: valid only if b is ASCII too
    if (a >= 0xC2 && a <= 0xDF) return (b & 0xC0) == 0x80;
    return false;  // lead bytes of 3/4-byte sequences are truncated; others invalid
  };
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string s{static_cast<char>(a), static_cast<char>(b)};
      ASSERT_EQ(IsValidUtf8(s), reference(static_cast<unsigned char>(a), static_cast<unsigned char>(b)))
          << a << " " << b;
    }
  }
}

TEST(Utf8Test, FindsWholeNonAsciiWhiteSpaceCharacters) {
  const std::pair<std::string, char32_t> spaces[] = {
      {"\xC2\x85"s, 0x85},       {"\xC2\xA0"s, 0xA0},       {"\xE1\x9A\x80"s, 0x1680}, {"\xE2\x80\x80"s, 0x2000},
      {"\xE2\x80\x87"s, 0x2007}, {"\xE2\x80\x8A"s, 0x200A}, {"\xE2\x80\x8B"s, 0x200B}, {"\xE2\x80\xA8"s, 0x2028},
      {"\xE2\x80\xA9"s, 0x2029}, {"\xE2\x80\xAF"s, 0x202F}, {"\xE2\x81\x9F"s, 0x205F}, {"\xE2\x81\xA0"s, 0x2060},
      {"\xE3\x80\x80"s, 0x3000}, {"\xEF\xBB\xBF"s, 0xFEFF},
  };
  for (const auto& [bytes, code_point] : spaces) {
    const std::string text = "a" + bytes + "b";
    const NonAsciiWhiteSpace at = NonAsciiWhiteSpaceAt(text, 1);
    EXPECT_EQ(at.code_point, code_point) << testing::PrintToString(bytes);
    EXPECT_EQ(at.size, bytes.size()) << testing::PrintToString(bytes);
    const NonAsciiWhiteSpace before = NonAsciiWhiteSpaceBefore(text, 1 + bytes.size());
    EXPECT_EQ(before.code_point, code_point) << testing::PrintToString(bytes);
    EXPECT_EQ(before.size, bytes.size()) << testing::PrintToString(bytes);
    EXPECT_EQ(at.BreaksLine(), code_point == 0x85 || code_point == 0x2028 || code_point == 0x2029);
  }
}

TEST(Utf8Test, FindsNoWhiteSpaceInPartsOfCharactersOrOtherCharacters) {
  for (const std::string& s : {
           "\xC2"s, "\xA0"s, "\xE2\x80"s, "\x80\xAF"s, "\xEF\xBB"s,  // cut short
           "\xC0\xA0"s,                                              // overlong ' '
           "\xC2\xA9"s, "\xC3\xA0"s, "\xE2\x80\x8C"s, "\xE2\x80\x8D"s, "\xE2\x80\x8E"s, "\xE2\x80\x90"s,
           "\xE2\x80\xB0"s, "\xEF\xB8\x8F"s, "\xE3\x80\x81"s, "\xE1\xA0\x8E"s,  // U+180E is no longer White_Space
           "\xE2\x28\xA0"s,                                                     // bad second byte
       }) {
    EXPECT_EQ(NonAsciiWhiteSpaceAt(s, 0).size, 0u) << testing::PrintToString(s);
    EXPECT_EQ(NonAsciiWhiteSpaceBefore(s, s.size()).size, 0u) << testing::PrintToString(s);
  }
  // The character before the end is the last one, not one that ends a byte earlier.
  EXPECT_EQ(NonAsciiWhiteSpaceBefore("\xC2\xA0T"s, 3).size, 0u);
  EXPECT_EQ(NonAsciiWhiteSpaceBefore("\xC2\xA0T"s, 2).size, 2u);
  EXPECT_EQ(NonAsciiWhiteSpaceBefore("\xE2\xC2\xA0"s, 3).size, 2u);
  EXPECT_EQ(NonAsciiWhiteSpaceAt("\xC2\xC2\xA0"s, 0).size, 0u);
  EXPECT_EQ(NonAsciiWhiteSpaceAt("\xC2\xC2\xA0"s, 1).size, 2u);
  EXPECT_EQ(NonAsciiWhiteSpaceBefore(""s, 0).size, 0u);
}

}  // namespace
}  // namespace contacts
