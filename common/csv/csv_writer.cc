#include "common/csv/csv_writer.h"

#include <cstring>

namespace contacts {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsSpaceOrTab(char c) { return c == ' ' || c == '\t'; }

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

bool StartsLikeFormula(char c) { return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r'; }

// Writes `field` between quotes with every '"' doubled, after `prefix` (0 for none).
char* WriteQuoted(char* dest, char prefix, std::string_view field) {
  *dest++ = '"';
  if (prefix != 0) *dest++ = prefix;
  const char* p = field.data();
  const char* const end = p + field.size();
  while (p < end) {
    const void* quote = std::memchr(p, '"', static_cast<size_t>(end - p));
    const char* stop = quote == nullptr ? end : static_cast<const char*>(quote) + 1;
    std::memcpy(dest, p, static_cast<size_t>(stop - p));
    dest += stop - p;
    if (quote != nullptr) *dest++ = '"';
    p = stop;
  }
  *dest++ = '"';
  return dest;
}

}  // namespace

CsvRowWriter::CsvRowWriter(CsvWriteOptions options) : options_(std::move(options)) {
  std::memset(special_, 0, sizeof(special_));
  special_[static_cast<unsigned char>(options_.delimiter)] = 1;
  special_[static_cast<unsigned char>('"')] = 1;
  special_[static_cast<unsigned char>('\r')] = 1;
  special_[static_cast<unsigned char>('\n')] = 1;
  numeric_.assign(options_.numeric_columns.begin(), options_.numeric_columns.end());
  plain_.assign(options_.plain_columns.begin(), options_.plain_columns.end());
}

size_t CsvRowWriter::MaxRowBytes(const std::string_view* fields, size_t count) {
  size_t bytes = 4;  // "\r\n", or the "\"\"\r\n" of a single empty field
  for (size_t i = 0; i < count; ++i) bytes += 2 * fields[i].size() + 4;  // + 3, + 1 delimiter
  return bytes;
}

bool CsvRowWriter::Neutralizes(std::string_view field, bool numeric) const {
  return options_.neutralize_formulas && IsFormulaLike(field, numeric);
}

char* CsvRowWriter::WriteField(char* dest, std::string_view field, bool numeric) const {
  const size_t size = field.size();
  if (size == 0) return dest;
  // Copy while looking for bytes that force quotes (the usual case has none); rewrite the field
  // quoted when one turns up. `dest` has room for the quoted form, so the copy never overflows.
  const auto* bytes = reinterpret_cast<const unsigned char*>(field.data());
  const bool neutralize = Neutralizes(field, numeric);
  char* out = dest + (neutralize ? 1 : 0);
  uint8_t special = 0;
  for (size_t i = 0; i < size; ++i) {
    out[i] = static_cast<char>(bytes[i]);
    special |= special_[bytes[i]];
  }
  const bool trailing_blank = IsSpaceOrTab(field.back());
  if (neutralize) {
    // The value written is "'" + field: it starts with the quote, so only its content and its end
    // can call for quoting.
    if (special != 0 || trailing_blank) return WriteQuoted(dest, '\'', field);
    *dest = '\'';
  } else if (special != 0 || trailing_blank || IsSpaceOrTab(field.front())) {
    return WriteQuoted(dest, 0, field);
  }
  return out + size;
}

char* CsvRowWriter::WritePlainField(char* dest, std::string_view field, bool numeric) const {
  if (field.empty()) return dest;
  if (Neutralizes(field, numeric)) *dest++ = '\'';
  std::memcpy(dest, field.data(), field.size());
  return dest + field.size();
}

char* CsvRowWriter::WriteRow(char* dest, const std::string_view* fields, size_t count) const {
  if (count == 1 && fields[0].empty()) {
    std::memcpy(dest, "\"\"\r\n", 4);
    return dest + 4;
  }
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) *dest++ = options_.delimiter;
    const bool numeric = i < numeric_.size() && numeric_[i] != 0;
    dest = i < plain_.size() && plain_[i] != 0 ? WritePlainField(dest, fields[i], numeric)
                                               : WriteField(dest, fields[i], numeric);
  }
  *dest++ = '\r';
  *dest++ = '\n';
  return dest;
}

void CsvRowWriter::AppendRow(std::string* out, const std::string_view* fields, size_t count) const {
  const size_t old_size = out->size();
  out->resize(old_size + MaxRowBytes(fields, count));
  char* end = WriteRow(out->data() + old_size, fields, count);
  out->resize(static_cast<size_t>(end - out->data()));
}

void AppendCsvField(std::string* out, std::string_view field, char delimiter) {
  CsvWriteOptions options;
  options.delimiter = delimiter;
  const size_t old_size = out->size();
  out->resize(old_size + CsvRowWriter::MaxRowBytes(&field, 1));
  char* end = CsvRowWriter(options).WriteRow(out->data() + old_size, &field, 1);
  // WriteRow ended the row: drop its "\r\n"; a lone empty field is written as nothing here.
  out->resize(field.empty() ? old_size : static_cast<size_t>(end - out->data()) - 2);
}

bool IsFormulaLike(std::string_view field, bool numeric_cell) {
  if (field.empty() || !StartsLikeFormula(field.front())) return false;
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
  CsvWriteOptions options;
  options.delimiter = delimiter;
  options.neutralize_formulas = true;
  options.numeric_columns = {numeric_cell};
  const size_t old_size = out->size();
  out->resize(old_size + CsvRowWriter::MaxRowBytes(&field, 1));
  char* end = CsvRowWriter(std::move(options)).WriteRow(out->data() + old_size, &field, 1);
  out->resize(field.empty() ? old_size : static_cast<size_t>(end - out->data()) - 2);
}

void AppendCsvRow(std::string* out, const std::vector<std::string_view>& fields, const CsvWriteOptions& options) {
  CsvRowWriter(options).AppendRow(out, fields.data(), fields.size());
}

}  // namespace contacts
