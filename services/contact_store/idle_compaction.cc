#include "services/contact_store/idle_compaction.h"

#include <algorithm>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <rocksdb/metadata.h>
#include <spdlog/spdlog.h>

#include "common/status/status_macros.h"
#include "services/contact_store/store_db.h"

namespace contacts::store {

IdleCompactionPolicy::IdleCompactionPolicy(IdleCompactionOptions options, uint64_t written_bytes, absl::Time now)
    : options_(options), last_seen_(written_bytes), last_change_(now), flattened_at_(written_bytes) {}

bool IdleCompactionPolicy::Due(uint64_t written_bytes, absl::Time now, const std::function<uint64_t()>& level1_bytes) {
  if (options_.idle_after <= absl::ZeroDuration()) return false;
  if (written_bytes != last_seen_) {
    last_seen_ = written_bytes;
    last_change_ = now;
    return false;
  }
  const uint64_t written = written_bytes - flattened_at_;
  if (written < options_.min_written_bytes || now - last_change_ < options_.idle_after) return false;
  return written >= level1_bytes() / std::max<uint64_t>(options_.max_rewrite_ratio, 1);
}

void IdleCompactionPolicy::Flattened(uint64_t written_bytes) { flattened_at_ = written_bytes; }

absl::Status FlattenLevel0(rocksdb::DB& db, const std::vector<rocksdb::ColumnFamilyHandle*>& families) {
  rocksdb::FlushOptions flush;
  flush.allow_write_stall = true;  // the store is idle; a flush must not wait for a stall to clear
  RETURN_IF_ERROR(FromRocksStatus(db.Flush(flush, families), "flush memtables"));
  for (rocksdb::ColumnFamilyHandle* family : families) {
    rocksdb::ColumnFamilyMetaData meta;
    db.GetColumnFamilyMetaData(family, &meta);
    if (meta.levels.empty() || meta.levels[0].files.empty()) continue;
    std::vector<std::string> level0;
    for (const rocksdb::SstFileMetaData& file : meta.levels[0].files) {
      if (file.being_compacted) {
        return absl::UnavailableError(fmt::format("level 0 of {} is being compacted", family->GetName()));
      }
      level0.push_back(file.name);
    }
    rocksdb::CompactionOptions compaction;
    compaction.compression = rocksdb::kDisableCompressionOption;  // the family's own, per level
    compaction.output_file_size_limit = db.GetOptions(family).target_file_size_base;
    rocksdb::Status compacted = db.CompactFiles(compaction, family, level0, /*output_level=*/1);
    // RocksDB picked some of the files between the listing and the call.
    if (compacted.IsAborted()) return absl::UnavailableError(compacted.ToString());
    RETURN_IF_ERROR(FromRocksStatus(compacted, fmt::format("compact level 0 of {}", family->GetName())));
  }
  // Files moved down whole (sequential keys, e.g. ordinals) keep their sequence numbers, and
  // RocksDB rewrites such bottommost files to zero them, but only looks for them when a snapshot
  // is released: without this, that happened at the end of the first export after an import, and
  // cost the second one 0.12-0.25 CPU-s. Releasing a snapshot here lets it happen now, while idle.
  db.ReleaseSnapshot(db.GetSnapshot());
  return absl::OkStatus();
}

absl::Status WarmBlockCache(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family,
                            const std::function<bool()>& interrupted) {
  uint64_t capacity = 0;
  if (!db.GetIntProperty(family, rocksdb::DB::Properties::kBlockCacheCapacity, &capacity)) return absl::OkStatus();
  rocksdb::ReadOptions read;
  read.fill_cache = true;
  read.readahead_size = 512 << 10;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(read, family));
  uint64_t records = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (++records % 4096 != 0) continue;
    if (interrupted()) return absl::OkStatus();
    uint64_t usage = 0;
    if (!db.GetIntProperty(family, rocksdb::DB::Properties::kBlockCacheUsage, &usage) || usage >= capacity / 10 * 9) {
      return absl::OkStatus();
    }
  }
  return FromRocksStatus(it->status(), "warm the block cache");
}

uint64_t Level1Bytes(rocksdb::DB& db, const std::vector<rocksdb::ColumnFamilyHandle*>& families) {
  uint64_t bytes = 0;
  for (rocksdb::ColumnFamilyHandle* family : families) {
    rocksdb::ColumnFamilyMetaData meta;
    db.GetColumnFamilyMetaData(family, &meta);
    if (meta.levels.size() > 1) bytes += meta.levels[1].size;
  }
  return bytes;
}

IdleCompactor::IdleCompactor(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> families,
                             const std::atomic<uint64_t>* written_bytes, IdleCompactionOptions options,
                             rocksdb::ColumnFamilyHandle* warm_family)
    : db_(db),
      families_(std::move(families)),
      warm_family_(warm_family),
      written_bytes_(written_bytes),
      options_(options) {
  thread_ = std::thread([this] { Run(); });
}

IdleCompactor::~IdleCompactor() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  db_->DisableManualCompaction();  // aborts a CompactFiles in progress
  thread_.join();
}

void IdleCompactor::Run() {
  // A few looks per idle period, so a flattening starts soon after the period ends.
  const absl::Duration poll = std::clamp(options_.idle_after / 4, absl::Milliseconds(10), absl::Milliseconds(500));
  IdleCompactionPolicy policy(options_, written_bytes_->load(std::memory_order_relaxed), absl::Now());
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), poll);
    if (stopping_) break;
    const uint64_t written = written_bytes_->load(std::memory_order_relaxed);
    if (!policy.Due(written, absl::Now(), [this] { return Level1Bytes(*db_, families_); })) continue;
    mu_.Unlock();
    const absl::Time start = absl::Now();
    absl::Status flattened = FlattenLevel0(*db_, families_);
    mu_.Lock();
    if (flattened.ok()) {
      policy.Flattened(written);
      flattenings_.fetch_add(1, std::memory_order_relaxed);
      spdlog::info("idle compaction: memtables flushed and level 0 compacted in {} ms",
                   absl::ToInt64Milliseconds(absl::Now() - start));
      if (warm_family_ != nullptr) {
        mu_.Unlock();
        const absl::Time warm_start = absl::Now();
        // Stops as soon as a write comes (the store is no longer idle) or the store closes.
        absl::Status warmed = WarmBlockCache(*db_, warm_family_, [&] {
          absl::MutexLock stop_lock(&mu_);
          return stopping_ || written_bytes_->load(std::memory_order_relaxed) != written;
        });
        mu_.Lock();
        if (warmed.ok()) {
          spdlog::info("idle compaction: block cache warmed in {} ms",
                       absl::ToInt64Milliseconds(absl::Now() - warm_start));
        } else {
          spdlog::warn("idle compaction: warming the block cache failed: {}", warmed.ToString());
        }
      }
    } else if (absl::IsUnavailable(flattened)) {
      spdlog::debug("idle compaction: {}; trying again shortly", flattened.ToString());
    } else if (!stopping_) {
      policy.Postpone(absl::Now());
      spdlog::warn("idle compaction failed, trying again after the next idle period: {}", flattened.ToString());
    }
  }
}

}  // namespace contacts::store
