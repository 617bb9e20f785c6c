// Sizes the public API allows, in one place for every service that checks them: contact-store
// when it stores a name or evaluates a filter, audience-query before it saves a segment or sends a
// filter on, so that nothing audience-query accepts is then refused by the store.
#pragma once

#include <cstddef>

namespace contacts {

// Terms (leaves) of one filter, after audience-query has expanded its segments.
inline constexpr size_t kMaxFilterTerms = 10000;
// Values of one IN list.
inline constexpr int kMaxInValues = 10000;
// Attribute names: [A-Za-z][A-Za-z0-9_]*, at most this many bytes.
inline constexpr size_t kMaxAttributeNameBytes = 64;
// Names of lists, segments and control groups, and attributes' display names.
inline constexpr size_t kMaxCatalogNameBytes = 128;

}  // namespace contacts
