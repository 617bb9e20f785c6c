#include "services/import_processor/column_mapping.h"

#include <array>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/values/text_case.h"
#include "common/values/utf8.h"

namespace contacts {
namespace {

constexpr std::array<AttributeType, 7> kInferenceOrder = {
    AttributeType::kInteger,  AttributeType::kDecimal, AttributeType::kBoolean, AttributeType::kDate,
    AttributeType::kDateTime, AttributeType::kEmail,   AttributeType::kMobile,
};

constexpr uint32_t kIntegerBit = 1u << 0;  // bits of TypeInferrer::candidates_
constexpr uint32_t kDecimalBit = 1u << 1;
constexpr uint32_t kMobileBit = 1u << 6;
static_assert(kInferenceOrder[0] == AttributeType::kInteger && kInferenceOrder[1] == AttributeType::kDecimal);
static_assert(kInferenceOrder[6] == AttributeType::kMobile);

// Fewest digits of a phone number written without its country code: the national numbers of most
// numbering plans have 10 or more, trunk prefix included (India 98765 43210, US (415) 555-0100,
// UK 07700 900123, France 06 12 34 56 78), while codes such as ZIP+4 (12345-6789), social security
// numbers (123-45-6789) and postal codes have fewer.
constexpr int kMinNationalPhoneDigits = 10;

// A trimmed value that reads as a phone number, whatever the tenant's country code could make of
// it: written with its country code ("+..."; "00..." has enough digits), or long enough.
int CountDigits(std::string_view value) {
  int digits = 0;
  for (char c : value) digits += c >= '0' && c <= '9';
  return digits;
}

bool LooksLikePhoneNumber(std::string_view value) {
  if (!value.empty() && value.front() == '+') return true;
  return CountDigits(value) >= kMinNationalPhoneDigits;
}

// "+919876543210": a phone number written with its country code. "+5" is a signed number.
bool HasCountryCodePrefix(std::string_view value) {
  return !value.empty() && value.front() == '+' && CountDigits(value) >= kMinNationalPhoneDigits;
}

// "0123", "-007", "00.5": a zero followed by another digit at the start of the integer part.
bool HasLeadingZero(std::string_view value) {
  if (!value.empty() && value.front() == '-') value.remove_prefix(1);
  return value.size() >= 2 && value[0] == '0' && value[1] >= '0' && value[1] <= '9';
}

// Normalised column names that mean a system attribute whatever the tenant calls its columns.
constexpr std::pair<std::string_view, std::string_view> kSynonyms[] = {
    {"emailaddress", "email"},   {"mail", "email"},         {"emailid", "email"},      {"mailaddress", "email"},
    {"emails", "email"},         {"phone", "mobile"},       {"phonenumber", "mobile"}, {"phoneno", "mobile"},
    {"mobilenumber", "mobile"},  {"mobileno", "mobile"},    {"mobilephone", "mobile"}, {"cell", "mobile"},
    {"cellphone", "mobile"},     {"cellnumber", "mobile"},  {"msisdn", "mobile"},      {"telephone", "mobile"},
    {"tel", "mobile"},           {"phonemobile", "mobile"}, {"whatsapp", "mobile"},    {"whatsappnumber", "mobile"},
    {"contactnumber", "mobile"}, {"mobiles", "mobile"},     {"mob", "mobile"},         {"phno", "mobile"},
    {"contactno", "mobile"},     {"mailid", "email"},
};

// Dropped from the end of a column name when what is left names an attribute. The stem of
// "number" and "no" may also be a synonym ("Telephone No", "Cell Number"); the stem of "address"
// or "id" may not ("Cell ID" is no phone number).
constexpr std::array<std::string_view, 4> kDroppableSuffixes = {"address", "number", "no", "id"};

// Unicode White_Space: what spreadsheets put between words besides ' ' (no-break, figure, narrow
// no-break and ideographic spaces, line and paragraph separators).
bool IsWhiteSpace(char32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0D) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Characters that show nothing: soft hyphen, zero-width spaces and joiners, direction marks and
// isolates, word joiner, variation selectors, the BOM.
bool IsInvisible(char32_t c) {
  return c == 0xAD || c == 0x34F || c == 0x61C || c == 0x180E || (c >= 0x200B && c <= 0x200F) ||
         (c >= 0x202A && c <= 0x202E) || (c >= 0x2060 && c <= 0x206F) || (c >= 0xFE00 && c <= 0xFE0F) || c == 0xFEFF;
}

// Punctuation and symbols outside ASCII that headers use as separators or decoration: Latin-1's
// (quotes, section sign, middle dot, ...), dashes, quotes, bullets and primes of General
// Punctuation, the minus sign, CJK punctuation and brackets, half-width CJK punctuation; also C1
// controls and combining accents (what is left of a letter written as letter + accent).
bool IsSeparatorSymbol(char32_t c) {
  if (c >= 0x80 && c <= 0xBF) {
    // Latin-1 letters and digits in that range: ordinal indicators, superscripts, micro sign, fractions.
    return !(c == 0xAA || c == 0xB2 || c == 0xB3 || c == 0xB5 || c == 0xB9 || c == 0xBA || (c >= 0xBC && c <= 0xBE));
  }
  return c == 0xD7 || c == 0xF7 || (c >= 0x300 && c <= 0x36F) || (c >= 0x2010 && c <= 0x2027) ||
         (c >= 0x2030 && c <= 0x205E) || c == 0x2212 || (c >= 0x3001 && c <= 0x3003) || (c >= 0x3008 && c <= 0x3011) ||
         (c >= 0x3014 && c <= 0x301F) || c == 0x30FB || (c >= 0xFF5F && c <= 0xFF65);
}

// Latin letters U+00C0..U+017F without their accents, lower-case; '*' marks the ones written with
// two letters (TwoLetterFold), ' ' the two symbols of the range (x and divided-by).
constexpr std::string_view kLatinFolds =
    "aaaaaa*ceeeeiiii"   // U+00C0
    "dnooooo ouuuuy**"   // U+00D0
    "aaaaaa*ceeeeiiii"   // U+00E0
    "dnooooo ouuuuy*y"   // U+00F0
    "aaaaaaccccccccdd"   // U+0100
    "ddeeeeeeeeeegggg"   // U+0110
    "gggghhhhiiiiiiii"   // U+0120
    "ii**jjkkklllllll"   // U+0130
    "lllnnnnnnnnnoooo"   // U+0140
    "oo**rrrrrrssssss"   // U+0150
    "ssttttttuuuuuuuu"   // U+0160
    "uuuuwwyyyzzzzzzs";  // U+0170
static_assert(kLatinFolds.size() == 0x180 - 0xC0);

std::string_view TwoLetterFold(char32_t c) {
  switch (c) {
    case 0xC6:
    case 0xE6:
      return "ae";  // AE ligature
    case 0xDE:
    case 0xFE:
      return "th";  // thorn
    case 0xDF:
      return "ss";  // sharp s
    case 0x132:
    case 0x133:
      return "ij";
    case 0x152:
    case 0x153:
      return "oe";
    default:
      return {};
  }
}

// Appends what character `c`, written `bytes` in the name, becomes in a normalised name.
void AppendNormalized(char32_t c, std::string_view bytes, std::string& out) {
  if (c >= 0xFF01 && c <= 0xFF5E) c -= 0xFEE0;  // full-width ASCII
  if (c < 0x80) {
    const char ascii = static_cast<char>(c);
    if ((ascii >= 'a' && ascii <= 'z') || (ascii >= '0' && ascii <= '9')) out += ascii;
    if (ascii >= 'A' && ascii <= 'Z') out += AsciiLowerChar(ascii);
    return;
  }
  if (IsWhiteSpace(c) || IsInvisible(c) || IsSeparatorSymbol(c)) return;
  if (c >= 0xC0 && c < 0x180) {
    const char folded = kLatinFolds[c - 0xC0];
    if (folded == '*') {
      out += TwoLetterFold(c);
    } else if (folded != ' ') {
      out += folded;
    }
    return;
  }
  out += bytes;  // any other character: kept as it is
}

bool IsTrimmed(char32_t c) { return c != kNotUtf8 && (IsWhiteSpace(c) || IsInvisible(c)); }

}  // namespace

std::string NormalizeColumnName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size();) {
    const Utf8Char c = DecodeUtf8At(name, i);
    if (c.code_point == kNotUtf8) {
      out += name[i];
    } else {
      AppendNormalized(c.code_point, name.substr(i, c.size), out);
    }
    i += c.size;
  }
  return out;
}

std::string_view TrimColumnName(std::string_view name) {
  size_t begin = 0;
  while (begin < name.size()) {
    const Utf8Char c = DecodeUtf8At(name, begin);
    if (!IsTrimmed(c.code_point)) break;
    begin += c.size;
  }
  name.remove_prefix(begin);
  // Backwards: find where the last character starts (at most 4 bytes back), then test it.
  while (!name.empty()) {
    size_t start = name.size() - 1;
    while (start > 0 && name.size() - start < 4 && (static_cast<unsigned char>(name[start]) & 0xC0) == 0x80) --start;
    const Utf8Char c = DecodeUtf8At(name, start);
    if (start + c.size != name.size() || !IsTrimmed(c.code_point)) break;
    name.remove_suffix(c.size);
  }
  return name;
}

std::string SpacedColumnName(std::string_view name) {
  name = TrimColumnName(name);
  std::string out;
  out.reserve(name.size());
  bool in_space = false;
  for (size_t i = 0; i < name.size();) {
    const Utf8Char c = DecodeUtf8At(name, i);
    if (c.code_point != kNotUtf8 && IsWhiteSpace(c.code_point)) {
      in_space = true;
    } else if (c.code_point == kNotUtf8 || !IsInvisible(c.code_point)) {
      if (in_space) out += ' ';
      in_space = false;
      out.append(name.substr(i, c.size));
    }
    i += c.size;
  }
  return out;
}

std::vector<std::string> SuggestAttributes(const std::vector<std::string>& columns,
                                           const std::vector<AttributeInfo>& attributes) {
  absl::flat_hash_map<std::string, std::string> by_lower;       // ASCII lower-case name -> attribute name
  absl::flat_hash_map<std::string, std::string> by_normalized;  // normalised name -> attribute name
  for (const AttributeInfo& attribute : attributes) {
    by_lower.emplace(AsciiLower(attribute.name), attribute.name);
    by_normalized.emplace(NormalizeColumnName(attribute.name), attribute.name);
  }
  // Normalised display name -> attribute name. A key that is also an attribute's normalised name
  // stays that attribute's (contact-store's default display name is the name itself); a key two
  // attributes' display names share is dropped, as it names neither for sure.
  absl::flat_hash_map<std::string, std::string> by_display;
  absl::flat_hash_set<std::string> shared_display;
  for (const AttributeInfo& attribute : attributes) {
    std::string key = NormalizeColumnName(attribute.display_name);
    if (key.empty() || by_normalized.contains(key) || shared_display.contains(key)) continue;
    auto [it, inserted] = by_display.emplace(key, attribute.name);
    if (!inserted && it->second != attribute.name) {
      by_display.erase(it);
      shared_display.insert(std::move(key));
    }
  }
  auto lookup = [&](const std::string& key) -> const std::string* {
    auto it = by_normalized.find(key);
    return it == by_normalized.end() ? nullptr : &it->second;
  };
  auto synonym = [&](std::string_view key) -> const std::string* {
    for (const auto& [name, target] : kSynonyms) {
      if (key == name) return lookup(std::string(target));
    }
    return nullptr;
  };

  // A name the header holds twice cannot be mapped (BuildImportPlan): such columns get nothing.
  absl::flat_hash_map<std::string_view, int> occurrences;  // trimmed name -> columns so named
  for (const std::string& column : columns) ++occurrences[TrimColumnName(column)];

  std::vector<std::string> suggestions(columns.size());
  std::vector<std::string> normalized(columns.size());
  std::vector<bool> open(columns.size());  // may still get a suggestion
  for (size_t i = 0; i < columns.size(); ++i) {
    normalized[i] = NormalizeColumnName(columns[i]);
    open[i] = !normalized[i].empty() && occurrences[TrimColumnName(columns[i])] == 1;
  }
  // Each rule in turn over every column, so an earlier rule wins whatever the column order: an
  // exact spelling over a normalised one, a name over a display name, either over a synonym or a
  // suffix.
  absl::flat_hash_set<std::string> used;
  auto suggest = [&](size_t i, const std::string* match) {
    if (match != nullptr && used.insert(*match).second) {
      suggestions[i] = *match;
      open[i] = false;
    }
  };
  for (size_t i = 0; i < columns.size(); ++i) {
    if (!open[i]) continue;
    auto it = by_lower.find(AsciiLower(TrimColumnName(columns[i])));
    suggest(i, it == by_lower.end() ? nullptr : &it->second);
  }
  for (size_t i = 0; i < columns.size(); ++i) {
    if (open[i]) suggest(i, lookup(normalized[i]));
  }
  for (size_t i = 0; i < columns.size(); ++i) {
    if (!open[i]) continue;
    auto it = by_display.find(normalized[i]);
    suggest(i, it == by_display.end() ? nullptr : &it->second);
  }
  for (size_t i = 0; i < columns.size(); ++i) {
    if (!open[i]) continue;
    const std::string& n = normalized[i];
    const std::string* match = synonym(n);
    if (match == nullptr) {
      for (std::string_view suffix : kDroppableSuffixes) {
        if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
          const std::string stem = n.substr(0, n.size() - suffix.size());
          match = lookup(stem);
          if (match == nullptr && (suffix == "number" || suffix == "no")) match = synonym(stem);
          if (match != nullptr) break;
        }
      }
    }
    suggest(i, match);
  }
  return suggestions;
}

TypeInferrer::TypeInferrer(ValueOptions options)
    : options_(std::move(options)), candidates_((1u << kInferenceOrder.size()) - 1) {}

void TypeInferrer::Add(std::string_view value) {
  value = TrimValueWhiteSpace(value);  // as NormalizeValue trims, so the leading-zero rule sees its value
  if (value.empty()) return;
  any_value_ = true;
  // A leading zero would be lost by a number, and so would the '+' of a phone number written with
  // its country code ("+919876543210"), which INTEGER, tried before MOBILE, would also accept.
  if (HasLeadingZero(value) || HasCountryCodePrefix(value)) candidates_ &= ~(kIntegerBit | kDecimalBit);
  if (!LooksLikePhoneNumber(value)) candidates_ &= ~kMobileBit;
  for (size_t i = 0; i < kInferenceOrder.size(); ++i) {
    if ((candidates_ & (1u << i)) == 0) continue;
    if (!NormalizeValue(kInferenceOrder[i], value, options_).ok()) candidates_ &= ~(1u << i);
  }
}

AttributeType TypeInferrer::Result() const {
  if (!any_value_) return AttributeType::kText;
  for (size_t i = 0; i < kInferenceOrder.size(); ++i) {
    if (candidates_ & (1u << i)) return kInferenceOrder[i];
  }
  return AttributeType::kText;
}

}  // namespace contacts
