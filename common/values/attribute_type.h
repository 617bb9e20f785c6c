// AttributeType: the type of a contact attribute, as every service sees it. It mirrors the proto
// enum contacts.v1.AttributeType number for number, so `static_cast<AttributeType>(proto_type)`
// converts (check the number with AttributeTypeFromNumber first), but this header stays free of
// protobuf so the value code can be used and tested without generated code.
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace contacts {

// Persisted (through the proto enum): the numbers never change meaning once assigned.
enum class AttributeType : int {
  kText = 1,
  kInteger = 2,
  kDecimal = 3,
  kBoolean = 4,
  kDate = 5,
  kDateTime = 6,
  kEmail = 7,
  kMobile = 8,
};

// Every valid type, in number order.
inline constexpr std::array<AttributeType, 8> kAllAttributeTypes = {
    AttributeType::kText, AttributeType::kInteger,  AttributeType::kDecimal, AttributeType::kBoolean,
    AttributeType::kDate, AttributeType::kDateTime, AttributeType::kEmail,   AttributeType::kMobile,
};

// The upper-case name used in messages and in the proto enum: "TEXT", "INTEGER", "DECIMAL",
// "BOOLEAN", "DATE", "DATETIME", "EMAIL", "MOBILE". A number outside the enum gives "UNKNOWN".
std::string_view AttributeTypeName(AttributeType type);

// Parses a type name case-insensitively ("integer", "DateTime"). Returns nullopt for anything else,
// including "UNKNOWN" and surrounding whitespace.
std::optional<AttributeType> ParseAttributeTypeName(std::string_view name);

// Converts a proto enum number: 1..8 map to the type, anything else (0 = UNSPECIFIED, or a number
// from a newer peer) gives nullopt.
std::optional<AttributeType> AttributeTypeFromNumber(int number);

}  // namespace contacts
