#include "services/contact_store/store_db.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <rocksdb/cache.h>
#include <rocksdb/file_system.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_buffer_manager.h>

#include "absl/cleanup/cleanup.h"
#include "common/status/status_macros.h"
#include "common/storage/key_codec.h"
#include "services/contact_store/two_halves.h"

namespace contacts::store {
namespace {

// A file of SstFileWriter's whose final sync (Finish always syncs) does nothing: IngestSorted
// syncs a batch's files itself, the largest while the next are built, and RocksDB syncs each
// again when it links it in (ExternalSstFileIngestionJob::Prepare).
class UnsyncedWritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  using FSWritableFileOwnerWrapper::FSWritableFileOwnerWrapper;
  rocksdb::IOStatus Sync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
};

class SyncDeferringFileSystem : public rocksdb::FileSystemWrapper {
 public:
  using FileSystemWrapper::FileSystemWrapper;
  const char* Name() const override { return "SyncDeferringFileSystem"; }
  rocksdb::IOStatus NewWritableFile(const std::string& path, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* file,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus opened = target()->NewWritableFile(path, options, file, dbg);
    if (opened.ok()) *file = std::make_unique<UnsyncedWritableFile>(std::move(*file));
    return opened;
  }
};

// Writes the file at `path` through to the disk (its data, and the metadata needed to read it).
absl::Status SyncFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, fmt::format("sync {}: open", path));
  const int synced = ::fdatasync(fd);
  const int error = errno;
  ::close(fd);
  if (synced != 0) return absl::ErrnoToStatus(error, fmt::format("sync {}", path));
  return absl::OkStatus();
}

}  // namespace

absl::Status FromRocksStatus(const rocksdb::Status& status, std::string_view what) {
  if (status.ok()) return absl::OkStatus();
  std::string message = fmt::format("{}: {}", what, status.ToString());
  if (status.IsNotFound()) return absl::NotFoundError(message);
  if (status.IsBusy() || status.IsTryAgain() || status.IsTimedOut()) return absl::UnavailableError(message);
  if (status.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  if (status.IsCorruption()) return absl::DataLossError(message);
  if (status.IsIOError() && status.subcode() == rocksdb::Status::kNoSpace) {
    return absl::ResourceExhaustedError(message);
  }
  return absl::InternalError(message);
}

absl::StatusOr<std::unique_ptr<StoreDb>> StoreDb::Open(const std::string& path, const StoreDbOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return absl::FailedPreconditionError(fmt::format("cannot create data dir {}: {}", path, ec.message()));

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;
  db_options.max_total_wal_size = 256 << 20;

  // One budget for the block cache and the memtables (charged to the cache), so the store's memory
  // does not grow with the number of column families or with write bursts.
  std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(options.memory_budget_bytes);
  db_options.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(options.memory_budget_bytes / 2, cache);
  // Writers of one tenant are serialised by its lock and batches arrive sorted, so sequential
  // memtable inserts (which reuse the skip-list position) beat concurrent ones.
  db_options.allow_concurrent_memtable_write = false;
  db_options.enable_pipelined_write = true;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Index and filter blocks stay with each open file, outside the cache (RocksDB's default; a
  // filter is 1.25 MiB per million keys, an index under 1 MiB per 250 MB of records). Charged to
  // the cache, a large file's filter was evicted by the data blocks of the reads that followed (an
  // update pass reads blocks from all over the family) and read and checksummed again for nearly
  // every batch: a 1M-row update pass ran at 44-57k rows/s, against 76-82k without that
  // (tests/bench/RESULTS.md, session 12).
  table.cache_index_and_filter_blocks = false;

  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf_options.write_buffer_size = 64 << 20;
  cf_options.max_write_buffer_number = 3;
  cf_options.compression = rocksdb::kLZ4Compression;
  cf_options.bottommost_compression = rocksdb::kZSTD;
  // A Bloom filter over the memtable's keys (~1.3 MiB per 64 MiB memtable): point reads of keys
  // that are not in a memtable (most of them: records and index entries written before the last
  // flush) skip the skip-list searches, up to three of them with immutable memtables waiting.
  cf_options.memtable_prefix_bloom_size_ratio = 0.02;
  cf_options.memtable_whole_key_filtering = true;
  // Records are read whole by every export scan and point read: zstd decompression was 31% of an
  // export's CPU in contact-store, so the contacts CF keeps LZ4 down to the last level (measured
  // 0.44 against 0.61 CPU-s per 1M-row export, for ~50% more bytes on disk).
  rocksdb::ColumnFamilyOptions contacts_cf = cf_options;
  // Large import batches arrive as ingested SST files (IngestSorted) of a few MiB whose random
  // keys overlap every other file, so each lands in level 0. Compacting every 4 of them (the default)
  // rewrote level 1 over and over: 30-40% more CPU for the import than the memtable path. Every 48
  // makes ingestion the faster path, and a 1M-row import (40 batches of 25,000 rows) lands whole in
  // level 0 and is compacted once, by the idle compactor, after the job: at 32 that compaction ran
  // during the job's last batches, 3-6% of its end-to-end time (alternated pairs, RESULTS.md session
  // 19). A point read checks up to ~48 files' Bloom filters meanwhile (more while a long import's
  // compaction runs: writes slow down at 80 files and stop at 128).
  contacts_cf.level0_file_num_compaction_trigger = 48;
  contacts_cf.level0_slowdown_writes_trigger = 80;
  contacts_cf.level0_stop_writes_trigger = 128;
  contacts_cf.bottommost_compression = rocksdb::kLZ4Compression;
  // 8 KiB blocks instead of 4: an export pays a block-cache lookup, a checksum and a
  // decompression call per block (the cache lookup alone was 6% of its CPU), while a point read
  // that misses the cache decompresses a whole block for one record. Measured at 1M contacts
  // (tests/bench/RESULTS.md, session 5), with the 512 KiB export readahead: contact-store's CPU
  // per export ~0.6 s with 4 KiB, 0.50-0.56 s with 8, 0.43-0.64 s with 16; GetContact over gRPC
  // p90 / p99 ~190 / ~300 us with 4 or 8 KiB but ~260 / ~400 us with 16, whose misses cost more.
  rocksdb::BlockBasedTableOptions contacts_table = table;
  contacts_table.block_size = 8 << 10;
  contacts_cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(contacts_table));
  // Small CFs: catalog, applied, anonymous; they share defaults but smaller memtables.
  rocksdb::ColumnFamilyOptions small_cf = cf_options;
  small_cf.write_buffer_size = 8 << 20;

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, small_cf},     {std::string(keys::kContactsCf), contacts_cf},
      {std::string(keys::kIndexCf), cf_options},         {std::string(keys::kMembershipCf), cf_options},
      {std::string(keys::kOrdinalsCf), cf_options},      {std::string(keys::kCatalogCf), small_cf},
      {std::string(keys::kAppliedCf), small_cf},         {std::string(keys::kAnonymousCf), small_cf},
      {std::string(keys::kAnonymousByTimeCf), small_cf},
  };
  // Opening writes (a new write-ahead log, the MANIFEST): on a volume with next to nothing free
  // RocksDB would abort partway, a crash loop that only says "assertion failed".
  constexpr uint64_t kMinFreeToOpen = uint64_t{16} << 20;
  if (absl::StatusOr<uint64_t> free = FreeSpaceGuard::StatvfsFreeBytes(path);
      free.ok() && options.min_free_disk_bytes > 0 && *free < std::min(options.min_free_disk_bytes, kMinFreeToOpen)) {
    return absl::ResourceExhaustedError(fmt::format(
        "only {} bytes free on the volume of {}: free space (or grow the volume) before starting", *free, path));
  }
  std::unique_ptr<StoreDb> store(new StoreDb());
  store->free_space_ = std::make_unique<FreeSpaceGuard>(path, options.min_free_disk_bytes);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, path, families, &store->handles_, &raw);
  if (!s.ok()) return FromRocksStatus(s, fmt::format("open RocksDB at {}", path));
  store->db_.reset(raw);
  store->write_options_.sync = options.sync_writes;
  // Files left by an ingestion that a crash interrupted were never part of the database.
  store->ingest_dir_ = (std::filesystem::path(path) / "ingest").string();
  std::filesystem::remove_all(store->ingest_dir_, ec);
  std::filesystem::create_directories(store->ingest_dir_, ec);
  if (ec) return absl::FailedPreconditionError(fmt::format("cannot create {}: {}", store->ingest_dir_, ec.message()));
  store->ingest_min_entries_ = options.ingest_min_entries;
  // Start writing each ingested file back to the disk every MiB instead of all of it in the fsync
  // that ends the file: the fsyncs of a 1M-row import took ~300 ms on the writer's critical path,
  // ~170 ms with this.
  store->sst_env_options_.bytes_per_sync = 1 << 20;
  store->sst_env_ = rocksdb::NewCompositeEnv(std::make_shared<SyncDeferringFileSystem>(rocksdb::FileSystem::Default()));
  for (auto* handle : store->handles_) {
    rocksdb::Options sst = raw->GetOptions(handle);
    sst.env = store->sst_env_.get();
    // Compression would run on the writer's critical path; the files are compacted (and
    // compressed) soon anyway. SstFileWriter takes bottommost_compression when it is set.
    sst.compression = rocksdb::kNoCompression;
    sst.bottommost_compression = rocksdb::kNoCompression;
    sst.compression_per_level.clear();
    store->sst_options_.push_back(std::move(sst));
  }
  if (options.idle_compaction.idle_after > absl::ZeroDuration()) {
    store->idle_compactor_ =
        std::make_unique<IdleCompactor>(raw, store->handles_, &store->written_bytes_, options.idle_compaction,
                                        /*warm_family=*/store->contacts());
  }
  return store;
}

StoreDb::~StoreDb() {
  idle_compactor_.reset();  // before the handles go
  if (db_) {
    for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
    db_->Close();
  }
}

absl::Status StoreDb::Write(rocksdb::WriteBatch* batch) {
  if (absl::Status room = free_space_->CheckWrite(); !room.ok()) return room;
  written_bytes_.fetch_add(batch->GetDataSize(), std::memory_order_relaxed);
  return FromRocksStatus(db_->Write(write_options_, batch), "write batch");
}

absl::Status StoreDb::Put(rocksdb::ColumnFamilyHandle* cf, std::string_view key, std::string_view value,
                          std::string_view what) {
  RETURN_IF_ERROR(free_space_->CheckWrite());
  written_bytes_.fetch_add(key.size() + value.size(), std::memory_order_relaxed);
  return FromRocksStatus(db_->Put(write_options_, cf, key, value), what);
}

absl::Status StoreDb::Delete(rocksdb::ColumnFamilyHandle* cf, std::string_view key, std::string_view what) {
  RETURN_IF_ERROR(free_space_->CheckWrite());
  return FromRocksStatus(db_->Delete(write_options_, cf, key), what);
}

absl::Status StoreDb::DeleteRange(rocksdb::ColumnFamilyHandle* cf, std::string_view begin, std::string_view end,
                                  std::string_view what) {
  RETURN_IF_ERROR(free_space_->CheckWrite());
  return FromRocksStatus(db_->DeleteRange(write_options_, cf, begin, end), what);
}

namespace {

constexpr size_t kPrefetchOps = 8;

}  // namespace

absl::Status StoreDb::IngestSorted(const std::vector<WriteOp>& ops) {
  if (absl::Status room = free_space_->CheckWrite(); !room.ok()) return room;
  std::vector<rocksdb::IngestExternalFileArg> args;
  std::vector<std::string> paths;
  // Each file is synced on a thread of its own once written (its writer's sync does nothing, see
  // UnsyncedWritableFile), so the wait for the records' file overlaps writing the next files, and
  // the files' waits overlap each other: the three syncs in a row were 8-11 ms of a 25,000-row
  // import batch's 40-55 ms commit under the tenant's lock.
  std::vector<std::thread> sync_threads;
  std::vector<absl::Status> synced(handles_.size());  // at most a file per family
  auto wait_for_syncs = [&]() -> absl::Status {
    for (std::thread& thread : sync_threads) {
      if (thread.joinable()) thread.join();
    }
    sync_threads.clear();
    for (const absl::Status& status : synced) RETURN_IF_ERROR(status);
    return absl::OkStatus();
  };
  absl::Cleanup join_syncs = [&] { wait_for_syncs().IgnoreError(); };
  auto remove_files = [&paths] {
    std::error_code ignored;
    for (const auto& path : paths) std::filesystem::remove(path, ignored);
  };
  auto fail = [&](absl::Status status) {
    wait_for_syncs().IgnoreError();
    remove_files();
    return status;
  };
  uint64_t bytes = 0;
  for (size_t begin = 0; begin < ops.size();) {
    size_t end = begin;
    while (end < ops.size() && ops[end].cf_id == ops[begin].cf_id) ++end;
    rocksdb::ColumnFamilyHandle* cf = ops[begin].cf;
    size_t index = 0;
    while (index < handles_.size() && handles_[index] != cf) ++index;
    if (index == handles_.size() || paths.size() == synced.size()) {
      return fail(absl::InternalError("ingest: unknown column family, or ops not sorted by family"));
    }
    paths.push_back(fmt::format("{}/{}.sst", ingest_dir_, ingest_files_.fetch_add(1)));
    // The file stays in the page cache: what a batch writes is read soon (the next import's
    // updates, exports, point reads), and dropping it (the writer's default) made those reads go
    // to the disk.
    rocksdb::SstFileWriter writer(sst_env_options_, sst_options_[index], cf, /*invalidate_page_cache=*/false);
    rocksdb::Status s = writer.Open(paths.back());
    for (size_t i = begin; s.ok() && i < end; ++i) {
      // The keys and values were staged in another order than this one, so each starts with a
      // cache miss: asking a few ops ahead overlaps them (the copies into the file's blocks were
      // 40% of writing the files; the writer's compare of each key with the last, 12%).
      if (i + kPrefetchOps < end) {
        __builtin_prefetch(ops[i + kPrefetchOps].key.data());
        const std::string_view ahead = ops[i + kPrefetchOps].value;
        for (size_t offset = 0; offset < ahead.size() && offset < 512; offset += 64) {
          __builtin_prefetch(ahead.data() + offset);
        }
      }
      s = ops[i].is_delete ? writer.Delete(ops[i].key) : writer.Put(ops[i].key, ops[i].value);
      bytes += ops[i].key.size() + ops[i].value.size();
    }
    if (s.ok()) s = writer.Finish();
    if (!s.ok()) return fail(FromRocksStatus(s, "write SST file for ingestion"));
    sync_threads.push_back(
        StartThreadOrRunHere([path = paths.back(), result = &synced[paths.size() - 1]] { *result = SyncFile(path); }));
    rocksdb::IngestExternalFileArg& arg = args.emplace_back();
    arg.column_family = cf;
    arg.external_files = {paths.back()};
    arg.options.move_files = true;           // a hard link, not a copy
    arg.options.write_global_seqno = false;  // the sequence number lives in the MANIFEST only
    begin = end;
  }
  if (absl::Status files_synced = wait_for_syncs(); !files_synced.ok()) return fail(files_synced);
  if (args.empty()) return absl::OkStatus();
  rocksdb::Status s = db_->IngestExternalFiles(args);
  remove_files();  // moved files are gone already; a failed ingestion leaves them here
  if (s.ok()) written_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  return FromRocksStatus(s, "ingest SST files");
}

StoreDb::MultiGetResult StoreDb::MultiGet(rocksdb::ColumnFamilyHandle* cf, const std::vector<std::string>& keys,
                                          const rocksdb::Snapshot* snapshot, bool sorted_input) {
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  MultiGetResult result{std::vector<rocksdb::PinnableSlice>(keys.size()), std::vector<rocksdb::Status>(keys.size())};
  rocksdb::ReadOptions read;
  read.snapshot = snapshot;
  db_->MultiGet(read, cf, slices.size(), slices.data(), result.values.data(), result.statuses.data(), sorted_input);
  return result;
}

absl::Status StoreDb::Get(rocksdb::ColumnFamilyHandle* cf, const std::string& key, std::string* value,
                          const rocksdb::Snapshot* snapshot) {
  rocksdb::ReadOptions read;
  read.snapshot = snapshot;
  return FromRocksStatus(db_->Get(read, cf, key, value), "get");
}

StoreDb::PrefixIterator::PrefixIterator(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, std::string prefix,
                                        const rocksdb::Snapshot* snapshot, bool fill_cache)
    : prefix_(std::move(prefix)), upper_(keys::PrefixSuccessor(prefix_)), upper_slice_(upper_) {
  rocksdb::ReadOptions read;
  read.snapshot = snapshot;
  read.fill_cache = fill_cache;
  if (!upper_.empty()) read.iterate_upper_bound = &upper_slice_;
  it_.reset(db->NewIterator(read, cf));
}

std::unique_ptr<StoreDb::PrefixIterator> StoreDb::Scan(rocksdb::ColumnFamilyHandle* cf, std::string prefix,
                                                       const rocksdb::Snapshot* snapshot, bool fill_cache) {
  return std::make_unique<PrefixIterator>(db_.get(), cf, std::move(prefix), snapshot, fill_cache);
}

uint64_t StoreDb::LiveDataBytes() const {
  uint64_t total = 0;
  for (auto* handle : handles_) {
    uint64_t bytes = 0;
    if (db_->GetIntProperty(handle, rocksdb::DB::Properties::kLiveSstFilesSize, &bytes)) total += bytes;
  }
  return total;
}

}  // namespace contacts::store
