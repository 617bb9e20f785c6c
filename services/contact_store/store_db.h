// contact-store's RocksDB: opens the database with its column families (key layouts in
// common/storage/key_codec.h) and converts rocksdb::Status to absl::Status, once, here.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <rocksdb/db.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/contact_store/free_space_guard.h"
#include "services/contact_store/idle_compaction.h"
#include "services/contact_store/write_ops.h"

namespace contacts::store {

// Converts a RocksDB status; `what` names the operation for the message.
absl::Status FromRocksStatus(const rocksdb::Status& status, std::string_view what);

struct StoreDbOptions {
  // Write-ahead log with fsync per write batch (sync=true) is safest; by default the WAL is written
  // but not synced per batch, which survives a process crash (the invariant we promise) but not a
  // power loss of the last few milliseconds. Default: false.
  bool sync_writes = false;
  // RocksDB's memory budget: the block cache, with the memtables charged to it (they may use up to
  // half). Default: 128 MiB.
  size_t memory_budget_bytes = 128 << 20;
  // Flushing and compacting level 0 once writes stop (idle_compaction.h).
  IdleCompactionOptions idle_compaction;
  // A batch write of at least this many entries (about two per new contact) is written as SST
  // files and ingested (StoreDb::IngestSorted) instead of going through the WAL and the memtables;
  // 0: never. An ingestion costs ~7 ms whatever its size (writing and syncing a file per family,
  // then the MANIFEST), against ~1.5 us per entry through the memtables: it pays from ~5,000.
  size_t ingest_min_entries = 5000;
  // Writes are refused (RESOURCE_EXHAUSTED) while less than this is free on the data volume
  // (free_space_guard.h); 0: never. Default: 256 MiB.
  uint64_t min_free_disk_bytes = uint64_t{256} << 20;
};

class StoreDb {
 public:
  // Opens or creates the database under `path`, creating missing column families.
  static absl::StatusOr<std::unique_ptr<StoreDb>> Open(const std::string& path, const StoreDbOptions& options);
  ~StoreDb();

  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* contacts() const { return handles_[1]; }
  rocksdb::ColumnFamilyHandle* index() const { return handles_[2]; }
  rocksdb::ColumnFamilyHandle* membership() const { return handles_[3]; }
  rocksdb::ColumnFamilyHandle* ordinals() const { return handles_[4]; }
  rocksdb::ColumnFamilyHandle* catalog() const { return handles_[5]; }
  rocksdb::ColumnFamilyHandle* applied() const { return handles_[6]; }
  rocksdb::ColumnFamilyHandle* anonymous() const { return handles_[7]; }
  rocksdb::ColumnFamilyHandle* anonymous_by_time() const { return handles_[8]; }

  const rocksdb::WriteOptions& write_options() const { return write_options_; }
  absl::Status Write(rocksdb::WriteBatch* batch);
  // One key written or deleted (DeleteRange: [begin, end)), through the free-space guard as Write
  // is; `what` names the write in errors ("delete segment").
  absl::Status Put(rocksdb::ColumnFamilyHandle* cf, std::string_view key, std::string_view value,
                   std::string_view what);
  absl::Status Delete(rocksdb::ColumnFamilyHandle* cf, std::string_view key, std::string_view what);
  absl::Status DeleteRange(rocksdb::ColumnFamilyHandle* cf, std::string_view begin, std::string_view end,
                           std::string_view what);
  // Writes `ops`, sorted by family id and then key with no key twice in a family (SortWriteOps
  // says so), as one SST file per family and ingests the files in one atomic step (all or none,
  // also across a crash). They skip the WAL and the memtables, whose random inserts cost most of a
  // large batch's write.
  absl::Status IngestSorted(const std::vector<WriteOp>& ops);
  size_t ingest_min_entries() const { return ingest_min_entries_; }
  // Get into *value; NOT_FOUND when absent.
  absl::Status Get(rocksdb::ColumnFamilyHandle* cf, const std::string& key, std::string* value,
                   const rocksdb::Snapshot* snapshot = nullptr);
  // Values and statuses of one MultiGet, in the order of the keys asked for.
  struct MultiGetResult {
    std::vector<rocksdb::PinnableSlice> values;
    std::vector<rocksdb::Status> statuses;
  };
  // One batched point read of `keys` (sorted_input: the keys are in ascending order, which lets
  // RocksDB skip sorting them).
  MultiGetResult MultiGet(rocksdb::ColumnFamilyHandle* cf, const std::vector<std::string>& keys,
                          const rocksdb::Snapshot* snapshot = nullptr, bool sorted_input = false);
  // Iterator bounded to keys starting with `prefix` (iterate_upper_bound = PrefixSuccessor), so
  // a scan never leaves the tenant. The bound lives in the returned object.
  class PrefixIterator {
   public:
    PrefixIterator(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, std::string prefix,
                   const rocksdb::Snapshot* snapshot, bool fill_cache);
    rocksdb::Iterator* operator->() { return it_.get(); }
    rocksdb::Iterator& operator*() { return *it_; }
    const std::string& prefix() const { return prefix_; }

   private:
    std::string prefix_;
    std::string upper_;
    rocksdb::Slice upper_slice_;
    std::unique_ptr<rocksdb::Iterator> it_;
  };
  // Whole-tenant passes (exports, column rebuilds, record scans) pass fill_cache=false so that
  // they do not evict the working set or grow the block cache to its limit.
  std::unique_ptr<PrefixIterator> Scan(rocksdb::ColumnFamilyHandle* cf, std::string prefix,
                                       const rocksdb::Snapshot* snapshot = nullptr, bool fill_cache = true);
  // Sum of live SST bytes and estimated keys, for Backup and metrics.
  uint64_t LiveDataBytes() const;
  // Times idle compaction has flattened the trees since Open (0 when it is off).
  uint64_t idle_flattenings() const { return idle_compactor_ ? idle_compactor_->flattenings() : 0; }

 private:
  StoreDb() = default;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::WriteOptions write_options_;
  std::unique_ptr<FreeSpaceGuard> free_space_;
  std::atomic<uint64_t> written_bytes_{0};  // bytes written through Write and IngestSorted
  std::string ingest_dir_;                  // SST files being written, before their ingestion
  size_t ingest_min_entries_ = 0;
  std::atomic<uint64_t> ingest_files_{0};      // names the files
  std::vector<rocksdb::Options> sst_options_;  // per family, by handle index, for SstFileWriter
  rocksdb::EnvOptions sst_env_options_;
  std::unique_ptr<rocksdb::Env> sst_env_;  // SstFileWriter's files through it: IngestSorted syncs them
  std::unique_ptr<IdleCompactor> idle_compactor_;
};

}  // namespace contacts::store
