#include "common/values/attribute_type.h"

#include "common/values/text_case.h"

namespace contacts {

std::string_view AttributeTypeName(AttributeType type) {
  switch (type) {
    case AttributeType::kText:
      return "TEXT";
    case AttributeType::kInteger:
      return "INTEGER";
    case AttributeType::kDecimal:
      return "DECIMAL";
    case AttributeType::kBoolean:
      return "BOOLEAN";
    case AttributeType::kDate:
      return "DATE";
    case AttributeType::kDateTime:
      return "DATETIME";
    case AttributeType::kEmail:
      return "EMAIL";
    case AttributeType::kMobile:
      return "MOBILE";
  }
  return "UNKNOWN";
}

std::optional<AttributeType> ParseAttributeTypeName(std::string_view name) {
  for (AttributeType type : kAllAttributeTypes) {
    if (EqualsIgnoreCase(name, AttributeTypeName(type))) return type;
  }
  return std::nullopt;
}

std::optional<AttributeType> AttributeTypeFromNumber(int number) {
  if (number < static_cast<int>(AttributeType::kText) || number > static_cast<int>(AttributeType::kMobile)) {
    return std::nullopt;
  }
  return static_cast<AttributeType>(number);
}

}  // namespace contacts
