#include "common/csv/csv_writer.h"

#include <random>
#include <regex>
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

// ----- CsvRowWriter: the fast path exports use -----

// The rules of csv_writer.h written out the slow and obvious way, independently of the writer.
std::string ReferenceRow(const std::vector<std::string>& fields, const CsvWriteOptions& options) {
  if (fields.size() == 1 && fields[0].empty()) return "\"\"\r\n";
  auto plain_number = [](const std::string& s) {
    static const std::regex kNumber(R"([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)");
    return std::regex_match(s, kNumber);
  };
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += options.delimiter;
    std::string value = fields[i];
    const bool numeric = i < options.numeric_columns.size() && options.numeric_columns[i];
    if (options.neutralize_formulas && !value.empty() && std::string("=+-@\t\r").find(value[0]) != std::string::npos &&
        !(numeric && plain_number(value))) {
      value = "'" + value;
    }
    bool quote = false;
    for (char c : value) quote = quote || c == options.delimiter || c == '"' || c == '\r' || c == '\n';
    if (!value.empty() &&
        (value.front() == ' ' || value.front() == '\t' || value.back() == ' ' || value.back() == '\t')) {
      quote = true;
    }
    if (quote) {
      std::string quoted = "\"";
      for (char c : value) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
      value = quoted + "\"";
    }
    out += value;
  }
  return out + "\r\n";
}

// WriteRow's output, checking that it stays within MaxRowBytes (the bytes after it keep a canary).
std::string WrittenRow(const CsvRowWriter& writer, const std::vector<std::string>& fields) {
  std::vector<std::string_view> views(fields.begin(), fields.end());
  const size_t bound = CsvRowWriter::MaxRowBytes(views.data(), views.size());
  std::string buffer(bound + 16, '\x7f');
  char* end = writer.WriteRow(buffer.data(), views.data(), views.size());
  const size_t written = static_cast<size_t>(end - buffer.data());
  EXPECT_LE(written, bound);
  EXPECT_EQ(buffer.substr(bound), std::string(16, '\x7f')) << "wrote past MaxRowBytes";
  return buffer.substr(0, written);
}

TEST(CsvRowWriterTest, QuotesCommasQuotesAndLineBreaksOnly) {
  const CsvRowWriter writer;
  EXPECT_EQ(WrittenRow(writer, {"plain", "a,b", "say \"hi\"", "two\nlines", "cr\rhere", "in side"}),
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\rhere\",in side\r\n");
  EXPECT_EQ(WrittenRow(writer, {"\"", "\"\"", ",", "\r\n"}), "\"\"\"\",\"\"\"\"\"\",\",\",\"\r\n\"\r\n");
  EXPECT_EQ(WrittenRow(writer, {" lead", "trail ", "\ttab", "tab\t", " "}),
            "\" lead\",\"trail \",\"\ttab\",\"tab\t\",\" \"\r\n");
}

TEST(CsvRowWriterTest, EmptyAndMissingValuesAreEmptyCells) {
  const CsvRowWriter writer;
  EXPECT_EQ(WrittenRow(writer, {"", "", ""}), ",,\r\n");
  EXPECT_EQ(WrittenRow(writer, {"a", "", "c"}), "a,,c\r\n");
  EXPECT_EQ(WrittenRow(writer, {""}), "\"\"\r\n");  // not a blank line, which readers skip
  EXPECT_EQ(WrittenRow(writer, {}), "\r\n");
}

TEST(CsvRowWriterTest, UnicodePassesThroughUntouched) {
  const CsvRowWriter writer;
  EXPECT_EQ(WrittenRow(writer, {"S\xC3\xA3o Paulo", "Z\xC3\xBCrich",
                                "\xE2\x82\xAC"
                                "5",
                                "\xF0\x9F\x98\x80,x"}),
            "S\xC3\xA3o Paulo,Z\xC3\xBCrich,\xE2\x82\xAC"
            "5,\"\xF0\x9F\x98\x80,x\"\r\n");
}

TEST(CsvRowWriterTest, NeutralisesFormulasButNotNumbersInNumericColumns) {
  CsvWriteOptions options;
  options.neutralize_formulas = true;
  options.numeric_columns = {false, true, true, false};
  const CsvRowWriter writer(options);
  EXPECT_EQ(WrittenRow(writer, {"-5", "-5", "+1.5e3", "=1+2"}), "'-5,-5,+1.5e3,'=1+2\r\n");
  EXPECT_EQ(WrittenRow(writer, {"@cmd", "-2+3+cmd|' /C calc'!A0", "=5", "\tx"}),
            "'@cmd,'-2+3+cmd|' /C calc'!A0,'=5,'\tx\r\n");
  // Neutralised and quoted: the quote prefix goes inside the quotes.
  EXPECT_EQ(WrittenRow(writer, {"=A1,B1", "-x\"y", "\r=cmd", "-cmd "}),
            "\"'=A1,B1\",\"'-x\"\"y\",\"'\r=cmd\",\"'-cmd \"\r\n");
  // Columns past numeric_columns are text.
  EXPECT_EQ(WrittenRow(writer, {"a", "1", "2", "3", "-4"}), "a,1,2,3,'-4\r\n");
  // Without neutralize_formulas nothing gets a prefix.
  EXPECT_EQ(WrittenRow(CsvRowWriter(), {"=1+2", "-5", "@x"}), "=1+2,-5,@x\r\n");
}

TEST(CsvRowWriterTest, MatchesTheReferenceOnRandomRows) {
  std::mt19937 rng(7);
  const std::string alphabet[] = {"a",  "Z", "0", "7", ".", "e", ",", ";",        "\t",           "\"", "\n",
                                  "\r", " ", "=", "+", "-", "@", "'", "\xC3\xA9", "\xE2\x82\xAC", "x"};
  for (int round = 0; round < 2000; ++round) {
    CsvWriteOptions options;
    options.delimiter = ",;\t"[rng() % 3];
    options.neutralize_formulas = rng() % 4 != 0;
    std::vector<std::string> fields(rng() % 7);
    for (auto& field : fields) {
      const size_t len = rng() % 40 < 4 ? 20 + rng() % 60 : rng() % 6;
      for (size_t i = 0; i < len; ++i) field += alphabet[rng() % std::size(alphabet)];
      options.numeric_columns.push_back(rng() % 2 == 0);
    }
    const CsvRowWriter writer(options);
    ASSERT_EQ(WrittenRow(writer, fields), ReferenceRow(fields, options))
        << "round " << round << " delimiter " << static_cast<int>(options.delimiter);
    std::string appended = "prefix";
    std::vector<std::string_view> views(fields.begin(), fields.end());
    writer.AppendRow(&appended, views.data(), views.size());
    ASSERT_EQ(appended, "prefix" + ReferenceRow(fields, options));
  }
}

TEST(CsvRowWriterTest, OneSpecialByteAnywhereInALongFieldIsFound) {
  // A special byte at every offset of fields of every length up to 40 forces the quotes, plain
  // fields get none (the random tests rarely make long fields without several specials).
  for (const char delimiter : {',', ';', '\t', '|'}) {
    CsvWriteOptions options;
    options.delimiter = delimiter;
    const CsvRowWriter writer(options);
    for (size_t len = 1; len <= 40; ++len) {
      const std::string plain(len, 'k');
      ASSERT_EQ(WrittenRow(writer, {plain, "x"}), ReferenceRow({plain, "x"}, options)) << len;
      for (const char special : {delimiter, '"', '\r', '\n'}) {
        for (size_t at = 0; at < len; ++at) {
          std::string field = plain;
          field[at] = special;
          ASSERT_EQ(WrittenRow(writer, {field, "x"}), ReferenceRow({field, "x"}, options))
              << "len " << len << " at " << at << " byte " << static_cast<int>(special);
        }
      }
      // Bytes one bit away from a special one are plain.
      for (const char near : {'\x0b', '\x0c', '\x2d', '\x23', '\xa2', '\x8d', '\x7f', '\xff'}) {
        std::string field = plain;
        field[len / 2] = near;
        ASSERT_EQ(WrittenRow(writer, {field, "x"}), ReferenceRow({field, "x"}, options)) << len;
      }
    }
  }
}

TEST(CsvRowWriterTest, AnExportedTableReadsBackExactly) {
  CsvWriteOptions options;
  options.neutralize_formulas = true;
  options.numeric_columns = {false, true};
  const CsvRowWriter writer(options);
  const std::vector<std::vector<std::string>> rows = {
      {"C1", "-5", "plain", "S\xC3\xA3o Paulo"}, {"C2", "", "a,\"b\"\nc", " padded "}, {"C3", "12.5", "", "x\r\ny"}};
  std::string csv;
  for (const auto& row : rows) {
    std::vector<std::string_view> views(row.begin(), row.end());
    writer.AppendRow(&csv, views.data(), views.size());
  }
  EXPECT_EQ(ReadAll(csv, ','), rows);
}

// Plain columns skip the scan for bytes that force quotes: for values that have none, the output
// is byte for byte the scanned output, formula neutralisation and numeric columns included.
TEST(CsvRowWriterTest, PlainColumnsWriteWhatTheScanWouldForValuesThatNeedNoQuotes) {
  const std::vector<std::string_view> fields = {"42",   "-17", "=cmd@x.com", "+919876543210", "2026-11-26",
                                                "true", "",    "-1.5",       "@home",         "a'b@c.io"};
  CsvWriteOptions scanned;
  scanned.neutralize_formulas = true;
  scanned.numeric_columns = {true, true, false, false, false, false, false, true, false, false};
  CsvWriteOptions plain = scanned;
  plain.plain_columns.assign(fields.size(), true);
  std::string expected, got;
  CsvRowWriter(scanned).AppendRow(&expected, fields.data(), fields.size());
  CsvRowWriter(plain).AppendRow(&got, fields.data(), fields.size());
  EXPECT_EQ(got, expected);
  EXPECT_EQ(got, "42,-17,'=cmd@x.com,'+919876543210,2026-11-26,true,,-1.5,'@home,a'b@c.io\r\n");
}

// The caller vouches for plain columns: a value that breaks the rule is not quoted (which is why
// only the typed-value module's canonical forms are declared plain).
TEST(CsvRowWriterTest, PlainColumnsAreNotScanned) {
  const std::vector<std::string_view> fields = {"a,b", "a,b"};
  CsvWriteOptions options;
  options.plain_columns = {true, false};
  std::string out;
  CsvRowWriter(options).AppendRow(&out, fields.data(), fields.size());
  EXPECT_EQ(out, "a,b,\"a,b\"\r\n");
}

}  // namespace
}  // namespace contacts
