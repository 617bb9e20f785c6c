// Evaluates a filter tree (contacts.v1.Filter) over one tenant's query columns, producing the
// bitmap of matching contact ordinals. Indexed attributes, lists, dates, identity, blacklist and
// control groups are answered from memory; predicates on attributes without a column fall back to
// a scan of the tenant's records (`RecordScan`), once per distinct predicate.
// REQUIRES: the caller holds the tenant's lock (shared at least) for the evaluator's life.
#pragma once

#include <functional>
#include <optional>
#include <utility>

#include <roaring/roaring.hh>

#include "contacts/v1/types.pb.h"

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/values/contract_limits.h"
#include "services/contact_store/predicate.h"
#include "services/contact_store/stop_check.h"
#include "services/contact_store/tenant_state.h"

namespace contacts::store {

// Returns the alive ordinals whose value of `attribute_id` matches, by reading records.
using RecordScan = std::function<absl::StatusOr<Roaring>(uint32_t attribute_id, const TypedPredicate& predicate)>;

inline constexpr int kMaxFilterDepth = 64;
// Distinct predicates on attributes without a column in one filter: each reads every record of the
// tenant under its lock, so a filter of thousands (4,000 ORed terms on a note) held writes back for
// minutes. Repeats of one predicate share a scan.
inline constexpr int kMaxRecordScans = 16;

class FilterEvaluator {
 public:
  FilterEvaluator(const TenantState& tenant, RecordScan scan, StopCheck stop = {})
      : tenant_(tenant), scan_(std::move(scan)), stop_(std::move(stop)) {}

  // An empty filter (no node set) matches every contact; an empty node inside it is refused.
  // Errors: INVALID_ARGUMENT naming the unknown attribute, list or control group, the bad literal,
  // an in_segment term (segments are expanded by audience-query), or a tree too deep or too large
  // (more than kMaxFilterTerms terms, or kMaxRecordScans distinct predicates needing a record scan);
  // CANCELLED when `stop` says the caller has gone.
  absl::StatusOr<Roaring> Evaluate(const contacts::v1::Filter& filter);
  // The matching contacts within `universe` (REQUIRES: a subset of the alive contacts), e.g. a
  // window of ordinals for a first page. The same evaluator may evaluate the same filter again
  // with another universe: record scans are kept per term and not repeated.
  absl::StatusOr<Roaring> Evaluate(const contacts::v1::Filter& filter, const Roaring& universe);

  // The number of contacts Evaluate(filter) would return. A filter of one attribute term is
  // counted from the column's value sizes, without building the bitmap. Same errors as Evaluate.
  absl::StatusOr<uint64_t> Count(const contacts::v1::Filter& filter);

  // Parses a TimeRange bound; `upper` makes a plain date cover its whole day.
  static absl::StatusOr<int64_t> TimeBound(const std::string& text, bool upper, std::string_view field);

 private:
  // Both return a subset of `universe` (each term intersects with it itself, so nothing is copied
  // or intersected twice): an AND narrows the universe child by child (cheap bitmap terms first),
  // so column predicates only visit the candidates left.
  absl::StatusOr<Roaring> EvaluateNode(const contacts::v1::Filter& filter, int depth, const Roaring& universe);
  absl::StatusOr<Roaring> EvaluateTerm(const contacts::v1::Term& term, const Roaring& universe);
  // The attribute of an attribute term and its predicate typed by it. Errors: INVALID_ARGUMENT for
  // an unknown attribute or a bad literal.
  absl::StatusOr<std::pair<const contacts::v1::Attribute*, TypedPredicate>> ResolvePredicate(
      const contacts::v1::AttributePredicate& predicate) const;

  const TenantState& tenant_;
  RecordScan scan_;
  StopCheck stop_;
  size_t terms_ = 0;
  // Record scans over all alive contacts, by attribute id and the predicate as sent (without the
  // attribute's spelling), so that repeats of one term cost one scan; empty until a term needs it
  // over a non-empty universe.
  absl::flat_hash_map<std::pair<uint32_t, std::string>, std::optional<Roaring>> scanned_;
};

}  // namespace contacts::store
