// A map from strings to values whose entries never move once added, allocated in blocks rather
// than one node each. BatchWriter keeps a batch's contacts in one: it holds pointers to entries
// and views of their keys while adding more, as absl::node_hash_map allowed, but a node map's
// million nodes per 1M-row import were allocated one by one under the tenant's lock and freed one
// by one on the release thread (~6% of contact-store's CPU; tests/bench/RESULTS.md, session 19).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace contacts::store {

template <typename Value>
class PinnedStringMap {
 public:
  using Entry = std::pair<const std::string, Value>;

  PinnedStringMap() = default;
  // Entries are pinned: the map itself does not move either.
  PinnedStringMap(const PinnedStringMap&) = delete;
  PinnedStringMap& operator=(const PinnedStringMap&) = delete;

  // Makes room for `more` entries without another allocation.
  void reserve(size_t more) {
    index_.reserve(index_.size() + more);
    if (blocks_.empty() || blocks_.back().capacity() - blocks_.back().size() < more) {
      blocks_.emplace_back().reserve(std::max(more, kMinBlock));
    }
  }

  size_t size() const { return index_.size(); }
  bool contains(std::string_view key) const { return index_.contains(key); }

  // The entry of `key`, or null.
  Entry* find(std::string_view key) {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : it->second;
  }
  const Entry* find(std::string_view key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : it->second;
  }

  // The entry of `key`, added with a value-initialised Value when missing, and whether it was
  // added.
  std::pair<Entry*, bool> try_emplace(std::string_view key) {
    bool added = false;
    // One probe: the entry is made only when the key is absent, and the index keys it by a view
    // of the entry's own copy of the key.
    auto it = index_.lazy_emplace(key, [&](const auto& construct) {
      Entry* entry = &Add(key);
      construct(std::string_view(entry->first), entry);
      added = true;
    });
    return {it->second, added};
  }

  // The entry of `key`, added with a value-initialised Value when missing.
  Entry& operator[](std::string_view key) { return *try_emplace(key).first; }

 private:
  static constexpr size_t kMinBlock = 1024;

  Entry& Add(std::string_view key) {
    if (blocks_.empty() || blocks_.back().size() == blocks_.back().capacity()) {
      blocks_.emplace_back().reserve(kMinBlock);
    }
    // Never beyond the block's capacity, so no entry of it moves.
    return blocks_.back().emplace_back(std::piecewise_construct, std::forward_as_tuple(key), std::forward_as_tuple());
  }

  std::vector<std::vector<Entry>> blocks_;
  absl::flat_hash_map<std::string_view, Entry*> index_;
};

}  // namespace contacts::store
