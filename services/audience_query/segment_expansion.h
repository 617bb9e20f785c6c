// Segment expansion: contact-store evaluates filters without in_segment terms, so audience-query
// replaces each in_segment("name") by the segment's saved filter, recursively, before it asks the
// store. Segments are saved unexpanded, so a change to an inner segment shows in every segment
// that uses it. Cycles, unknown segments and runaway nesting or size are refused. Pure: the
// segments come through a lookup function (the store in production, a map in tests).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <google/protobuf/repeated_field.h>

#include "contacts/v1/types.pb.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace contacts {

// Returns the saved (unexpanded) filter of segment `name`: NotFoundError when there is no such
// segment; any other error (the store unavailable, a deadline) is passed through unchanged.
using SegmentLookup = std::function<absl::StatusOr<v1::Filter>(const std::string& name)>;

// Most segments nested inside one another (a -> b -> ... ). Default: 16.
inline constexpr int kMaxSegmentNesting = 16;

// Most distinct segments one filter may use, counting those inside other segments (names compared
// as the store does, ignoring ASCII case). Each costs one lookup, a GetSegment round trip to the
// store, so this bounds the store calls one request can cause. Default: 100.
inline constexpr size_t kMaxSegmentsPerFilter = 100;

// `lookup` with each answer kept by name (ignoring ASCII case, as the store compares names), so
// that the checks of one request (BuildSegment's, then the store's) fetch each segment once.
SegmentLookup MemoisedLookup(SegmentLookup lookup);

// Returns `filter` with every in_segment term replaced by that segment's filter, recursively. Each
// segment is looked up once per call, whatever the case of its name and however often it is used,
// so `lookup` is called at most kMaxSegmentsPerFilter times. A segment saved with an empty filter
// stands for every contact and expands to identified().
// Errors: InvalidArgumentError for
//   - an unknown segment: `unknown segment "x"` (plus ` (used by a -> b)` when nested),
//   - a cycle: `segment cycle: a -> b -> a`,
//   - nesting deeper than kMaxSegmentNesting, counted the same whatever the order of the terms (a
//     segment expanded once still counts its inner levels where it is used again):
//     `segments nest deeper than 16: a -> b -> ...`,
//   - a saved filter that is not a valid tree (see ValidateFilterTree), named `segment "x"`,
//   - more than kMaxFilterTerms terms once expanded,
//   - more than kMaxSegmentsPerFilter distinct segments, counting those inside others, refused
//     without looking up any segment a filter names once that filter names one too many (so the
//     root's own names, before any lookup): `the filter uses more than 100 distinct segments,
//     counting those inside other segments; the first one over is "x"` (plus ` (used by a -> b)`
//     when nested);
// and whatever the lookup returns other than NotFound.
absl::StatusOr<v1::Filter> ExpandSegments(const v1::Filter& filter, const SegmentLookup& lookup);

// Checks a segment about to be saved under `name` with `filter`, as if it were already saved:
// expands in_segment(name) with `lookup` answering `filter` for `name` itself, so that a segment
// that would reach itself (directly or through others) is refused with `segment cycle: ...`, and
// one that uses unknown segments or expands too deep or too large is refused too.
// Errors: as ExpandSegments, plus InvalidArgumentError when the expanded tree nests deeper than
// kMaxFilterDepth.
absl::Status CheckSegmentExpands(const std::string& name, const v1::Filter& filter, const SegmentLookup& lookup);

// The names of the segments among `segments`, other than `name` itself, whose filters name segment
// `name` in an in_segment term (not expanded), sorted. Names compare case-insensitively (ASCII), as
// contact-store looks segments up; so do the names in ExpandSegments and CheckSegmentExpands.
std::vector<std::string> SegmentUsers(const std::string& name,
                                      const google::protobuf::RepeatedPtrField<v1::Segment>& segments);

// The names of the segments among `segments` whose filters name `name` in a term of `kind`
// (kInSegment: as SegmentUsers; kInControlGroup: the segments using control group `name`), sorted.
std::vector<std::string> SegmentsNaming(const std::string& name,
                                        const google::protobuf::RepeatedPtrField<v1::Segment>& segments,
                                        v1::Term::KindCase kind);

// A check of a saved segment beyond expanding it, with its segments looked up through `lookup`
// (e.g. whether the store can evaluate it). INVALID_ARGUMENT means the segment would fail; any
// other error is the check's own (the store is down) and is passed on.
using SegmentCheck = std::function<absl::Status(const v1::Segment& segment, const SegmentLookup& lookup)>;

// Checks an update of segment `name` to `filter` against the other segments of `saved` (every
// segment as saved now) that use it, directly or through others: each of them that works now
// (expands, and passes `check` when given) must still work afterwards, so that an update cannot
// push a segment built on it past the nesting, depth, size or segment-count bounds, or past what
// `check` allows. (Cycles are CheckSegmentExpands' to find.) `check` runs once per such segment,
// and once more only for one that fails afterwards (to tell whether it failed before too).
// Errors: FailedPreconditionError naming the first such segment and why it would fail; `check`'s
// errors other than INVALID_ARGUMENT.
absl::Status CheckSegmentUsersStillWork(const std::string& name, const v1::Filter& filter,
                                        const google::protobuf::RepeatedPtrField<v1::Segment>& saved,
                                        const SegmentCheck& check = {});

}  // namespace contacts
