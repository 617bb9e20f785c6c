#include "services/import_processor/column_mapping.h"

#include <array>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/values/text_case.h"

namespace contacts {
namespace {

constexpr std::array<AttributeType, 7> kInferenceOrder = {
    AttributeType::kInteger,  AttributeType::kDecimal, AttributeType::kBoolean, AttributeType::kDate,
    AttributeType::kDateTime, AttributeType::kEmail,   AttributeType::kMobile,
};

// Normalised column names that mean a system attribute whatever the tenant calls its columns.
constexpr std::array<std::pair<std::string_view, std::string_view>, 22> kSynonyms = {{
    {"emailaddress", "email"},   {"mail", "email"},         {"emailid", "email"},      {"mailaddress", "email"},
    {"emails", "email"},         {"phone", "mobile"},       {"phonenumber", "mobile"}, {"phoneno", "mobile"},
    {"mobilenumber", "mobile"},  {"mobileno", "mobile"},    {"mobilephone", "mobile"}, {"cell", "mobile"},
    {"cellphone", "mobile"},     {"cellnumber", "mobile"},  {"msisdn", "mobile"},      {"telephone", "mobile"},
    {"tel", "mobile"},           {"phonemobile", "mobile"}, {"whatsapp", "mobile"},    {"whatsappnumber", "mobile"},
    {"contactnumber", "mobile"}, {"mobiles", "mobile"},
}};

constexpr std::array<std::string_view, 4> kDroppableSuffixes = {"address", "number", "no", "id"};

}  // namespace

std::string NormalizeColumnName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c == ' ' || c == '_' || c == '-' || c == '.' || c == '\t') continue;
    out += AsciiLowerChar(c);
  }
  return out;
}

std::vector<std::string> SuggestAttributes(const std::vector<std::string>& columns,
                                           const std::vector<AttributeInfo>& attributes) {
  absl::flat_hash_map<std::string, std::string> by_normalized;  // normalised name -> attribute name
  for (const AttributeInfo& attribute : attributes) {
    by_normalized.emplace(NormalizeColumnName(attribute.name), attribute.name);
  }
  auto lookup = [&](const std::string& key) -> const std::string* {
    auto it = by_normalized.find(key);
    return it == by_normalized.end() ? nullptr : &it->second;
  };

  // Exact normalised matches win over synonyms and suffix rules, whatever the column order.
  std::vector<std::string> suggestions(columns.size());
  absl::flat_hash_set<std::string> used;
  std::vector<std::string> normalized(columns.size());
  for (size_t i = 0; i < columns.size(); ++i) {
    normalized[i] = NormalizeColumnName(columns[i]);
    const std::string* match = lookup(normalized[i]);
    if (match != nullptr && used.insert(*match).second) suggestions[i] = *match;
  }
  for (size_t i = 0; i < columns.size(); ++i) {
    if (!suggestions[i].empty() || normalized[i].empty()) continue;
    const std::string* match = nullptr;
    for (const auto& [synonym, target] : kSynonyms) {
      if (normalized[i] == synonym) {
        match = lookup(std::string(target));
        break;
      }
    }
    if (match == nullptr) {
      for (std::string_view suffix : kDroppableSuffixes) {
        const std::string& n = normalized[i];
        if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
          match = lookup(n.substr(0, n.size() - suffix.size()));
          if (match != nullptr) break;
        }
      }
    }
    if (match != nullptr && used.insert(*match).second) suggestions[i] = *match;
  }
  return suggestions;
}

TypeInferrer::TypeInferrer(ValueOptions options)
    : options_(std::move(options)), candidates_((1u << kInferenceOrder.size()) - 1) {}

void TypeInferrer::Add(std::string_view value) {
  bool blank = true;
  for (char c : value) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      blank = false;
      break;
    }
  }
  if (blank) return;
  any_value_ = true;
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
