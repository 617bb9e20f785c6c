// Idle compaction: flattens contact-store's LSM trees once a burst of writes is over.
//
// After a bulk import every column family holds a memtable and up to three level-0 files whose
// key ranges all overlap (RocksDB compacts level 0 only at four files), and every scan and point
// read merges them with level 1 and below. An export of 1M contacts cost contact-store 0.50-0.65
// CPU-s in that state and 0.42-0.51 once the memtables were flushed and level 0 compacted into
// level 1 (in-process, three loads; tests/bench/RESULTS.md, session 6). So when no write has come
// for a while after at least a few megabytes were written, the memtables are flushed and level 0
// is compacted into level 1, once per burst. Level 1 and below are left to RocksDB: the work stays
// bounded by what the burst wrote plus the level-1 files it overlaps.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include <rocksdb/db.h>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace contacts::store {

struct IdleCompactionOptions {
  // How long no write may come before the trees are flattened; zero turns idle compaction off.
  // Default: 2 s (an import's batches come milliseconds apart).
  absl::Duration idle_after = absl::Seconds(2);
  // Bytes written (WriteBatch data) since the last flattening that make the next one worth its
  // work: a trickle of single writes never triggers it. Default: 4 MiB.
  uint64_t min_written_bytes = 4 << 20;
  // A pass rewrites the level-1 files that level 0 overlaps (all of them, for random keys), so it
  // also waits until the bytes written since the last pass reach level 1's bytes divided by this:
  // small bursts into a large store, seconds apart, would otherwise rewrite level 1 after each.
  // RocksDB itself rewrites it about once per four memtables. Default: 8.
  uint64_t max_rewrite_ratio = 8;
};

// When to flatten, from the running count of bytes written and the clock. Pure, so tests can
// drive it with made-up times.
class IdleCompactionPolicy {
 public:
  IdleCompactionPolicy(IdleCompactionOptions options, uint64_t written_bytes, absl::Time now);

  // Whether to flatten now, `written_bytes` having been written in all so far and level 1 of the
  // trees holding `level1_bytes` (asked for only when everything else says yes).
  bool Due(uint64_t written_bytes, absl::Time now, const std::function<uint64_t()>& level1_bytes);
  // Records a flattening that began when `written_bytes` had been written.
  void Flattened(uint64_t written_bytes);
  // Puts the next attempt off by a whole idle period (after a failed one).
  void Postpone(absl::Time now) { last_change_ = now; }

 private:
  IdleCompactionOptions options_;
  uint64_t last_seen_;
  absl::Time last_change_;
  uint64_t flattened_at_;
};

// Flushes the memtables of `families`, then compacts each family's level-0 files into level 1.
// Errors: UNAVAILABLE when RocksDB is compacting a level-0 file itself (try again later); others
// as FromRocksStatus maps them.
absl::Status FlattenLevel0(rocksdb::DB& db, const std::vector<rocksdb::ColumnFamilyHandle*>& families);

// Reads `family` in key order into the block cache until the cache is 90% full, or until
// `interrupted` says to stop (it is asked every few thousand records). After a flattening every
// file is new, so the cache holds nothing of them, and the first point reads would each pay a
// miss and, in a process whose cache never filled, page faults for the cache's fresh memory.
absl::Status WarmBlockCache(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family,
                            const std::function<bool()>& interrupted);

// Bytes in level 1 of `families`.
uint64_t Level1Bytes(rocksdb::DB& db, const std::vector<rocksdb::ColumnFamilyHandle*>& families);

// Runs IdleCompactionPolicy on a thread of its own and flattens (FlattenLevel0) when it is due.
class IdleCompactor {
 public:
  // `written_bytes` is the store's running count of bytes written; it and `db` must outlive this.
  // After each flattening it warms the block cache with `warm_family` (may be null: no warming).
  IdleCompactor(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> families,
                const std::atomic<uint64_t>* written_bytes, IdleCompactionOptions options,
                rocksdb::ColumnFamilyHandle* warm_family = nullptr);
  // Aborts a compaction in progress and stops the thread. Manual compactions of `db` stay
  // disabled afterwards: destroy this just before closing the database.
  ~IdleCompactor();
  IdleCompactor(const IdleCompactor&) = delete;
  IdleCompactor& operator=(const IdleCompactor&) = delete;

  // Flattenings done so far.
  uint64_t flattenings() const { return flattenings_.load(std::memory_order_relaxed); }

 private:
  void Run();

  rocksdb::DB* const db_;
  const std::vector<rocksdb::ColumnFamilyHandle*> families_;
  rocksdb::ColumnFamilyHandle* const warm_family_;
  const std::atomic<uint64_t>* const written_bytes_;
  const IdleCompactionOptions options_;
  std::atomic<uint64_t> flattenings_{0};
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace contacts::store
