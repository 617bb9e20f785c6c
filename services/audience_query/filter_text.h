// The text form of a contacts.v1.Filter: what a person types into grpcurl, e.g.
//   city = "Pune" AND age >= 30 AND in_list("vip") AND NOT in_control_group("q4-holdout")
// ParseFilterText turns text into the tree; PrintFilterText turns a tree back into text, so that
// ParseFilterText(PrintFilterText(tree)) == tree for every tree the parser can produce. The full
// grammar, with examples, is in services/audience_query/README.md. Pure: no I/O, no gRPC.
#pragma once

#include <string>
#include <string_view>

#include "contacts/v1/types.pb.h"

#include "absl/status/statusor.h"

namespace contacts {

// Longest text accepted, in bytes. Default: 64 KiB.
inline constexpr size_t kMaxFilterTextBytes = 64 * 1024;

// Parses the text form into a filter tree. Chains of AND (or OR) at one level become one
// FilterList; a parenthesised group stays its own node. Literals are kept as text in
// AttributePredicate.values (numbers as written, true/false lower-cased): the store types them.
// Errors: InvalidArgumentError "position N: ..." where N is the 1-based character (code point)
// position of the offending token and the message says what was expected and what was found;
// also for empty text, text over kMaxFilterTextBytes, filters nested deeper than kMaxFilterDepth
// names longer than kMaxAttributeNameBytes / kMaxCatalogNameBytes and IN lists of more than
// kMaxInValues values, at the IN (see filter_tree.h).
absl::StatusOr<v1::Filter> ParseFilterText(std::string_view text);

// Prints a tree in the text form: keywords upper-case, functions lower-case, strings quoted with
// \" and \\ escapes, numbers and true/false bare. Groups are parenthesised only where precedence
// (NOT > AND > OR) or a nested list of the same kind needs it. Never fails; a tree that the parser
// cannot produce (an empty node, a list of fewer than two filters, an attribute name that is not
// an identifier) still prints, but may not parse back to the same tree. An empty AND prints as
// identified() (every contact) and an empty OR as anonymous() (no stored contact).
std::string PrintFilterText(const v1::Filter& filter);

// Quotes `value` as a string literal of the text form: "..." with \" and \\ escaped.
std::string QuoteFilterString(std::string_view value);

}  // namespace contacts
