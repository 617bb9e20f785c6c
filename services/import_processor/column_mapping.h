// Upload previews: which existing attribute a file column probably holds (matched by normalised
// name, with a few well-known synonyms such as "Phone" -> mobile), and which type an unmatched
// column's sample values suggest. Pure functions, no I/O.
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
};

// "E-mail Address" -> "emailaddress": ASCII lower-case, with spaces, underscores, dashes and dots
// removed. Non-ASCII bytes are kept as they are.
std::string NormalizeColumnName(std::string_view name);

// For each column, the name of the attribute it most likely holds, or "" for none. Rules, in
// order: the normalised column name equals the normalised attribute name; a known synonym
// ("emailaddress", "mail" -> email; "phone", "mobilenumber", "cell", ... -> mobile); the column
// name minus a trailing "address", "number", "no" or "id" matches. Each attribute is suggested for
// at most one column (the first that matches), because a mapping may not repeat an attribute.
std::vector<std::string> SuggestAttributes(const std::vector<std::string>& columns,
                                           const std::vector<AttributeInfo>& attributes);

// Infers a column's type from sample values: the first of INTEGER, DECIMAL, BOOLEAN, DATE,
// DATETIME, EMAIL, MOBILE that accepts every non-empty sample (NormalizeValue), else TEXT. A
// column with no non-empty sample is TEXT.
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
