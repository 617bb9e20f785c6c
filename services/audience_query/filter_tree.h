// Checks on contacts.v1.Filter trees, whether they came from a caller as a tree, from the text
// parser, or from segment expansion: every node set, operators with the right number of values,
// names present, and a bounded depth and size so that the tree stays within protobuf's nesting
// limit (100 messages) when it is sent on to contact-store. Pure: no I/O, no gRPC.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "contacts/v1/types.pb.h"

#include "absl/status/status.h"
#include "common/values/contract_limits.h"

namespace contacts {

// Deepest tree accepted: a term has depth 1, NOT and AND/OR lists add 1. Default: 32, which keeps
// a store request well under protobuf's 100-message recursion limit.
inline constexpr int kMaxFilterDepth = 32;

// Depth as defined above; 0 for an empty node. REQUIRES: the tree is no deeper than protobuf lets
// a message be parsed (it recurses).
int FilterDepth(const v1::Filter& filter);

// Number of terms (leaves).
size_t FilterTermCount(const v1::Filter& filter);

// True when the tree holds at least one in_segment term.
bool HasSegmentTerms(const v1::Filter& filter);

// The names of the segments the tree's in_segment terms name (not expanded), sorted, no duplicates.
std::vector<std::string> SegmentTermNames(const v1::Filter& filter);
// The same for in_control_group terms: the control group names, sorted, each once.
std::vector<std::string> ControlGroupTermNames(const v1::Filter& filter);

// Validates a tree. Errors: InvalidArgumentError naming the node by its path from `root_name`
// (e.g. `filter.and[1].not.term.attribute: BETWEEN needs 2 values, got 1`) for an empty node, an
// empty AND/OR, a term without kind, an attribute name that is not [A-Za-z][A-Za-z0-9_]*, an
// unspecified or unknown operator, the wrong number of values (IN: 1 to kMaxInValues, e.g.
// `filter.term.attribute: IN on "city" has 10001 values, at most 10000 are allowed`), an empty
// list/segment/control-group name, an attribute name longer than kMaxAttributeNameBytes or a
// list/segment/control-group name longer than kMaxCatalogNameBytes, an unspecified identity or
// channel; and for a tree deeper than kMaxFilterDepth or with more than kMaxFilterTerms terms.
absl::Status ValidateFilterTree(const v1::Filter& filter, const std::string& root_name = "filter");

}  // namespace contacts
