// Typed attribute values: every service parses, validates and normalises raw text (CSV cells, API
// input, filter literals) into one canonical text form per AttributeType, and the query engine
// reads typed numbers back from that text. Canonical forms are stable (they are stored and
// indexed), and NormalizeValue(type, canonical) == canonical for every canonical value.
//
// Canonical forms. Input is first trimmed of white space at both ends (TrimValueWhiteSpace): ASCII
// (space, \t, \n, \v, \f, \r), Unicode's other White_Space characters (U+00A0 no-break space,
// U+2007 figure space, U+202F narrow no-break space, U+3000 ideographic space, ...) and the
// zero-width U+200B, U+2060 and U+FEFF (BOM) that spreadsheets leave around cells; see
// NonAsciiWhiteSpace in utf8.h for the list. Empty input, white space only included, means "not
// set" and normalises to "" for every type. Inside a value, a type that takes an ASCII space there
// (MOBILE, DATETIME) reads each of those characters as one space, except the line breaks U+0085,
// U+2028 and U+2029 (as it refuses '\n'); the other types take none, of either kind.
//
//   TEXT      the trimmed text: valid UTF-8, at most kMaxTextBytes bytes, no control characters
//             except tab, LF and CR (so NUL and DEL are rejected). White space inside is kept as
//             it is.
//   INTEGER   [-]digits fitting int64, no '+', no leading zeros, "-0" -> "0". "1,000" and "1.5"
//             are rejected.
//   DECIMAL   [-]digits[.digits]: no '+', no leading zeros (one "0" before '.'), no trailing
//             fraction zeros, no '.' when the fraction is zero, "-0" -> "0". Input may omit the
//             integer or fraction part (".5", "5."), never both; no exponents, no separators.
//             At most kMaxDecimalFractionDigits (9) fraction digits and kMaxDecimalDigits (18)
//             digits in all, counted after dropping leading integer zeros and trailing fraction
//             zeros; so every DECIMAL is an int64 mantissa with a scale of 0..9, exactly.
//   BOOLEAN   "true" / "false"; accepts true/false, yes/no, y/n, t/f, 1/0, any ASCII case.
//   DATE      YYYY-MM-DD, years 0001..9999, a real calendar day (Gregorian, proleptic). Accepts
//             YYYY-MM-DD or YYYY/MM/DD with a 4-digit year and 1- or 2-digit month and day.
//   DATETIME  YYYY-MM-DDTHH:MM:SSZ, or YYYY-MM-DDTHH:MM:SS.ffffffZ (exactly six digits) when the
//             microsecond part is non-zero; always UTC. Accepts a date (as for DATE), 'T', 't' or
//             one space, HH:MM (1- or 2-digit hour), optional :SS, optional .fraction of 1..9
//             digits (digits beyond microseconds are truncated), then optional zone: Z, z,
//             +HH:MM, -HH:MM, +HHMM or +HH (optionally after one space); no zone means UTC. A
//             plain date means midnight UTC. No leap seconds ("60"), no "24:00". The instant,
//             in UTC, must lie within 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z.
//             NOTE: canonical DATETIMEs do not sort bytewise ('.' < 'Z'); use CompareValues.
//   EMAIL     the trimmed address, lower-cased (whole address, ASCII only). One '@'; local part
//             1..64 bytes of RFC 5322 atext and dots, no leading, trailing or double dot; domain
//             1..253 bytes, at least two labels, each 1..63 letters, digits or hyphens, not
//             starting or ending with a hyphen, the last (TLD) of 2+ letters. No quoted local
//             parts, IP literals, comments or internationalised addresses.
//   MOBILE    E.164: '+' then 8..15 digits. Accepts digits with spaces (Unicode ones too), dashes,
//             dots and parentheses. "+" or "00" first means the number already has its country code;
//             otherwise one leading '0' (trunk prefix) is dropped and the default country code
//             is prepended. With default 1 the trunk prefix is NANP's '1': 11 digits starting
//             with 1 lose it ("1-415-555-0100" becomes "+14155550100"). Otherwise a national
//             number must not repeat the country code without '+' or "00": "919876543210" with
//             default 91 becomes "+91919876543210". In an international number a "(0)" after
//             the country code is the trunk prefix written out and is dropped:
//             "+44 (0)20 7946 0958" becomes "+442079460958".
//
// Performance: NormalizeValue runs for every cell of million-row imports. It uses no regex, no
// locale and allocates at most the returned string (messages are only built on error). Unicode
// white space is looked for only when a trimmed end is not ASCII, or inside a MOBILE or a
// DATETIME that would otherwise be refused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/numeric/int128.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/values/attribute_type.h"

namespace contacts {

inline constexpr size_t kMaxTextBytes = 4096;
inline constexpr int kMaxDecimalDigits = 18;
inline constexpr int kMaxDecimalFractionDigits = 9;

// Days since 1970-01-01 of 0001-01-01 and 9999-12-31, the DATE range.
inline constexpr int32_t kMinDateDays = -719162;
inline constexpr int32_t kMaxDateDays = 2932896;
// Microseconds since the epoch of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z.
inline constexpr int64_t kMicrosPerDay = int64_t{86'400'000'000};
inline constexpr int64_t kMinDateTimeMicros = int64_t{kMinDateDays} * kMicrosPerDay;
inline constexpr int64_t kMaxDateTimeMicros = (int64_t{kMaxDateDays} + 1) * kMicrosPerDay - 1;

struct ValueOptions {
  // Country calling code for MOBILE numbers written without one: 1..3 digits, an optional
  // leading '+' is ignored. Default: "91".
  std::string default_country_code = "91";
};

// True when no canonical value of `type` needs quotes in a comma-separated CSV cell: none holds a
// ',', '"', CR or LF, or starts or ends with a space or tab. That is every type but TEXT (see the
// table above). CSV exports copy such cells without scanning them.
bool CanonicalNeedsNoCsvQuotes(AttributeType type);

// `raw` without white space at either end, as NormalizeValue reads it (see above): "" for a value
// that is not set. For callers that must agree with NormalizeValue on what is empty or trimmed.
std::string_view TrimValueWhiteSpace(std::string_view raw);

// Trims, validates and normalises `raw` to the canonical text of `type` (see the table above).
// Returns "" for empty or all-whitespace input ("not set") whatever the type.
// Errors: InvalidArgumentError when the value is not valid for the type. The message quotes the
// value (escaped, cut to 64 bytes) and says what is wrong, e.g. `"forty" is not an INTEGER`; it
// names no attribute or row, callers prefix those. Also InvalidArgumentError for a `type` outside
// the enum, or (MOBILE only) a malformed options.default_country_code.
absl::StatusOr<std::string> NormalizeValue(AttributeType type, std::string_view raw,
                                           const ValueOptions& options = ValueOptions());

// NormalizeValue appending the canonical text to *out (nothing for "not set"), without a string of
// its own: bulk writers normalise every cell of a million-row batch straight into their buffers.
// On error *out is as it was.
absl::Status AppendNormalizedValue(AttributeType type, std::string_view raw, const ValueOptions& options,
                                   std::string* out);

// The canonical form of the start of a value of `type`, as typed into a prefix search: the
// canonical values NormalizeValue gives that begin with the result are those the user meant.
// Leading white space goes (no canonical value has any), trailing too for every type but TEXT
// (where "ann " is narrower than "ann"); EMAIL is lower-cased; MOBILE loses its separators and,
// without '+' or "00", its trunk prefix ('0'; '1' with default country code 1) and gains
// '+<default country code>': "98765" and "+91 98765" both become "+9198765" with default 91.
// nullopt when no canonical value can start so (a MOBILE prefix with a letter, say).
std::optional<std::string> CanonicalPrefix(AttributeType type, std::string_view raw,
                                           const ValueOptions& options = ValueOptions());

// ----- Typed accessors for the query engine. -----
// Each REQUIRES a value in canonical form (or at least one NormalizeValue would accept, without
// surrounding whitespace); anything else gives InvalidArgumentError, never a crash.

// The INTEGER as int64.
absl::StatusOr<int64_t> IntegerOf(std::string_view canonical);

// The DECIMAL as the nearest double (inexact beyond ~15 digits: use CompareDecimal or
// DecimalScaledOf to compare or index exactly).
absl::StatusOr<double> DecimalOf(std::string_view canonical);

// The DECIMAL times 10^kMaxDecimalFractionDigits, exactly (|result| < 10^27). Its order is the
// numeric order, so it suits order-preserving index keys.
absl::StatusOr<absl::int128> DecimalScaledOf(std::string_view canonical);

// Inverse of DecimalScaledOf: the canonical DECIMAL text of scaled / 10^9.
// REQUIRES: |scaled| < 10^27 (values DecimalScaledOf can return); larger values still give a
// correct plain decimal text, which NormalizeValue would reject for having too many digits.
std::string FormatDecimalScaled(absl::int128 scaled);

// Exact three-way comparison of two canonical DECIMALs: negative, zero or positive as a < b,
// a == b, a > b. Text that is not a decimal sorts before every decimal, bytewise among itself.
int CompareDecimal(std::string_view a, std::string_view b);

// The DATE as days since 1970-01-01 (1970-01-01 -> 0, 1969-12-31 -> -1).
absl::StatusOr<int32_t> DateDaysOf(std::string_view canonical);

// The canonical DATE for `days` since 1970-01-01.
// REQUIRES: kMinDateDays <= days <= kMaxDateDays. Outside, the text is still deterministic
// (astronomical year with more digits or a '-') but not a valid DATE.
std::string FormatDate(int32_t days);

// The DATETIME as microseconds since 1970-01-01T00:00:00Z.
absl::StatusOr<int64_t> DateTimeMicrosOf(std::string_view canonical);

// The canonical DATETIME for `micros` since the epoch (UTC).
// REQUIRES: kMinDateTimeMicros <= micros <= kMaxDateTimeMicros (as for FormatDate outside).
std::string FormatDateTime(int64_t micros);

// True for the canonical "true", false for anything else.
bool BooleanOf(std::string_view canonical);

// A total order on canonical values of `type`, three-way like CompareDecimal: INTEGER and DECIMAL
// numerically, DATE and DATETIME chronologically, BOOLEAN false < true, TEXT, EMAIL and MOBILE
// bytewise. For number, date and boolean types, text that does not parse as the type (including
// "", "not set") sorts before every valid value and bytewise among itself.
int CompareValues(AttributeType type, std::string_view a, std::string_view b);

}  // namespace contacts
