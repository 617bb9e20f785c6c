#include "common/csv/csv_writer.h"

namespace contacts {
namespace {

bool NeedsQuotes(std::string_view field, char delimiter) {
  if (field.empty()) return false;
  const char first = field.front();
  const char last = field.back();
  if (first == ' ' || first == '\t' || last == ' ' || last == '\t') return true;
  for (const char c : field) {
    if (c == delimiter || c == '"' || c == '\n' || c == '\r') return true;
  }
  return false;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// [+-]digits[.digits][(e|E)[+-]digits], or [+-].digits...
bool IsPlainNumber(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t digits = 0;
  while (i < s.size() && IsDigit(s[i])) ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && IsDigit(s[i])) ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exponent_digits = 0;
    while (i < s.size() && IsDigit(s[i])) ++i, ++exponent_digits;
    if (exponent_digits == 0) return false;
  }
  return i == s.size();
}

void AppendQuoted(std::string* out, std::string_view prefix, std::string_view field) {
  out->push_back('"');
  out->append(prefix);
  size_t start = 0;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '"') {
      out->append(field.data() + start, i + 1 - start);
      out->push_back('"');
      start = i + 1;
    }
  }
  out->append(field.data() + start, field.size() - start);
  out->push_back('"');
}

}  // namespace

void AppendCsvField(std::string* out, std::string_view field, char delimiter) {
  if (NeedsQuotes(field, delimiter)) {
    AppendQuoted(out, {}, field);
  } else {
    out->append(field);
  }
}

bool IsFormulaLike(std::string_view field, bool numeric_cell) {
  if (field.empty()) return false;
  switch (field.front()) {
    case '=':
    case '+':
    case '-':
    case '@':
    case '\t':
    case '\r':
      break;
    default:
      return false;
  }
  return !(numeric_cell && IsPlainNumber(field));
}

std::string NeutralizeFormula(std::string_view field, bool numeric_cell) {
  std::string out;
  if (IsFormulaLike(field, numeric_cell)) {
    out.reserve(field.size() + 1);
    out.push_back('\'');
  }
  out.append(field);
  return out;
}

void AppendNeutralizedCsvField(std::string* out, std::string_view field, bool numeric_cell, char delimiter) {
  if (!IsFormulaLike(field, numeric_cell)) {
    AppendCsvField(out, field, delimiter);
    return;
  }
  // The value written is "'" + field: it starts with the quote, so only its content and its end
  // can call for quoting.
  const char last = field.back();
  bool quote = last == ' ' || last == '\t';
  for (const char c : field) quote = quote || c == delimiter || c == '"' || c == '\n' || c == '\r';
  if (quote) {
    AppendQuoted(out, "'", field);
  } else {
    out->push_back('\'');
    out->append(field);
  }
}

void AppendCsvRow(std::string* out, const std::vector<std::string_view>& fields, const CsvWriteOptions& options) {
  if (fields.size() == 1 && fields[0].empty()) {
    out->append("\"\"\r\n");
    return;
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out->push_back(options.delimiter);
    if (options.neutralize_formulas) {
      const bool numeric = i < options.numeric_columns.size() && options.numeric_columns[i];
      AppendNeutralizedCsvField(out, fields[i], numeric, options.delimiter);
    } else {
      AppendCsvField(out, fields[i], options.delimiter);
    }
  }
  out->append("\r\n");
}

}  // namespace contacts
