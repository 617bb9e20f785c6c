#include "common/csv/utf8_stream.h"

#include <algorithm>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace contacts {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Msg(const absl::Status& status) { return std::string(status.message()); }

absl::Status Validate(std::string_view input, const std::vector<size_t>& cuts = {}) {
  Utf8StreamValidator validator;
  size_t start = 0;
  std::vector<size_t> all = cuts;
  all.push_back(input.size());
  for (size_t cut : all) {
    absl::Status status = validator.Feed(input.substr(start, cut - start));
    if (!status.ok()) return status;
    start = cut;
  }
  return validator.Finish();
}

const std::string kMultilingual =
    "name,city,note\n"
    "Zoë,Malmö,café crème\n"
    "राम,पुणे,नमस्ते\n"
    "王芳,北京,你好\n"
    "Иван,Москва,привет\n"
    "emoji,🎉,👍🏽 \xF4\x8F\xBF\xBF\n"  // U+10FFFF is the highest valid code point
    "ascii only line that is long enough for the eight byte fast path\n";

TEST(Utf8StreamValidatorTest, AcceptsMultilingualTextSplitAtEveryByte) {
  EXPECT_TRUE(Validate(kMultilingual).ok());
  for (size_t cut = 0; cut <= kMultilingual.size(); ++cut) {
    EXPECT_TRUE(Validate(kMultilingual, {cut}).ok()) << cut;
  }
  Utf8StreamValidator one_byte;
  for (char c : kMultilingual) ASSERT_TRUE(one_byte.Feed(std::string_view(&c, 1)).ok());
  EXPECT_TRUE(one_byte.Finish().ok());
  EXPECT_EQ(one_byte.line_number(), 8u);
  EXPECT_EQ(one_byte.bytes_seen(), kMultilingual.size());
}

TEST(Utf8StreamValidatorTest, CountsLinesOnTheAsciiFastPath) {
  Utf8StreamValidator validator;
  std::string text;
  for (int i = 0; i < 100; ++i) text += "line\n\n";
  ASSERT_TRUE(validator.Feed(text).ok());
  EXPECT_EQ(validator.line_number(), 201u);
}

// Words of eight bytes with every number of newlines (0 to 8) at every position, fed whole and
// at an odd offset: the fast path's count must match a byte-by-byte count.
TEST(Utf8StreamValidatorTest, CountsEveryNewlinePatternOfAWord) {
  std::string text;
  for (int mask = 0; mask < 256; ++mask) {
    for (int bit = 0; bit < 8; ++bit) text += (mask >> bit & 1) ? '\n' : 'a';
  }
  const uint64_t newlines = static_cast<uint64_t>(std::count(text.begin(), text.end(), '\n'));
  ASSERT_EQ(newlines, 256u * 4);
  for (size_t shift : {0, 3}) {
    Utf8StreamValidator validator;
    ASSERT_TRUE(validator.Feed(std::string(shift, 'x') + text).ok());
    EXPECT_EQ(validator.line_number(), newlines + 1) << shift;
  }
}

TEST(Utf8StreamValidatorTest, CatchesLatin1WithExactByteAndLine) {
  const std::string input = "email,city\na@x.com,Pune\nb@x.com,caf\xE9 au lait\n";
  absl::Status status = Validate(input);
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(status), StartsWith("invalid UTF-8 at byte 35 (line 3)"));
  EXPECT_THAT(Msg(status), HasSubstr("0xE9"));
  // Same answer wherever the input is cut.
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    EXPECT_THAT(Msg(Validate(input, {cut})), StartsWith("invalid UTF-8 at byte 35 (line 3)")) << cut;
  }
}

// The CSV reader ends a line at LF, CRLF or a lone CR (old Mac exports): the line in the message
// must be the one it reports, also when a CRLF is split between two chunks.
TEST(Utf8StreamValidatorTest, CountsCrAndCrLfLineEndsLikeTheCsvReader) {
  for (const std::string eol : {"\r", "\r\n", "\n"}) {
    const std::string input = "email,city" + eol + "a@x.com,Pune" + eol + "b@x.com,caf\xE9 au lait" + eol;
    const std::string expected = "invalid UTF-8 at byte " + std::to_string(input.find('\xE9')) + " (line 3)";
    EXPECT_THAT(Msg(Validate(input)), StartsWith(expected)) << eol.size();
    for (size_t cut = 0; cut <= input.size(); ++cut) {
      EXPECT_THAT(Msg(Validate(input, {cut})), StartsWith(expected)) << eol.size() << " " << cut;
    }
  }
}

// Words of eight bytes with every mix of 'a', CR and LF, fed whole at two offsets and byte by
// byte: the fast path's count must match a plain count of line ends.
TEST(Utf8StreamValidatorTest, CountsEveryCrLfPatternOfAWord) {
  std::string text;
  for (int pattern = 0; pattern < 6561; ++pattern) {  // 3^8
    for (int i = 0, rest = pattern; i < 8; ++i, rest /= 3) text += "a\r\n"[rest % 3];
  }
  uint64_t line_ends = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    line_ends += text[i] == '\r' || (text[i] == '\n' && (i == 0 || text[i - 1] != '\r'));
  }
  for (size_t shift : {0, 3}) {
    Utf8StreamValidator validator;
    ASSERT_TRUE(validator.Feed(std::string(shift, 'x') + text).ok());
    EXPECT_EQ(validator.line_number(), line_ends + 1) << shift;
  }
  Utf8StreamValidator one_byte;
  for (char c : text) ASSERT_TRUE(one_byte.Feed(std::string_view(&c, 1)).ok());
  EXPECT_EQ(one_byte.line_number(), line_ends + 1);
  // Chunks of 13 bytes: the words of the fast path start anywhere in the text.
  Utf8StreamValidator chunked;
  for (size_t i = 0; i < text.size(); i += 13) ASSERT_TRUE(chunked.Feed(std::string_view(text).substr(i, 13)).ok());
  EXPECT_EQ(chunked.line_number(), line_ends + 1);
}

TEST(Utf8StreamValidatorTest, ReportsTheOffsetFarIntoAStream) {
  std::string input;
  for (int i = 0; i < 1000; ++i) input += "0123456789abcdef\n";  // 17 bytes a line
  input += "ok \xC3\xA9 then \xFF";
  const size_t bad = input.size() - 1;
  Utf8StreamValidator validator;
  absl::Status status = validator.Feed(input.substr(0, 5000));
  ASSERT_TRUE(status.ok());
  status = validator.Feed(input.substr(5000));
  EXPECT_THAT(Msg(status), StartsWith("invalid UTF-8 at byte " + std::to_string(bad) + " (line 1001)"));
  EXPECT_TRUE(validator.failed());
  EXPECT_EQ(validator.error_offset(), bad);
  EXPECT_EQ(validator.error_line(), 1001u);
  // Sticky.
  EXPECT_EQ(validator.Feed("fine").message(), status.message());
  EXPECT_EQ(validator.Finish().message(), status.message());
}

struct BadCase {
  const char* name;
  std::string input;
  size_t offset;
};

TEST(Utf8StreamValidatorTest, RejectsIllFormedSequences) {
  const std::vector<BadCase> cases = {
      {"overlong 2-byte C0", "ab\xC0\x80", 2},
      {"overlong 2-byte C1", "\xC1\xBF", 0},
      {"overlong 3-byte", "x\xE0\x80\xAF", 1},
      {"overlong 4-byte", "\xF0\x8F\xBF\xBF", 0},
      {"surrogate D800", "abc\xED\xA0\x80", 3},
      {"surrogate DFFF", "\xED\xBF\xBF", 0},
      {"above U+10FFFF", "\xF4\x90\x80\x80", 0},
      {"F5 lead", "\xF5\x80\x80\x80", 0},
      {"FF byte", "a\xFF", 1},
      {"stray continuation", "abcdefghij\x80", 10},
      {"lead then ASCII", "\xC3(", 0},
      {"3-byte cut by ASCII", "12\xE2\x82z", 2},
      {"4-byte cut by new lead", "\xF0\x9F\x98\xC3\xA9", 0},
      {"truncated at end", "ok\xE2\x82", 2},
      {"truncated 4-byte at end", "\xF0\x9F\x98", 0},
  };
  for (const BadCase& c : cases) {
    for (size_t cut = 0; cut <= c.input.size(); ++cut) {
      absl::Status status = Validate(c.input, {cut});
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.name;
      EXPECT_THAT(Msg(status), StartsWith("invalid UTF-8 at byte " + std::to_string(c.offset) + " (line 1)"))
          << c.name << " cut " << cut;
    }
  }
}

TEST(Utf8StreamValidatorTest, TruncatedSequenceIsOnlyReportedAtFinish) {
  Utf8StreamValidator validator;
  EXPECT_TRUE(validator.Feed("line\n\xE2\x82").ok());
  absl::Status status = validator.Finish();
  EXPECT_THAT(Msg(status), StartsWith("invalid UTF-8 at byte 5 (line 2)"));
  EXPECT_THAT(Msg(status), HasSubstr("end of input"));
}

TEST(Utf8StreamValidatorTest, AcceptsBoundaryCodePoints) {
  // U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+FFFF, U+10000, BOM.
  EXPECT_TRUE(
      Validate("\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xEF\xBB\xBF").ok());
  EXPECT_TRUE(Validate("").ok());
}

}  // namespace
}  // namespace contacts
