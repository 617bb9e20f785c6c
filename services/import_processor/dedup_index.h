// LastOccurrenceIndex: the first pass of an import records a fingerprint of every row's primary
// key; Finish() then works out which rows a later row with the same key supersedes, so that the
// second pass sends only the last row of each key and counts the earlier ones as duplicates ("the
// later row wins"), without keeping the keys themselves in memory.
//
// Keys are reduced to a 128-bit fingerprint made of two independent 64-bit hashes. Two different
// keys are only confused if both hashes collide (probability about n^2 / 2^129, ~1e-27 for a
// million keys), which we accept rather than keeping every key string in memory.
//
// Recording appends (fingerprint, row) to a vector: 24 bytes per row, written in order. Finish
// marks a bit per fingerprint to find the records that may share a key (16 bits per record, 4
// bytes per row while Finish runs), sorts only those by fingerprint, keeps the superseded rows
// (few in most files) in a sorted vector and frees the rest. A hash map from fingerprint to last
// row did the same job at 705-819 ns per key for a million keys (240-276 here), mostly cache and
// TLB misses of random probes, and the second pass paid 307-445 ns more per row looking each key
// up again (2-17 here), as measured by tests/bench/dedup_bench.cc (tests/bench/RESULTS.md,
// session 8).
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace contacts {

class LastOccurrenceIndex {
 public:
  using KeyFingerprint = std::pair<uint64_t, uint64_t>;

  // Records that `row` holds `key`. Rows must be recorded in increasing order, before Finish.
  void Record(std::string_view key, uint64_t row) { RecordFingerprint(Fingerprint(key), row); }
  void RecordFingerprint(KeyFingerprint fingerprint, uint64_t row);

  // Takes over what `later` recorded, all of it rows after the last recorded here (the second
  // half of a file read by another thread). REQUIRES: neither was finished.
  void Append(LastOccurrenceIndex&& later);

  // Makes room for `rows` records, so that recording does not copy the vector as it grows. Room
  // reserved but never written costs address space, not resident memory.
  void Reserve(size_t rows) { recorded_.reserve(rows); }

  // Ends the recording and frees what it took but the superseded rows. Call once, before IsLast.
  void Finish();

  // False when a later recorded row holds the same key as `row`; true otherwise (also for rows
  // never recorded). REQUIRES: Finish was called.
  bool IsLast(uint64_t row) const;

  // After Finish: distinct keys recorded, and rows superseded by a later one.
  size_t size() const { return distinct_keys_; }
  size_t superseded_rows() const { return superseded_.size(); }

  static KeyFingerprint Fingerprint(std::string_view key);

 private:
  struct Recorded {
    KeyFingerprint fingerprint;
    uint64_t row;
  };
  std::vector<Recorded> recorded_;
  std::vector<uint64_t> superseded_;  // sorted
  size_t distinct_keys_ = 0;
  bool finished_ = false;
};

}  // namespace contacts
