// Turns what a caller sends (a FilterSpec: a tree or text) into the tree that contact-store
// evaluates: parsed, validated and with segments expanded; and prepares segments for saving.
// Pure: segments come through a SegmentLookup.
#pragma once

#include <cstddef>
#include <string>

#include <google/protobuf/repeated_field.h>

#include "contacts/v1/audience_query.pb.h"
#include "contacts/v1/types.pb.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/audience_query/filter_tree.h"
#include "services/audience_query/segment_expansion.h"

namespace contacts {

// Largest segment that can be saved: the Segment as built (name, unexpanded filter and the text it
// came from) serialized. A saved segment travels whole in every ListSegments answer and in every
// filter that uses it, so it must stay a small part of a message (--max_message_bytes, 64 MiB by
// default). 1 MiB holds what a segment is for: a full IN list of 10,000 values of up to ~100 bytes
// (emails, ids), several of shorter values, or the longest filter text (64 KiB) with its tree many
// times over. Default: 1 MiB.
inline constexpr size_t kMaxSegmentBytes = size_t{1} << 20;

// Most segments one tenant can save. Each is a GetSegment away when used, but ListSegments (and the
// checks before a save or a delete) fetch them all. Default: 1000.
inline constexpr size_t kMaxSegmentsPerTenant = 1000;

// The tree a FilterSpec stands for, unexpanded: the tree as given, or the text parsed. An empty
// Filter (no node) when neither is given, which means every contact.
// Errors: InvalidArgumentError when both are given ("filter: give either ..."), when the text does
// not parse ("filter.text: position N: ...") or the tree is not valid ("filter.filter...: ...").
absl::StatusOr<v1::Filter> FilterFromSpec(const v1::FilterSpec& spec);

// FilterFromSpec, then segment expansion, then a final check of depth and size: the filter to send
// to the store. Errors: as FilterFromSpec and ExpandSegments.
absl::StatusOr<v1::Filter> ResolveFilterSpec(const v1::FilterSpec& spec, const SegmentLookup& lookup);

// Checks a segment or control-group name: non-empty, at most kMaxCatalogNameBytes, no control
// characters, no surrounding spaces. `what` names it in messages ("segment name").
absl::Status ValidateCatalogName(const std::string& name, const std::string& what);

// The Segment to save for CreateSegment / UpdateSegment: name, unexpanded filter, and the text it
// came from (when given as text). Validates the name and the filter, and refuses a filter that
// cannot be expanded with the segment saved (cycles through itself, unknown segments, too deep).
// Errors: InvalidArgumentError for all of these, including "segment: a filter is required" when
// the spec is empty, and for a segment larger than kMaxSegmentBytes serialized (checked before any
// lookup): `segment "x" is 1048600 bytes serialized (filter and filter text), at most 1048576 are
// allowed`; and whatever the lookup returns other than NotFound.
absl::StatusOr<v1::Segment> BuildSegment(const std::string& name, const v1::FilterSpec& spec,
                                         const SegmentLookup& lookup);

// Checks that the tenant's segments still fit once `segment` is saved, either added or replacing
// the one of `saved` with the same name (compared ignoring ASCII case, as the store does): at most
// kMaxSegmentsPerTenant of them, and at most `max_catalog_bytes` in the ListSegments answer that
// holds them all (contact-store's ListSegments is not paged). `saved` is every segment as saved now.
// Errors: ResourceExhaustedError naming the limit and the figures: `segment "x": the tenant has
// 1000 segments, at most 1000 are allowed; delete one first`, `segment "x": with it (1000 bytes) the
// tenant's segments would take 33554500 bytes, at most 33554432 are allowed ...`.
absl::Status CheckSegmentCatalogRoom(const v1::Segment& segment,
                                     const google::protobuf::RepeatedPtrField<v1::Segment>& saved,
                                     size_t max_catalog_bytes);

}  // namespace contacts
