#include "services/audience_query/filter_spec.h"

#include <string>
#include <utility>

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>

#include "common/values/text_case.h"
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
  v1::Segment segment;
  segment.set_name(name);
  *segment.mutable_filter() = *std::move(filter);
  if (!spec.text().empty()) segment.set_filter_text(spec.text());
  // Before the lookups: a segment too large to save costs the store no call.
  if (const size_t bytes = segment.ByteSizeLong(); bytes > kMaxSegmentBytes) {
    return absl::InvalidArgumentError(
        fmt::format("segment {} is {} bytes serialized (filter and filter text), at most {} are allowed",
                    QuoteFilterString(name), bytes, kMaxSegmentBytes));
  }
  if (auto status = CheckSegmentExpands(name, segment.filter(), lookup); !status.ok()) return status;
  return segment;
}

namespace {
// Bytes `segment` takes as one element of a repeated field: tag, length, message.
size_t RepeatedEntryBytes(const v1::Segment& segment) {
  const size_t bytes = segment.ByteSizeLong();
  return 1 + google::protobuf::io::CodedOutputStream::VarintSize64(bytes) + bytes;
}
}  // namespace

absl::Status CheckSegmentCatalogRoom(const v1::Segment& segment,
                                     const google::protobuf::RepeatedPtrField<v1::Segment>& saved,
                                     size_t max_catalog_bytes) {
  bool replaces = false;  // an update, or a create the store will refuse with ALREADY_EXISTS
  size_t replaced_bytes = 0;
  size_t others = 0;
  const size_t entry_bytes = RepeatedEntryBytes(segment);
  size_t total = entry_bytes;
  for (const v1::Segment& other : saved) {
    if (EqualsIgnoreCase(other.name(), segment.name())) {
      replaces = true;
      replaced_bytes = RepeatedEntryBytes(other);
      continue;
    }
    ++others;
    total += RepeatedEntryBytes(other);
  }
  const std::string name = QuoteFilterString(segment.name());
  // Only a new segment adds to the count: a tenant over the limit (saved before it existed) can
  // still update its segments.
  if (!replaces && others >= kMaxSegmentsPerTenant) {
    return absl::ResourceExhaustedError(
        fmt::format("segment {}: the tenant has {} segments, at most {} are allowed; delete one first", name, others,
                    kMaxSegmentsPerTenant));
  }
  // Likewise an update that does not grow its segment is let through: it cannot make things worse.
  if (total > max_catalog_bytes && !(replaces && entry_bytes <= replaced_bytes)) {
    return absl::ResourceExhaustedError(
        fmt::format("segment {}: with it ({} bytes) the tenant's segments would take {} bytes, at most {} are allowed "
                    "(so that they can be listed in one message); delete or shrink some first",
                    name, segment.ByteSizeLong(), total, max_catalog_bytes));
  }
  return absl::OkStatus();
}

}  // namespace contacts
