#include "services/import_processor/dedup_index.h"

#include <algorithm>
#include <cassert>

#include "absl/hash/hash.h"

namespace contacts {
namespace {

// FNV-1a 64 with a murmur3 finaliser: independent of absl::Hash, which gives the first half.
uint64_t SecondHash(std::string_view key) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h ^= key.size();
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

}  // namespace

LastOccurrenceIndex::KeyFingerprint LastOccurrenceIndex::Fingerprint(std::string_view key) {
  return {absl::HashOf(key), SecondHash(key)};
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
  // By fingerprint, then row: each key's rows end up together, its last row at the end.
  std::sort(recorded_.begin(), recorded_.end(), [](const Recorded& a, const Recorded& b) {
    return a.fingerprint != b.fingerprint ? a.fingerprint < b.fingerprint : a.row < b.row;
  });
  for (size_t i = 0; i < recorded_.size(); ++i) {
    if (i + 1 < recorded_.size() && recorded_[i + 1].fingerprint == recorded_[i].fingerprint) {
      superseded_.push_back(recorded_[i].row);
    } else {
      ++distinct_keys_;
    }
  }
  std::sort(superseded_.begin(), superseded_.end());
  superseded_.shrink_to_fit();
  recorded_ = {};
}

bool LastOccurrenceIndex::IsLast(uint64_t row) const {
  assert(finished_);
  return !std::binary_search(superseded_.begin(), superseded_.end(), row);
}

}  // namespace contacts
