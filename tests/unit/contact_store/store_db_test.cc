#include "services/contact_store/store_db.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/testing/service_process.h"

namespace contacts::store {
namespace {

size_t FilesIn(const std::string& dir) {
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++count;
  return count;
}

// Ops for `count` keys in each of `families`, sorted by family and key as IngestSorted wants.
std::vector<WriteOp> SortedOps(const std::vector<rocksdb::ColumnFamilyHandle*>& families, int count,
                               std::vector<std::string>* bytes) {
  bytes->reserve(2 * families.size() * count);  // views below stay valid
  std::vector<WriteOp> ops;
  for (rocksdb::ColumnFamilyHandle* family : families) {
    for (int i = 0; i < count; ++i) {
      const std::string& key = bytes->emplace_back(fmt::format("key{:06d}", i));
      const std::string& value = bytes->emplace_back(fmt::format("value {} of family {}", i, family->GetID()));
      ops.push_back({family, family->GetID(), key, value, false});
    }
  }
  return ops;
}

// Each family's file is written, synced (on threads of their own) and ingested: every value reads
// back, across a reopen, and no file is left in the staging folder.
TEST(StoreDbTest, IngestSortedWritesEveryFamilysFileAndLeavesNoneBehind) {
  test::TempDir dir("store_db_test");
  const std::string path = dir.path() + "/db";
  {
    auto db = StoreDb::Open(path, StoreDbOptions{});
    ASSERT_TRUE(db.ok()) << db.status();
    std::vector<std::string> bytes;
    const std::vector<WriteOp> ops = SortedOps({(*db)->contacts(), (*db)->ordinals(), (*db)->applied()}, 500, &bytes);
    ASSERT_TRUE((*db)->IngestSorted(ops).ok());
    EXPECT_EQ(FilesIn(path + "/ingest"), 0u);
  }
  auto db = StoreDb::Open(path, StoreDbOptions{});
  ASSERT_TRUE(db.ok()) << db.status();
  for (rocksdb::ColumnFamilyHandle* family : {(*db)->contacts(), (*db)->ordinals(), (*db)->applied()}) {
    for (int i : {0, 250, 499}) {
      std::string value;
      ASSERT_TRUE((*db)->Get(family, fmt::format("key{:06d}", i), &value).ok()) << family->GetName() << " " << i;
      EXPECT_EQ(value, fmt::format("value {} of family {}", i, family->GetID()));
    }
  }
}

// A failure after a file was written (and its sync started) waits for that sync, removes the file
// and ingests nothing.
// Below the free-space reserve every way of writing is refused, single keys included (the
// catalog's renames and deletes), and reads go on.
TEST(StoreDbTest, EveryWriteIsRefusedBelowTheFreeSpaceReserve) {
  test::TempDir dir("store_db_test");
  {
    auto db = StoreDb::Open(dir.path() + "/db", StoreDbOptions{});
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE((*db)->Put((*db)->catalog(), "k", "v", "seed").ok());
  }
  StoreDbOptions options;
  options.min_free_disk_bytes = uint64_t{1} << 62;  // more than any volume has
  auto db = StoreDb::Open(dir.path() + "/db", options);
  ASSERT_TRUE(db.ok()) << db.status();
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch.Put((*db)->catalog(), "k2", "v").ok());
  const std::vector<absl::Status> refused = {
      (*db)->Write(&batch),
      (*db)->Put((*db)->catalog(), "k", "w", "rename"),
      (*db)->Delete((*db)->catalog(), "k", "delete"),
      (*db)->DeleteRange((*db)->catalog(), "a", "z", "drop"),
      (*db)->IngestSorted({}),
  };
  for (const absl::Status& status : refused) {
    EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  }
  std::string value;
  ASSERT_TRUE((*db)->Get((*db)->catalog(), "k", &value).ok());
  EXPECT_EQ(value, "v");
}

TEST(StoreDbTest, IngestSortedThatFailsHalfwayIngestsNothingAndLeavesNoFile) {
  test::TempDir dir("store_db_test");
  auto db = StoreDb::Open(dir.path() + "/db", StoreDbOptions{});
  ASSERT_TRUE(db.ok()) << db.status();
  auto other = StoreDb::Open(dir.path() + "/other", StoreDbOptions{});
  ASSERT_TRUE(other.ok()) << other.status();
  std::vector<std::string> bytes;
  // The second family's handle belongs to another database: the first family's file is written
  // before IngestSorted finds that out.
  std::vector<WriteOp> ops = SortedOps({(*db)->contacts(), (*other)->ordinals()}, 500, &bytes);
  const absl::Status ingested = (*db)->IngestSorted(ops);
  EXPECT_EQ(ingested.code(), absl::StatusCode::kInternal) << ingested;
  EXPECT_EQ(FilesIn(dir.path() + "/db/ingest"), 0u);
  std::string value;
  EXPECT_TRUE(absl::IsNotFound((*db)->Get((*db)->contacts(), "key000000", &value)));
}

}  // namespace
}  // namespace contacts::store
