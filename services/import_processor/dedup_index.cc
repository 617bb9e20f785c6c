#include "services/import_processor/dedup_index.h"

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

std::pair<uint64_t, uint64_t> LastOccurrenceIndex::Fingerprint(std::string_view key) {
  return {absl::HashOf(key), SecondHash(key)};
}

void LastOccurrenceIndex::Record(std::string_view key, uint64_t row) { RecordFingerprint(Fingerprint(key), row); }

bool LastOccurrenceIndex::IsLast(std::string_view key, uint64_t row) const {
  return IsLastFingerprint(Fingerprint(key), row);
}

void LastOccurrenceIndex::RecordFingerprint(std::pair<uint64_t, uint64_t> fingerprint, uint64_t row) {
  auto [it, inserted] = primary_.try_emplace(fingerprint.first, Slot{fingerprint.second, row});
  if (inserted) return;
  if (it->second.second_hash == fingerprint.second) {
    it->second.last_row = row;
    return;
  }
  overflow_[fingerprint] = row;  // same first hash, different key
}

bool LastOccurrenceIndex::IsLastFingerprint(std::pair<uint64_t, uint64_t> fingerprint, uint64_t row) const {
  auto it = primary_.find(fingerprint.first);
  if (it == primary_.end()) return true;
  if (it->second.second_hash == fingerprint.second) return it->second.last_row == row;
  auto overflow = overflow_.find(fingerprint);
  return overflow == overflow_.end() || overflow->second == row;
}

void LastOccurrenceIndex::Clear() {
  primary_ = {};
  overflow_ = {};
}

}  // namespace contacts
