#include "common/values/typed_value.h"

#include <array>
#include <charconv>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "common/values/text_case.h"
#include "common/values/utf8.h"

namespace contacts {
namespace {

// ----- Small helpers. -----

constexpr bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
constexpr bool IsDigit(char c) { return c >= '0' && c <= '9'; }
constexpr bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string_view TrimAsciiSpace(std::string_view s) {
  size_t begin = 0;
  size_t end = s.size();
  while (begin < end && IsAsciiSpace(s[begin])) ++begin;
  while (end > begin && IsAsciiSpace(s[end - 1])) --end;
  return s.substr(begin, end - begin);
}

// TrimWhiteSpace past its fast path: ASCII and other white space, mixed in any order. Kept out of
// line, so the fast path stays small enough to inline.
[[gnu::noinline]] std::string_view TrimMixedWhiteSpace(std::string_view s) {
  while (!s.empty()) {
    if (IsAsciiSpace(s.front())) {
      s.remove_prefix(1);
    } else if (const size_t n = NonAsciiWhiteSpaceAt(s, 0).size; n > 0) {
      s.remove_prefix(n);
    } else {
      break;
    }
  }
  while (!s.empty()) {
    if (IsAsciiSpace(s.back())) {
      s.remove_suffix(1);
    } else if (const size_t n = NonAsciiWhiteSpaceBefore(s, s.size()).size; n > 0) {
      s.remove_suffix(n);
    } else {
      break;
    }
  }
  return s;
}

// TrimValueWhiteSpace. `inline`: without it GCC 12 calls it from AppendNormalizedValue, which runs
// for every cell of an import.
inline std::string_view TrimWhiteSpace(std::string_view raw) {
  const std::string_view s = TrimAsciiSpace(raw);
  // Nearly every value is ASCII at both ends: no UTF-8 to look at.
  if (s.empty() || (static_cast<unsigned char>(s.front()) < 0x80 && static_cast<unsigned char>(s.back()) < 0x80)) {
    return s;
  }
  return TrimMixedWhiteSpace(s);
}

// The non-ASCII space inside `s` at s[pos] that reads as one ASCII space where a type takes a space
// (a MOBILE's separators, a DATETIME's): its size in bytes, 0 for none. Line breaks do not, as
// '\n' does not.
size_t InnerSpaceAt(std::string_view s, size_t pos) {
  const NonAsciiWhiteSpace space = NonAsciiWhiteSpaceAt(s, pos);
  return space.BreaksLine() ? 0 : space.size;
}

int Sign(int c) { return (c > 0) - (c < 0); }

// Parses exactly `count` decimal digits at s[pos]; false when short or not digits.
bool ParseFixedDigits(std::string_view s, size_t pos, size_t count, int* out) {
  if (pos + count > s.size()) return false;
  int value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (!IsDigit(s[i])) return false;
    value = value * 10 + (s[i] - '0');
  }
  *out = value;
  return true;
}

// Parses 1..max_count digits at s[*pos], advancing *pos; false when there is none.
bool ParseDigitsUpTo(std::string_view s, size_t* pos, size_t max_count, int* out) {
  size_t i = *pos;
  int value = 0;
  while (i < s.size() && i - *pos < max_count && IsDigit(s[i])) value = value * 10 + (s[i++] - '0');
  if (i == *pos) return false;
  *pos = i;
  *out = value;
  return true;
}

// The value as it appears in messages: quoted, escaped, cut to 64 bytes (at a UTF-8 boundary).
std::string QuoteForMessage(std::string_view value) {
  constexpr size_t kMaxQuoted = 64;
  const bool utf8 = IsValidUtf8(value);
  size_t n = value.size();
  const bool cut = n > kMaxQuoted;
  if (cut) {
    n = kMaxQuoted;
    while (utf8 && n > 0 && (static_cast<unsigned char>(value[n]) & 0xC0) == 0x80) --n;
  }
  std::string out = "\"";
  for (size_t i = 0; i < n; ++i) {
    const char c = value[i];
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7F || (u >= 0x80 && !utf8)) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  if (cut) out += "...";
  out += '"';
  return out;
}

// `"<value>" <what>` or `"<value>" <what>: <reason>`.
absl::Status InvalidValue(std::string_view value, std::string_view what, std::string_view reason = {}) {
  if (reason.empty()) return absl::InvalidArgumentError(fmt::format("{} {}", QuoteForMessage(value), what));
  return absl::InvalidArgumentError(fmt::format("{} {}: {}", QuoteForMessage(value), what, reason));
}

constexpr std::string_view kNotInteger = "is not an INTEGER";
constexpr std::string_view kNotDecimal = "is not a DECIMAL";
constexpr std::string_view kNotBoolean = "is not a BOOLEAN (true/false, yes/no, y/n, t/f, 1/0)";
constexpr std::string_view kNotDate = "is not a valid DATE (YYYY-MM-DD)";
constexpr std::string_view kNotDateTime = "is not a valid DATETIME (YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z|+HH:MM])";
constexpr std::string_view kNotEmail = "is not a valid EMAIL";
constexpr std::string_view kNotMobile = "is not a valid MOBILE number";
constexpr std::string_view kNotText = "is not a valid TEXT";

// ----- INTEGER -----

// Parses [+-]digits into an int64. Returns nullptr on success, else the reason ("" = generic).
const char* ParseInteger(std::string_view s, int64_t* out) {
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  if (i == s.size()) return "";
  const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  uint64_t value = 0;
  bool overflow = false;
  for (size_t j = i; j < s.size(); ++j) {
    const char c = s[j];
    if (!IsDigit(c)) {
      if (j == i) return "";
      if (c == ',') return "thousands separators are not allowed";
      if (c == '.') return "a fractional part is not allowed";
      if (c == 'e' || c == 'E') return "exponents are not allowed";
      return "";
    }
    const auto digit = static_cast<uint64_t>(c - '0');
    if (value > (limit - digit) / 10) overflow = true;  // keep scanning: a later bad char wins
    if (!overflow) value = value * 10 + digit;
  }
  if (overflow) return "out of range (-9223372036854775808 to 9223372036854775807)";
  *out = negative ? static_cast<int64_t>(0 - value) : static_cast<int64_t>(value);
  return nullptr;
}

absl::Status AppendInteger(std::string_view s, std::string* out) {
  int64_t value = 0;
  if (const char* reason = ParseInteger(s, &value)) return InvalidValue(s, kNotInteger, reason);
  char buf[24];
  const auto result = std::to_chars(buf, buf + sizeof(buf), value);
  out->append(buf, result.ptr);
  return absl::OkStatus();
}

// ----- DECIMAL -----

struct DecimalParts {
  bool negative = false;       // never true for zero
  std::string_view int_part;   // no leading zeros; empty for |x| < 1
  std::string_view frac_part;  // no trailing zeros; empty for whole numbers
  bool IsZero() const { return int_part.empty() && frac_part.empty(); }
};

// Syntax only: [+-](digits[.digits*] | .digits). nullptr on success, else a reason ("" = generic).
const char* ParseDecimalSyntax(std::string_view s, DecimalParts* out) {
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  const size_t int_begin = i;
  while (i < s.size() && IsDigit(s[i])) ++i;
  const size_t int_end = i;
  size_t frac_begin = i;
  size_t frac_end = i;
  if (i < s.size() && s[i] == '.') {
    frac_begin = ++i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    frac_end = i;
  }
  if (i < s.size()) {
    const char c = s[i];
    if (c == ',') return "use '.' as the decimal point and no thousands separators";
    if ((c == 'e' || c == 'E') && i > int_begin) return "exponents are not allowed";
    return "";
  }
  if (int_end == int_begin && frac_end == frac_begin) return "";  // no digits at all
  std::string_view int_part = s.substr(int_begin, int_end - int_begin);
  std::string_view frac_part = s.substr(frac_begin, frac_end - frac_begin);
  while (!int_part.empty() && int_part.front() == '0') int_part.remove_prefix(1);
  while (!frac_part.empty() && frac_part.back() == '0') frac_part.remove_suffix(1);
  out->int_part = int_part;
  out->frac_part = frac_part;
  out->negative = negative && !out->IsZero();
  return nullptr;
}

// Syntax and precision limits.
const char* ParseDecimal(std::string_view s, DecimalParts* out) {
  if (const char* reason = ParseDecimalSyntax(s, out)) return reason;
  if (out->frac_part.size() > static_cast<size_t>(kMaxDecimalFractionDigits)) {
    return "more than 9 digits after the decimal point";
  }
  if (out->int_part.size() + out->frac_part.size() > static_cast<size_t>(kMaxDecimalDigits)) {
    return "more than 18 significant digits";
  }
  return nullptr;
}

void AppendDecimalParts(const DecimalParts& parts, std::string* out) {
  out->reserve(out->size() + parts.int_part.size() + parts.frac_part.size() + 3);
  if (parts.negative) *out += '-';
  if (parts.int_part.empty()) {
    *out += '0';
  } else {
    *out += parts.int_part;
  }
  if (!parts.frac_part.empty()) {
    *out += '.';
    *out += parts.frac_part;
  }
}

std::string FormatDecimalParts(const DecimalParts& parts) {
  std::string out;
  AppendDecimalParts(parts, &out);
  return out;
}

absl::Status AppendDecimal(std::string_view s, std::string* out) {
  DecimalParts parts;
  if (const char* reason = ParseDecimal(s, &parts)) return InvalidValue(s, kNotDecimal, reason);
  AppendDecimalParts(parts, out);
  return absl::OkStatus();
}

// Three-way comparison of |a| and |b|.
int CompareMagnitude(const DecimalParts& a, const DecimalParts& b) {
  if (a.int_part.size() != b.int_part.size()) return a.int_part.size() < b.int_part.size() ? -1 : 1;
  if (int c = a.int_part.compare(b.int_part); c != 0) return Sign(c);
  // Without trailing zeros, lexicographic order of fraction digits is numeric order.
  return Sign(a.frac_part.compare(b.frac_part));
}

// ----- BOOLEAN -----

// 1 for true, 0 for false, -1 for neither.
int ParseBoolean(std::string_view s) {
  if (s.size() > 5) return -1;
  char lower[5];
  for (size_t i = 0; i < s.size(); ++i) lower[i] = AsciiLowerChar(s[i]);
  const std::string_view v(lower, s.size());
  if (v == "true" || v == "yes" || v == "1" || v == "y" || v == "t") return 1;
  if (v == "false" || v == "no" || v == "0" || v == "n" || v == "f") return 0;
  return -1;
}

// ----- DATE -----

constexpr bool IsLeapYear(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

constexpr int DaysInMonth(int64_t y, int m) {
  constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

// Howard Hinnant's days_from_civil (proleptic Gregorian), valid for any int32 day count.
constexpr int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct CivilDate {
  int64_t year;
  int month;
  int day;
};

constexpr CivilDate CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return CivilDate{yoe + era * 400 + (m <= 2), m, d};
}

static_assert(DaysFromCivil(1970, 1, 1) == 0);
static_assert(DaysFromCivil(1, 1, 1) == kMinDateDays);
static_assert(DaysFromCivil(9999, 12, 31) == kMaxDateDays);

// Parses YYYY-MM-DD or YYYY/MM/DD (1- or 2-digit month and day) spanning all of `s` into days
// since the epoch. nullptr on success, else a reason ("" = generic). `reason_buf` holds
// formatted reasons.
const char* ParseDateFields(std::string_view s, int* year_out, int* month_out, int* day_out, std::string* reason_buf) {
  int year = 0;
  int month = 0;
  int day = 0;
  if (!ParseFixedDigits(s, 0, 4, &year)) return "";
  if (s.size() < 5 || (s[4] != '-' && s[4] != '/')) return "";
  const char separator = s[4];
  size_t pos = 5;
  if (!ParseDigitsUpTo(s, &pos, 2, &month)) return "";
  if (pos >= s.size() || s[pos] != separator) return "";
  ++pos;
  if (!ParseDigitsUpTo(s, &pos, 2, &day)) return "";
  if (pos != s.size()) return "";
  if (year == 0) return "year 0000 is before 0001";
  if (month < 1 || month > 12) {
    *reason_buf = fmt::format("month {:02d} does not exist", month);
    return reason_buf->c_str();
  }
  if (day < 1 || day > DaysInMonth(year, month)) {
    *reason_buf = fmt::format("{:04d}-{:02d} has {} days", year, month, DaysInMonth(year, month));
    return reason_buf->c_str();
  }
  *year_out = year;
  *month_out = month;
  *day_out = day;
  return nullptr;
}

const char* ParseDate(std::string_view s, int32_t* days, std::string* reason_buf) {
  int year = 0;
  int month = 0;
  int day = 0;
  if (const char* reason = ParseDateFields(s, &year, &month, &day, reason_buf)) return reason;
  *days = static_cast<int32_t>(DaysFromCivil(year, month, day));
  return nullptr;
}

// Writers into a caller's buffer, so each canonical date or datetime is built with one allocation
// at most. kDateBufferSize holds any date of an int32 day count (years up to 7 digits, a sign).
constexpr size_t kDateBufferSize = 24;

char* WriteTwoDigits(char* p, int v) {
  *p++ = static_cast<char>('0' + v / 10);
  *p++ = static_cast<char>('0' + v % 10);
  return p;
}

char* WriteDate(char* p, const CivilDate& date) {
  if (date.year < 0 || date.year > 9999) {
    return fmt::format_to_n(p, kDateBufferSize, "{:04d}-{:02d}-{:02d}", date.year, date.month, date.day).out;
  }
  const int y = static_cast<int>(date.year);
  p = WriteTwoDigits(p, y / 100);
  p = WriteTwoDigits(p, y % 100);
  *p++ = '-';
  p = WriteTwoDigits(p, date.month);
  *p++ = '-';
  return WriteTwoDigits(p, date.day);
}

// ----- DATETIME -----

// Parses the DATETIME grammar of the header into micros since the epoch.
const char* ParseDateTime(std::string_view s, int64_t* micros, std::string* reason_buf) {
  size_t sep = 0;
  while (sep < s.size() && s[sep] != 'T' && s[sep] != 't' && s[sep] != ' ') ++sep;
  int32_t days = 0;
  if (const char* reason = ParseDate(s.substr(0, sep), &days, reason_buf)) return reason;
  if (sep == s.size()) {  // a plain date: midnight UTC
    *micros = int64_t{days} * kMicrosPerDay;
    return nullptr;
  }
  size_t pos = sep + 1;
  int hour = 0;
  int minute = 0;
  int second = 0;
  int64_t fraction = 0;  // microseconds
  if (!ParseDigitsUpTo(s, &pos, 2, &hour)) return "";
  if (pos >= s.size() || s[pos] != ':') return "";
  if (!ParseFixedDigits(s, pos + 1, 2, &minute)) return "";
  pos += 3;
  if (pos < s.size() && s[pos] == ':') {
    if (!ParseFixedDigits(s, pos + 1, 2, &second)) return "";
    pos += 3;
    if (pos < s.size() && s[pos] == '.') {
      const size_t begin = ++pos;
      while (pos < s.size() && IsDigit(s[pos])) {
        if (pos - begin >= 9) return "more than 9 fraction digits";
        if (pos - begin < 6) fraction = fraction * 10 + (s[pos] - '0');
        ++pos;
      }
      if (pos == begin) return "";
      for (size_t n = pos - begin; n < 6; ++n) fraction *= 10;
    }
  }
  if (hour > 23) return "hour out of range (00 to 23)";
  if (minute > 59) return "minute out of range (00 to 59)";
  if (second > 59) return "second out of range (00 to 59, no leap seconds)";
  int offset_minutes = 0;
  if (pos < s.size() && s[pos] == ' ') ++pos;
  if (pos < s.size()) {
    const char z = s[pos];
    if ((z == 'Z' || z == 'z') && pos + 1 == s.size()) {
      pos = s.size();
    } else if (z == '+' || z == '-') {
      int offset_hours = 0;
      int offset_mins = 0;
      if (!ParseFixedDigits(s, pos + 1, 2, &offset_hours)) return "bad zone offset";
      pos += 3;
      // "+HH:" must go on with the minutes: a value cut there is not "+HH:00".
      const bool colon = pos < s.size() && s[pos] == ':';
      if (colon) ++pos;
      if (colon || pos < s.size()) {
        if (!ParseFixedDigits(s, pos, 2, &offset_mins)) return "bad zone offset";
        pos += 2;
      }
      if (pos != s.size()) return "";
      if (offset_hours > 23 || offset_mins > 59) return "zone offset out of range";
      offset_minutes = (offset_hours * 60 + offset_mins) * (z == '-' ? -1 : 1);
    } else {
      return "";
    }
  }
  const int64_t seconds_of_day = (int64_t{hour} * 60 + minute) * 60 + second;
  const int64_t value =
      int64_t{days} * kMicrosPerDay + seconds_of_day * 1'000'000 + fraction - int64_t{offset_minutes} * 60'000'000;
  if (value < kMinDateTimeMicros || value > kMaxDateTimeMicros) {
    return "outside 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z";
  }
  *micros = value;
  return nullptr;
}

// `s` with each non-ASCII space inside (InnerSpaceAt) written as one ASCII space, into *out; false
// when it has none, so there is nothing else to try.
bool InnerSpacesAsAscii(std::string_view s, std::string* out) {
  out->clear();
  bool replaced = false;
  for (size_t i = 0; i < s.size();) {
    const size_t n = static_cast<unsigned char>(s[i]) < 0x80 ? 0 : InnerSpaceAt(s, i);
    if (n > 0) {
      *out += ' ';
      replaced = true;
      i += n;
    } else {
      *out += s[i++];
    }
  }
  return replaced;
}

// ----- EMAIL -----

constexpr std::array<bool, 256> MakeAtextTable() {
  std::array<bool, 256> table{};
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (char c : std::string_view("!#$%&'*+-/=?^_`{|}~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}
constexpr std::array<bool, 256> kAtext = MakeAtextTable();

const char* CheckEmail(std::string_view s) {
  const size_t at = s.find('@');
  if (at == std::string_view::npos) return "missing @";
  if (s.find('@', at + 1) != std::string_view::npos) return "more than one @";
  const std::string_view local = s.substr(0, at);
  const std::string_view domain = s.substr(at + 1);
  if (local.empty()) return "empty local part";
  if (local.size() > 64) return "local part longer than 64 characters";
  for (size_t i = 0; i < local.size(); ++i) {
    const auto c = static_cast<unsigned char>(local[i]);
    if (c == '.') {
      if (i == 0 || i + 1 == local.size()) return "local part starts or ends with a dot";
      if (local[i - 1] == '.') return "two dots in a row in the local part";
    } else if (c >= 0x80) {
      return "non-ASCII characters are not supported";
    } else if (!kAtext[c]) {
      return "invalid character in the local part";
    }
  }
  if (domain.empty()) return "missing domain";
  if (domain.size() > 253) return "domain longer than 253 characters";
  size_t label_begin = 0;
  int labels = 0;
  while (true) {
    size_t label_end = domain.find('.', label_begin);
    if (label_end == std::string_view::npos) label_end = domain.size();
    const std::string_view label = domain.substr(label_begin, label_end - label_begin);
    if (label.empty()) return "bad domain: empty label";
    if (label.size() > 63) return "bad domain: label longer than 63 characters";
    bool all_letters = true;
    for (char c : label) {
      if (static_cast<unsigned char>(c) >= 0x80) return "non-ASCII characters are not supported";
      if (!IsAlpha(c) && !IsDigit(c) && c != '-') return "bad domain: invalid character";
      all_letters = all_letters && IsAlpha(c);
    }
    if (label.front() == '-' || label.back() == '-') return "bad domain: label starts or ends with a hyphen";
    ++labels;
    if (label_end == domain.size()) {
      if (labels < 2) return "bad domain: no dot";
      if (!all_letters || label.size() < 2) return "bad domain: top-level domain must be 2 or more letters";
      return nullptr;
    }
    label_begin = label_end + 1;
  }
}

absl::Status AppendEmail(std::string_view s, std::string* out) {
  if (const char* reason = CheckEmail(s)) return InvalidValue(s, kNotEmail, reason);
  // RFC 5321 caps a forward path at 256 octets including the angle brackets.
  if (s.size() > 254) return InvalidValue(s, kNotEmail, "longer than 254 characters");
  const size_t start = out->size();
  out->append(s);
  for (size_t i = start; i < out->size(); ++i) (*out)[i] = AsciiLowerChar((*out)[i]);
  return absl::OkStatus();
}

// ----- MOBILE -----

// Bytes of the separator a MOBILE may hold at s[i] (a space, '-', '.', '(' or ')', or a Unicode
// space), 0 when none starts there.
size_t MobileSeparatorAt(std::string_view s, size_t i) {
  const char c = s[i];
  if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') return 1;
  return static_cast<unsigned char>(c) < 0x80 ? 0 : InnerSpaceAt(s, i);
}

absl::Status AppendMobile(std::string_view s, std::string_view country_code, std::string* out) {
  if (!country_code.empty() && country_code.front() == '+') country_code.remove_prefix(1);
  if (country_code.empty() || country_code.size() > 3 || country_code.front() == '0' ||
      country_code.find_first_not_of("0123456789") != std::string_view::npos) {
    return absl::InvalidArgumentError(
        fmt::format("default country code {} is not 1 to 3 digits", QuoteForMessage(country_code)));
  }
  constexpr size_t kMaxE164Digits = 15;
  char digits[kMaxE164Digits + 3];  // room for "00" and one trunk '0' beyond E.164
  size_t count = 0;                 // digits seen; only the first sizeof(digits) are stored
  size_t i = 0;
  bool international = false;
  if (s[0] == '+') {
    international = true;
    i = 1;
  }
  // Digits that make up an international prefix ("+" or "00"): a "(0)" after them is the
  // national trunk prefix written out ("+44 (0)20 7946 0958"), never dialled from abroad.
  size_t prefix_digits = 0;
  if (!international) {
    const size_t first = s.find_first_of("0123456789");
    const size_t second = first == std::string_view::npos ? first : s.find_first_of("0123456789", first + 1);
    if (second != std::string_view::npos && s[first] == '0' && s[second] == '0') prefix_digits = 2;
  }
  const bool written_international = international || prefix_digits == 2;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '(' && written_international && count > prefix_digits && s.substr(i, 3) == "(0)") {
      i += 2;
      continue;
    }
    if (IsDigit(c)) {
      if (count < sizeof(digits)) digits[count] = c;
      ++count;
    } else if (const size_t n = MobileSeparatorAt(s, i); n > 0) {
      i += n - 1;  // a Unicode space is read as ' '
    } else if (IsAlpha(c)) {
      return InvalidValue(s, kNotMobile, "letters are not allowed");
    } else if (c == '+') {
      return InvalidValue(s, kNotMobile, "'+' is only allowed at the start");
    } else {
      return InvalidValue(s, kNotMobile, "invalid character");
    }
  }
  if (count == 0) return InvalidValue(s, kNotMobile, "no digits");
  std::string_view national(digits, std::min(count, sizeof(digits)));
  size_t total = count;
  if (!international && count >= 2 && digits[0] == '0' && digits[1] == '0') {
    international = true;
    national.remove_prefix(2);
    total -= 2;
  }
  if (international) {
    if (total > 0 && national[0] == '0') return InvalidValue(s, kNotMobile, "country code cannot start with 0");
    country_code = {};
  } else {
    // A trunk prefix: '0' in most plans, '1' before the 10 digits of a NANP number
    // ("1-415-555-0100" dialled within the US is +1 415 555 0100, not +1 1415...).
    const bool nanp_trunk = country_code == "1" && total == 11 && national[0] == '1';
    if (national[0] == '0' || nanp_trunk) {
      national.remove_prefix(1);
      --total;
    }
    total += country_code.size();
  }
  if (total < 8 || total > kMaxE164Digits) {
    return InvalidValue(s, kNotMobile, fmt::format("{} digits with the country code, E.164 allows 8 to 15", total));
  }
  out->reserve(out->size() + total + 1);
  *out += '+';
  *out += country_code;
  *out += national;
  return absl::OkStatus();
}

// The digits of a MOBILE prefix as typed, without its separators; nullopt for any other character.
// Whether it began with '+' is in *international.
std::optional<std::string> MobilePrefixDigits(std::string_view s, bool* international) {
  *international = !s.empty() && s[0] == '+';
  std::string digits;
  for (size_t i = *international ? 1 : 0; i < s.size(); ++i) {
    const char c = s[i];
    // As AppendMobile: "(0)" after an international prefix and some digits is the trunk prefix
    // written out ("+44 (0)20").
    const size_t prefix_digits = *international ? 0 : digits.starts_with("00") ? 2 : digits.size() + 1;
    if (c == '(' && digits.size() > prefix_digits) {
      if (s.substr(i, 3) == "(0)") {
        i += 2;
        continue;
      }
      if (std::string_view("(0)").starts_with(s.substr(i))) break;  // "+44 (0" typed so far
    }
    if (IsDigit(c)) {
      digits += c;
    } else if (const size_t n = MobileSeparatorAt(s, i); n > 0) {
      i += n - 1;  // a Unicode space is read as ' '
    } else {
      return std::nullopt;
    }
  }
  return digits;
}

// ----- TEXT -----

// Byte classes for TEXT: one table lookup per byte, UTF-8 decoding only when a non-ASCII byte shows.
enum class TextByte : uint8_t { kPlain, kForbiddenControl, kNonAscii };

constexpr std::array<TextByte, 256> MakeTextByteTable() {
  std::array<TextByte, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[c] = TextByte::kForbiddenControl;
  table['\t'] = table['\n'] = table['\r'] = TextByte::kPlain;
  table[0x7F] = TextByte::kForbiddenControl;
  for (int c = 0x80; c < 0x100; ++c) table[c] = TextByte::kNonAscii;
  return table;
}
constexpr std::array<TextByte, 256> kTextByte = MakeTextByteTable();

absl::Status AppendText(std::string_view s, std::string* out) {
  if (s.size() > kMaxTextBytes) {
    return InvalidValue(s, kNotText, fmt::format("{} bytes, more than the limit of {}", s.size(), kMaxTextBytes));
  }
  bool non_ascii = false;
  for (char c : s) {
    const TextByte kind = kTextByte[static_cast<unsigned char>(c)];
    if (kind == TextByte::kForbiddenControl) {
      return InvalidValue(s, kNotText,
                          fmt::format("control character U+{:04X} is not allowed", static_cast<unsigned char>(c)));
    }
    non_ascii |= kind == TextByte::kNonAscii;
  }
  if (non_ascii && !IsValidUtf8(s)) return InvalidValue(s, kNotText, "not valid UTF-8");
  out->append(s);
  return absl::OkStatus();
}

}  // namespace

std::string_view TrimValueWhiteSpace(std::string_view raw) { return TrimWhiteSpace(raw); }

absl::Status AppendNormalizedValue(AttributeType type, std::string_view raw, const ValueOptions& options,
                                   std::string* out) {
  const std::string_view s = TrimWhiteSpace(raw);
  if (s.empty()) return absl::OkStatus();
  switch (type) {
    case AttributeType::kText:
      return AppendText(s, out);
    case AttributeType::kInteger:
      return AppendInteger(s, out);
    case AttributeType::kDecimal:
      return AppendDecimal(s, out);
    case AttributeType::kBoolean: {
      const int value = ParseBoolean(s);
      if (value < 0) return InvalidValue(s, kNotBoolean);
      out->append(value ? "true" : "false");
      return absl::OkStatus();
    }
    case AttributeType::kDate: {
      int year = 0;
      int month = 0;
      int day = 0;
      std::string reason_buf;
      if (const char* reason = ParseDateFields(s, &year, &month, &day, &reason_buf)) {
        return InvalidValue(s, kNotDate, reason);
      }
      char buf[kDateBufferSize];
      out->append(buf, WriteDate(buf, CivilDate{year, month, day}));
      return absl::OkStatus();
    }
    case AttributeType::kDateTime: {
      int64_t micros = 0;
      std::string reason_buf;
      const char* reason = ParseDateTime(s, &micros, &reason_buf);
      // Rare: a Unicode space where the grammar takes ' '. Parsed again with ' ' in its place, off
      // the fast path; the message still quotes the value as given.
      if (std::string spaced; reason != nullptr && InnerSpacesAsAscii(s, &spaced)) {
        reason = ParseDateTime(spaced, &micros, &reason_buf);
      }
      if (reason != nullptr) return InvalidValue(s, kNotDateTime, reason);
      out->append(FormatDateTime(micros));
      return absl::OkStatus();
    }
    case AttributeType::kEmail:
      return AppendEmail(s, out);
    case AttributeType::kMobile:
      return AppendMobile(s, options.default_country_code, out);
  }
  return absl::InvalidArgumentError(fmt::format("unknown attribute type {}", static_cast<int>(type)));
}

absl::StatusOr<std::string> NormalizeValue(AttributeType type, std::string_view raw, const ValueOptions& options) {
  std::string out;
  if (absl::Status appended = AppendNormalizedValue(type, raw, options, &out); !appended.ok()) return appended;
  return out;
}

std::optional<std::string> CanonicalPrefix(AttributeType type, std::string_view raw, const ValueOptions& options) {
  const std::string_view trimmed = TrimWhiteSpace(raw);
  if (trimmed.empty()) return std::string();
  switch (type) {
    case AttributeType::kText:  // only the leading white space: "ann " is not "ann"
      return std::string(raw.substr(static_cast<size_t>(trimmed.data() - raw.data())));
    case AttributeType::kEmail: {
      std::string lowered(trimmed);
      for (char& c : lowered) c = AsciiLowerChar(c);
      return lowered;
    }
    case AttributeType::kMobile: {
      bool international = false;
      std::optional<std::string> digits = MobilePrefixDigits(trimmed, &international);
      if (!digits) return std::nullopt;
      if (!international && digits->starts_with("00")) {
        international = true;
        digits->erase(0, 2);
      }
      if (international) return "+" + *digits;
      std::string_view country_code = options.default_country_code;
      if (!country_code.empty() && country_code.front() == '+') country_code.remove_prefix(1);
      // As AppendMobile: one trunk prefix goes ('1' under NANP, whose numbers never start with 1).
      if (!digits->empty() && ((*digits)[0] == '0' || (country_code == "1" && (*digits)[0] == '1'))) {
        digits->erase(0, 1);
      }
      return "+" + std::string(country_code) + *digits;
    }
    default:
      return std::string(trimmed);
  }
}

absl::StatusOr<int64_t> IntegerOf(std::string_view canonical) {
  int64_t value = 0;
  if (const char* reason = ParseInteger(canonical, &value)) return InvalidValue(canonical, kNotInteger, reason);
  return value;
}

absl::StatusOr<double> DecimalOf(std::string_view canonical) {
  DecimalParts parts;
  if (const char* reason = ParseDecimal(canonical, &parts)) return InvalidValue(canonical, kNotDecimal, reason);
  // from_chars wants no '+' and at least one integer digit; the canonical text always qualifies.
  const std::string text = FormatDecimalParts(parts);
  double value = 0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  if (result.ec != std::errc() || result.ptr != text.data() + text.size()) {
    return InvalidValue(canonical, kNotDecimal);
  }
  return value;
}

absl::StatusOr<absl::int128> DecimalScaledOf(std::string_view canonical) {
  DecimalParts parts;
  if (const char* reason = ParseDecimal(canonical, &parts)) return InvalidValue(canonical, kNotDecimal, reason);
  absl::int128 value = 0;
  for (char c : parts.int_part) value = value * 10 + (c - '0');
  for (int i = 0; i < kMaxDecimalFractionDigits; ++i) {
    value = value * 10 + (static_cast<size_t>(i) < parts.frac_part.size() ? parts.frac_part[i] - '0' : 0);
  }
  return parts.negative ? -value : value;
}

std::string FormatDecimalScaled(absl::int128 scaled) {
  const bool negative = scaled < 0;
  // Unsigned negation is well-defined even for the minimum int128.
  absl::uint128 magnitude = negative ? -static_cast<absl::uint128>(scaled) : static_cast<absl::uint128>(scaled);
  constexpr uint64_t kScale = 1'000'000'000;
  auto frac = static_cast<uint64_t>(magnitude % kScale);
  magnitude /= kScale;
  char buf[64];
  char* p = buf + sizeof(buf);
  do {
    *--p = static_cast<char>('0' + static_cast<int>(magnitude % 10));
    magnitude /= 10;
  } while (magnitude != 0);
  std::string out;
  if (negative) out += '-';
  out.append(p, buf + sizeof(buf));
  if (frac != 0) {
    char digits[9];
    for (int i = 8; i >= 0; --i) {
      digits[i] = static_cast<char>('0' + frac % 10);
      frac /= 10;
    }
    size_t n = 9;
    while (digits[n - 1] == '0') --n;
    out += '.';
    out.append(digits, n);
  }
  return out;
}

int CompareDecimal(std::string_view a, std::string_view b) {
  DecimalParts pa;
  DecimalParts pb;
  const bool a_ok = ParseDecimalSyntax(a, &pa) == nullptr;
  const bool b_ok = ParseDecimalSyntax(b, &pb) == nullptr;
  if (!a_ok || !b_ok) {
    if (a_ok != b_ok) return a_ok ? 1 : -1;
    return Sign(a.compare(b));
  }
  const int sign_a = pa.IsZero() ? 0 : (pa.negative ? -1 : 1);
  const int sign_b = pb.IsZero() ? 0 : (pb.negative ? -1 : 1);
  if (sign_a != sign_b) return sign_a < sign_b ? -1 : 1;
  if (sign_a == 0) return 0;
  const int magnitude = CompareMagnitude(pa, pb);
  return sign_a < 0 ? -magnitude : magnitude;
}

absl::StatusOr<int32_t> DateDaysOf(std::string_view canonical) {
  int32_t days = 0;
  std::string reason_buf;
  if (const char* reason = ParseDate(canonical, &days, &reason_buf)) return InvalidValue(canonical, kNotDate, reason);
  return days;
}

std::string FormatDate(int32_t days) {
  char buf[kDateBufferSize];
  return std::string(buf, WriteDate(buf, CivilFromDays(days)));
}

absl::StatusOr<int64_t> DateTimeMicrosOf(std::string_view canonical) {
  int64_t micros = 0;
  std::string reason_buf;
  if (const char* reason = ParseDateTime(canonical, &micros, &reason_buf)) {
    return InvalidValue(canonical, kNotDateTime, reason);
  }
  return micros;
}

std::string FormatDateTime(int64_t micros) {
  // Floor division so that instants before the epoch land on the right day.
  int64_t days = micros / kMicrosPerDay;
  int64_t rest = micros % kMicrosPerDay;
  if (rest < 0) {
    rest += kMicrosPerDay;
    --days;
  }
  const int64_t seconds = rest / 1'000'000;
  const auto fraction = static_cast<int>(rest % 1'000'000);
  char buf[kDateBufferSize + 17];  // date, "THH:MM:SS", ".ffffff", "Z"
  char* p = WriteDate(buf, CivilFromDays(days));
  *p++ = 'T';
  p = WriteTwoDigits(p, static_cast<int>(seconds / 3600));
  *p++ = ':';
  p = WriteTwoDigits(p, static_cast<int>(seconds / 60 % 60));
  *p++ = ':';
  p = WriteTwoDigits(p, static_cast<int>(seconds % 60));
  if (fraction != 0) {
    *p++ = '.';
    int f = fraction;
    for (int i = 5; i >= 0; --i) {
      p[i] = static_cast<char>('0' + f % 10);
      f /= 10;
    }
    p += 6;
  }
  *p++ = 'Z';
  return std::string(buf, p);
}

bool BooleanOf(std::string_view canonical) { return canonical == "true"; }

namespace {

// Orders two parse results: failures first (bytewise among themselves), then by value.
template <typename T>
int CompareParsed(bool a_ok, T a_value, bool b_ok, T b_value, std::string_view a, std::string_view b) {
  if (!a_ok || !b_ok) {
    if (a_ok != b_ok) return a_ok ? 1 : -1;
    return Sign(a.compare(b));
  }
  return (a_value > b_value) - (a_value < b_value);
}

}  // namespace

int CompareValues(AttributeType type, std::string_view a, std::string_view b) {
  switch (type) {
    case AttributeType::kInteger: {
      int64_t va = 0;
      int64_t vb = 0;
      const bool a_ok = ParseInteger(a, &va) == nullptr;
      const bool b_ok = ParseInteger(b, &vb) == nullptr;
      return CompareParsed(a_ok, va, b_ok, vb, a, b);
    }
    case AttributeType::kDecimal:
      return CompareDecimal(a, b);
    case AttributeType::kBoolean: {
      const int va = a == "true" ? 1 : (a == "false" ? 0 : -1);
      const int vb = b == "true" ? 1 : (b == "false" ? 0 : -1);
      return CompareParsed(va >= 0, va, vb >= 0, vb, a, b);
    }
    case AttributeType::kDate: {
      int32_t va = 0;
      int32_t vb = 0;
      std::string reason_buf;
      const bool a_ok = ParseDate(a, &va, &reason_buf) == nullptr;
      const bool b_ok = ParseDate(b, &vb, &reason_buf) == nullptr;
      return CompareParsed(a_ok, va, b_ok, vb, a, b);
    }
    case AttributeType::kDateTime: {
      int64_t va = 0;
      int64_t vb = 0;
      std::string reason_buf;
      const bool a_ok = ParseDateTime(a, &va, &reason_buf) == nullptr;
      const bool b_ok = ParseDateTime(b, &vb, &reason_buf) == nullptr;
      return CompareParsed(a_ok, va, b_ok, vb, a, b);
    }
    case AttributeType::kText:
    case AttributeType::kEmail:
    case AttributeType::kMobile:
      break;
  }
  return Sign(a.compare(b));
}

bool CanonicalNeedsNoCsvQuotes(AttributeType type) {
  switch (type) {
    case AttributeType::kInteger:
    case AttributeType::kDecimal:
    case AttributeType::kBoolean:
    case AttributeType::kDate:
    case AttributeType::kDateTime:
    case AttributeType::kEmail:
    case AttributeType::kMobile:
      return true;
    case AttributeType::kText:
      break;
  }
  return false;
}

}  // namespace contacts
