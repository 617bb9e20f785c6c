// Upload previews: which existing attribute a file column probably holds (matched by normalised
// name, with a few well-known synonyms such as "Phone" -> mobile), and which type an unmatched
// column's sample values suggest; also how StartImport trims a column's name. Pure functions, no
// I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/values/attribute_type.h"
#include "common/values/typed_value.h"

namespace contacts {

// An attribute of the tenant's schema as the import needs it.
struct AttributeInfo {
  std::string name;
  AttributeType type = AttributeType::kText;
  bool primary_key = false;
  // As users see it ("First Name" for fname); may be empty. Only SuggestAttributes reads it.
  std::string display_name;
};

// The key under which a column's name is matched with an attribute's: only its letters and digits,
// ASCII lower-case. Everything else separates words and is dropped: ASCII and Unicode white space
// (U+00A0 no-break, U+2000..U+200A, U+202F, U+3000, ...), characters that show nothing (U+200B
// zero-width space, U+FEFF BOM, U+00AD soft hyphen, direction marks), ASCII punctuation, quotes and
// dashes of any kind. Full-width forms (U+FF01..U+FF5E) read as ASCII; Latin letters lose
// their accents, also when written as a letter plus a combining accent ("É-mail" -> "email",
// "Straße" -> "strasse"). Letters of other scripts are kept as they are, case included
// (attribute names are ASCII, so only a display name written alike matches them). Bytes that are
// not UTF-8 are kept.
std::string NormalizeColumnName(std::string_view name);

// `name` without the white space and invisible characters (as NormalizeColumnName drops them) at
// either end: "\u00A0Email\uFEFF" -> "Email". What StartImport matches a mapped column by, and what
// makes two header names the same column.
std::string_view TrimColumnName(std::string_view name);

// How `name` reads: TrimColumnName, with invisible characters dropped and each run of white space
// inside written as one ASCII space. "First\u00A0\u00A0Name\u200B" -> "First Name".
std::string SpacedColumnName(std::string_view name);

// For each column, the name of the attribute it most likely holds, or "" for none. Rules, in
// order: the trimmed column name equals the attribute name ignoring ASCII case; the normalised
// names are equal; the normalised column name equals the attribute's normalised display name
// ("First Name" -> fname displayed "First Name"); a known synonym ("emailaddress", "mail" -> email;
// "phone", "mobilenumber", "cell", ... -> mobile); the column name minus a trailing "address",
// "number", "no" or "id" matches an attribute, or minus "number" or "no" a synonym ("Telephone No"
// -> mobile). A display name that normalises like some attribute's name is not used (the name
// wins: with first_name and fname displayed "First Name", a column "First Name" may get
// first_name, never fname), and one that normalises like another attribute's display name is
// used by neither (a guess between the two could import a column into the wrong attribute). Each
// attribute is suggested for at most one column (the first that matches, by the earliest rule),
// because a mapping may not repeat an attribute; a column whose trimmed name the header holds
// twice gets none, because StartImport cannot map it.
std::vector<std::string> SuggestAttributes(const std::vector<std::string>& columns,
                                           const std::vector<AttributeInfo>& attributes);

// Infers a column's type from sample values: the first of INTEGER, DECIMAL, BOOLEAN, DATE,
// DATETIME, EMAIL, MOBILE that accepts every non-empty sample (NormalizeValue), else TEXT. A
// column with no non-empty sample is TEXT. A number written with a leading zero ("0123", "-007",
// "00.5") rules out INTEGER and DECIMAL: as a number it would lose the zeros, and such columns
// hold codes (zip codes, zero-padded ids, phone numbers), not quantities. MOBILE also needs every
// sample to read as a phone number: written with its country code ('+' first), or with at least 10
// digits (a trunk '0' and a "00" prefix count). NormalizeValue takes any 5 to 9 digits with the
// tenant's country code put in front, so without this ZIP+4 codes ("12345-6789"), social security
// numbers ("123-45-6789") and other hyphenated codes would be suggested as MOBILE; national
// numbers of most numbering plans have 10 or more digits ("98765 43210", "(415) 555-0100",
// "07700 900123"). The cost: a national number shorter than that ("612 345 678" in Spain, "9123
// 4567" in Singapore) infers TEXT unless written with its country code. Only the suggestion
// changes: a column mapped to a MOBILE attribute is still read by NormalizeValue.
class TypeInferrer {
 public:
  explicit TypeInferrer(ValueOptions options = ValueOptions());

  void Add(std::string_view value);
  AttributeType Result() const;

 private:
  ValueOptions options_;
  uint32_t candidates_;  // bit i set: kInferenceOrder[i] still accepts every sample
  bool any_value_ = false;
};

}  // namespace contacts
