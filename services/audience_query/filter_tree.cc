#include "services/audience_query/filter_tree.h"

#include <algorithm>
#include <set>
#include <string>

#include <fmt/format.h>

namespace contacts {
namespace {

bool IsIdentifier(const std::string& name) {
  if (name.empty()) return false;
  auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!alpha(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return alpha(c) || digit(c) || c == '_'; });
}

absl::Status Invalid(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(fmt::format("{}: {}", path, what));
}

// A name longer than contact-store allows cannot name anything; refused here, before the store
// echoes it whole in an error too long for a gRPC status header.
absl::Status CheckNameLength(const std::string& name, size_t max, const std::string& path, const char* what) {
  if (name.size() <= max) return absl::OkStatus();
  return Invalid(path, fmt::format("{} name is {} bytes long, at most {} are allowed", what, name.size(), max));
}

absl::Status ValidatePredicate(const v1::AttributePredicate& predicate, const std::string& path) {
  if (auto status = CheckNameLength(predicate.attribute(), kMaxAttributeNameBytes, path, "attribute"); !status.ok()) {
    return status;
  }
  if (!IsIdentifier(predicate.attribute())) {
    return Invalid(path, predicate.attribute().empty()
                             ? std::string("attribute name is empty")
                             : fmt::format("attribute name \"{}\" is not of the form [A-Za-z][A-Za-z0-9_]*",
                                           predicate.attribute()));
  }
  const int count = predicate.values_size();
  auto need = [&](const char* op, int n) -> absl::Status {
    if (count == n) return absl::OkStatus();
    return Invalid(path, fmt::format("{} needs {} value{}, got {}", op, n, n == 1 ? "" : "s", count));
  };
  switch (predicate.op()) {
    case v1::EQ:
      return need("=", 1);
    case v1::NE:
      return need("!=", 1);
    case v1::LT:
      return need("<", 1);
    case v1::LE:
      return need("<=", 1);
    case v1::GT:
      return need(">", 1);
    case v1::GE:
      return need(">=", 1);
    case v1::CONTAINS:
      return need("CONTAINS", 1);
    case v1::STARTS_WITH:
      return need("STARTS_WITH", 1);
    case v1::BETWEEN:
      return need("BETWEEN", 2);
    case v1::IS_SET:
      return need("IS SET", 0);
    case v1::IS_NOT_SET:
      return need("IS NOT SET", 0);
    case v1::IN:
      if (count == 0) return Invalid(path, "IN needs at least 1 value, got 0");
      if (count > kMaxInValues) {
        return Invalid(path, fmt::format("IN on \"{}\" has {} values, at most {} are allowed", predicate.attribute(),
                                         count, kMaxInValues));
      }
      return absl::OkStatus();
    case v1::OPERATOR_UNSPECIFIED:
      return Invalid(path, "operator is not set");
    default:
      return Invalid(path, fmt::format("unknown operator {}", static_cast<int>(predicate.op())));
  }
}

absl::Status ValidateTerm(const v1::Term& term, const std::string& path) {
  switch (term.kind_case()) {
    case v1::Term::kAttribute:
      return ValidatePredicate(term.attribute(), path + ".attribute");
    case v1::Term::kCreated:
    case v1::Term::kModified:
      return absl::OkStatus();  // the store checks the date formats
    case v1::Term::kInList:
      if (term.in_list().empty()) return Invalid(path + ".in_list", "list name is empty");
      return CheckNameLength(term.in_list(), kMaxCatalogNameBytes, path + ".in_list", "list");
    case v1::Term::kInSegment:
      if (term.in_segment().empty()) return Invalid(path + ".in_segment", "segment name is empty");
      return CheckNameLength(term.in_segment(), kMaxCatalogNameBytes, path + ".in_segment", "segment");
    case v1::Term::kInControlGroup:
      if (term.in_control_group().empty()) return Invalid(path + ".in_control_group", "control group name is empty");
      return CheckNameLength(term.in_control_group(), kMaxCatalogNameBytes, path + ".in_control_group",
                             "control group");
    case v1::Term::kIdentity:
      if (term.identity() == v1::IDENTITY_UNSPECIFIED || !v1::Identity_IsValid(term.identity())) {
        return Invalid(path + ".identity", "identity is not set or unknown");
      }
      return absl::OkStatus();
    case v1::Term::kBlacklisted:
      if (term.blacklisted() == v1::CHANNEL_UNSPECIFIED || !v1::Channel_IsValid(term.blacklisted())) {
        return Invalid(path + ".blacklisted", "channel is not set or unknown");
      }
      return absl::OkStatus();
    case v1::Term::KIND_NOT_SET:
      break;
  }
  return Invalid(path, "term has no kind");
}

absl::Status ValidateNode(const v1::Filter& filter, const std::string& path) {
  switch (filter.node_case()) {
    case v1::Filter::kAnd:
    case v1::Filter::kOr: {
      const bool is_and = filter.node_case() == v1::Filter::kAnd;
      const auto& list = is_and ? filter.and_() : filter.or_();
      const char* name = is_and ? "and" : "or";
      if (list.filters_size() == 0) return Invalid(path + "." + name, "needs at least one filter");
      for (int i = 0; i < list.filters_size(); ++i) {
        auto status = ValidateNode(list.filters(i), fmt::format("{}.{}[{}]", path, name, i));
        if (!status.ok()) return status;
      }
      return absl::OkStatus();
    }
    case v1::Filter::kNot:
      return ValidateNode(filter.not_(), path + ".not");
    case v1::Filter::kTerm:
      return ValidateTerm(filter.term(), path + ".term");
    case v1::Filter::NODE_NOT_SET:
      break;
  }
  return Invalid(path, "empty filter node (set one of and, or, not, term)");
}

}  // namespace

int FilterDepth(const v1::Filter& filter) {
  switch (filter.node_case()) {
    case v1::Filter::kAnd:
    case v1::Filter::kOr: {
      const auto& list = filter.node_case() == v1::Filter::kAnd ? filter.and_() : filter.or_();
      int deepest = 0;
      for (const auto& child : list.filters()) deepest = std::max(deepest, FilterDepth(child));
      return deepest + 1;
    }
    case v1::Filter::kNot:
      return FilterDepth(filter.not_()) + 1;
    case v1::Filter::kTerm:
      return 1;
    case v1::Filter::NODE_NOT_SET:
      break;
  }
  return 0;
}

size_t FilterTermCount(const v1::Filter& filter) {
  switch (filter.node_case()) {
    case v1::Filter::kAnd:
    case v1::Filter::kOr: {
      const auto& list = filter.node_case() == v1::Filter::kAnd ? filter.and_() : filter.or_();
      size_t count = 0;
      for (const auto& child : list.filters()) count += FilterTermCount(child);
      return count;
    }
    case v1::Filter::kNot:
      return FilterTermCount(filter.not_());
    case v1::Filter::kTerm:
      return 1;
    case v1::Filter::NODE_NOT_SET:
      break;
  }
  return 0;
}

bool HasSegmentTerms(const v1::Filter& filter) {
  switch (filter.node_case()) {
    case v1::Filter::kAnd:
    case v1::Filter::kOr: {
      const auto& list = filter.node_case() == v1::Filter::kAnd ? filter.and_() : filter.or_();
      return std::any_of(list.filters().begin(), list.filters().end(),
                         [](const v1::Filter& child) { return HasSegmentTerms(child); });
    }
    case v1::Filter::kNot:
      return HasSegmentTerms(filter.not_());
    case v1::Filter::kTerm:
      return filter.term().kind_case() == v1::Term::kInSegment;
    case v1::Filter::NODE_NOT_SET:
      break;
  }
  return false;
}

namespace {
// Adds to `names` the name in every term of `kind` (in_segment, in_control_group) under `filter`.
void CollectTermNames(const v1::Filter& filter, v1::Term::KindCase kind, std::set<std::string>& names) {
  switch (filter.node_case()) {
    case v1::Filter::kAnd:
    case v1::Filter::kOr: {
      const auto& list = filter.node_case() == v1::Filter::kAnd ? filter.and_() : filter.or_();
      for (const auto& child : list.filters()) CollectTermNames(child, kind, names);
      return;
    }
    case v1::Filter::kNot:
      CollectTermNames(filter.not_(), kind, names);
      return;
    case v1::Filter::kTerm:
      if (filter.term().kind_case() != kind) return;
      names.insert(kind == v1::Term::kInSegment ? filter.term().in_segment() : filter.term().in_control_group());
      return;
    case v1::Filter::NODE_NOT_SET:
      return;
  }
}
}  // namespace

std::vector<std::string> SegmentTermNames(const v1::Filter& filter) {
  std::set<std::string> names;
  CollectTermNames(filter, v1::Term::kInSegment, names);
  return {names.begin(), names.end()};
}

std::vector<std::string> ControlGroupTermNames(const v1::Filter& filter) {
  std::set<std::string> names;
  CollectTermNames(filter, v1::Term::kInControlGroup, names);
  return {names.begin(), names.end()};
}

absl::Status ValidateFilterTree(const v1::Filter& filter, const std::string& root_name) {
  // Depth first: the recursive checks below must not walk an absurdly deep tree.
  const int depth = FilterDepth(filter);
  if (depth > kMaxFilterDepth) {
    return Invalid(root_name, fmt::format("nests {} levels deep, at most {} are allowed", depth, kMaxFilterDepth));
  }
  const size_t terms = FilterTermCount(filter);
  if (terms > kMaxFilterTerms) {
    return Invalid(root_name, fmt::format("has {} terms, at most {} are allowed", terms, kMaxFilterTerms));
  }
  return ValidateNode(filter, root_name);
}

}  // namespace contacts
