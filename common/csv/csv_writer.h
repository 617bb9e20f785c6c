// CSV output for exports: RFC 4180 quoting plus spreadsheet-formula neutralisation (OWASP "CSV
// injection": a cell starting with = + - @ TAB or CR may be run as a formula by Excel, LibreOffice
// or Google Sheets, so such cells get a leading single quote, which spreadsheets show as text).
//
// Output rows end with "\r\n" as RFC 4180 says; CsvReader accepts LF and CRLF alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace contacts {

// Appends `field` to *out, quoted ("..." with inner quotes doubled) when it contains `delimiter`,
// '"', CR or LF, or starts or ends with a space or a tab (which some readers trim). An empty field
// is written as nothing. No formula neutralisation: the reader gets back exactly `field`.
void AppendCsvField(std::string* out, std::string_view field, char delimiter = ',');

// True when a spreadsheet could evaluate `field` as a formula: it starts with '=', '+', '-', '@',
// TAB or CR. When `numeric_cell` is true (the column holds numbers) and the field is a plain
// number ([+-]digits[.digits][e[+-]digits], e.g. -5, +3.25, -1e5), returns false so numbers stay
// numbers; anything else in a numeric column is still neutralised.
bool IsFormulaLike(std::string_view field, bool numeric_cell = false);

// `field` with a leading ' when IsFormulaLike(field, numeric_cell), else `field` unchanged.
std::string NeutralizeFormula(std::string_view field, bool numeric_cell = false);

// AppendCsvField of NeutralizeFormula(field, numeric_cell), without the temporary string.
void AppendNeutralizedCsvField(std::string* out, std::string_view field, bool numeric_cell = false,
                               char delimiter = ',');

struct CsvWriteOptions {
  // Default: ','.
  char delimiter = ',';
  // Neutralise formula-like cells (see IsFormulaLike). Default: false (exact round trip).
  bool neutralize_formulas = false;
  // With neutralize_formulas: column i holds numbers when i < size() and numeric_columns[i].
  // Default: empty (no numeric columns).
  std::vector<bool> numeric_columns;
  // Column i never needs quotes when i < size() and plain_columns[i]: its values hold no
  // delimiter, '"', CR or LF and no space or tab at either end, as the canonical values of every
  // attribute type but TEXT do (common/values). Such cells are copied without the per-byte scan;
  // formula neutralisation still applies. The caller vouches for the values: a plain cell that
  // breaks the rule is written unquoted. Default: empty (every cell is scanned).
  std::vector<bool> plain_columns;
};

// Appends the fields separated by the delimiter, then "\r\n". An empty `fields` appends a blank
// line, which CsvReader skips; a single empty field is therefore written as "" to keep the record.
void AppendCsvRow(std::string* out, const std::vector<std::string_view>& fields, const CsvWriteOptions& options = {});

// AppendCsvRow for many rows with the same options, written straight into a caller's buffer: one
// bound check per row instead of one per byte, and a table lookup per byte to decide on quotes.
// Exports render ~100 MB per million contacts through it. Its output is byte for byte the output
// of AppendCsvRow with the same options (which is built on it).
class CsvRowWriter {
 public:
  explicit CsvRowWriter(CsvWriteOptions options = {});

  // An upper bound of the bytes WriteRow writes for these fields: a field needs at most
  // 2 * size + 3 bytes (quotes, a neutralising ', every '"' doubled), plus delimiters and "\r\n".
  static size_t MaxRowBytes(const std::string_view* fields, size_t count);

  // Writes the row (the fields, then "\r\n") at `dest` and returns the end of what it wrote.
  // REQUIRES: `dest` has room for MaxRowBytes(fields, count) bytes.
  char* WriteRow(char* dest, const std::string_view* fields, size_t count) const;

  // Appends the row to *out.
  void AppendRow(std::string* out, const std::string_view* fields, size_t count) const;

  const CsvWriteOptions& options() const { return options_; }

 private:
  // Whether `field` gets a leading ' against formula evaluation.
  bool Neutralizes(std::string_view field, bool numeric) const;
  char* WriteField(char* dest, std::string_view field, bool numeric) const;
  char* WritePlainField(char* dest, std::string_view field, bool numeric) const;

  CsvWriteOptions options_;
  // special_[c] != 0 when byte c forces quotes anywhere in a field: the delimiter, '"', CR, LF.
  uint8_t special_[256];
  std::vector<uint8_t> numeric_;  // options_.numeric_columns, one byte per column
  std::vector<uint8_t> plain_;    // options_.plain_columns, one byte per column
};

}  // namespace contacts
