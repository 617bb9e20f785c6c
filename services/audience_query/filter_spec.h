// Turns what a caller sends (a FilterSpec: a tree or text) into the tree that contact-store
// evaluates: parsed, validated and with segments expanded; and prepares segments for saving.
// Pure: segments come through a SegmentLookup.
#pragma once

#include <string>

#include "contacts/v1/audience_query.pb.h"
#include "contacts/v1/types.pb.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/audience_query/filter_tree.h"
#include "services/audience_query/segment_expansion.h"

namespace contacts {

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
// the spec is empty; and whatever the lookup returns other than NotFound.
absl::StatusOr<v1::Segment> BuildSegment(const std::string& name, const v1::FilterSpec& spec,
                                         const SegmentLookup& lookup);

}  // namespace contacts
