#include "services/contact_store/predicate.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "common/status/absl_fmt.h"
#include "common/status/status_macros.h"
#include "common/values/contract_limits.h"
#include "common/values/text_case.h"

namespace contacts::store {
namespace {

using contacts::v1::Operator;

absl::Status LiteralCountError(const contacts::v1::AttributePredicate& p, std::string_view want) {
  return absl::InvalidArgumentError(fmt::format("filter: attribute \"{}\": operator {} takes {}, got {} value(s)",
                                                p.attribute(), contacts::v1::Operator_Name(p.op()), want,
                                                p.values_size()));
}

}  // namespace

int64_t UpperBoundMicros(std::string_view literal, int64_t micros) {
  // Trimmed as NormalizeValue trims: "2024-03-31<NBSP>" is a date, the whole day.
  return DateDaysOf(TrimValueWhiteSpace(literal)).ok() ? micros + kMicrosPerDay - 1 : micros;
}

bool TypedPredicate::IsIntegerLike(AttributeType type) {
  return type == AttributeType::kInteger || type == AttributeType::kDate || type == AttributeType::kDateTime ||
         type == AttributeType::kBoolean;
}

bool TypedPredicate::IsTextLike(AttributeType type) {
  return type == AttributeType::kText || type == AttributeType::kEmail || type == AttributeType::kMobile;
}

int64_t TypedPredicate::IntegerKey(AttributeType type, std::string_view canonical) {
  switch (type) {
    case AttributeType::kInteger:
      return IntegerOf(canonical).value_or(0);
    case AttributeType::kDate:
      return DateDaysOf(canonical).value_or(0);
    case AttributeType::kDateTime:
      return DateTimeMicrosOf(canonical).value_or(0);
    case AttributeType::kBoolean:
      return BooleanOf(canonical) ? 1 : 0;
    default:
      return 0;
  }
}

absl::StatusOr<TypedPredicate> TypedPredicate::Create(const contacts::v1::AttributePredicate& predicate,
                                                      AttributeType type, const ValueOptions& options) {
  TypedPredicate out;
  out.op_ = predicate.op();
  out.type_ = type;
  const int n = predicate.values_size();
  switch (predicate.op()) {
    case Operator::EQ:
    case Operator::NE:
    case Operator::LT:
    case Operator::LE:
    case Operator::GT:
    case Operator::GE:
    case Operator::CONTAINS:
    case Operator::STARTS_WITH:
      if (n != 1) return LiteralCountError(predicate, "one value");
      break;
    case Operator::BETWEEN:
      if (n != 2) return LiteralCountError(predicate, "two values");
      break;
    case Operator::IN:
      if (n < 1 || n > kMaxInValues) return LiteralCountError(predicate, fmt::format("1 to {} values", kMaxInValues));
      break;
    case Operator::IS_SET:
    case Operator::IS_NOT_SET:
      if (n != 0) return LiteralCountError(predicate, "no value");
      return out;
    default:
      return absl::InvalidArgumentError(
          fmt::format("filter: attribute \"{}\": missing or unknown operator", predicate.attribute()));
  }
  const bool substring = predicate.op() == Operator::CONTAINS || predicate.op() == Operator::STARTS_WITH;
  if (substring) {
    if (!IsTextLike(type)) {
      return absl::InvalidArgumentError(fmt::format("filter: attribute \"{}\": {} applies to text, not {}",
                                                    predicate.attribute(), Operator_Name(predicate.op()),
                                                    AttributeTypeName(type)));
    }
    // Substrings are matched as typed, not normalised: "gmail" is no valid EMAIL but a fine needle.
    out.texts_.push_back(AsciiLower(predicate.values(0)));
    return out;
  }
  for (int i = 0; i < n; ++i) {
    const std::string& literal = predicate.values(i);
    auto canonical = NormalizeValue(type, literal, options);
    if (!canonical.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("filter: attribute \"{}\": {}", predicate.attribute(), canonical.status().message()));
    }
    if (canonical->empty()) {
      return absl::InvalidArgumentError(fmt::format(
          "filter: attribute \"{}\": empty value (use IS_SET / IS_NOT_SET to test presence)", predicate.attribute()));
    }
    if (IsIntegerLike(type)) {
      int64_t key = IntegerKey(type, *canonical);
      const bool upper_bound = predicate.op() == Operator::LE || predicate.op() == Operator::GT ||
                               (predicate.op() == Operator::BETWEEN && i == 1);
      if (type == AttributeType::kDateTime && upper_bound) key = UpperBoundMicros(literal, key);
      out.ints_.push_back(key);
    } else if (type == AttributeType::kDecimal) {
      ASSIGN_OR_RETURN(absl::int128 scaled, DecimalScaledOf(*canonical));
      out.decimals_.push_back(scaled);
    } else {
      out.texts_.push_back(*std::move(canonical));
    }
  }
  if (predicate.op() == Operator::IN) {
    std::sort(out.ints_.begin(), out.ints_.end());
    std::sort(out.decimals_.begin(), out.decimals_.end());
    std::sort(out.texts_.begin(), out.texts_.end());
  }
  return out;
}

template <typename T>
bool TypedPredicate::Compare(const T& value, const std::vector<T>& literals) const {
  switch (op_) {
    case Operator::EQ:
      return value == literals[0];
    case Operator::NE:
      return value != literals[0];
    case Operator::LT:
      return value < literals[0];
    case Operator::LE:
      return value <= literals[0];
    case Operator::GT:
      return value > literals[0];
    case Operator::GE:
      return value >= literals[0];
    case Operator::BETWEEN:
      return literals[0] <= value && value <= literals[1];
    case Operator::IN:
      return std::binary_search(literals.begin(), literals.end(), value);
    case Operator::IS_SET:
      return true;
    default:
      return false;
  }
}

bool TypedPredicate::MatchesInt(int64_t value) const { return Compare(value, ints_); }

bool TypedPredicate::IntInterval(int64_t* low, int64_t* high) const {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (ints_.empty()) return false;
  const int64_t v = ints_[0];
  switch (op_) {
    case Operator::EQ:
      *low = v, *high = v;
      return true;
    case Operator::LT:
      if (v == kMin) return false;
      *low = kMin, *high = v - 1;
      return true;
    case Operator::LE:
      *low = kMin, *high = v;
      return true;
    case Operator::GT:
      if (v == kMax) return false;
      *low = v + 1, *high = kMax;
      return true;
    case Operator::GE:
      *low = v, *high = kMax;
      return true;
    case Operator::BETWEEN:
      *low = ints_[0], *high = ints_[1];
      return true;
    default:
      return false;
  }
}

bool TypedPredicate::MatchesDecimal(absl::int128 value) const { return Compare(value, decimals_); }

bool TypedPredicate::MatchesText(std::string_view value) const {
  if (op_ == Operator::CONTAINS) return ContainsIgnoreCase(value, texts_[0]);
  if (op_ == Operator::STARTS_WITH) return StartsWithIgnoreCase(value, texts_[0]);
  if (op_ == Operator::IS_SET) return true;
  // Compare against std::string literals without copying the value.
  switch (op_) {
    case Operator::EQ:
      return value == texts_[0];
    case Operator::NE:
      return value != texts_[0];
    case Operator::LT:
      return value < texts_[0];
    case Operator::LE:
      return value <= texts_[0];
    case Operator::GT:
      return value > texts_[0];
    case Operator::GE:
      return value >= texts_[0];
    case Operator::BETWEEN:
      return texts_[0] <= value && value <= texts_[1];
    case Operator::IN:
      return std::binary_search(texts_.begin(), texts_.end(), value,
                                [](std::string_view a, std::string_view b) { return a < b; });
    default:
      return false;
  }
}

bool TypedPredicate::MatchesCanonical(std::string_view canonical) const {
  if (canonical.empty()) return op_ == Operator::IS_NOT_SET;
  if (op_ == Operator::IS_NOT_SET) return false;
  if (IsIntegerLike(type_)) return MatchesInt(IntegerKey(type_, canonical));
  if (type_ == AttributeType::kDecimal) {
    auto scaled = DecimalScaledOf(canonical);
    return scaled.ok() && MatchesDecimal(*scaled);
  }
  return MatchesText(canonical);
}

}  // namespace contacts::store
