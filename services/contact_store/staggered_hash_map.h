// StaggeredHashMap: a map from 64-bit hashes to small values, made of kShards hash tables that
// grow at different moments.
//
// One hash table doubles (rehashing every entry into a new array) when it fills up: at a million
// contacts that is ~50 ms for the primary-key filter or the email and mobile owners, all of it in
// the one batch whose column update crosses the threshold. That update runs beside the batch's
// write, which it normally finishes well within (~14 against ~21 ms for 25,000 new contacts), but
// the batches where a table grew kept their callers waiting 12-66 ms each (4 batches of 40): ~150
// ms per million new contacts, ~7% of the in-process insert pass (tests/bench/RESULTS.md, session
// 17).
//
// Here each hash goes to one shard by its top 12 bits, and the shards take unequal shares of
// their values, growing by a factor 2^(1/kShards) from one shard to the next. Each shard then
// crosses its thresholds at its own table size, so a doubling of the entries brings kShards
// rehashes of ~1/kShards of them, spread over the doubling, instead of one of all of them.
//
// The hashes must be uniform in their top bits (absl::HashOf is); the tables rehash them again.
//
// Each shard is a flat_hash_set of packed (hash, value) entries looked up by the hash alone: a
// flat_hash_map<uint64_t, uint32_t> pads each slot to 16 bytes, these take 12 (and 1 byte of
// control each either way), so the primary-key filter and the email and mobile owners hold a
// quarter less memory (contact-store's peak RSS in a 1M-row import 314-318 -> 280-283 MiB:
// tests/bench/RESULTS.md, session 24).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"

namespace contacts::store {

template <typename Value>
class StaggeredHashMap {
  static_assert(alignof(Value) <= 4, "entries are packed to 4 bytes");

 public:
  static constexpr int kShards = 16;

  bool Contains(uint64_t hash) const { return ShardFor(hash).contains(hash); }
  // Starts loading the slot Find / Contains will probe for `hash`.
  void Prefetch(uint64_t hash) const { ShardFor(hash).prefetch(hash); }
  // Null when absent. Valid until the next insertion or erasure.
  Value* Find(uint64_t hash) {
    auto& shard = ShardFor(hash);
    auto it = shard.find(hash);
    return it == shard.end() ? nullptr : &it->value;
  }
  const Value* Find(uint64_t hash) const { return const_cast<StaggeredHashMap*>(this)->Find(hash); }
  // The value of `hash`, inserting `value` if absent; .second says whether it was inserted.
  std::pair<Value*, bool> TryEmplace(uint64_t hash, Value value) {
    auto [it, inserted] = ShardFor(hash).insert(Entry{hash, value});
    return {&it->value, inserted};
  }
  // The value of `hash`, inserting Value{} if absent.
  Value& operator[](uint64_t hash) { return *TryEmplace(hash, Value{}).first; }
  void Erase(uint64_t hash) { ShardFor(hash).erase(hash); }

  size_t size() const {
    return Sum([](const Shard& shard) { return shard.size(); });
  }
  size_t capacity() const {
    return Sum([](const Shard& shard) { return shard.capacity(); });
  }
  // Heap bytes of the tables: an entry and a control byte per slot.
  size_t MemoryBytes() const { return capacity() * (sizeof(Entry) + 1); }

  // The shard of each value of a hash's top kTopBits bits: shard s takes a run of them
  // 2^(s/kShards) times as long as shard 0's. Public for tests.
  static constexpr int kTopBits = 12;
  static int ShardOfTopBits(uint32_t top_bits) { return kShardOfTopBits[top_bits]; }

 private:
  // 4-byte aligned: 12 bytes for a 4-byte value. The value is not part of the set's key.
#pragma pack(push, 4)
  struct Entry {
    uint64_t hash;
    mutable Value value;
  };
#pragma pack(pop)
  static_assert(sizeof(Entry) == sizeof(uint64_t) + sizeof(Value), "no padding");
  // Both take an entry or a bare hash, so lookups need no entry.
  struct EntryHash {
    using is_transparent = void;
    size_t operator()(uint64_t hash) const { return absl::Hash<uint64_t>{}(hash); }
    size_t operator()(const Entry& entry) const { return (*this)(entry.hash); }
  };
  struct EntryEq {
    using is_transparent = void;
    static uint64_t HashOf(uint64_t hash) { return hash; }
    static uint64_t HashOf(const Entry& entry) { return entry.hash; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return HashOf(a) == HashOf(b);
    }
  };
  using Shard = absl::flat_hash_set<Entry, EntryHash, EntryEq>;

  static constexpr size_t kTopValues = size_t{1} << kTopBits;

  static constexpr std::array<uint8_t, kTopValues> ShardTable() {
    constexpr double kStep = 1.0442737824274138;  // 2^(1/16)
    static_assert(kShards == 16, "kStep is 2^(1/kShards)");
    double weights[kShards] = {};
    double total = 0;
    for (int s = 0; s < kShards; ++s) {
      weights[s] = s == 0 ? 1.0 : weights[s - 1] * kStep;
      total += weights[s];
    }
    std::array<uint8_t, kTopValues> table = {};
    double end = 0;
    size_t value = 0;
    for (int s = 0; s < kShards; ++s) {
      end += static_cast<double>(kTopValues) * weights[s] / total;
      const size_t last = s == kShards - 1 ? kTopValues : static_cast<size_t>(end + 0.5);
      for (; value < last; ++value) table[value] = static_cast<uint8_t>(s);
    }
    return table;
  }
  static constexpr std::array<uint8_t, kTopValues> kShardOfTopBits = ShardTable();  // 4 KiB

  Shard& ShardFor(uint64_t hash) { return shards_[kShardOfTopBits[hash >> (64 - kTopBits)]]; }
  const Shard& ShardFor(uint64_t hash) const { return shards_[kShardOfTopBits[hash >> (64 - kTopBits)]]; }
  template <typename Fn>
  size_t Sum(Fn fn) const {
    size_t total = 0;
    for (const Shard& shard : shards_) total += fn(shard);
    return total;
  }

  std::array<Shard, kShards> shards_;
};

}  // namespace contacts::store
