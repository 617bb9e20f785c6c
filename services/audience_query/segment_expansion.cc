#include "services/audience_query/segment_expansion.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/status/status_macros.h"
#include "common/values/text_case.h"
#include "services/audience_query/filter_text.h"
#include "services/audience_query/filter_tree.h"

namespace contacts {
namespace {

std::string Chain(const std::vector<std::string>& names, size_t from, const std::string& last) {
  std::string out;
  for (size_t i = from; i < names.size(); ++i) {
    out += names[i];
    out += " -> ";
  }
  return out + last;
}

class Expander {
 public:
  explicit Expander(const SegmentLookup& lookup) : lookup_(lookup) {}

  // Counts the segments `filter` names towards kMaxSegmentsPerFilter, in the order they appear. Called
  // on the root and on each saved filter before it is expanded, so that a filter naming too many is
  // refused before any of them is looked up. Every segment looked up is named in a filter counted
  // here first, so there are at most kMaxSegmentsPerFilter lookups.
  absl::Status CountNamedSegments(const v1::Filter& filter) {
    switch (filter.node_case()) {
      case v1::Filter::kAnd:
      case v1::Filter::kOr: {
        const auto& list = filter.node_case() == v1::Filter::kAnd ? filter.and_() : filter.or_();
        for (const auto& child : list.filters()) {
          if (absl::Status status = CountNamedSegments(child); !status.ok()) return status;
        }
        break;
      }
      case v1::Filter::kNot:
        return CountNamedSegments(filter.not_());
      case v1::Filter::kTerm: {
        if (filter.term().kind_case() != v1::Term::kInSegment) break;
        const std::string& name = filter.term().in_segment();
        // Keyed as the store looks segments up: "a" and "A" are one segment, one lookup.
        if (named_.insert(AsciiLower(name)).second && named_.size() > kMaxSegmentsPerFilter) {
          const std::string used_by = stack_.empty() ? "" : fmt::format(" (used by {})", fmt::join(stack_, " -> "));
          return absl::InvalidArgumentError(
              fmt::format("the filter uses more than {} distinct segments, counting those inside other segments; the "
                          "first one over is {}{}",
                          kMaxSegmentsPerFilter, QuoteFilterString(name), used_by));
        }
        break;
      }
      case v1::Filter::NODE_NOT_SET:
        break;
    }
    return absl::OkStatus();
  }

  // Expands `filter` in place; returns its number of terms afterwards.
  absl::StatusOr<size_t> Expand(v1::Filter& filter) {
    switch (filter.node_case()) {
      case v1::Filter::kAnd:
      case v1::Filter::kOr: {
        auto* list = filter.node_case() == v1::Filter::kAnd ? filter.mutable_and_() : filter.mutable_or_();
        size_t total = 0;
        for (auto& child : *list->mutable_filters()) {
          auto terms = Expand(child);
          if (!terms.ok()) return terms.status();
          total += *terms;
          if (total > kMaxFilterTerms) return TooLarge();
        }
        return total;
      }
      case v1::Filter::kNot:
        return Expand(*filter.mutable_not_());
      case v1::Filter::kTerm:
        if (filter.term().kind_case() != v1::Term::kInSegment) return size_t{1};
        return ExpandSegmentTerm(filter);
      case v1::Filter::NODE_NOT_SET:
        break;
    }
    return size_t{0};
  }

 private:
  struct Expanded {
    v1::Filter filter;
    size_t terms = 0;
    // The longest chain of segments from this one down (itself first): a later use of the cached
    // expansion nests this many levels below the segments expanding it.
    std::vector<std::string> deepest;
  };

  static absl::Status TooLarge() {
    return absl::InvalidArgumentError(
        fmt::format("the filter has more than {} terms once segments are expanded", kMaxFilterTerms));
  }

  // `filter` is an in_segment term; replaces it by the segment's expanded filter.
  absl::StatusOr<size_t> ExpandSegmentTerm(v1::Filter& filter) {
    const std::string name = filter.term().in_segment();
    // The store matches segment names case-insensitively, so "a" and "A" are one segment.
    auto on_stack = std::find_if(stack_.begin(), stack_.end(),
                                 [&](const std::string& outer) { return EqualsIgnoreCase(outer, name); });
    if (on_stack != stack_.end()) {
      return absl::InvalidArgumentError(
          fmt::format("segment cycle: {}", Chain(stack_, static_cast<size_t>(on_stack - stack_.begin()), name)));
    }
    const std::string key = AsciiLower(name);
    if (auto cached = done_.find(key); cached != done_.end()) {
      // Expanded before, maybe at a shallower level: its inner levels count here too.
      const std::vector<std::string>& below = cached->second.deepest;
      if (stack_.size() + below.size() > static_cast<size_t>(kMaxSegmentNesting)) {
        std::vector<std::string> chain = stack_;
        chain.push_back(name);
        chain.insert(chain.end(), below.begin() + 1, below.end());
        chain.resize(kMaxSegmentNesting + 1);
        const std::string last = chain.back();
        chain.pop_back();
        return absl::InvalidArgumentError(
            fmt::format("segments nest deeper than {}: {}", kMaxSegmentNesting, Chain(chain, 0, last)));
      }
      filter = cached->second.filter;
      NoteDeepest(below);
      return cached->second.terms;
    }
    if (stack_.size() >= static_cast<size_t>(kMaxSegmentNesting)) {
      return absl::InvalidArgumentError(
          fmt::format("segments nest deeper than {}: {}", kMaxSegmentNesting, Chain(stack_, 0, name)));
    }
    auto saved = lookup_(name);
    if (!saved.ok()) {
      if (saved.status().code() != absl::StatusCode::kNotFound) return saved.status();
      if (stack_.empty()) return absl::InvalidArgumentError(fmt::format("unknown segment {}", QuoteFilterString(name)));
      return absl::InvalidArgumentError(
          fmt::format("unknown segment {} (used by {})", QuoteFilterString(name), fmt::join(stack_, " -> ")));
    }
    Expanded expanded;
    expanded.deepest = {name};
    if (saved->node_case() == v1::Filter::NODE_NOT_SET) {
      expanded.filter.mutable_term()->set_identity(v1::IDENTIFIED);  // an empty filter: every contact
      expanded.terms = 1;
    } else {
      if (auto status = ValidateFilterTree(*saved, fmt::format("segment {}", QuoteFilterString(name))); !status.ok()) {
        return status;
      }
      expanded.filter = *std::move(saved);
      std::vector<std::string> outer_deepest = std::exchange(deepest_, {});
      stack_.push_back(name);
      if (absl::Status status = CountNamedSegments(expanded.filter); !status.ok()) return status;
      auto terms = Expand(expanded.filter);
      stack_.pop_back();
      if (!terms.ok()) return terms.status();
      expanded.terms = *terms;
      expanded.deepest.insert(expanded.deepest.end(), deepest_.begin(), deepest_.end());
      deepest_ = std::move(outer_deepest);
    }
    NoteDeepest(expanded.deepest);
    filter = expanded.filter;
    const size_t terms = expanded.terms;
    done_.emplace(key, std::move(expanded));
    return terms;
  }

  // Records `chain` (segments nested in one another) as the deepest below the segment being
  // expanded, if it is deeper than any seen so far.
  void NoteDeepest(const std::vector<std::string>& chain) {
    if (chain.size() > deepest_.size()) deepest_ = chain;
  }

  const SegmentLookup& lookup_;
  std::vector<std::string> stack_;        // segments being expanded, outermost first
  std::vector<std::string> deepest_;      // the longest chain of segments met inside the innermost one
  std::map<std::string, Expanded> done_;  // fully expanded segments by lower-cased name, looked up once per call
  std::set<std::string> named_;           // lower-cased names of every segment named so far (CountNamedSegments)
};

}  // namespace

SegmentLookup MemoisedLookup(SegmentLookup lookup) {
  auto answers = std::make_shared<std::map<std::string, absl::StatusOr<v1::Filter>>>();
  return [lookup = std::move(lookup), answers](const std::string& name) -> absl::StatusOr<v1::Filter> {
    const std::string key = AsciiLower(name);
    auto it = answers->find(key);
    if (it == answers->end()) it = answers->emplace(key, lookup(name)).first;
    return it->second;
  };
}

absl::StatusOr<v1::Filter> ExpandSegments(const v1::Filter& filter, const SegmentLookup& lookup) {
  v1::Filter expanded = filter;
  Expander expander(lookup);
  if (absl::Status status = expander.CountNamedSegments(expanded); !status.ok()) return status;
  auto terms = expander.Expand(expanded);
  if (!terms.ok()) return terms.status();
  return expanded;
}

absl::Status CheckSegmentExpands(const std::string& name, const v1::Filter& filter, const SegmentLookup& lookup) {
  SegmentLookup as_if_saved = [&](const std::string& wanted) -> absl::StatusOr<v1::Filter> {
    if (EqualsIgnoreCase(wanted, name)) return filter;  // the store's names are case-insensitive
    return lookup(wanted);
  };
  v1::Filter root;
  root.mutable_term()->set_in_segment(name);
  auto expanded = ExpandSegments(root, as_if_saved);
  if (!expanded.ok()) return expanded.status();
  const int depth = FilterDepth(*expanded);
  if (depth > kMaxFilterDepth) {
    return absl::InvalidArgumentError(
        fmt::format("segment {} nests {} levels deep once segments are expanded, at "
                    "most {} are allowed",
                    QuoteFilterString(name), depth, kMaxFilterDepth));
  }
  return absl::OkStatus();
}

std::vector<std::string> SegmentUsers(const std::string& name,
                                      const google::protobuf::RepeatedPtrField<v1::Segment>& segments) {
  return SegmentsNaming(name, segments, v1::Term::kInSegment);
}

std::vector<std::string> SegmentsNaming(const std::string& name,
                                        const google::protobuf::RepeatedPtrField<v1::Segment>& segments,
                                        v1::Term::KindCase kind) {
  std::vector<std::string> users;
  for (const auto& segment : segments) {
    if (kind == v1::Term::kInSegment && EqualsIgnoreCase(segment.name(), name)) continue;
    const std::vector<std::string> names =
        kind == v1::Term::kInSegment ? SegmentTermNames(segment.filter()) : ControlGroupTermNames(segment.filter());
    // Case-insensitive, as the store looks segments and control groups up: in_segment("inner")
    // uses "Inner".
    if (std::any_of(names.begin(), names.end(),
                    [&](const std::string& used) { return EqualsIgnoreCase(used, name); })) {
      users.push_back(segment.name());
    }
  }
  std::sort(users.begin(), users.end());
  return users;
}

absl::Status CheckSegmentUsersStillWork(const std::string& name, const v1::Filter& filter,
                                        const google::protobuf::RepeatedPtrField<v1::Segment>& saved,
                                        const SegmentCheck& check) {
  std::map<std::string, const v1::Segment*> by_key;  // lower-cased name -> segment
  for (const auto& segment : saved) by_key[AsciiLower(segment.name())] = &segment;
  const SegmentLookup before = [&](const std::string& wanted) -> absl::StatusOr<v1::Filter> {
    auto found = by_key.find(AsciiLower(wanted));
    if (found == by_key.end()) return absl::NotFoundError(fmt::format("segment {} does not exist", wanted));
    return found->second->filter();
  };
  const SegmentLookup after = [&](const std::string& wanted) -> absl::StatusOr<v1::Filter> {
    if (EqualsIgnoreCase(wanted, name)) return filter;
    return before(wanted);
  };
  // Whether `segment` works with its segments as `lookup` answers: INVALID_ARGUMENT if not.
  const auto works = [&](const v1::Segment& segment, const SegmentLookup& lookup) -> absl::Status {
    RETURN_IF_ERROR(CheckSegmentExpands(segment.name(), segment.filter(), lookup));
    return check ? check(segment, lookup) : absl::OkStatus();
  };
  // The segments that reach `name`, directly or through others: grown until nothing changes.
  std::map<std::string, std::vector<std::string>> uses;  // lower-cased names, both sides
  for (const auto& [key, segment] : by_key) {
    for (const std::string& used : SegmentTermNames(segment->filter())) uses[key].push_back(AsciiLower(used));
  }
  std::set<std::string> reaching = {AsciiLower(name)};
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& [key, used] : uses) {
      if (reaching.contains(key)) continue;
      if (std::any_of(used.begin(), used.end(), [&](const std::string& u) { return reaching.contains(u); })) {
        reaching.insert(key);
        grew = true;
      }
    }
  }
  for (const auto& [key, segment] : by_key) {
    if (!reaching.contains(key) || EqualsIgnoreCase(segment->name(), name)) continue;
    absl::Status afterwards = works(*segment, after);
    if (afterwards.ok()) continue;
    if (!absl::IsInvalidArgument(afterwards)) return afterwards;
    // One already broken (say, by an unknown segment) is not this update's doing.
    absl::Status now = works(*segment, before);
    if (absl::IsInvalidArgument(now)) continue;
    RETURN_IF_ERROR(now);
    return absl::FailedPreconditionError(fmt::format("segment {} is used by segment {}, which would then fail: {}",
                                                     QuoteFilterString(name), QuoteFilterString(segment->name()),
                                                     std::string(afterwards.message())));
  }
  return absl::OkStatus();
}

}  // namespace contacts
