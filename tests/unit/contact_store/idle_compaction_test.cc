// Idle compaction: the policy's decisions over made-up times, and a real StoreDb whose level 0 and
// memtables are flattened once writes stop (and left alone when the feature is off or the burst
// was too small).
#include "services/contact_store/idle_compaction.h"

#include <chrono>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rocksdb/write_batch.h>

#include "services/contact_store/store_db.h"
#include "tests/testing/service_process.h"

namespace contacts::store {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

// policy.Due with `written` bytes, `since_start` after kStart, and level 1 empty unless given.
bool DueAt(
    IdleCompactionPolicy& policy, uint64_t written, absl::Duration since_start,
    const std::function<uint64_t()>& level1 = [] { return uint64_t{0}; }) {
  return policy.Due(written, kStart + since_start, level1);
}

IdleCompactionOptions Options(absl::Duration idle, uint64_t min_bytes) {
  IdleCompactionOptions options;
  options.idle_after = idle;
  options.min_written_bytes = min_bytes;
  return options;
}

TEST(IdleCompactionPolicyTest, NothingWrittenIsNeverDue) {
  IdleCompactionPolicy policy(Options(absl::Seconds(2), 100), 0, kStart);
  EXPECT_FALSE(DueAt(policy, 0, absl::Hours(1)));
}

TEST(IdleCompactionPolicyTest, DueOnceWritesStopForTheIdlePeriod) {
  IdleCompactionPolicy policy(Options(absl::Seconds(2), 100), 0, kStart);
  EXPECT_FALSE(DueAt(policy, 150, absl::Seconds(1)));  // a write was just seen
  EXPECT_FALSE(DueAt(policy, 150, absl::Milliseconds(2999)));
  EXPECT_TRUE(DueAt(policy, 150, absl::Seconds(3)));
}

TEST(IdleCompactionPolicyTest, AWriteRestartsTheIdlePeriod) {
  IdleCompactionPolicy policy(Options(absl::Seconds(2), 100), 0, kStart);
  EXPECT_FALSE(DueAt(policy, 150, absl::Seconds(1)));
  EXPECT_FALSE(DueAt(policy, 160, absl::Seconds(2)));
  EXPECT_FALSE(DueAt(policy, 160, absl::Milliseconds(3999)));
  EXPECT_TRUE(DueAt(policy, 160, absl::Seconds(4)));
}

TEST(IdleCompactionPolicyTest, ASmallBurstIsNotWorthIt) {
  IdleCompactionPolicy policy(Options(absl::Seconds(2), 100), 1000, kStart);
  EXPECT_FALSE(DueAt(policy, 1099, absl::Seconds(1)));
  EXPECT_FALSE(DueAt(policy, 1099, absl::Hours(1)));
  EXPECT_FALSE(DueAt(policy, 1100, absl::Hours(2)));
  EXPECT_TRUE(DueAt(policy, 1100, absl::Hours(3)));
}

TEST(IdleCompactionPolicyTest, OncePerBurst) {
  IdleCompactionPolicy policy(Options(absl::Seconds(2), 100), 0, kStart);
  EXPECT_FALSE(DueAt(policy, 500, absl::Seconds(1)));
  ASSERT_TRUE(DueAt(policy, 500, absl::Seconds(3)));
  policy.Flattened(500);
  EXPECT_FALSE(DueAt(policy, 500, absl::Seconds(10)));
  // The next burst counts from the bytes written when the last flattening began.
  EXPECT_FALSE(DueAt(policy, 550, absl::Seconds(11)));
  EXPECT_FALSE(DueAt(policy, 550, absl::Seconds(20)));
  EXPECT_FALSE(DueAt(policy, 600, absl::Seconds(21)));
  EXPECT_TRUE(DueAt(policy, 600, absl::Seconds(23)));
}

TEST(IdleCompactionPolicyTest, PostponeWaitsAnotherIdlePeriod) {
  IdleCompactionPolicy policy(Options(absl::Seconds(2), 100), 0, kStart);
  EXPECT_FALSE(DueAt(policy, 500, absl::Seconds(1)));
  ASSERT_TRUE(DueAt(policy, 500, absl::Seconds(3)));
  policy.Postpone(kStart + absl::Seconds(3));
  EXPECT_FALSE(DueAt(policy, 500, absl::Seconds(4)));
  EXPECT_TRUE(DueAt(policy, 500, absl::Seconds(5)));
}

TEST(IdleCompactionPolicyTest, WaitsUntilTheBurstIsWorthRewritingLevel1) {
  IdleCompactionOptions options = Options(absl::Seconds(2), 100);
  options.max_rewrite_ratio = 8;
  IdleCompactionPolicy policy(options, 0, kStart);
  const std::function<uint64_t()> level1 = [] { return uint64_t{8000}; };
  EXPECT_FALSE(DueAt(policy, 999, absl::Seconds(1), level1));
  EXPECT_FALSE(DueAt(policy, 999, absl::Hours(1), level1));  // 999 < 8000 / 8
  EXPECT_FALSE(DueAt(policy, 1000, absl::Hours(2), level1));
  EXPECT_TRUE(DueAt(policy, 1000, absl::Hours(3), level1));
}

TEST(IdleCompactionPolicyTest, AsksForLevel1OnlyWhenEverythingElseSaysYes) {
  IdleCompactionPolicy policy(Options(absl::Seconds(2), 100), 0, kStart);
  int asked = 0;
  const std::function<uint64_t()> level1 = [&] {
    ++asked;
    return uint64_t{0};
  };
  EXPECT_FALSE(DueAt(policy, 50, absl::Seconds(1), level1));
  EXPECT_FALSE(DueAt(policy, 50, absl::Seconds(5), level1));
  EXPECT_FALSE(DueAt(policy, 500, absl::Seconds(6), level1));
  EXPECT_EQ(asked, 0);
  EXPECT_TRUE(DueAt(policy, 500, absl::Seconds(8), level1));
  EXPECT_EQ(asked, 1);
}

TEST(IdleCompactionPolicyTest, ZeroIdlePeriodTurnsItOff) {
  IdleCompactionPolicy policy(Options(absl::ZeroDuration(), 0), 0, kStart);
  EXPECT_FALSE(DueAt(policy, 500, absl::Seconds(1)));
  EXPECT_FALSE(DueAt(policy, 500, absl::Hours(1)));
}

// ----- a real store -----

uint64_t IntProperty(StoreDb& db, rocksdb::ColumnFamilyHandle* family, const std::string& name) {
  std::string value;
  EXPECT_TRUE(db.db()->GetProperty(family, name, &value)) << name;
  return value.empty() ? 0 : std::stoull(value);
}

uint64_t Level0Files(StoreDb& db) { return IntProperty(db, db.contacts(), "rocksdb.num-files-at-level0"); }

std::string Key(int i) { return fmt::format("key{:08d}", i * 7919 % 100000); }

// Writes `batches` batches of 1,000 records of ~1 KiB to the contacts family, each flushed into a
// level-0 file of its own, then one more batch that stays in the memtable.
void WriteBurst(StoreDb& db, int batches) {
  const std::string value(1000, 'v');
  int next = 0;
  for (int batch = 0; batch <= batches; ++batch) {
    rocksdb::WriteBatch write;
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(write.Put(db.contacts(), Key(next++), value).ok());
    ASSERT_TRUE(db.Write(&write).ok());
    if (batch < batches) {
      ASSERT_TRUE(db.db()->Flush(rocksdb::FlushOptions(), db.contacts()).ok());
    }
  }
}

// Waits until `done` holds or `limit` passes; returns whether it held.
template <typename Condition>
bool WaitFor(Condition done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// Whether the first `records` keys of WriteBurst can be read from the memtables and the block
// cache alone (kBlockCacheTier: a read that would need the disk fails as Incomplete).
bool AllCached(StoreDb& db, int records) {
  rocksdb::ReadOptions cache_only;
  cache_only.read_tier = rocksdb::kBlockCacheTier;
  std::string value;
  for (int i = 0; i < records; ++i) {
    if (!db.db()->Get(cache_only, db.contacts(), Key(i), &value).ok()) return false;
  }
  return true;
}

// How many of the keys "k00000000".. of StoreWith20MbFlushed the block cache alone can serve.
// Counted per key, not by the cache's usage figure: that also holds the memtables' reservations
// (StoreDb charges them to the same cache), which come and go as memtables fill and flush.
int CachedRecords(StoreDb& db, int records) {
  rocksdb::ReadOptions cache_only;
  cache_only.read_tier = rocksdb::kBlockCacheTier;
  std::string value;
  int cached = 0;
  for (int i = 0; i < records; ++i) {
    if (db.db()->Get(cache_only, db.contacts(), fmt::format("k{:08d}", i), &value).ok()) ++cached;
  }
  return cached;
}

StoreDbOptions DbOptions(absl::Duration idle, uint64_t min_bytes) {
  StoreDbOptions options;
  options.idle_compaction = Options(idle, min_bytes);
  return options;
}

TEST(IdleCompactorTest, FlattensLevel0AndMemtablesOnceWritesStop) {
  test::TempDir dir("idle_compaction_test");
  auto db = StoreDb::Open(dir.path() + "/db", DbOptions(absl::Milliseconds(500), 1 << 20));
  ASSERT_TRUE(db.ok()) << db.status();
  WriteBurst(**db, 3);
  ASSERT_EQ(Level0Files(**db), 3u);  // below RocksDB's own trigger (4): it would leave them there
  ASSERT_TRUE(WaitFor([&] { return (*db)->idle_flattenings() >= 1; }, std::chrono::seconds(20)));
  EXPECT_EQ(Level0Files(**db), 0u);
  EXPECT_EQ(IntProperty(**db, (*db)->contacts(), "rocksdb.num-entries-active-mem-table"), 0u);
  EXPECT_GT(IntProperty(**db, (*db)->contacts(), "rocksdb.num-files-at-level1"), 0u);
  // Then the new files' blocks are read into the block cache (compactions do not fill it), so
  // reads that may not touch the disk find every record. Checked before the scan below, which
  // would fill the cache itself.
  EXPECT_TRUE(WaitFor([&] { return AllCached(**db, 4000); }, std::chrono::seconds(20)));
  // Every record is still there, once.
  auto scan = (*db)->Scan((*db)->contacts(), "key");
  int records = 0;
  for ((*scan)->SeekToFirst(); (*scan)->Valid(); (*scan)->Next()) ++records;
  EXPECT_EQ(records, 4000);
  // Nothing more was written: no second flattening.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ((*db)->idle_flattenings(), 1u);
}

// 20 MB of records in one flushed file, in a store with idle compaction off and a memory budget
// (block cache) of `budget_bytes`.
absl::StatusOr<std::unique_ptr<StoreDb>> StoreWith20MbFlushed(const test::TempDir& dir, size_t budget_bytes) {
  StoreDbOptions options = DbOptions(absl::ZeroDuration(), 1);
  options.memory_budget_bytes = budget_bytes;
  auto db = StoreDb::Open(dir.path() + "/db", options);
  if (!db.ok()) return db;
  const std::string value(1000, 'v');
  rocksdb::WriteBatch write;
  for (int i = 0; i < 20000; ++i) EXPECT_TRUE(write.Put((*db)->contacts(), fmt::format("k{:08d}", i), value).ok());
  EXPECT_TRUE((*db)->Write(&write).ok());
  EXPECT_TRUE((*db)->db()->Flush(rocksdb::FlushOptions(), (*db)->contacts()).ok());
  return db;
}

TEST(WarmBlockCacheTest, ReadsTheFamilyIntoTheCache) {
  test::TempDir dir("idle_compaction_test");
  auto db = StoreWith20MbFlushed(dir, 256 << 20);  // room for all of it under 90%
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_LT(CachedRecords(**db, 20000), 20000);  // a flush does not fill the cache
  ASSERT_TRUE(WarmBlockCache(*(*db)->db(), (*db)->contacts(), [] { return false; }).ok());
  EXPECT_EQ(CachedRecords(**db, 20000), 20000);
}

TEST(WarmBlockCacheTest, StopsWhenInterrupted) {
  test::TempDir dir("idle_compaction_test");
  auto db = StoreWith20MbFlushed(dir, 256 << 20);
  ASSERT_TRUE(db.ok()) << db.status();
  int asked = 0;
  ASSERT_TRUE(WarmBlockCache(*(*db)->db(), (*db)->contacts(), [&] { return ++asked >= 1; }).ok());
  EXPECT_EQ(asked, 1);
  // It stops at the first check, 4,096 records in (readahead does not fill the cache).
  EXPECT_LT(CachedRecords(**db, 20000), 8000);
}

TEST(WarmBlockCacheTest, StopsAtNinetyPercentOfTheCache) {
  test::TempDir dir("idle_compaction_test");
  auto db = StoreWith20MbFlushed(dir, 8 << 20);  // 20 MB of records do not fit
  ASSERT_TRUE(db.ok()) << db.status();
  int asked = 0;
  ASSERT_TRUE(WarmBlockCache(*(*db)->db(), (*db)->contacts(), [&] { return ++asked > 1000; }).ok());
  // 20,000 records are asked about 4 times on the way to the end; the cache fills before.
  EXPECT_LE(asked, 2) << asked;
}

TEST(IdleCompactorTest, LeavesTheTreesAloneWhenOff) {
  test::TempDir dir("idle_compaction_test");
  auto db = StoreDb::Open(dir.path() + "/db", DbOptions(absl::ZeroDuration(), 1 << 20));
  ASSERT_TRUE(db.ok()) << db.status();
  WriteBurst(**db, 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  EXPECT_EQ(Level0Files(**db), 3u);
  EXPECT_EQ((*db)->idle_flattenings(), 0u);
}

TEST(IdleCompactorTest, LeavesTheTreesAloneAfterASmallBurst) {
  test::TempDir dir("idle_compaction_test");
  // The burst writes ~4 MB: under the 64 MiB asked for.
  auto db = StoreDb::Open(dir.path() + "/db", DbOptions(absl::Milliseconds(100), 64 << 20));
  ASSERT_TRUE(db.ok()) << db.status();
  WriteBurst(**db, 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  EXPECT_EQ(Level0Files(**db), 3u);
  EXPECT_EQ((*db)->idle_flattenings(), 0u);
}

// The store closes about when a pass starts: before, during or after it depending on timing (the
// test cannot force "during"). Whichever it was, closing returns and nothing written is lost.
TEST(IdleCompactorTest, ClosingAroundAFlatteningLosesNothing) {
  test::TempDir dir("idle_compaction_test");
  {
    auto db = StoreDb::Open(dir.path() + "/db", DbOptions(absl::Milliseconds(10), 1));
    ASSERT_TRUE(db.ok()) << db.status();
    WriteBurst(**db, 3);
    std::this_thread::sleep_for(std::chrono::milliseconds(15));  // about when it starts
  }
  auto reopened = StoreDb::Open(dir.path() + "/db", DbOptions(absl::ZeroDuration(), 1));
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  auto scan = (*reopened)->Scan((*reopened)->contacts(), "key");
  int records = 0;
  for ((*scan)->SeekToFirst(); (*scan)->Valid(); (*scan)->Next()) ++records;
  EXPECT_EQ(records, 4000);
}

}  // namespace
}  // namespace contacts::store
