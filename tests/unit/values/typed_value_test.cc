#include "common/values/typed_value.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace contacts {
namespace {

using ::testing::HasSubstr;

struct Good {
  std::string raw;
  std::string canonical;
};

struct Bad {
  std::string raw;
  std::string message_part;  // a substring the error message must contain
};

// Checks each good value normalises to its canonical form, and each canonical form is a fixed point.
void ExpectGood(AttributeType type, const std::vector<Good>& cases, const ValueOptions& options = ValueOptions()) {
  for (const Good& c : cases) {
    absl::StatusOr<std::string> got = NormalizeValue(type, c.raw, options);
    ASSERT_TRUE(got.ok()) << AttributeTypeName(type) << " " << testing::PrintToString(c.raw) << ": " << got.status();
    EXPECT_EQ(*got, c.canonical) << AttributeTypeName(type) << " " << testing::PrintToString(c.raw);
    absl::StatusOr<std::string> again = NormalizeValue(type, *got, options);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*again, *got) << "canonical form is not a fixed point";
    // Appended after what the buffer holds, which stays as it was (upper case included).
    std::string buffer = "Held|";
    ASSERT_TRUE(AppendNormalizedValue(type, c.raw, options, &buffer).ok());
    EXPECT_EQ(buffer, "Held|" + c.canonical) << AttributeTypeName(type) << " " << testing::PrintToString(c.raw);
  }
}

void ExpectBad(AttributeType type, const std::vector<Bad>& cases, const ValueOptions& options = ValueOptions()) {
  for (const Bad& c : cases) {
    absl::StatusOr<std::string> got = NormalizeValue(type, c.raw, options);
    ASSERT_FALSE(got.ok()) << AttributeTypeName(type) << " " << testing::PrintToString(c.raw) << " gave "
                           << testing::PrintToString(*got);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(got.status().message()), HasSubstr(c.message_part))
        << AttributeTypeName(type) << " " << testing::PrintToString(c.raw);
    // The same error, and the buffer left as it was.
    std::string buffer = "Held|";
    EXPECT_EQ(AppendNormalizedValue(type, c.raw, options, &buffer), got.status());
    EXPECT_EQ(buffer, "Held|");
  }
}

// ----- Every type -----

TEST(NormalizeValueTest, EmptyOrBlankMeansNotSetForEveryType) {
  for (AttributeType type : kAllAttributeTypes) {
    for (const char* raw : {"", " ", "\t\r\n", "   \v\f "}) {
      absl::StatusOr<std::string> got = NormalizeValue(type, raw);
      ASSERT_TRUE(got.ok()) << AttributeTypeName(type);
      EXPECT_EQ(*got, "") << AttributeTypeName(type);
    }
  }
}

TEST(NormalizeValueTest, UnknownTypeIsAnError) {
  absl::StatusOr<std::string> got = NormalizeValue(static_cast<AttributeType>(0), "x");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NormalizeValueTest, MessagesQuoteTheTrimmedValueAndNameNoAttribute) {
  EXPECT_EQ(NormalizeValue(AttributeType::kInteger, "  forty ").status().message(), "\"forty\" is not an INTEGER");
  EXPECT_EQ(NormalizeValue(AttributeType::kDate, "2023-02-30").status().message().substr(0, 45),
            "\"2023-02-30\" is not a valid DATE (YYYY-MM-DD)");
  EXPECT_EQ(NormalizeValue(AttributeType::kEmail, "bob@").status().message(),
            "\"bob@\" is not a valid EMAIL: missing domain");
}

TEST(NormalizeValueTest, MessagesEscapeAndShortenTheQuotedValue) {
  const std::string message(NormalizeValue(AttributeType::kInteger, "a\"b\\c\x01").status().message());
  EXPECT_EQ(message, "\"a\\\"b\\\\c\\x01\" is not an INTEGER");
  const std::string long_message(NormalizeValue(AttributeType::kText, std::string(5000, 'x')).status().message());
  EXPECT_LT(long_message.size(), 200u);
  EXPECT_THAT(long_message, HasSubstr("...\""));
  EXPECT_THAT(long_message, HasSubstr("5000 bytes"));
  // Invalid UTF-8 is shown as hex, so the message itself is valid UTF-8.
  EXPECT_THAT(std::string(NormalizeValue(AttributeType::kText, "ab\xFF").status().message()), HasSubstr("ab\\xff"));
}

// Random strings built from the characters the parsers care about (plus arbitrary bytes): every
// value either fails cleanly or normalises to a fixed point that the accessors accept.
TEST(NormalizeValueTest, RandomInputEitherFailsOrGivesAFixedPoint) {
  std::mt19937 rng(12345);
  const std::string alphabet = "0123456789000099+-.:,/@ ()eETtZz\tabcxyz\x80\xC3\xA9";
  std::uniform_int_distribution<int> length(0, 24);
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  std::uniform_int_distribution<int> any_byte(0, 255);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string raw;
    for (int n = length(rng); n > 0; --n) {
      raw += (n % 11 == 0) ? static_cast<char>(any_byte(rng)) : alphabet[pick(rng)];
    }
    for (AttributeType type : kAllAttributeTypes) {
      absl::StatusOr<std::string> got = NormalizeValue(type, raw);
      std::string buffer = "Held|";
      const absl::Status appended = AppendNormalizedValue(type, raw, ValueOptions(), &buffer);
      ASSERT_EQ(appended, got.status());
      ASSERT_EQ(buffer, "Held|" + got.value_or("")) << AttributeTypeName(type) << " " << testing::PrintToString(raw);
      if (!got.ok()) {
        ASSERT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
        continue;
      }
      if (got->empty()) continue;
      ++accepted;
      absl::StatusOr<std::string> again = NormalizeValue(type, *got);
      ASSERT_TRUE(again.ok()) << AttributeTypeName(type) << " " << testing::PrintToString(raw);
      ASSERT_EQ(*again, *got) << AttributeTypeName(type) << " " << testing::PrintToString(raw);
      ASSERT_EQ(CompareValues(type, *got, *got), 0);
      switch (type) {
        case AttributeType::kInteger:
          ASSERT_TRUE(IntegerOf(*got).ok());
          break;
        case AttributeType::kDecimal:
          ASSERT_EQ(FormatDecimalScaled(*DecimalScaledOf(*got)), *got);
          break;
        case AttributeType::kDate:
          ASSERT_EQ(FormatDate(*DateDaysOf(*got)), *got);
          break;
        case AttributeType::kDateTime:
          ASSERT_EQ(FormatDateTime(*DateTimeMicrosOf(*got)), *got);
          break;
        default:
          break;
      }
    }
  }
  EXPECT_GT(accepted, 1000);  // the generator must exercise the success paths too
}

// ----- Unicode white space -----
// Spreadsheets pad cells with no-break spaces (U+00A0), figure and narrow no-break spaces (U+2007,
// U+202F), ideographic spaces (U+3000), zero-width spaces (U+200B) and BOMs (U+FEFF). Every type
// trims them like ASCII white space, and reads them as a space where it takes one inside.

const std::string kNbsp = "\xC2\xA0";                  // U+00A0 no-break space
const std::string kNextLine = "\xC2\x85";              // U+0085
const std::string kOghamSpace = "\xE1\x9A\x80";        // U+1680
const std::string kFigureSpace = "\xE2\x80\x87";       // U+2007
const std::string kZeroWidthSpace = "\xE2\x80\x8B";    // U+200B
const std::string kLineSeparator = "\xE2\x80\xA8";     // U+2028
const std::string kNarrowNbsp = "\xE2\x80\xAF";        // U+202F
const std::string kWordJoiner = "\xE2\x81\xA0";        // U+2060
const std::string kIdeographicSpace = "\xE3\x80\x80";  // U+3000
const std::string kBom = "\xEF\xBB\xBF";               // U+FEFF

const std::vector<std::string>& UnicodeBlanks() {
  static const auto* blanks = new std::vector<std::string>{
      kNbsp,
      kNextLine,
      kOghamSpace,
      kFigureSpace,
      "\xE2\x80\x80",  // U+2000 en quad
      "\xE2\x80\x8A",  // U+200A hair space
      kZeroWidthSpace,
      kLineSeparator,
      "\xE2\x80\xA9",  // U+2029 paragraph separator
      kNarrowNbsp,
      "\xE2\x81\x9F",  // U+205F medium mathematical space
      kWordJoiner,
      kIdeographicSpace,
      kBom,
      " " + kNbsp + "\t",
      kBom + kNbsp + " " + kIdeographicSpace + kZeroWidthSpace + "\r\n" + kNarrowNbsp,
  };
  return *blanks;
}

TEST(NormalizeValueTest, UnicodeWhiteSpaceAloneMeansNotSetForEveryType) {
  for (AttributeType type : kAllAttributeTypes) {
    for (const std::string& raw : UnicodeBlanks()) {
      absl::StatusOr<std::string> got = NormalizeValue(type, raw);
      ASSERT_TRUE(got.ok()) << AttributeTypeName(type) << " " << testing::PrintToString(raw) << ": " << got.status();
      EXPECT_EQ(*got, "") << AttributeTypeName(type) << " " << testing::PrintToString(raw);
      std::string buffer = "Held|";
      ASSERT_TRUE(AppendNormalizedValue(type, raw, ValueOptions(), &buffer).ok());
      EXPECT_EQ(buffer, "Held|") << AttributeTypeName(type) << " " << testing::PrintToString(raw);
    }
  }
}

TEST(NormalizeValueTest, UnicodeWhiteSpaceAtEitherEndIsTrimmedForEveryType) {
  const std::vector<std::pair<AttributeType, Good>> values = {
      {AttributeType::kText, {"Hello World", "Hello World"}},
      {AttributeType::kInteger, {"42", "42"}},
      {AttributeType::kInteger, {"-007", "-7"}},
      {AttributeType::kDecimal, {"12.50", "12.5"}},
      {AttributeType::kBoolean, {"Yes", "true"}},
      {AttributeType::kDate, {"2024/3/1", "2024-03-01"}},
      {AttributeType::kDateTime, {"2024-03-01 10:00", "2024-03-01T10:00:00Z"}},
      {AttributeType::kDateTime, {"2024-03-01T10:00:00 +05:30", "2024-03-01T04:30:00Z"}},
      {AttributeType::kEmail, {"Bob@Example.com", "bob@example.com"}},
      {AttributeType::kMobile, {"98765 43210", "+919876543210"}},
  };
  for (const auto& [type, value] : values) {
    std::vector<Good> cases;
    for (const std::string& pad : UnicodeBlanks()) {
      cases.push_back({pad + value.raw, value.canonical});
      cases.push_back({value.raw + pad, value.canonical});
      cases.push_back({pad + value.raw + " " + pad, value.canonical});
    }
    ExpectGood(type, cases);
  }
}

TEST(NormalizeValueTest, MessagesQuoteTheValueWithoutUnicodeWhiteSpace) {
  EXPECT_EQ(NormalizeValue(AttributeType::kInteger, kNbsp + "forty" + kNarrowNbsp).status().message(),
            "\"forty\" is not an INTEGER");
  EXPECT_EQ(NormalizeValue(AttributeType::kEmail, kBom + " bob@" + kNbsp).status().message(),
            "\"bob@\" is not a valid EMAIL: missing domain");
}

// What callers that decide emptiness themselves (type inference, date bounds) must use.
TEST(NormalizeValueTest, TrimValueWhiteSpaceIsWhatNormalizeValueReads) {
  EXPECT_EQ(TrimValueWhiteSpace(kNbsp + " 01234\t" + kBom), "01234");
  EXPECT_EQ(TrimValueWhiteSpace(" First" + kNbsp + "Name" + kNarrowNbsp), "First" + kNbsp + "Name");
  EXPECT_EQ(TrimValueWhiteSpace("  plain ascii\r\n"), "plain ascii");
  EXPECT_EQ(TrimValueWhiteSpace("a\xC2"), "a\xC2");
  for (const std::string& blank : UnicodeBlanks()) EXPECT_EQ(TrimValueWhiteSpace(blank), "") << blank;
}

// Only whole, well-formed white-space characters are trimmed: a lone lead byte (0xC2 starts
// U+00A0 too), a lone continuation byte or a cut sequence stays, and fails as invalid.
TEST(NormalizeValueTest, BytesThatAreNotAWholeWhiteSpaceCharacterAreKept) {
  ExpectBad(AttributeType::kInteger, {
                                         {"42\xC2", "is not an INTEGER"},
                                         {"42\xA0", "is not an INTEGER"},
                                         {"\xA0"
                                          "42",
                                          "is not an INTEGER"},
                                         {"42\xC2" + kNbsp, "\"42\\xc2\" is not an INTEGER"},
                                         {kNbsp + "\xA0"
                                                  "42",
                                          "\"\\xa042\" is not an INTEGER"},
                                         {"42\xE2\x80", "is not an INTEGER"},  // U+202F cut short
                                         {"42\x80\xAF", "is not an INTEGER"},  // ... and cut the other way
                                         {"42\xEF\xBB", "is not an INTEGER"},  // half a BOM
                                         {"42\xC3\xA0", "is not an INTEGER"},  // U+00E0, ends in 0xA0 too
                                         {"42\xC2\xA9", "is not an INTEGER"},  // U+00A9, starts with 0xC2
                                     });
  ExpectBad(AttributeType::kText, {
                                      {"abc\xC2", "not valid UTF-8"},
                                      {"abc\xC2" + kNbsp, "not valid UTF-8"},
                                      {"\xA0"
                                       "abc",
                                       "not valid UTF-8"},
                                      {kNbsp + "\xA0"
                                               "abc",
                                       "not valid UTF-8"},
                                      {"abc\xE2\x80", "not valid UTF-8"},
                                      {"abc\xEF\xBB", "not valid UTF-8"},
                                      {"abc\xE2" + kNarrowNbsp, "not valid UTF-8"},
                                      {"\xC0\xA0", "not valid UTF-8"},  // overlong form of ' '
                                  });
  ExpectBad(AttributeType::kEmail, {{"bob@example.com\xC2", "non-ASCII characters are not supported"}});
  ExpectBad(AttributeType::kMobile, {{"9876543210\xC2", "invalid character"}});
  ExpectBad(AttributeType::kDate, {{"2024-03-01\xE2\x80", "is not a valid DATE"}});
  // Characters that look empty but are not white space stay part of TEXT: accents, the
  // copyright sign, a hyphen, joiners and variation selectors (emoji), direction marks.
  ExpectGood(AttributeType::kText, {
                                       {"caf\xC3\xA9", "caf\xC3\xA9"},
                                       {"\xC3\xA0 la", "\xC3\xA0 la"},
                                       {"(c) \xC2\xA9", "(c) \xC2\xA9"},
                                       {"x\xE2\x80\x90", "x\xE2\x80\x90"},                            // U+2010
                                       {"I \xE2\x9D\xA4\xEF\xB8\x8F", "I \xE2\x9D\xA4\xEF\xB8\x8F"},  // U+FE0F
                                       {"a\xE2\x80\x8D", "a\xE2\x80\x8D"},                            // U+200D
                                       {"a\xE2\x80\x8C", "a\xE2\x80\x8C"},                            // U+200C
                                       {"\xE2\x80\x8F"
                                        "abc",
                                        "\xE2\x80\x8F"
                                        "abc"},  // U+200F
                                   });
}

TEST(NormalizeValueTest, TextKeepsUnicodeWhiteSpaceInside) {
  ExpectGood(
      AttributeType::kText,
      {
          {"First" + kNbsp + "Name", "First" + kNbsp + "Name"},
          {kNbsp + "First" + kNbsp + kZeroWidthSpace + "Name" + kBom, "First" + kNbsp + kZeroWidthSpace + "Name"},
          {kIdeographicSpace + "\xE6\x9D\xB1\xE4\xBA\xAC" + kIdeographicSpace, "\xE6\x9D\xB1\xE4\xBA\xAC"},
          // One ASCII byte after a U+00A0 inside: the last character is 'T', not the space.
          {"x" + kNbsp + "T" + kNbsp, "x" + kNbsp + "T"},
          {kBom + "x" + kNarrowNbsp + "T", "x" + kNarrowNbsp + "T"},
      });
}

// Mobiles take spaces between digits, so Unicode spaces count as spaces there too. A line break is
// no separator, in ASCII ("98765\n43210") as in Unicode.
TEST(NormalizeValueTest, MobileReadsUnicodeSpacesAsSpaces) {
  ExpectGood(AttributeType::kMobile,
             {
                 {"98765" + kNbsp + "43210", "+919876543210"},
                 {"+44" + kNarrowNbsp + "20 7946 0958", "+442079460958"},
                 {"+44" + kNbsp + "(0)20" + kNbsp + "7946" + kNbsp + "0958", "+442079460958"},
                 {"0091" + kFigureSpace + "98765" + kIdeographicSpace + "43210", "+919876543210"},
                 {"98765" + kZeroWidthSpace + "43210", "+919876543210"},
                 {"+" + kNbsp + "91 98765 43210", "+919876543210"},
                 {"(987)" + kNbsp + "654-3210", "+919876543210"},
             });
  ExpectBad(AttributeType::kMobile, {
                                        {"98765\n43210", "invalid character"},
                                        {"98765" + kLineSeparator + "43210", "invalid character"},
                                        {"98765" + kNextLine + "43210", "invalid character"},
                                        {"98765\xC2"
                                         "43210",
                                         "invalid character"},
                                        {"98765\xC2 43210", "invalid character"},
                                        {"98765\xA0"
                                         "43210",
                                         "invalid character"},
                                        {"98765\xE2\x80"
                                         "43210",
                                         "invalid character"},
                                    });
}

// A DATETIME takes one space between date and time and one before the zone: a Unicode space
// serves as that space, and still only one.
TEST(NormalizeValueTest, DateTimeReadsAUnicodeSpaceAsItsSpace) {
  ExpectGood(AttributeType::kDateTime,
             {
                 {"2024-03-01" + kNbsp + "10:00", "2024-03-01T10:00:00Z"},
                 {"2024-03-01 10:00:00" + kNarrowNbsp + "+05:30", "2024-03-01T04:30:00Z"},
                 {"2024-03-01" + kIdeographicSpace + "10:00" + kNbsp + "Z", "2024-03-01T10:00:00Z"},
             });
  ExpectBad(AttributeType::kDateTime, {
                                          {"2024-03-01  10:00", "is not a valid DATETIME"},
                                          {"2024-03-01" + kNbsp + kNbsp + "10:00", "is not a valid DATETIME"},
                                          {"2024-03-01" + kNbsp + " 10:00", "is not a valid DATETIME"},
                                          {"2024-03-01" + kLineSeparator + "10:00", "is not a valid DATETIME"},
                                          {"2024-03-01\xC2"
                                           "10:00",
                                           "is not a valid DATETIME"},
                                          {"2024-03-01\xA0"
                                           "10:00",
                                           "is not a valid DATETIME"},
                                          {"2024-03-01" + kNbsp + "25:00", "hour out of range"},
                                      });
  // The message quotes the value as given, not as read.
  EXPECT_THAT(std::string(NormalizeValue(AttributeType::kDateTime, "2024-03-01" + kNbsp + "25:00").status().message()),
              HasSubstr("\"2024-03-01" + kNbsp + "25:00\""));
}

// Where a type takes no space inside, it takes no Unicode space either: numbers have no
// thousands separators of any kind.
TEST(NormalizeValueTest, TypesWithoutInnerSpacesRefuseUnicodeSpacesInside) {
  ExpectBad(AttributeType::kInteger, {{"12 345", "is not an INTEGER"}, {"12" + kNbsp + "345", "is not an INTEGER"}});
  ExpectBad(AttributeType::kDecimal, {
                                         {"1 000.5", "is not a DECIMAL"},
                                         {"1" + kNbsp + "000.5", "is not a DECIMAL"},
                                         {"1" + kNarrowNbsp + "234,5", "is not a DECIMAL"},
                                     });
  ExpectBad(AttributeType::kBoolean, {{"y" + kNbsp + "es", "is not a BOOLEAN"}});
  ExpectBad(AttributeType::kDate, {{"2024-03-" + kNbsp + "01", "is not a valid DATE"}});
  ExpectBad(AttributeType::kEmail, {{"bob" + kNbsp + "@example.com", "non-ASCII characters are not supported"}});
}

// Random values from pieces the parsers care about, Unicode spaces and broken UTF-8 included:
// padding a value with white space of any kind changes neither its result nor its message, and a
// canonical value is a fixed point with no white space at either end.
TEST(NormalizeValueTest, RandomPaddingWithWhiteSpaceOfAnyKindChangesNothing) {
  const std::vector<std::string> pieces = {
      "0",
      "1",
      "7",
      "9",
      "00",
      "+",
      "-",
      ".",
      ":",
      "/",
      "@",
      "(0)",
      "a",
      "T",
      "Z",
      "e",
      "x.co",
      " ",
      "\t",
      kNbsp,
      kNarrowNbsp,
      kZeroWidthSpace,
      kBom,
      kIdeographicSpace,
      kLineSeparator,
      "\xC2",
      "\xA0",
      "\xE2\x80",
      "\xBB\xBF",
      "\xC3\xA9",
  };
  std::vector<std::string> pads = UnicodeBlanks();
  pads.push_back(" ");
  std::mt19937 rng(8);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string raw;
    for (int n = static_cast<int>(rng() % 12); n > 0; --n) raw += pieces[rng() % pieces.size()];
    const std::string padded = pads[rng() % pads.size()] + raw + pads[rng() % pads.size()];
    for (AttributeType type : kAllAttributeTypes) {
      absl::StatusOr<std::string> plain = NormalizeValue(type, raw);
      absl::StatusOr<std::string> got = NormalizeValue(type, padded);
      ASSERT_EQ(got.status(), plain.status()) << AttributeTypeName(type) << " " << testing::PrintToString(padded);
      if (!got.ok()) continue;
      ASSERT_EQ(*got, *plain) << AttributeTypeName(type) << " " << testing::PrintToString(padded);
      if (got->empty()) continue;
      ++accepted;
      ASSERT_EQ(NormalizeValue(type, *got).value_or("(error)"), *got)
          << AttributeTypeName(type) << " " << testing::PrintToString(padded);
      for (const std::string& blank : UnicodeBlanks()) {
        ASSERT_FALSE(got->size() >= blank.size() && got->compare(0, blank.size(), blank) == 0) << *got;
        ASSERT_FALSE(got->size() >= blank.size() && got->compare(got->size() - blank.size(), blank.size(), blank) == 0)
            << *got;
      }
    }
  }
  EXPECT_GT(accepted, 1000);
}

// ----- TEXT -----

TEST(NormalizeValueTest, TextKeepsValidTextTrimmed) {
  ExpectGood(AttributeType::kText, {
                                       {"hello", "hello"},
                                       {"  Hello World  ", "Hello World"},
                                       {"line1\nline2\r\nline3", "line1\nline2\r\nline3"},
                                       {"a\tb", "a\tb"},
                                       {"\n padded \t", "padded"},
                                       {"caf\xC3\xA9 \xF0\x9F\x98\x80", "caf\xC3\xA9 \xF0\x9F\x98\x80"},
                                       {"Ünïcödé", "Ünïcödé"},
                                       {"\"quoted\", comma", "\"quoted\", comma"},
                                       {std::string(kMaxTextBytes, 'a'), std::string(kMaxTextBytes, 'a')},
                                       {"  " + std::string(kMaxTextBytes, 'b') + "  ", std::string(kMaxTextBytes, 'b')},
                                   });
}

TEST(NormalizeValueTest, TextRejectsControlsBadUtf8AndOversize) {
  ExpectBad(AttributeType::kText, {
                                      {std::string("a\0b", 3), "control character U+0000"},
                                      {"a\x01z", "control character U+0001"},
                                      {"bell\x07", "U+0007"},
                                      {"esc\x1b[0m", "U+001B"},
                                      {"del\x7f!", "U+007F"},
                                      {"caf\xC3", "not valid UTF-8"},
                                      {"\xC0\xAF", "not valid UTF-8"},
                                      {"\xED\xA0\x80", "not valid UTF-8"},
                                      {std::string(kMaxTextBytes + 1, 'a'), "4097 bytes"},
                                  });
}

// ----- INTEGER -----

TEST(NormalizeValueTest, IntegerGoodValues) {
  ExpectGood(AttributeType::kInteger, {
                                          {"0", "0"},
                                          {"42", "42"},
                                          {" 42 ", "42"},
                                          {"+42", "42"},
                                          {"-42", "-42"},
                                          {"007", "7"},
                                          {"-007", "-7"},
                                          {"-0", "0"},
                                          {"+0", "0"},
                                          {"000", "0"},
                                          {"9223372036854775807", "9223372036854775807"},
                                          {"-9223372036854775808", "-9223372036854775808"},
                                          {"0009223372036854775807", "9223372036854775807"},
                                          {"1000000", "1000000"},
                                      });
}

TEST(NormalizeValueTest, IntegerBadValues) {
  ExpectBad(AttributeType::kInteger, {
                                         {"forty", "\"forty\" is not an INTEGER"},
                                         {"1,000", "thousands separators are not allowed"},
                                         {"1.5", "a fractional part is not allowed"},
                                         {"1.0", "fractional"},
                                         {"1e3", "exponents are not allowed"},
                                         {"9223372036854775808", "out of range"},
                                         {"-9223372036854775809", "out of range"},
                                         {"99999999999999999999999", "out of range"},
                                         {"+", "is not an INTEGER"},
                                         {"-", "is not an INTEGER"},
                                         {"--1", "is not an INTEGER"},
                                         {"+-1", "is not an INTEGER"},
                                         {"1 000", "is not an INTEGER"},
                                         {"12a", "is not an INTEGER"},
                                         {"0x10", "is not an INTEGER"},
                                         {"١٢", "is not an INTEGER"},  // Arabic-Indic digits
                                         {"1-", "is not an INTEGER"},
                                         {".5", "is not an INTEGER"},
                                     });
}

TEST(TypedAccessorTest, IntegerOfReadsInt64Limits) {
  EXPECT_EQ(*IntegerOf("0"), 0);
  EXPECT_EQ(*IntegerOf("-17"), -17);
  EXPECT_EQ(*IntegerOf("9223372036854775807"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(*IntegerOf("-9223372036854775808"), std::numeric_limits<int64_t>::min());
  EXPECT_FALSE(IntegerOf("").ok());
  EXPECT_FALSE(IntegerOf("9223372036854775808").ok());
  EXPECT_FALSE(IntegerOf(" 1").ok());  // accessors expect canonical text, not raw input
  EXPECT_FALSE(IntegerOf("abc").ok());
}

// ----- DECIMAL -----

TEST(NormalizeValueTest, DecimalGoodValues) {
  ExpectGood(AttributeType::kDecimal, {
                                          {"0", "0"},
                                          {"-0", "0"},
                                          {"-0.000", "0"},
                                          {"+0.0", "0"},
                                          {"0.0", "0"},
                                          {"1", "1"},
                                          {"1.0", "1"},
                                          {"1.", "1"},
                                          {".5", "0.5"},
                                          {"-.5", "-0.5"},
                                          {"+1.50", "1.5"},
                                          {"007.250", "7.25"},
                                          {"-007.250", "-7.25"},
                                          {"3.14159", "3.14159"},
                                          {"  12.5\t", "12.5"},
                                          {"0.000000001", "0.000000001"},
                                          {"-0.000000001", "-0.000000001"},
                                          {"123456789.123456789", "123456789.123456789"},  // 18 digits
                                          {"999999999999999999", "999999999999999999"},    // 18 digits
                                          {"-999999999999999999", "-999999999999999999"},
                                          {"1.5000000000000", "1.5"},  // zeros do not count
                                          {"000000000000000000001", "1"},
                                          {"100000000000000000", "100000000000000000"},
                                      });
}

TEST(NormalizeValueTest, DecimalBadValues) {
  ExpectBad(AttributeType::kDecimal, {
                                         {"abc", "\"abc\" is not a DECIMAL"},
                                         {"1,5", "use '.' as the decimal point"},
                                         {"1,000.5", "thousands separators"},
                                         {"1e5", "exponents are not allowed"},
                                         {"1.5E-3", "exponents are not allowed"},
                                         {"0.0000000001", "more than 9 digits after the decimal point"},
                                         {"1.1234567891", "more than 9 digits"},
                                         {"1234567890.123456789", "more than 18 significant digits"},
                                         {"1000000000000000000", "more than 18 significant digits"},
                                         {".", "is not a DECIMAL"},
                                         {"-", "is not a DECIMAL"},
                                         {"+.", "is not a DECIMAL"},
                                         {"1.2.3", "is not a DECIMAL"},
                                         {"--1", "is not a DECIMAL"},
                                         {"NaN", "is not a DECIMAL"},
                                         {"inf", "is not a DECIMAL"},
                                         {"1 000", "is not a DECIMAL"},
                                         {"$5", "is not a DECIMAL"},
                                         {"e5", "is not a DECIMAL"},
                                     });
}

TEST(TypedAccessorTest, DecimalOfAndScaledValues) {
  EXPECT_DOUBLE_EQ(*DecimalOf("3.25"), 3.25);
  EXPECT_DOUBLE_EQ(*DecimalOf("-0.5"), -0.5);
  EXPECT_DOUBLE_EQ(*DecimalOf("0"), 0.0);
  EXPECT_DOUBLE_EQ(*DecimalOf(".5"), 0.5);
  EXPECT_DOUBLE_EQ(*DecimalOf("+2."), 2.0);
  EXPECT_FALSE(DecimalOf("x").ok());
  EXPECT_FALSE(DecimalOf("").ok());

  EXPECT_EQ(*DecimalScaledOf("1"), absl::int128(1'000'000'000));
  EXPECT_EQ(*DecimalScaledOf("-0.000000001"), absl::int128(-1));
  EXPECT_EQ(*DecimalScaledOf("12.5"), absl::int128(12'500'000'000));
  EXPECT_EQ(*DecimalScaledOf("999999999999999999"), absl::int128(999'999'999'999'999'999) * 1'000'000'000);
  EXPECT_FALSE(DecimalScaledOf("1e3").ok());

  for (const char* canonical : {"0", "1", "-1", "0.5", "-0.000000001", "123456789.123456789", "999999999999999999",
                                "-999999999999999999", "0.1", "10", "-10.01"}) {
    EXPECT_EQ(FormatDecimalScaled(*DecimalScaledOf(canonical)), canonical);
  }
}

TEST(TypedAccessorTest, CompareDecimalIsExactWhereDoublesAreNot) {
  // Both round to the same double, but differ as decimals.
  ASSERT_EQ(*DecimalOf("999999999999999998"), *DecimalOf("999999999999999999"));
  EXPECT_LT(CompareDecimal("999999999999999998", "999999999999999999"), 0);
  EXPECT_LT(CompareDecimal("0.1", "0.10000001"), 0);
  EXPECT_EQ(CompareDecimal("1.5", "1.5"), 0);
  EXPECT_EQ(CompareDecimal("0", "0"), 0);
  EXPECT_LT(CompareDecimal("-1", "0"), 0);
  EXPECT_LT(CompareDecimal("-10", "-9"), 0);
  EXPECT_LT(CompareDecimal("-1.5", "-1.4"), 0);
  EXPECT_GT(CompareDecimal("10", "9.999999999"), 0);
  EXPECT_LT(CompareDecimal("0.05", "0.5"), 0);
  EXPECT_GT(CompareDecimal("2", "-3"), 0);
  // Non-decimals sort first, bytewise among themselves.
  EXPECT_LT(CompareDecimal("", "-999999999999999999"), 0);
  EXPECT_LT(CompareDecimal("abc", "-5"), 0);
  EXPECT_GT(CompareDecimal("-5", "abc"), 0);
  EXPECT_LT(CompareDecimal("abc", "abd"), 0);
}

// ----- BOOLEAN -----

TEST(NormalizeValueTest, BooleanGoodValues) {
  std::vector<Good> cases;
  for (const char* t : {"true", "TRUE", "True", "yes", "YES", "Yes", "y", "Y", "t", "T", "1", " true "}) {
    cases.push_back({t, "true"});
  }
  for (const char* f : {"false", "FALSE", "False", "no", "NO", "No", "n", "N", "f", "F", "0", "\tno\n"}) {
    cases.push_back({f, "false"});
  }
  ExpectGood(AttributeType::kBoolean, cases);
}

TEST(NormalizeValueTest, BooleanBadValues) {
  ExpectBad(AttributeType::kBoolean, {
                                         {"maybe", "\"maybe\" is not a BOOLEAN"},
                                         {"2", "is not a BOOLEAN"},
                                         {"-1", "is not a BOOLEAN"},
                                         {"00", "is not a BOOLEAN"},
                                         {"on", "is not a BOOLEAN"},
                                         {"truee", "is not a BOOLEAN"},
                                         {"falsey", "is not a BOOLEAN"},
                                         {"ye", "is not a BOOLEAN"},
                                         {"t r u e", "is not a BOOLEAN"},
                                     });
}

TEST(TypedAccessorTest, BooleanOfReadsCanonicalText) {
  EXPECT_TRUE(BooleanOf("true"));
  EXPECT_FALSE(BooleanOf("false"));
  EXPECT_FALSE(BooleanOf(""));
}

// ----- DATE -----

TEST(NormalizeValueTest, DateGoodValues) {
  ExpectGood(AttributeType::kDate, {
                                       {"2023-01-05", "2023-01-05"},
                                       {"2023/01/05", "2023-01-05"},
                                       {"2023-1-5", "2023-01-05"},
                                       {"2023/1/05", "2023-01-05"},
                                       {" 2023-12-31 ", "2023-12-31"},
                                       {"1970-01-01", "1970-01-01"},
                                       {"1969-12-31", "1969-12-31"},
                                       {"2000-02-29", "2000-02-29"},  // divisible by 400: leap
                                       {"2024-02-29", "2024-02-29"},  // divisible by 4: leap
                                       {"1600-02-29", "1600-02-29"},
                                       {"0001-01-01", "0001-01-01"},
                                       {"9999-12-31", "9999-12-31"},
                                       {"2023-04-30", "2023-04-30"},
                                   });
}

TEST(NormalizeValueTest, DateBadValues) {
  ExpectBad(AttributeType::kDate, {
                                      {"2023-02-30", "2023-02 has 28 days"},
                                      {"2023-02-29", "2023-02 has 28 days"},
                                      {"1900-02-29", "1900-02 has 28 days"},  // divisible by 100 only: not leap
                                      {"2100-02-29", "has 28 days"},
                                      {"2024-02-30", "2024-02 has 29 days"},
                                      {"2023-04-31", "2023-04 has 30 days"},
                                      {"2023-01-32", "has 31 days"},
                                      {"2023-01-00", "has 31 days"},
                                      {"2023-13-01", "month 13 does not exist"},
                                      {"2023-00-10", "month 00 does not exist"},
                                      {"0000-01-01", "year 0000"},
                                      {"10000-01-01", "is not a valid DATE (YYYY-MM-DD)"},
                                      {"23-01-05", "is not a valid DATE"},
                                      {"05-01-2023", "is not a valid DATE"},
                                      {"2023-01/05", "is not a valid DATE"},
                                      {"2023.01.05", "is not a valid DATE"},
                                      {"2023-001-05", "is not a valid DATE"},
                                      {"2023-01-005", "is not a valid DATE"},
                                      {"2023-01-05T00:00", "is not a valid DATE"},
                                      {"2023-01-", "is not a valid DATE"},
                                      {"2023-01", "is not a valid DATE"},
                                      {"2023", "is not a valid DATE"},
                                      {"yesterday", "is not a valid DATE"},
                                      {"-2023-01-01", "is not a valid DATE"},
                                      {"2023-+1-01", "is not a valid DATE"},
                                  });
}

TEST(TypedAccessorTest, DateDaysOfKnownDays) {
  EXPECT_EQ(*DateDaysOf("1970-01-01"), 0);
  EXPECT_EQ(*DateDaysOf("1969-12-31"), -1);
  EXPECT_EQ(*DateDaysOf("1970-01-02"), 1);
  EXPECT_EQ(*DateDaysOf("2000-01-01"), 10957);
  EXPECT_EQ(*DateDaysOf("2000-03-01") - *DateDaysOf("2000-02-28"), 2);  // 2000-02-29 exists
  EXPECT_EQ(*DateDaysOf("1900-03-01") - *DateDaysOf("1900-02-28"), 1);  // 1900-02-29 does not
  EXPECT_EQ(*DateDaysOf("0001-01-01"), kMinDateDays);
  EXPECT_EQ(*DateDaysOf("9999-12-31"), kMaxDateDays);
  EXPECT_FALSE(DateDaysOf("2023-02-30").ok());
  EXPECT_FALSE(DateDaysOf("").ok());
}

TEST(TypedAccessorTest, FormatDateRoundTripsEveryDayInRange) {
  int32_t previous_days = kMinDateDays - 1;
  std::string previous;
  for (int32_t days = kMinDateDays; days <= kMaxDateDays; ++days) {
    const std::string text = FormatDate(days);
    ASSERT_EQ(text.size(), 10u) << days;
    absl::StatusOr<int32_t> back = DateDaysOf(text);
    ASSERT_TRUE(back.ok()) << text;
    ASSERT_EQ(*back, days) << text;
    ASSERT_LT(previous, text) << "canonical dates sort bytewise";
    previous = text;
    previous_days = days;
  }
  EXPECT_EQ(previous_days, kMaxDateDays);
  EXPECT_EQ(FormatDate(0), "1970-01-01");
  EXPECT_EQ(FormatDate(-1), "1969-12-31");
  EXPECT_EQ(FormatDate(kMaxDateDays), "9999-12-31");
  EXPECT_EQ(FormatDate(kMinDateDays), "0001-01-01");
}

TEST(TypedAccessorTest, FormatDateOutsideTheRangeDoesNotCrash) {
  EXPECT_EQ(FormatDate(kMaxDateDays + 1), "10000-01-01");
  EXPECT_FALSE(FormatDate(kMinDateDays - 1).empty());
  EXPECT_FALSE(FormatDate(std::numeric_limits<int32_t>::min()).empty());
  EXPECT_FALSE(FormatDate(std::numeric_limits<int32_t>::max()).empty());
}

// ----- DATETIME -----

TEST(NormalizeValueTest, DateTimeGoodValues) {
  ExpectGood(AttributeType::kDateTime,
             {
                 {"2023-01-05T10:20:30Z", "2023-01-05T10:20:30Z"},
                 {"2023-01-05t10:20:30z", "2023-01-05T10:20:30Z"},
                 {"2023-01-05T10:20:30", "2023-01-05T10:20:30Z"},  // no zone means UTC
                 {"2023-01-05 10:20:30", "2023-01-05T10:20:30Z"},
                 {"2023-01-05T10:20", "2023-01-05T10:20:00Z"},
                 {"2023-01-05 9:05", "2023-01-05T09:05:00Z"},
                 {"2023/01/05 10:20", "2023-01-05T10:20:00Z"},
                 {"2023-01-05", "2023-01-05T00:00:00Z"},  // a plain date is midnight UTC
                 {"2023-01-05T10:20:30+05:30", "2023-01-05T04:50:30Z"},
                 {"2023-01-05T10:20:30+0530", "2023-01-05T04:50:30Z"},
                 {"2023-01-05T10:20:30+05", "2023-01-05T05:20:30Z"},
                 {"2023-01-05T10:20:30 +05:30", "2023-01-05T04:50:30Z"},
                 {"2023-01-05T10:20:30-08:00", "2023-01-05T18:20:30Z"},
                 {"2023-01-05T10:20:30+00:00", "2023-01-05T10:20:30Z"},
                 {"2023-01-05T10:20:30-00:00", "2023-01-05T10:20:30Z"},
                 {"2023-01-01T02:00:00+05:30", "2022-12-31T20:30:00Z"},  // crosses the year back
                 {"2023-12-31T22:00:00-05:00", "2024-01-01T03:00:00Z"},  // and forward
                 {"2024-02-28T23:30:00-01:00", "2024-02-29T00:30:00Z"},  // into a leap day
                 {"2023-01-05T10:20:30.5Z", "2023-01-05T10:20:30.500000Z"},
                 {"2023-01-05T10:20:30.123456Z", "2023-01-05T10:20:30.123456Z"},
                 {"2023-01-05T10:20:30.000001Z", "2023-01-05T10:20:30.000001Z"},
                 {"2023-01-05T10:20:30.000000Z", "2023-01-05T10:20:30Z"},  // zero fraction dropped
                 {"2023-01-05T10:20:30.0Z", "2023-01-05T10:20:30Z"},
                 {"2023-01-05T10:20:30.123456789Z", "2023-01-05T10:20:30.123456Z"},  // truncated
                 {"2023-01-05T10:20:30.1234569Z", "2023-01-05T10:20:30.123456Z"},
                 {"1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"},
                 {"1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z"},
                 {"0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"},
                 {"9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"},
                 {"0001-01-01T05:00:00+05:00", "0001-01-01T00:00:00Z"},
                 {"2000-02-29T12:00:00Z", "2000-02-29T12:00:00Z"},
                 {"  2023-01-05T10:20:30Z  ", "2023-01-05T10:20:30Z"},
             });
}

// A zone offset cut short after its colon ("+05:" of "+05:30") was read as "+05:00", storing an
// instant off by the lost minutes; the grammar has no such form.
TEST(NormalizeValueTest, DateTimeZoneOffsetCutAfterItsColonIsRefused) {
  ExpectBad(AttributeType::kDateTime, {
                                          {"2023-01-05T10:20:30+05:", "bad zone offset"},
                                          {"2023-01-05T10:20-05:", "bad zone offset"},
                                          {"2023-01-05T10:20:30 +05:", "bad zone offset"},
                                      });
}

TEST(NormalizeValueTest, DateTimeBadValues) {
  ExpectBad(AttributeType::kDateTime, {
                                          {"yesterday", "is not a valid DATETIME"},
                                          {"2023-02-30T10:00:00Z", "2023-02 has 28 days"},
                                          {"1900-02-29T00:00Z", "has 28 days"},
                                          {"2023-01-05T24:00:00Z", "hour out of range"},
                                          {"2023-01-05T10:60:00Z", "minute out of range"},
                                          {"2023-01-05T10:20:60Z", "second out of range"},
                                          {"2023-01-05T10:20:30+24:00", "zone offset out of range"},
                                          {"2023-01-05T10:20:30+05:60", "zone offset out of range"},
                                          {"2023-01-05T10:20:30+5", "bad zone offset"},
                                          {"2023-01-05T10:20:30+05:3", "is not a valid DATETIME"},
                                          {"2023-01-05T10:20:30+05:300", "is not a valid DATETIME"},
                                          {"2023-01-05T10:20:30ZZ", "is not a valid DATETIME"},
                                          {"2023-01-05T10:20:30 UTC", "is not a valid DATETIME"},
                                          {"2023-01-05T10:20:30.Z", "is not a valid DATETIME"},
                                          {"2023-01-05T10:20:30.1234567890Z", "more than 9 fraction digits"},
                                          {"2023-01-05T10", "is not a valid DATETIME"},
                                          {"2023-01-05T", "is not a valid DATETIME"},
                                          {"2023-01-05T10:2", "is not a valid DATETIME"},
                                          {"2023-01-05T10:20:3", "is not a valid DATETIME"},
                                          {"2023-01-05T123:20", "is not a valid DATETIME"},
                                          {"2023-01-05T10:20:30.5.5", "is not a valid DATETIME"},
                                          {"2023-01-05T10:20:30X", "is not a valid DATETIME"},
                                          {"2023-01-05  10:20", "is not a valid DATETIME"},
                                          {"0001-01-01T00:00:00+00:01", "outside 0001-01-01T00:00:00Z"},
                                          {"9999-12-31T23:59:59-00:01", "outside"},
                                          {"0000-12-31T23:59:59Z", "year 0000"},
                                          {"1700000000", "is not a valid DATETIME"},  // no Unix timestamps
                                      });
}

TEST(TypedAccessorTest, DateTimeMicrosOfKnownInstants) {
  EXPECT_EQ(*DateTimeMicrosOf("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*DateTimeMicrosOf("1970-01-01T00:00:00.000001Z"), 1);
  EXPECT_EQ(*DateTimeMicrosOf("1969-12-31T23:59:59.999999Z"), -1);
  EXPECT_EQ(*DateTimeMicrosOf("2023-11-14T22:13:20Z"), int64_t{1'700'000'000} * 1'000'000);
  EXPECT_EQ(*DateTimeMicrosOf("0001-01-01T00:00:00Z"), kMinDateTimeMicros);
  EXPECT_EQ(*DateTimeMicrosOf("9999-12-31T23:59:59.999999Z"), kMaxDateTimeMicros);
  EXPECT_FALSE(DateTimeMicrosOf("2023-01-05T25:00:00Z").ok());
  EXPECT_FALSE(DateTimeMicrosOf("").ok());
}

TEST(TypedAccessorTest, FormatDateTimeKnownInstants) {
  EXPECT_EQ(FormatDateTime(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatDateTime(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(FormatDateTime(1), "1970-01-01T00:00:00.000001Z");
  EXPECT_EQ(FormatDateTime(-kMicrosPerDay), "1969-12-31T00:00:00Z");
  EXPECT_EQ(FormatDateTime(int64_t{1'700'000'000} * 1'000'000 + 120'000), "2023-11-14T22:13:20.120000Z");
  EXPECT_EQ(FormatDateTime(kMinDateTimeMicros), "0001-01-01T00:00:00Z");
  EXPECT_EQ(FormatDateTime(kMaxDateTimeMicros), "9999-12-31T23:59:59.999999Z");
}

TEST(TypedAccessorTest, FormatDateTimeOutsideTheRangeDoesNotCrash) {
  EXPECT_EQ(FormatDateTime(kMaxDateTimeMicros + 1), "10000-01-01T00:00:00Z");
  EXPECT_FALSE(FormatDateTime(kMinDateTimeMicros - 1).empty());
  EXPECT_FALSE(FormatDateTime(std::numeric_limits<int64_t>::min()).empty());
  EXPECT_FALSE(FormatDateTime(std::numeric_limits<int64_t>::max()).empty());
}

TEST(TypedAccessorTest, DateTimeRoundTripsRandomInstants) {
  std::mt19937_64 rng(20240229);
  std::uniform_int_distribution<int64_t> any(kMinDateTimeMicros, kMaxDateTimeMicros);
  std::uniform_int_distribution<int64_t> whole_seconds(kMinDateTimeMicros / 1'000'000, kMaxDateTimeMicros / 1'000'000);
  for (int i = 0; i < 20000; ++i) {
    const int64_t micros = (i % 2 == 0) ? any(rng) : whole_seconds(rng) * 1'000'000;
    const std::string text = FormatDateTime(micros);
    absl::StatusOr<int64_t> back = DateTimeMicrosOf(text);
    ASSERT_TRUE(back.ok()) << text << " " << back.status();
    ASSERT_EQ(*back, micros) << text;
    absl::StatusOr<std::string> normalized = NormalizeValue(AttributeType::kDateTime, text);
    ASSERT_TRUE(normalized.ok()) << text;
    ASSERT_EQ(*normalized, text);
  }
}

// ----- EMAIL -----

TEST(NormalizeValueTest, EmailGoodValues) {
  ExpectGood(AttributeType::kEmail,
             {
                 {"bob@example.com", "bob@example.com"},
                 {"  Bob@Example.COM  ", "bob@example.com"},
                 {"\tALICE.SMITH@MAIL.EXAMPLE.CO.IN\r\n", "alice.smith@mail.example.co.in"},
                 {"first.last+tag@sub-domain.example.org", "first.last+tag@sub-domain.example.org"},
                 {"a@b.co", "a@b.co"},
                 {"x_y-z@123.example.io", "x_y-z@123.example.io"},
                 {"!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~@example.com"},
                 {std::string(64, 'l') + "@example.com", std::string(64, 'l') + "@example.com"},
                 {"u@" + std::string(63, 'd') + ".com", "u@" + std::string(63, 'd') + ".com"},
                 {"u@xn--80ak6aa92e.com", "u@xn--80ak6aa92e.com"},
             });
}

TEST(NormalizeValueTest, EmailBadValuesSayWhy) {
  std::string long_domain;
  while (long_domain.size() < 260) long_domain += std::string(9, 'd') + ".";
  long_domain += "com";
  ExpectBad(AttributeType::kEmail,
            {
                {"bob@", "\"bob@\" is not a valid EMAIL: missing domain"},
                {"bob", "missing @"},
                {"bob.example.com", "missing @"},
                {"@example.com", "empty local part"},
                {"a@b@example.com", "more than one @"},
                {std::string(65, 'l') + "@example.com", "local part longer than 64"},
                {".bob@example.com", "starts or ends with a dot"},
                {"bob.@example.com", "starts or ends with a dot"},
                {"bo..b@example.com", "two dots in a row"},
                {"bo b@example.com", "invalid character in the local part"},
                {"bob,x@example.com", "invalid character in the local part"},
                {"\"bob\"@example.com", "invalid character in the local part"},
                {"b\xC3\xB6"
                 "b@example.com",
                 "non-ASCII"},
                {"bob@ex\xC3\xA4mple.com", "non-ASCII"},
                {"bob@example", "no dot"},
                {"bob@localhost", "no dot"},
                {"bob@.example.com", "empty label"},
                {"bob@example..com", "empty label"},
                {"bob@example.com.", "empty label"},
                {"bob@-example.com", "starts or ends with a hyphen"},
                {"bob@example-.com", "starts or ends with a hyphen"},
                {"bob@exa_mple.com", "invalid character"},
                {"bob@example.c", "top-level domain"},
                {"bob@example.c0m", "top-level domain"},
                {"bob@127.0.0.1", "top-level domain"},
                {"bob@[127.0.0.1]", "bad domain"},
                {"bob@" + std::string(64, 'd') + ".com", "label longer than 63"},
                {"bob@" + long_domain, "domain longer than 253"},
                {std::string(64, 'l') + "@" + long_domain.substr(0, 200) + "com", "longer than 254"},
            });
}

// ----- MOBILE -----

TEST(NormalizeValueTest, MobileWithDefaultCountryCode91) {
  ExpectGood(AttributeType::kMobile, {
                                         {"9876543210", "+919876543210"},
                                         {"09876543210", "+919876543210"},
                                         {"98765 43210", "+919876543210"},
                                         {"98765-43210", "+919876543210"},
                                         {"(987) 654.3210", "+919876543210"},
                                         {"+91 98765 43210", "+919876543210"},
                                         {"+91-98765-43210", "+919876543210"},
                                         {"0091 98765 43210", "+919876543210"},
                                         {"00919876543210", "+919876543210"},
                                         {"+919876543210", "+919876543210"},
                                         {"+1 (415) 555-0123", "+14155550123"},
                                         {"001 415 555 0123", "+14155550123"},
                                         {"+44 20 7946 0958", "+442079460958"},
                                         {"+44 (0)20 7946 0958", "+442079460958"},  // trunk 0 written out
                                         {"+44 (0) 20 7946 0958", "+442079460958"},
                                         {"0044 (0)20 7946 0958", "+442079460958"},
                                         {"+49(0)30 1234567", "+49301234567"},
                                         {"(0)98765 43210", "+919876543210"},       // national: a trunk 0 all the same
                                         {"(0)(0)44 2079460958", "+442079460958"},  // not after a prefix: digits
                                         {"919876543210", "+91919876543210"},       // documented: no guessing
                                         {"123456", "+91123456"},                   // 8 digits in all
                                         {"+123456789012345", "+123456789012345"},  // 15 digits
                                     });
}

TEST(NormalizeValueTest, MobileWithDefaultCountryCode1) {
  ValueOptions us;
  us.default_country_code = "1";
  ExpectGood(AttributeType::kMobile,
             {
                 {"(415) 555-0123", "+14155550123"},
                 {"415.555.0123", "+14155550123"},
                 {"0415 555 0123", "+14155550123"},
                 {"+91 98765 43210", "+919876543210"},
                 {"0044 20 7946 0958", "+442079460958"},
             },
             us);
  us.default_country_code = "+1";  // a leading '+' in the option is tolerated
  ExpectGood(AttributeType::kMobile, {{"4155550123", "+14155550123"}}, us);
}

// NANP's trunk prefix is '1', dialled before the 10 digits within the US and Canada: with default
// country code 1 it is dropped as a trunk '0' is elsewhere, never read as the start of the number.
TEST(NormalizeValueTest, MobileDropsTheNanpTrunkOneWithDefaultCountryCode1) {
  ValueOptions us;
  us.default_country_code = "1";
  ExpectGood(AttributeType::kMobile,
             {
                 {"(415) 555-0100", "+14155550100"},
                 {"1-415-555-0100", "+14155550100"},
                 {"1 (415) 555-0100", "+14155550100"},
                 {"14155550100", "+14155550100"},
                 {"+1 415 555 0100", "+14155550100"},
                 {"001 415 555 0100", "+14155550100"},
                 {"1415555010", "+11415555010"},      // 10 digits: no trunk prefix
                 {"141555501001", "+1141555501001"},  // 12 digits: no trunk prefix
                 {"24155550100", "+124155550100"},    // 11 digits, not starting with 1
             },
             us);
  us.default_country_code = "+1";
  ExpectGood(AttributeType::kMobile, {{"1-415-555-0100", "+14155550100"}}, us);
  // Other country codes keep a leading 1: it is part of the national number.
  for (const char* code : {"91", "44", "7", "358"}) {
    ValueOptions other;
    other.default_country_code = code;
    ExpectGood(AttributeType::kMobile, {{"14155550100", std::string("+") + code + "14155550100"}}, other);
  }
}

TEST(NormalizeValueTest, MobileBadValues) {
  ExpectBad(AttributeType::kMobile, {
                                        {"98765abcde", "letters are not allowed"},
                                        {"call me", "letters are not allowed"},
                                        {"+91 98765 43210 ext 5", "letters are not allowed"},
                                        {"9876+543210", "'+' is only allowed at the start"},
                                        {"++919876543210", "'+' is only allowed at the start"},
                                        {"98765/43210", "invalid character"},
                                        {"98765#43210", "invalid character"},
                                        {"+", "no digits"},
                                        {"- ()", "no digits"},
                                        {"12345", "7 digits with the country code"},
                                        {"+1234567", "7 digits"},
                                        {"00", "0 digits"},
                                        {"0", "2 digits"},
                                        {"+1234567890123456", "16 digits"},
                                        {"98765432109876543210", "22 digits"},
                                        {"0012345678901234567", "17 digits"},
                                        {"+0919876543210", "country code cannot start with 0"},
                                        {"000919876543210", "country code cannot start with 0"},
                                    });
}

TEST(NormalizeValueTest, MobileRejectsABadDefaultCountryCode) {
  for (const char* code : {"", "+", "1234", "0", "9a", "+-1"}) {
    ValueOptions options;
    options.default_country_code = code;
    absl::StatusOr<std::string> got = NormalizeValue(AttributeType::kMobile, "9876543210", options);
    ASSERT_FALSE(got.ok()) << code;
    EXPECT_THAT(std::string(got.status().message()), HasSubstr("default country code")) << code;
  }
}

// ----- CompareValues -----

TEST(CompareValuesTest, OrdersEachTypeByItsMeaning) {
  EXPECT_LT(CompareValues(AttributeType::kInteger, "9", "10"), 0);  // bytewise would say >
  EXPECT_LT(CompareValues(AttributeType::kInteger, "-10", "-9"), 0);
  EXPECT_EQ(CompareValues(AttributeType::kInteger, "7", "7"), 0);
  EXPECT_LT(CompareValues(AttributeType::kInteger, "-9223372036854775808", "9223372036854775807"), 0);
  EXPECT_LT(CompareValues(AttributeType::kDecimal, "9.5", "10"), 0);
  EXPECT_GT(CompareValues(AttributeType::kDecimal, "-0.5", "-1"), 0);
  EXPECT_LT(CompareValues(AttributeType::kBoolean, "false", "true"), 0);
  EXPECT_EQ(CompareValues(AttributeType::kBoolean, "true", "true"), 0);
  EXPECT_LT(CompareValues(AttributeType::kDate, "1969-12-31", "1970-01-01"), 0);
  EXPECT_GT(CompareValues(AttributeType::kDate, "2000-03-01", "2000-02-29"), 0);
  // '.' sorts before 'Z', so bytewise order would put the later instant first.
  EXPECT_LT(CompareValues(AttributeType::kDateTime, "2023-01-05T10:20:30Z", "2023-01-05T10:20:30.000001Z"), 0);
  EXPECT_EQ(CompareValues(AttributeType::kDateTime, "2023-01-05T10:20:30Z", "2023-01-05T10:20:30Z"), 0);
  EXPECT_LT(CompareValues(AttributeType::kText, "B", "a"), 0);  // bytewise: upper case first
  EXPECT_LT(CompareValues(AttributeType::kEmail, "a@x.com", "b@x.com"), 0);
  EXPECT_LT(CompareValues(AttributeType::kMobile, "+14155550123", "+919876543210"), 0);
  EXPECT_EQ(CompareValues(AttributeType::kText, "same", "same"), 0);
}

TEST(CompareValuesTest, UnparsableAndUnsetValuesSortFirst) {
  for (AttributeType type : {AttributeType::kInteger, AttributeType::kDecimal, AttributeType::kBoolean,
                             AttributeType::kDate, AttributeType::kDateTime}) {
    const std::string smallest = *NormalizeValue(type, type == AttributeType::kInteger   ? "-9223372036854775808"
                                                       : type == AttributeType::kDecimal ? "-999999999999999999"
                                                       : type == AttributeType::kBoolean ? "false"
                                                       : type == AttributeType::kDate    ? "0001-01-01"
                                                                                         : "0001-01-01T00:00:00Z");
    EXPECT_LT(CompareValues(type, "", smallest), 0) << AttributeTypeName(type);
    EXPECT_GT(CompareValues(type, smallest, ""), 0) << AttributeTypeName(type);
    EXPECT_LT(CompareValues(type, "garbage", smallest), 0) << AttributeTypeName(type);
    EXPECT_LT(CompareValues(type, "", "garbage"), 0) << AttributeTypeName(type);
    EXPECT_EQ(CompareValues(type, "garbage", "garbage"), 0) << AttributeTypeName(type);
  }
}

// Sorting random numbers by CompareValues on their canonical text gives numeric order.
TEST(CompareValuesTest, RandomIntegersSortNumerically) {
  std::mt19937_64 rng(42);
  std::vector<int64_t> numbers = {0, -1, 1, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
  std::uniform_int_distribution<int> digits(1, 19);
  for (int i = 0; i < 2000; ++i) {
    // Spread over magnitudes so that lengths differ, not just values.
    int64_t bound = 1;
    for (int d = digits(rng); d > 1; --d) bound *= 10;
    std::uniform_int_distribution<int64_t> value(-bound, bound);
    numbers.push_back(value(rng));
  }
  std::vector<std::string> texts;
  for (int64_t n : numbers) texts.push_back(*NormalizeValue(AttributeType::kInteger, std::to_string(n)));
  for (size_t i = 0; i + 1 < numbers.size(); ++i) {
    const int expected = (numbers[i] > numbers[i + 1]) - (numbers[i] < numbers[i + 1]);
    ASSERT_EQ(CompareValues(AttributeType::kInteger, texts[i], texts[i + 1]), expected)
        << texts[i] << " vs " << texts[i + 1];
  }
  std::sort(texts.begin(), texts.end(), [](const std::string& a, const std::string& b) {
    return CompareValues(AttributeType::kInteger, a, b) < 0;
  });
  std::sort(numbers.begin(), numbers.end());
  for (size_t i = 0; i < numbers.size(); ++i) {
    ASSERT_EQ(*IntegerOf(texts[i]), numbers[i]);
  }
}

TEST(CompareValuesTest, RandomDecimalsSortLikeTheirScaledIntegers) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> int_digits(0, 9);
  std::uniform_int_distribution<int> frac_digits(0, 9);
  std::uniform_int_distribution<int> digit(0, 9);
  std::vector<std::string> texts;
  for (int i = 0; i < 2000; ++i) {
    std::string raw = (i % 2 == 0) ? "-" : "";
    for (int d = int_digits(rng); d > 0; --d) raw += static_cast<char>('0' + digit(rng));
    raw += '.';
    for (int d = frac_digits(rng); d > 0; --d) raw += static_cast<char>('0' + digit(rng));
    if (raw == "." || raw == "-.") raw += '0';
    absl::StatusOr<std::string> canonical = NormalizeValue(AttributeType::kDecimal, raw);
    ASSERT_TRUE(canonical.ok()) << raw << " " << canonical.status();
    texts.push_back(*canonical);
  }
  for (size_t i = 0; i + 1 < texts.size(); ++i) {
    const absl::int128 a = *DecimalScaledOf(texts[i]);
    const absl::int128 b = *DecimalScaledOf(texts[i + 1]);
    const int expected = (a > b) - (a < b);
    ASSERT_EQ(CompareValues(AttributeType::kDecimal, texts[i], texts[i + 1]), expected)
        << texts[i] << " vs " << texts[i + 1];
    ASSERT_EQ(FormatDecimalScaled(a), texts[i]);
    // Where doubles are distinct, they agree with the exact order.
    const double da = *DecimalOf(texts[i]);
    const double db = *DecimalOf(texts[i + 1]);
    if (da != db) {
      ASSERT_EQ((da > db) - (da < db), expected);
    }
  }
}

TEST(CompareValuesTest, RandomDatesAndDateTimesSortChronologically) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> day(kMinDateDays, kMaxDateDays);
  std::uniform_int_distribution<int64_t> micros(kMinDateTimeMicros, kMaxDateTimeMicros);
  for (int i = 0; i < 2000; ++i) {
    const int32_t a = day(rng);
    const int32_t b = (i % 3 == 0) ? a : day(rng);
    ASSERT_EQ(CompareValues(AttributeType::kDate, FormatDate(a), FormatDate(b)), (a > b) - (a < b));
    const int64_t x = micros(rng);
    const int64_t y = (i % 3 == 0) ? x + (i % 2 == 0 ? 1 : -1) * (i % 1000) : micros(rng);
    if (y < kMinDateTimeMicros || y > kMaxDateTimeMicros) continue;
    ASSERT_EQ(CompareValues(AttributeType::kDateTime, FormatDateTime(x), FormatDateTime(y)), (x > y) - (x < y))
        << FormatDateTime(x) << " vs " << FormatDateTime(y);
  }
}

// CSV exports copy cells of these types without scanning them for quoting
// (CanonicalNeedsNoCsvQuotes): random valid inputs, spaces, separators and odd case included,
// must never normalise to a value that would need quotes.
TEST(NormalizeValueTest, CanonicalValuesOfEveryTypeButTextNeedNoCsvQuotes) {
  for (AttributeType type : kAllAttributeTypes) {
    EXPECT_EQ(CanonicalNeedsNoCsvQuotes(type), type != AttributeType::kText) << AttributeTypeName(type);
  }
  EXPECT_FALSE(CanonicalNeedsNoCsvQuotes(static_cast<AttributeType>(99)));
  std::mt19937_64 random(20261126);
  auto pick = [&](std::string_view choices) { return choices[random() % choices.size()]; };
  auto number = [&](int digits) {
    std::string out;
    for (int i = 0; i < digits; ++i) out.push_back(pick("0123456789"));
    return out;
  };
  const std::string atext = "abcxyzABCXYZ0189!#$%&'*+-/=?^_`{|}~";
  auto raw_of = [&](AttributeType type) -> std::string {
    const std::string pad(random() % 3, pick(" \t"));
    switch (type) {
      case AttributeType::kInteger:
        return pad + (random() % 2 ? "-" : "") + number(1 + random() % 18) + pad;
      case AttributeType::kDecimal:
        return pad + (random() % 2 ? "-" : "") + number(random() % 9) + "." + number(random() % 9) + pad;
      case AttributeType::kBoolean:
        return pad + std::string(1, pick("tfyn01")) + pad;
      case AttributeType::kDate:
        return pad +
               fmt::format("{:04}{}{}{}{}", 1 + random() % 9999, pick("-/"), 1 + random() % 12, pick("-/"),
                           1 + random() % 28) +
               pad;
      case AttributeType::kDateTime:
        return pad +
               fmt::format("{:04}-{:02}-{:02}{}{}:{:02}:{:02}.{}{}", 1 + random() % 9998, 1 + random() % 12,
                           1 + random() % 28, pick("Tt "), random() % 24, random() % 60, random() % 60,
                           number(1 + random() % 9), random() % 2 ? "Z" : "+05:30") +
               pad;
      case AttributeType::kEmail: {
        std::string local;
        for (int i = 1 + random() % 10; i > 0; --i) local.push_back(pick(atext));
        return pad + local + "@Example" + number(2) + "." + (random() % 2 ? "COM" : "in") + pad;
      }
      case AttributeType::kMobile:
        return pad + (random() % 2 ? "+44 (0)" : "0") + number(3) + pick(" -.") + number(3) + pick(" -.") + number(4) +
               pad;
      case AttributeType::kText:
        break;
    }
    return "";
  };
  for (AttributeType type : kAllAttributeTypes) {
    if (type == AttributeType::kText) continue;
    int valid = 0;
    for (int i = 0; i < 20000; ++i) {
      const std::string raw = raw_of(type);
      absl::StatusOr<std::string> canonical = NormalizeValue(type, raw);
      if (!canonical.ok() || canonical->empty()) continue;
      ++valid;
      const std::string& value = *canonical;
      ASSERT_EQ(value.find_first_of(",\"\r\n"), std::string::npos) << AttributeTypeName(type) << " " << value;
      ASSERT_NE(value.front(), ' ') << value;
      ASSERT_NE(value.front(), '\t') << value;
      ASSERT_NE(value.back(), ' ') << value;
      ASSERT_NE(value.back(), '\t') << value;
    }
    EXPECT_GT(valid, 1000) << AttributeTypeName(type) << ": the generator makes too few valid values";
  }
}

// A prefix typed into a search becomes the start of the canonical values it means, so that a
// mobile-keyed tenant finds +919876543210 from "98765" as exact search finds it from "9876543210".
TEST(CanonicalPrefixTest, PrefixesAreNormalisedLikeTheValuesTheyStart) {
  const ValueOptions india{.default_country_code = "91"};
  const ValueOptions nanp{.default_country_code = "+1"};
  EXPECT_EQ(CanonicalPrefix(AttributeType::kMobile, "98765", india), "+9198765");
  EXPECT_EQ(CanonicalPrefix(AttributeType::kMobile, " +91 98765 ", india), "+9198765");
  EXPECT_EQ(CanonicalPrefix(AttributeType::kMobile, "098-765", india), "+9198765");
  EXPECT_EQ(CanonicalPrefix(AttributeType::kMobile, "0044 (0)20 79", india), "+442079");
  EXPECT_EQ(CanonicalPrefix(AttributeType::kMobile, "+44 (0)20", india), "+4420");
  EXPECT_EQ(CanonicalPrefix(AttributeType::kMobile, "+44 (0", india), "+44");  // "(0)" half typed
  EXPECT_EQ(CanonicalPrefix(AttributeType::kMobile, "+44 (", india), "+44");
  EXPECT_EQ(CanonicalPrefix(AttributeType::kMobile, "1-415-555", nanp), "+1415555");
  EXPECT_EQ(CanonicalPrefix(AttributeType::kMobile, "(415) 555", nanp), "+1415555");
  EXPECT_EQ(CanonicalPrefix(AttributeType::kMobile, "98a", india), std::nullopt);
  EXPECT_EQ(CanonicalPrefix(AttributeType::kEmail, "  Bob.S ", india), "bob.s");
  EXPECT_EQ(CanonicalPrefix(AttributeType::kText, "  ann ", india), "ann ");
  EXPECT_EQ(CanonicalPrefix(AttributeType::kInteger, " 12 ", india), "12");
  EXPECT_EQ(CanonicalPrefix(AttributeType::kText, " \t ", india), "");
  // Every canonical number starts with the prefix of any of its own beginnings.
  for (std::string_view raw :
       {"+91 98765 43210", "09876543210", "9876543210", "0091 98765 43210", "+44 (0)20 7946 0958", "(098765) 43210"}) {
    const std::string canonical = *NormalizeValue(AttributeType::kMobile, raw, india);
    for (size_t n = 1; n <= raw.size(); ++n) {
      std::optional<std::string> prefix = CanonicalPrefix(AttributeType::kMobile, raw.substr(0, n), india);
      ASSERT_TRUE(prefix.has_value()) << raw.substr(0, n);
      EXPECT_TRUE(canonical.starts_with(*prefix)) << raw.substr(0, n) << " -> " << *prefix;
    }
  }
}

}  // namespace
}  // namespace contacts
