// TypedPredicate: one attribute predicate of a filter, with its literals parsed for the
// attribute's type, so that the in-memory columns and the record scan decide matches the same way.
//
// Semantics (documented in services/contact_store/README.md):
// - every operator but IS_NOT_SET matches only contacts that have a value;
// - NE matches set values different from the literal (NOT (a = x) also matches unset ones);
// - TEXT / EMAIL / MOBILE compare bytewise for = != < <= > >= BETWEEN IN, and case-insensitively
//   (ASCII) for CONTAINS and STARTS_WITH;
// - numbers, dates and booleans compare by value; CONTAINS / STARTS_WITH are refused for them;
// - a plain date (YYYY-MM-DD) against a DATETIME is midnight UTC of that day, except as an upper
//   bound, where it covers its whole day: <= and the upper end of BETWEEN compare with the day's
//   last microsecond, and so does > (the opposite of <=), as created_before does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "contacts/v1/types.pb.h"

#include "absl/numeric/int128.h"
#include "absl/status/statusor.h"
#include "common/values/attribute_type.h"
#include "common/values/typed_value.h"

namespace contacts::store {

// The DATETIME an upper bound `literal` stands for, given `micros` (its value as a DATETIME):
// the last microsecond of the day for a plain date (YYYY-MM-DD, spaces around allowed), so that
// "up to 2024-03-31" includes the 31st; `micros` itself for any other literal.
int64_t UpperBoundMicros(std::string_view literal, int64_t micros);

class TypedPredicate {
 public:
  // Parses the literals of `predicate` for an attribute of `type`.
  // Errors: INVALID_ARGUMENT naming the attribute and the literal (wrong count, wrong type,
  // operator not valid for the type).
  static absl::StatusOr<TypedPredicate> Create(const contacts::v1::AttributePredicate& predicate, AttributeType type,
                                               const ValueOptions& options);

  contacts::v1::Operator op() const { return op_; }
  AttributeType type() const { return type_; }

  // For the integer-like types (INTEGER, DATE, DATETIME, BOOLEAN as 0/1).
  bool MatchesInt(int64_t value) const;
  // For the integer-like types: when the predicate is one closed interval of values (=, <, <=, >,
  // >=, BETWEEN), sets [*low, *high] and returns true, so a scan can compare inline.
  bool IntInterval(int64_t* low, int64_t* high) const;
  // For DECIMAL, scaled by 10^9 (DecimalScaledOf).
  bool MatchesDecimal(absl::int128 value) const;
  // For TEXT, EMAIL, MOBILE.
  bool MatchesText(std::string_view value) const;
  // A canonical value of the type ("" = not set).
  bool MatchesCanonical(std::string_view canonical) const;

  // Integer-like, decimal or text representation of the type, as columns store it.
  static bool IsIntegerLike(AttributeType type);
  static bool IsTextLike(AttributeType type);
  // Canonical value -> the integer a column stores (REQUIRES IsIntegerLike(type), valid value).
  static int64_t IntegerKey(AttributeType type, std::string_view canonical);

 private:
  template <typename T>
  bool Compare(const T& value, const std::vector<T>& literals) const;

  contacts::v1::Operator op_ = contacts::v1::OPERATOR_UNSPECIFIED;
  AttributeType type_ = AttributeType::kText;
  std::vector<int64_t> ints_;
  std::vector<absl::int128> decimals_;
  std::vector<std::string> texts_;  // lower-cased for CONTAINS / STARTS_WITH
};

}  // namespace contacts::store
