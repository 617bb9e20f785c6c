#include "common/csv/csv_writer.h"

#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/csv/csv_reader.h"

namespace contacts {
namespace {

std::string Field(std::string_view field, char delimiter = ',') {
  std::string out;
  AppendCsvField(&out, field, delimiter);
  return out;
}

TEST(CsvWriterTest, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(Field(""), "");
  EXPECT_EQ(Field("plain"), "plain");
  EXPECT_EQ(Field("in side"), "in side");
  EXPECT_EQ(Field("a,b"), "\"a,b\"");
  EXPECT_EQ(Field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(Field("\""), "\"\"\"\"");
  EXPECT_EQ(Field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(Field("cr\rhere"), "\"cr\rhere\"");
  EXPECT_EQ(Field(" lead"), "\" lead\"");
  EXPECT_EQ(Field("trail "), "\"trail \"");
  EXPECT_EQ(Field("\ttab"), "\"\ttab\"");
  EXPECT_EQ(Field("a;b"), "a;b");
  EXPECT_EQ(Field("a;b", ';'), "\"a;b\"");
  EXPECT_EQ(Field("a,b", ';'), "a,b");
}

TEST(CsvWriterTest, RowEndsWithCrlf) {
  std::string out;
  AppendCsvRow(&out, {"a", "b,c", ""});
  AppendCsvRow(&out, {"x"});
  EXPECT_EQ(out, "a,\"b,c\",\r\nx\r\n");
}

TEST(CsvWriterTest, SingleEmptyFieldRowIsNotABlankLine) {
  std::string out;
  AppendCsvRow(&out, {""});
  EXPECT_EQ(out, "\"\"\r\n");
}

TEST(CsvWriterTest, RowUsesTheConfiguredDelimiter) {
  std::string out;
  CsvWriteOptions options;
  options.delimiter = '\t';
  AppendCsvRow(&out, {"a b", "c\td", "e,f"}, options);
  EXPECT_EQ(out, "a b\t\"c\td\"\te,f\r\n");
}

TEST(CsvWriterTest, FormulaLikeCellsAreDetected) {
  for (std::string_view cell : {"=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\r=cmd", "=HYPERLINK(\"http://x\")"}) {
    EXPECT_TRUE(IsFormulaLike(cell)) << cell;
  }
  for (std::string_view cell : {"", "abc", "1+2", " =1", "a=b", "'=1"}) EXPECT_FALSE(IsFormulaLike(cell)) << cell;
}

TEST(CsvWriterTest, NumbersInNumericColumnsAreLeftAlone) {
  for (std::string_view number : {"-5", "+3", "-3.25", "-.5", "-1e5", "+2.5E-3"}) {
    EXPECT_FALSE(IsFormulaLike(number, /*numeric_cell=*/true)) << number;
    EXPECT_TRUE(IsFormulaLike(number, /*numeric_cell=*/false)) << number;
  }
  // Not plain numbers: still neutralised in a numeric column.
  for (std::string_view cell : {"-2+3+cmd|' /C calc'!A0", "-", "-e5", "-1e", "=5", "-5 ", "--5", "-1.2.3"}) {
    EXPECT_TRUE(IsFormulaLike(cell, /*numeric_cell=*/true)) << cell;
  }
}

TEST(CsvWriterTest, NeutralizeFormulaPrefixesAQuote) {
  EXPECT_EQ(NeutralizeFormula("=1+2"), "'=1+2");
  EXPECT_EQ(NeutralizeFormula("@cmd"), "'@cmd");
  EXPECT_EQ(NeutralizeFormula("-5"), "'-5");
  EXPECT_EQ(NeutralizeFormula("-5", /*numeric_cell=*/true), "-5");
  EXPECT_EQ(NeutralizeFormula("Pune"), "Pune");
}

TEST(CsvWriterTest, NeutralizedFieldIsQuotedWhenItsContentNeedsIt) {
  auto neutralized = [](std::string_view field, bool numeric = false) {
    std::string out;
    AppendNeutralizedCsvField(&out, field, numeric);
    return out;
  };
  EXPECT_EQ(neutralized("=1+2"), "'=1+2");
  EXPECT_EQ(neutralized("=A1,B1"), "\"'=A1,B1\"");
  EXPECT_EQ(neutralized("=\"x\""), "\"'=\"\"x\"\"\"");
  EXPECT_EQ(neutralized("\tcmd"), "'\tcmd");
  EXPECT_EQ(neutralized("\r=cmd"), "\"'\r=cmd\"");
  EXPECT_EQ(neutralized("-cmd "), "\"'-cmd \"");
  EXPECT_EQ(neutralized("-5", true), "-5");
  EXPECT_EQ(neutralized("a,b"), "\"a,b\"");
  EXPECT_EQ(neutralized(""), "");
}

TEST(CsvWriterTest, RowNeutralizationRespectsNumericColumns) {
  std::string out;
  CsvWriteOptions options;
  options.neutralize_formulas = true;
  options.numeric_columns = {false, true};
  AppendCsvRow(&out, {"-5", "-5", "=x", "-5"}, options);
  EXPECT_EQ(out, "'-5,-5,'=x,'-5\r\n");
}

std::vector<std::vector<std::string>> ReadAll(const std::string& csv, char delimiter) {
  std::vector<std::vector<std::string>> rows;
  CsvPushParser parser(CsvDialect{delimiter});
  auto collect = [&](const CsvRecord& record) {
    rows.emplace_back(record.fields.begin(), record.fields.end());
    return absl::OkStatus();
  };
  EXPECT_TRUE(parser.Feed(csv, collect).ok());
  EXPECT_TRUE(parser.Finish(collect).ok());
  return rows;
}

TEST(CsvWriterTest, RandomFieldsRoundTripThroughTheReader) {
  std::mt19937 rng(20240611);
  const std::string alphabet[] = {"a",  "Z",  "0",    ",", ";", "\t", "\"",       "\"\"",
                                  "\n", "\r", "\r\n", " ", "=", "-",  "\xC3\xA9", "'"};
  for (const char delimiter : {',', ';', '\t'}) {
    std::vector<std::vector<std::string>> rows;
    for (int r = 0; r < 300; ++r) {
      std::vector<std::string> row(1 + rng() % 6);
      for (std::string& field : row) {
        const size_t len = rng() % 8;
        for (size_t i = 0; i < len; ++i) field += alphabet[rng() % std::size(alphabet)];
      }
      rows.push_back(row);
    }
    std::string csv;
    for (const auto& row : rows) {
      std::vector<std::string_view> views(row.begin(), row.end());
      CsvWriteOptions options;
      options.delimiter = delimiter;
      AppendCsvRow(&csv, views, options);
    }
    EXPECT_EQ(ReadAll(csv, delimiter), rows) << "delimiter " << static_cast<int>(delimiter);
  }
}

TEST(CsvWriterTest, NeutralizedRowsReadBackWithTheQuotePrefix) {
  std::string csv;
  CsvWriteOptions options;
  options.neutralize_formulas = true;
  AppendCsvRow(&csv, {"=1+2", "\r\n=x", "@a,b", "ok"}, options);
  EXPECT_EQ(ReadAll(csv, ','), (std::vector<std::vector<std::string>>{{"'=1+2", "'\r\n=x", "'@a,b", "ok"}}));
}

}  // namespace
}  // namespace contacts
