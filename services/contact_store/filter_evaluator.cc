#include "services/contact_store/filter_evaluator.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "common/status/absl_fmt.h"
#include "common/status/status_macros.h"
#include "common/values/text_case.h"

namespace contacts::store {

using contacts::v1::Filter;
using contacts::v1::Term;

const contacts::v1::Attribute* AttributeCatalog::FindAttribute(std::string_view name) const {
  auto it = attribute_by_name.find(AsciiLower(name));
  return it == attribute_by_name.end() ? nullptr : AttributeById(it->second);
}

std::optional<uint64_t> TenantState::FindList(std::string_view name) const {
  auto it = list_by_name.find(AsciiLower(name));
  if (it == list_by_name.end()) return std::nullopt;
  return it->second;
}

void TenantState::PublishCatalog() {
  auto snapshot = std::make_shared<CatalogSnapshot>();
  static_cast<AttributeCatalog&>(*snapshot) = *this;
  snapshot->primary_key_attribute_id = record.primary_key_attribute_id();
  snapshot->email_attribute_id = email_id();
  snapshot->mobile_attribute_id = mobile_id();
  snapshot->configured = record.configured();
  snapshot->value_options = value_options();
  std::lock_guard lock(catalog_mu);
  catalog_snapshot = std::move(snapshot);
}

uint32_t TenantState::email_id() const {
  auto it = attribute_by_name.find("email");
  return it == attribute_by_name.end() ? 0 : it->second;
}

uint32_t TenantState::mobile_id() const {
  auto it = attribute_by_name.find("mobile");
  return it == attribute_by_name.end() ? 0 : it->second;
}

absl::StatusOr<int64_t> FilterEvaluator::TimeBound(const std::string& text, bool upper, std::string_view field) {
  if (text.empty()) return upper ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  auto canonical = NormalizeValue(AttributeType::kDateTime, text);
  if (!canonical.ok())
    return absl::InvalidArgumentError(fmt::format("filter: {}: {}", field, canonical.status().message()));
  ASSIGN_OR_RETURN(int64_t micros, DateTimeMicrosOf(*canonical));
  return upper ? UpperBoundMicros(text, micros) : micros;
}

absl::StatusOr<Roaring> FilterEvaluator::Evaluate(const Filter& filter) {
  return Evaluate(filter, tenant_.columns.alive());
}

absl::StatusOr<Roaring> FilterEvaluator::Evaluate(const Filter& filter, const Roaring& universe) {
  terms_ = 0;
  return EvaluateNode(filter, 0, universe);
}

absl::StatusOr<uint64_t> FilterEvaluator::Count(const Filter& filter) {
  if (filter.node_case() == Filter::kTerm && filter.term().kind_case() == Term::kAttribute) {
    ASSIGN_OR_RETURN(auto resolved, ResolvePredicate(filter.term().attribute()));
    const auto& [attribute, typed] = resolved;
    if (const AttributeColumn* column = tenant_.columns.attribute_column(attribute->id())) {
      if (std::optional<uint64_t> count = column->CountMatches(typed)) return *count;
    }
  }
  ASSIGN_OR_RETURN(Roaring matches, Evaluate(filter));
  return matches.cardinality();
}

absl::StatusOr<std::pair<const contacts::v1::Attribute*, TypedPredicate>> FilterEvaluator::ResolvePredicate(
    const contacts::v1::AttributePredicate& predicate) const {
  const contacts::v1::Attribute* attribute = tenant_.FindAttribute(predicate.attribute());
  if (attribute == nullptr) {
    return absl::InvalidArgumentError(fmt::format("filter: unknown attribute \"{}\"", predicate.attribute()));
  }
  ASSIGN_OR_RETURN(TypedPredicate typed,
                   TypedPredicate::Create(predicate, TypeOf(*attribute), tenant_.value_options()));
  return std::make_pair(attribute, std::move(typed));
}

namespace {

// Evaluation order inside an AND: bitmap terms cost a copy, column predicates a pass over the
// candidates, record scans and subtrees more.
int AndCost(const Filter& filter) {
  if (filter.node_case() != Filter::kTerm) return 3;
  switch (filter.term().kind_case()) {
    case Term::kInList:
    case Term::kIdentity:
    case Term::kBlacklisted:
      return 0;
    case Term::kAttribute:
      return 2;
    default:
      return 1;
  }
}

}  // namespace

absl::StatusOr<Roaring> FilterEvaluator::EvaluateNode(const Filter& filter, int depth, const Roaring& universe) {
  if (depth > kMaxFilterDepth) {
    return absl::InvalidArgumentError(fmt::format("filter: nested deeper than {} levels", kMaxFilterDepth));
  }
  switch (filter.node_case()) {
    case Filter::NODE_NOT_SET:
      // Only the whole filter may be empty (every contact): an empty node inside AND, OR or NOT
      // is a caller's mistake, which would otherwise count every contact (or none, under NOT).
      if (depth > 0) return absl::InvalidArgumentError("filter: an AND, OR or NOT holds an empty filter");
      return universe;
    case Filter::kAnd: {
      if (filter.and_().filters().empty()) return absl::InvalidArgumentError("filter: an AND without filters");
      std::vector<const Filter*> children;
      for (const Filter& child : filter.and_().filters()) children.push_back(&child);
      std::stable_sort(children.begin(), children.end(),
                       [](const Filter* a, const Filter* b) { return AndCost(*a) < AndCost(*b); });
      // The first child sees the caller's universe itself (no copy; often every alive contact,
      // which column terms need not intersect with). Every child is evaluated even when the result
      // is already empty, so that errors (an unknown attribute, a bad literal) do not depend on the
      // data.
      std::optional<Roaring> result;
      for (const Filter* child : children) {
        ASSIGN_OR_RETURN(Roaring narrowed, EvaluateNode(*child, depth + 1, result ? *result : universe));
        result = std::move(narrowed);
      }
      return result ? *std::move(result) : universe;
    }
    case Filter::kOr: {
      if (filter.or_().filters().empty()) return absl::InvalidArgumentError("filter: an OR without filters");
      Roaring result;
      for (const Filter& child : filter.or_().filters()) {
        ASSIGN_OR_RETURN(Roaring part, EvaluateNode(child, depth + 1, universe));
        result |= part;
      }
      return result;
    }
    case Filter::kNot: {
      ASSIGN_OR_RETURN(Roaring part, EvaluateNode(filter.not_(), depth + 1, universe));
      return universe - part;
    }
    case Filter::kTerm: {
      if (++terms_ > kMaxFilterTerms) {
        return absl::InvalidArgumentError(fmt::format("filter: more than {} terms", kMaxFilterTerms));
      }
      // Checked per term: ten thousand column terms over millions of contacts take a while too.
      if (stop_ && stop_()) {
        return absl::CancelledError("filter: evaluation stopped: the call was cancelled or its deadline passed");
      }
      return EvaluateTerm(filter.term(), universe);
    }
  }
  return absl::InvalidArgumentError("filter: unknown node");
}

absl::StatusOr<Roaring> FilterEvaluator::EvaluateTerm(const Term& term, const Roaring& universe) {
  const TenantColumns& columns = tenant_.columns;
  switch (term.kind_case()) {
    case Term::kAttribute: {
      ASSIGN_OR_RETURN(auto resolved, ResolvePredicate(term.attribute()));
      const auto& [attribute, typed] = resolved;
      if (const AttributeColumn* column = columns.attribute_column(attribute->id())) {
        return column->Evaluate(typed, universe, /*universe_is_alive=*/&universe == &columns.alive());
      }
      if (attribute->primary_key() || attribute->id() == tenant_.email_id() || attribute->id() == tenant_.mobile_id()) {
        // Presence of the primary key, email and mobile is known without a scan.
        using contacts::v1::Operator;
        if (typed.op() == Operator::IS_SET || typed.op() == Operator::IS_NOT_SET) {
          const Roaring& present = attribute->primary_key()                ? columns.alive()
                                   : attribute->id() == tenant_.email_id() ? columns.has_email()
                                                                           : columns.has_mobile();
          return typed.op() == Operator::IS_SET ? universe & present : universe - present;
        }
      }
      contacts::v1::AttributePredicate unnamed = term.attribute();
      unnamed.clear_attribute();
      auto [cached, first] = scanned_.try_emplace({attribute->id(), unnamed.SerializeAsString()});
      if (first && scanned_.size() > kMaxRecordScans) {
        scanned_.erase(cached);
        return absl::InvalidArgumentError(fmt::format(
            "filter: more than {} different conditions on attributes without an index (\"{}\" is one): each reads "
            "every contact; index the attribute (UpdateAttribute indexed=true) or put the values in one IN",
            kMaxRecordScans, attribute->name()));
      }
      // Nothing to test: an AND already narrowed to nothing, or audience-query checking a segment
      // against the catalog before saving it. Counted above all the same, so errors do not depend
      // on the data.
      if (universe.isEmpty()) return Roaring();
      if (!cached->second) {
        ASSIGN_OR_RETURN(Roaring scanned, scan_(attribute->id(), typed));
        cached->second = std::move(scanned);
      }
      return *cached->second & universe;
    }
    case Term::kCreated:
    case Term::kModified: {
      const bool created = term.kind_case() == Term::kCreated;
      const auto& range = created ? term.created() : term.modified();
      std::string_view field = created ? "created" : "modified";
      ASSIGN_OR_RETURN(int64_t from, TimeBound(range.from(), false, field));
      ASSIGN_OR_RETURN(int64_t to, TimeBound(range.to(), true, field));
      return created ? columns.CreatedBetween(universe, from, to) : columns.ModifiedBetween(universe, from, to);
    }
    case Term::kInList: {
      std::optional<uint64_t> list = tenant_.FindList(term.in_list());
      if (!list) return absl::InvalidArgumentError(fmt::format("filter: unknown list \"{}\"", term.in_list()));
      return columns.list(*list) & universe;
    }
    case Term::kInSegment:
      return absl::InvalidArgumentError(
          fmt::format("filter: in_segment(\"{}\") must be expanded before it reaches the store (use audience-query)",
                      term.in_segment()));
    case Term::kInControlGroup: {
      auto it = tenant_.control_groups.find(AsciiLower(term.in_control_group()));
      if (it == tenant_.control_groups.end()) {
        return absl::InvalidArgumentError(fmt::format("filter: unknown control group \"{}\"", term.in_control_group()));
      }
      return columns.ControlGroup(universe, it->second.seed, it->second.basis_points);
    }
    case Term::kIdentity:
      switch (term.identity()) {
        case contacts::v1::HAS_EMAIL:
          return columns.has_email() & universe;
        case contacts::v1::HAS_MOBILE:
          return columns.has_mobile() & universe;
        case contacts::v1::IDENTIFIED:
          return columns.alive() & universe;
        case contacts::v1::ANONYMOUS:
          return Roaring();
        default:
          return absl::InvalidArgumentError("filter: identity term without a value");
      }
    case Term::kBlacklisted:
      if (term.blacklisted() == contacts::v1::CHANNEL_UNSPECIFIED) {
        return absl::InvalidArgumentError("filter: blacklisted term without a channel");
      }
      if (!contacts::v1::Channel_IsValid(term.blacklisted())) {
        return absl::InvalidArgumentError(
            fmt::format("filter: blacklisted term with unknown channel {}", static_cast<int>(term.blacklisted())));
      }
      return columns.blacklisted(term.blacklisted()) & universe;
    case Term::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("filter: empty term");
}

}  // namespace contacts::store
