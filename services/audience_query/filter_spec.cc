#include "services/audience_query/filter_spec.h"

#include <string>
#include <utility>

#include <fmt/format.h>

#include "services/audience_query/filter_text.h"
#include "services/audience_query/filter_tree.h"

namespace contacts {

absl::StatusOr<v1::Filter> FilterFromSpec(const v1::FilterSpec& spec) {
  const bool has_tree = spec.has_filter() && spec.filter().node_case() != v1::Filter::NODE_NOT_SET;
  const bool has_text = !spec.text().empty();
  if (has_tree && has_text) {
    return absl::InvalidArgumentError("filter: give either filter.filter (a tree) or filter.text, not both");
  }
  if (has_text) {
    auto parsed = ParseFilterText(spec.text());
    if (!parsed.ok())
      return absl::InvalidArgumentError(fmt::format("filter.text: {}", std::string(parsed.status().message())));
    return parsed;
  }
  if (!has_tree) return v1::Filter();
  if (auto status = ValidateFilterTree(spec.filter(), "filter.filter"); !status.ok()) return status;
  return spec.filter();
}

absl::StatusOr<v1::Filter> ResolveFilterSpec(const v1::FilterSpec& spec, const SegmentLookup& lookup) {
  auto filter = FilterFromSpec(spec);
  if (!filter.ok() || !HasSegmentTerms(*filter)) return filter;
  auto expanded = ExpandSegments(*filter, lookup);
  if (!expanded.ok()) return expanded.status();
  const int depth = FilterDepth(*expanded);
  if (depth > kMaxFilterDepth) {
    return absl::InvalidArgumentError(fmt::format(
        "filter: nests {} levels deep once segments are expanded, at most {} are allowed", depth, kMaxFilterDepth));
  }
  return expanded;
}

absl::Status ValidateCatalogName(const std::string& name, const std::string& what) {
  if (name.empty()) return absl::InvalidArgumentError(fmt::format("{} is empty", what));
  if (name.size() > kMaxCatalogNameBytes) {
    return absl::InvalidArgumentError(
        fmt::format("{} is {} bytes long, at most {} are allowed", what, name.size(), kMaxCatalogNameBytes));
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7F) {
      return absl::InvalidArgumentError(fmt::format("{} holds a control character", what));
    }
  }
  if (name.front() == ' ' || name.back() == ' ') {
    return absl::InvalidArgumentError(fmt::format("{} {} starts or ends with a space", what, QuoteFilterString(name)));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Segment> BuildSegment(const std::string& name, const v1::FilterSpec& spec,
                                         const SegmentLookup& lookup) {
  if (auto status = ValidateCatalogName(name, "segment name"); !status.ok()) return status;
  auto filter = FilterFromSpec(spec);
  if (!filter.ok()) return filter.status();
  if (filter->node_case() == v1::Filter::NODE_NOT_SET) {
    return absl::InvalidArgumentError("segment: a filter is required (filter.filter or filter.text)");
  }
  if (auto status = CheckSegmentExpands(name, *filter, lookup); !status.ok()) return status;
  v1::Segment segment;
  segment.set_name(name);
  *segment.mutable_filter() = *std::move(filter);
  if (!spec.text().empty()) segment.set_filter_text(spec.text());
  return segment;
}

}  // namespace contacts
