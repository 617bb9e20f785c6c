// CSV output for exports: RFC 4180 quoting plus spreadsheet-formula neutralisation (OWASP "CSV
// injection": a cell starting with = + - @ TAB or CR may be run as a formula by Excel, LibreOffice
// or Google Sheets, so such cells get a leading single quote, which spreadsheets show as text).
//
// Output rows end with "\r\n" as RFC 4180 says; CsvReader accepts LF and CRLF alike.
#pragma once

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
};

// Appends the fields separated by the delimiter, then "\r\n". An empty `fields` appends a blank
// line, which CsvReader skips; a single empty field is therefore written as "" to keep the record.
void AppendCsvRow(std::string* out, const std::vector<std::string_view>& fields, const CsvWriteOptions& options = {});

}  // namespace contacts
