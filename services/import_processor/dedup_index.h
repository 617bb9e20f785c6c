// LastOccurrenceIndex: the first pass of an import records, for every primary key, the last row
// that holds it, so that the second pass sends only that row and counts the earlier ones as
// duplicates ("the later row wins") without keeping the keys themselves in memory.
//
// Keys are reduced to a 128-bit fingerprint made of two independent 64-bit hashes. The map is
// keyed by the first hash and stores the second next to the row number (24 bytes per key, about
// 32 MB of table for a million keys); two keys that share the first hash but differ in the second
// go to a small overflow map, so a 64-bit collision is handled exactly. Two different keys are
// only confused if both 64-bit hashes collide (probability about n^2 / 2^129, ~1e-27 for a
// million keys), which we accept rather than keeping every key string in memory.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"

namespace contacts {

class LastOccurrenceIndex {
 public:
  // Records that `row` holds `key`. Rows must be recorded in increasing order.
  void Record(std::string_view key, uint64_t row);

  // True when `row` is the last recorded row of `key`, or when `key` was never recorded.
  bool IsLast(std::string_view key, uint64_t row) const;

  // Distinct keys recorded.
  size_t size() const { return primary_.size() + overflow_.size(); }

  void Clear();

  // Both hashes, exposed for tests of the collision path.
  static std::pair<uint64_t, uint64_t> Fingerprint(std::string_view key);

  // For tests: records with a given fingerprint, to force collisions.
  void RecordFingerprint(std::pair<uint64_t, uint64_t> fingerprint, uint64_t row);
  bool IsLastFingerprint(std::pair<uint64_t, uint64_t> fingerprint, uint64_t row) const;

 private:
  struct Slot {
    uint64_t second_hash;
    uint64_t last_row;
  };
  absl::flat_hash_map<uint64_t, Slot> primary_;
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, uint64_t> overflow_;
};

}  // namespace contacts
