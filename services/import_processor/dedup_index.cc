#include "services/import_processor/dedup_index.h"

#include <algorithm>
#include <cassert>

#include "absl/hash/hash.h"
#include "common/storage/stable_hash.h"

namespace contacts {

LastOccurrenceIndex::KeyFingerprint LastOccurrenceIndex::Fingerprint(std::string_view key) {
  // Two independent hashes: absl::Hash and the stable one.
  return {absl::HashOf(key), StableHash64(key)};
}

void LastOccurrenceIndex::RecordFingerprint(KeyFingerprint fingerprint, uint64_t row) {
  assert(!finished_);
  assert(recorded_.empty() || recorded_.back().row < row);
  recorded_.push_back({fingerprint, row});
}

void LastOccurrenceIndex::Append(LastOccurrenceIndex&& later) {
  assert(!finished_ && !later.finished_);
  assert(recorded_.empty() || later.recorded_.empty() || recorded_.back().row < later.recorded_.front().row);
  if (recorded_.empty()) {
    recorded_ = std::move(later.recorded_);
  } else {
    recorded_.insert(recorded_.end(), later.recorded_.begin(), later.recorded_.end());
  }
  later.recorded_ = {};
}

void LastOccurrenceIndex::Finish() {
  assert(!finished_);
  finished_ = true;
  // Most files repeat few keys, so sorting every record to find them (85 ns per row for a million,
  // on the import's critical path with the store idle) is mostly wasted. A bit per fingerprint
  // first: a record whose bit was set already may repeat a key (or share the bit with another
  // key, ~3% of rows at 16 bits per record); only the records of such bits are sorted.
  const size_t records = recorded_.size();
  int bits_log2 = 16;
  while ((uint64_t{1} << bits_log2) < 16 * static_cast<uint64_t>(records)) ++bits_log2;
  std::vector<uint64_t> seen((uint64_t{1} << bits_log2) / 64);
  std::vector<uint64_t> repeated(seen.size());
  auto bit_of = [bits_log2](const Recorded& record) { return record.fingerprint.second >> (64 - bits_log2); };
  for (const Recorded& record : recorded_) {
    const uint64_t bit = bit_of(record);
    const uint64_t mask = uint64_t{1} << (bit & 63);
    if (seen[bit >> 6] & mask) {
      repeated[bit >> 6] |= mask;
    } else {
      seen[bit >> 6] |= mask;
    }
  }
  std::vector<Recorded> candidates;
  for (const Recorded& record : recorded_) {
    const uint64_t bit = bit_of(record);
    if (repeated[bit >> 6] & (uint64_t{1} << (bit & 63))) candidates.push_back(record);
  }
  recorded_ = {};
  seen = {};
  repeated = {};
  // By fingerprint, then row: each key's rows end up together, its last row at the end.
  std::sort(candidates.begin(), candidates.end(), [](const Recorded& a, const Recorded& b) {
    return a.fingerprint != b.fingerprint ? a.fingerprint < b.fingerprint : a.row < b.row;
  });
  for (size_t i = 0; i + 1 < candidates.size(); ++i) {
    if (candidates[i + 1].fingerprint == candidates[i].fingerprint) superseded_.push_back(candidates[i].row);
  }
  distinct_keys_ = records - superseded_.size();
  std::sort(superseded_.begin(), superseded_.end());
  superseded_.shrink_to_fit();
}

bool LastOccurrenceIndex::IsLast(uint64_t row) const {
  assert(finished_);
  return !std::binary_search(superseded_.begin(), superseded_.end(), row);
}

}  // namespace contacts
