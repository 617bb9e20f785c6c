// export_writer: the wire reader checked against protobuf's own parser (generated, hand-made and
// malformed records), and WriteExport over a real RocksDB (scan and point-read paths, chunking,
// stopping, corrupt and missing records).
#include "services/contact_store/export_writer.h"

#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "contacts/internal/storage.pb.h"

#include "absl/strings/escaping.h"
#include "common/storage/key_codec.h"
#include "services/contact_store/stored_values.h"
#include "tests/testing/service_process.h"

namespace contacts::store {
namespace {

using contacts::internal::StoredContact;

// ----- wire bytes by hand -----

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void PutTag(std::string* out, uint64_t field, int wire_type) { PutVarint(out, field << 3 | wire_type); }
void PutBytes(std::string* out, uint64_t field, std::string_view bytes) {
  PutTag(out, field, 2);
  PutVarint(out, bytes.size());
  out->append(bytes);
}
void PutVarintField(std::string* out, uint64_t field, uint64_t v) {
  PutTag(out, field, 0);
  PutVarint(out, v);
}

// Appends an entry as it is, even an empty or a repeated one (SetStoredValue never writes those;
// the reader must still take what older writers or protobuf's map encoding left).
void AddRawValue(StoredContact* contact, uint32_t id, const std::string& value) {
  contacts::internal::StoredValue* entry = contact->add_values();
  entry->set_attribute_id(id);
  entry->set_value(value);
}

// What protobuf makes of `record`: the ordinal and the value of each id ("" when absent).
std::pair<uint32_t, std::vector<std::string>> ParsedByProtobuf(const std::string& record,
                                                               const std::vector<uint32_t>& ids) {
  StoredContact contact;
  EXPECT_TRUE(contact.ParseFromString(record));
  std::vector<std::string> values;
  for (uint32_t id : ids) {
    values.push_back(std::string(StoredValueOf(contact, id)));
  }
  return {contact.ordinal(), values};
}

std::pair<uint32_t, std::vector<std::string>> ReadByUs(const std::string& record, const std::vector<uint32_t>& ids) {
  StoredContactFields fields(ids);
  absl::Status status = fields.Read(record);
  EXPECT_TRUE(status.ok()) << status;
  return {fields.ordinal(), std::vector<std::string>(fields.values().begin(), fields.values().end())};
}

TEST(StoredContactFieldsTest, ReadsTheChosenValuesAndTheOrdinal) {
  StoredContact contact;
  contact.set_primary_key("C1");
  contact.set_ordinal(300);
  SetStoredValue(&contact, 1, "C1");
  SetStoredValue(&contact, 2, "user@example.com");
  SetStoredValue(&contact, 5, "S\xC3\xA3o Paulo");
  AddRawValue(&contact, 7, "");
  contact.add_list_ids(4);
  contact.set_created_at_micros(123456789);
  contact.set_source("import:job-1");
  const std::string record = contact.SerializeAsString();

  StoredContactFields fields({1, 5, 3, 2, 7});
  ASSERT_TRUE(fields.Read(record).ok());
  EXPECT_EQ(fields.ordinal(), 300u);
  EXPECT_EQ(fields.values(), (std::vector<std::string_view>{"C1", "S\xC3\xA3o Paulo", "", "user@example.com", ""}));
  // The views point into the record: no copies.
  EXPECT_GE(fields.values()[0].data(), record.data());
  EXPECT_LT(fields.values()[0].data(), record.data() + record.size());
}

TEST(StoredContactFieldsTest, ForgetsThePreviousRecord) {
  StoredContact first;
  first.set_ordinal(9);
  SetStoredValue(&first, 2, "old");
  StoredContact second;
  SetStoredValue(&second, 3, "new");
  StoredContactFields fields({2, 3});
  ASSERT_TRUE(fields.Read(first.SerializeAsString()).ok());
  const std::string record = second.SerializeAsString();
  ASSERT_TRUE(fields.Read(record).ok());
  EXPECT_EQ(fields.ordinal(), 0u);
  EXPECT_EQ(fields.values(), (std::vector<std::string_view>{"", "new"}));
}

TEST(StoredContactFieldsTest, RepeatedAndLargeAttributeIds) {
  StoredContact contact;
  SetStoredValue(&contact, 127, "a");
  SetStoredValue(&contact, 128, "b");    // two-byte key: the general entry path
  SetStoredValue(&contact, 70000, "c");  // beyond the id table
  SetStoredValue(&contact, 4000000000u, "d");
  SetStoredValue(&contact, 6, std::string(300, 'x'));  // two-byte length
  const std::vector<uint32_t> ids = {128, 70000, 127, 128, 6, 4000000000u, 70001, 70000};
  EXPECT_EQ(ReadByUs(contact.SerializeAsString(), ids), ParsedByProtobuf(contact.SerializeAsString(), ids));
  EXPECT_EQ(ReadByUs(contact.SerializeAsString(), ids).second[3], "b");
}

TEST(StoredContactFieldsTest, AgreesWithProtobufOnRandomContacts) {
  std::mt19937_64 rng(42);
  const std::string pieces[] = {"a", ",", "\"", "\n", "\xC3\xA9", "=", " ", std::string(1, '\0'), "xyz"};
  for (int round = 0; round < 500; ++round) {
    StoredContact contact;
    contact.set_primary_key(fmt::format("C{}", rng() % 1000));
    contact.set_ordinal(static_cast<uint32_t>(rng() % 3 == 0 ? rng() : rng() % 200));
    const int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      const uint32_t id = rng() % 5 == 0 ? static_cast<uint32_t>(rng()) : static_cast<uint32_t>(rng() % 300);
      std::string value;
      const size_t len = rng() % 10 == 0 ? 100 + rng() % 200 : rng() % 8;
      while (value.size() < len) value += pieces[rng() % std::size(pieces)];
      // Either form, both in one record: no writer mixes them, but the reader must agree with
      // stored_values.h whatever a record holds.
      if (rng() % 2 == 0) {
        AddRawValue(&contact, id, value);
      } else {
        AppendPackedValue(contact.mutable_packed_values(), id, value);
      }
    }
    for (int i = 0; i < static_cast<int>(rng() % 3); ++i) contact.add_list_ids(rng() % 1000000);
    if (rng() % 2 == 0) contact.add_blacklist()->set_channel(contacts::v1::EMAIL_CHANNEL);
    contact.set_created_at_micros(static_cast<int64_t>(rng() >> 1));
    contact.set_modified_at_micros(-1);
    contact.set_source("api");
    std::vector<uint32_t> ids;
    ForEachStoredValue(contact, [&](uint32_t id, std::string_view) {
      if (rng() % 2 == 0) ids.push_back(id);
    });
    for (int i = 0; i < 3; ++i) ids.push_back(static_cast<uint32_t>(rng() % 300));
    const std::string record = contact.SerializeAsString();
    ASSERT_EQ(ReadByUs(record, ids), ParsedByProtobuf(record, ids)) << "round " << round;
  }
}

TEST(StoredContactFieldsTest, FollowsProtobufOnUnusualButValidBytes) {
  const std::vector<uint32_t> ids = {1, 2, 0};
  std::string entry_value_first;  // value before key
  PutBytes(&entry_value_first, 2, "v2");
  PutVarintField(&entry_value_first, 1, 2);
  std::string entry_no_key;  // key defaults to 0
  PutBytes(&entry_no_key, 2, "zero");
  std::string entry_no_value;  // value defaults to ""
  PutVarintField(&entry_no_value, 1, 1);
  std::string entry_with_unknowns;
  PutVarintField(&entry_with_unknowns, 1, 1);
  PutVarintField(&entry_with_unknowns, 9, 5);
  PutBytes(&entry_with_unknowns, 2, "one");
  PutTag(&entry_with_unknowns, 10, 1);
  entry_with_unknowns.append(8, '\x01');
  std::string entry_one_again;
  PutVarintField(&entry_one_again, 1, 1);
  PutBytes(&entry_one_again, 2, "one again");

  std::string record;
  PutBytes(&record, 8, "source first");  // fields out of order
  PutBytes(&record, 3, entry_value_first);
  PutVarintField(&record, 2, 7);
  PutBytes(&record, 3, entry_no_key);
  PutBytes(&record, 3, entry_no_value);
  PutTag(&record, 99, 5);  // unknown fixed32 field
  record.append(4, '\x02');
  PutTag(&record, 98, 1);  // unknown fixed64 field
  record.append(8, '\x03');
  PutVarintField(&record, 97, 1ull << 60);  // unknown varint field
  PutBytes(&record, 3, entry_with_unknowns);
  PutVarintField(&record, 2, (1ull << 32) + 11);  // the last ordinal wins, truncated to 32 bits
  PutTag(&record, 2, 2);                          // field 2 with the wrong wire type: unknown
  PutVarint(&record, 1);
  record.push_back('x');
  PutBytes(&record, 3, entry_one_again);  // the last entry of a key wins
  PutTag(&record, 3, 0);                  // field 3 with the wrong wire type: unknown
  PutVarint(&record, 5);
  ASSERT_EQ(ReadByUs(record, ids), ParsedByProtobuf(record, ids));
  EXPECT_EQ(ReadByUs(record, ids), (std::pair<uint32_t, std::vector<std::string>>{11, {"one again", "v2", "zero"}}));
}

// Packed values out of the usual order: protobuf keeps the last packed_values field, and
// stored_values.h reads its entries after every old-form entry, wherever they sit in the bytes.
TEST(StoredContactFieldsTest, PackedValuesFollowProtobufAndStoredValuesWhateverTheirPlace) {
  const std::vector<uint32_t> ids = {1, 2, 3};
  std::string first_packed;  // overwritten by the later field 9: even malformed, it is ignored
  AppendPackedValue(&first_packed, 1, "first");
  first_packed += "\x05";
  std::string packed;
  AppendPackedValue(&packed, 1, "packed");
  AppendPackedValue(&packed, 3, "three");
  std::string old_entry;
  PutVarintField(&old_entry, 1, 1);
  PutBytes(&old_entry, 2, "old");
  std::string old_two;
  PutVarintField(&old_two, 1, 2);
  PutBytes(&old_two, 2, "two");
  std::string record;
  PutBytes(&record, 9, first_packed);
  PutBytes(&record, 9, packed);
  PutBytes(&record, 3, old_entry);  // after the packed field in the bytes, before it when read
  PutBytes(&record, 3, old_two);
  ASSERT_EQ(ReadByUs(record, ids), ParsedByProtobuf(record, ids));
  EXPECT_EQ(ReadByUs(record, ids).second, (std::vector<std::string>{"packed", "two", "three"}));
}

TEST(StoredContactFieldsTest, MalformedRecordsAreDataLoss) {
  std::string good_entry;
  PutVarintField(&good_entry, 1, 1);
  PutBytes(&good_entry, 2, "value");
  std::string good;
  PutBytes(&good, 3, good_entry);
  std::vector<std::string> bad;
  bad.push_back(good.substr(0, good.size() - 1));                         // length past the end
  bad.push_back(std::string("\x10\x80", 2));                              // truncated varint
  bad.push_back(std::string("\x10") + std::string(10, '\xff') + "\x01");  // varint of 11 bytes
  bad.push_back(std::string("\x00\x01", 2));                              // field number 0
  bad.push_back(std::string("\x0e\x00", 2));                              // wire type 6
  bad.push_back(std::string("\x09\x01\x02\x03", 4));                      // fixed64 cut short
  bad.push_back(std::string("\x0d\x01", 2));                              // fixed32 cut short
  {
    std::string entry = good_entry.substr(0, good_entry.size() - 2);  // entry's value past its end
    std::string record;
    PutBytes(&record, 3, entry);
    bad.push_back(record);
  }
  {
    std::string record;
    PutBytes(&record, 3, std::string("\x08", 1));  // entry's key varint missing
    bad.push_back(record);
  }
  StoredContactFields fields({1});
  for (const std::string& record : bad) {
    absl::Status status = fields.Read(record);
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << absl::CEscape(record);
    StoredContact contact;
    EXPECT_FALSE(contact.ParseFromString(record)) << "protobuf accepts " << absl::CEscape(record);
  }
  // Packed values are bytes to protobuf; malformed entries in them are data loss to the export as
  // they are the end of the entries to stored_values.h.
  for (const std::string& packed : {std::string("\x01\x05"
                                                "ab",
                                                4),                                 // value past its end
                                    std::string("\x81", 1),                         // id cut short
                                    std::string("\x01", 1),                         // length missing
                                    std::string("\x80\x80\x80\x80\x10\x00", 6)}) {  // an id beyond 32 bits
    std::string record;
    PutBytes(&record, 9, packed);
    EXPECT_EQ(fields.Read(record).code(), absl::StatusCode::kDataLoss) << absl::CEscape(record);
    StoredContact contact;
    ASSERT_TRUE(contact.ParseFromString(record));
    EXPECT_EQ(StoredValueCount(contact), 0);
  }
  // A group is valid protobuf (an unknown field) but proto3 never writes one: rejected on purpose.
  EXPECT_EQ(fields.Read(std::string("\x1b\x1c", 2)).code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(fields.Read("").ok());  // the empty message is valid
  EXPECT_EQ(fields.values()[0], "");
}

// ----- WriteExport over a real RocksDB -----

// Parameter: whether scans are split into key ranges read by three threads
// (ParallelScanInKeyOrder, from the first match on) or run on the caller's.
class WriteExportTest : public ::testing::TestWithParam<bool> {
 protected:
  static constexpr uint32_t kTenant = 7;

  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    auto db = StoreDb::Open(dir_.path() + "/db", StoreDbOptions());
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
  }

  // Stores a contact (record and ordinal entry) with values for attribute ids 1 (pk), 2 and 3.
  void Put(uint32_t tenant, uint32_t ordinal, const std::string& pk, const std::string& note,
           const std::string& amount) {
    StoredContact contact;
    contact.set_primary_key(pk);
    contact.set_ordinal(ordinal);
    SetStoredValue(&contact, 1, pk);
    if (!note.empty()) SetStoredValue(&contact, 2, note);
    if (!amount.empty()) SetStoredValue(&contact, 3, amount);
    rocksdb::WriteBatch batch;
    ASSERT_TRUE(batch.Put(db_->contacts(), keys::ContactKey(tenant, pk), contact.SerializeAsString()).ok());
    ASSERT_TRUE(batch.Put(db_->ordinals(), keys::OrdinalKey(tenant, ordinal), pk).ok());
    ASSERT_TRUE(db_->Write(&batch).ok());
  }

  ExportPlan Plan(std::vector<uint32_t> matches, uint64_t alive) {
    ExportPlan plan;
    plan.tenant_id = kTenant;
    plan.columns = {{1, "id", false}, {2, "note", false}, {3, "amount", true}};
    for (uint32_t o : matches) plan.matches.add(o);
    plan.alive = alive;
    plan.scan_threads = GetParam() ? 3 : 1;
    plan.parallel_scan_min_matches = 0;
    return plan;
  }

  struct Output {
    absl::Status status;
    std::string csv;
    uint64_t rows = 0;
    std::vector<std::string> chunks;
    std::vector<uint64_t> chunk_rows;  // the sink's row count for each chunk
  };
  Output Run(const ExportPlan& plan, std::function<bool()> stop = nullptr, int accept_chunks = 1 << 30) {
    Output out;
    out.status = WriteExport(
        *db_, plan,
        [&](std::string* csv, uint64_t rows) {
          if (static_cast<int>(out.chunks.size()) >= accept_chunks) return false;
          out.chunks.push_back(*csv);
          out.chunk_rows.push_back(rows);
          out.csv += *csv;
          out.rows += rows;
          // Hand back a used string, as the gRPC adapter does with its message's buffer.
          *csv = "stale bytes that must not leak into the next chunk";
          return true;
        },
        stop);
    return out;
  }

  // A sink that refuses the third chunk, then a stop check that fires after `stop_after_checks`
  // chunks, each end the export with CANCELLED after exactly the chunks they let through.
  void ExpectStopsEarly(const ExportPlan& plan, int stop_after_checks) {
    Output refused = Run(plan, nullptr, /*accept_chunks=*/2);
    EXPECT_EQ(refused.status.code(), absl::StatusCode::kCancelled);
    EXPECT_EQ(refused.chunks.size(), 2u);
    int checks = 0;
    Output stopped = Run(plan, [&] { return ++checks > stop_after_checks; });
    EXPECT_EQ(stopped.status.code(), absl::StatusCode::kCancelled);
    EXPECT_EQ(stopped.chunks.size(), static_cast<size_t>(stop_after_checks));
  }

  test::TempDir dir_;
  std::unique_ptr<StoreDb> db_;
};

TEST_P(WriteExportTest, ScanWritesEveryMatchInKeyOrderWithNeutralisedCells) {
  Put(kTenant, 0, "C3", "=SUM(A1)", "-5");
  Put(kTenant, 1, "C1", "a,\"b\"\nc", "");
  Put(kTenant, 2, "C2", "", "12.5");
  Put(kTenant, 3, "C0", "not matched", "1");
  Put(kTenant + 1, 4, "C9", "other tenant", "1");  // same ordinal space, other tenant: never read
  Output out = Run(Plan({0, 1, 2, 4}, 4));
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.csv, "id,note,amount\r\nC1,\"a,\"\"b\"\"\nc\",\r\nC2,,12.5\r\nC3,'=SUM(A1),-5\r\n");
  EXPECT_EQ(out.rows, 3u);
}

// cells_as_stored: a file for another system gets every cell as stored ("+promo@example.com" is
// an address, and with a ' before it another valid one), by either read path.
TEST_P(WriteExportTest, CellsAsStoredAreNotNeutralised) {
  Put(kTenant, 0, "+promo@example.com", "=SUM(A1)", "-5");
  Put(kTenant, 1, "@home", "-minus", "");
  for (uint64_t alive : {2u, 1000u}) {  // a key-ordered pass, then reads by ordinal
    ExportPlan plan = Plan({0, 1}, alive);
    plan.neutralize_formulas = false;
    Output out = Run(plan);
    ASSERT_TRUE(out.status.ok()) << out.status;
    EXPECT_EQ(out.csv, "id,note,amount\r\n+promo@example.com,=SUM(A1),-5\r\n@home,-minus,\r\n") << alive;
    plan.neutralize_formulas = true;
    EXPECT_EQ(Run(plan).csv, "id,note,amount\r\n'+promo@example.com,'=SUM(A1),-5\r\n'@home,'-minus,\r\n") << alive;
  }
}

TEST_P(WriteExportTest, FewMatchesAreReadByOrdinal) {
  for (uint32_t i = 0; i < 100; ++i) Put(kTenant, i, fmt::format("C{:03}", 99 - i), fmt::format("n{}", i), "");
  Output out = Run(Plan({5, 40, 41}, 100));
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.csv, "id,note,amount\r\nC094,n5,\r\nC059,n40,\r\nC058,n41,\r\n");  // ordinal order
  EXPECT_EQ(out.rows, 3u);
}

TEST_P(WriteExportTest, ChunksEndOnRowBoundariesAndCountTheirRows) {
  for (uint32_t i = 0; i < 1000; ++i) Put(kTenant, i, fmt::format("C{:04}", i), "note\nwith break", "");
  for (const bool scan : {true, false}) {
    std::vector<uint32_t> matches;
    for (uint32_t i = 0; i < 1000; i += scan ? 1 : 7) matches.push_back(i);
    ExportPlan plan = Plan(matches, scan ? 1000 : 100000);
    plan.chunk_bytes = 100;
    Output out = Run(plan);
    ASSERT_TRUE(out.status.ok()) << out.status;
    EXPECT_EQ(out.rows, matches.size());
    EXPECT_GT(out.chunks.size(), 10u);
    uint64_t rows = 0;
    for (size_t i = 0; i < out.chunks.size(); ++i) {
      const std::string& chunk = out.chunks[i];
      if (i + 1 < out.chunks.size()) {
        EXPECT_GE(chunk.size(), 100u);
      }
      EXPECT_EQ(chunk.substr(chunk.size() - 2), "\r\n");
      const auto row_ends = static_cast<uint64_t>(std::count(chunk.begin(), chunk.end(), '\r'));
      EXPECT_EQ(out.chunk_rows[i] + (i == 0 ? 1 : 0), row_ends) << "chunk " << i;  // + the header
      rows += row_ends;
    }
    EXPECT_EQ(rows, matches.size() + 1);  // + the header
    EXPECT_EQ(out.csv.find("stale"), std::string::npos);
  }
}

TEST_P(WriteExportTest, StopsWhenTheSinkOrTheStopCheckSaysSo) {
  for (uint32_t i = 0; i < 200; ++i) Put(kTenant, i, fmt::format("C{:04}", i), "x", "");
  ExportPlan plan = Plan({}, 200);
  for (uint32_t i = 0; i < 200; ++i) plan.matches.add(i);
  plan.chunk_bytes = 64;
  ExpectStopsEarly(plan, /*stop_after_checks=*/3);
}

TEST_P(WriteExportTest, CorruptRecordIsDataLossAndAMissingRecordIsNotFound) {
  Put(kTenant, 0, "C0", "ok", "");
  ASSERT_TRUE(db_->db()
                  ->Put(rocksdb::WriteOptions(), db_->contacts(), keys::ContactKey(kTenant, "C1"),
                        std::string("\x1a\x05\x08", 3))
                  .ok());
  EXPECT_EQ(Run(Plan({0}, 2)).status.code(), absl::StatusCode::kDataLoss);
  // Ordinal 5 has no ordinal entry; ordinal 6 points at a primary key without a record.
  ASSERT_TRUE(db_->db()->Put(rocksdb::WriteOptions(), db_->ordinals(), keys::OrdinalKey(kTenant, 6), "C6").ok());
  EXPECT_EQ(Run(Plan({5}, 100)).status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Run(Plan({6}, 100)).status.code(), absl::StatusCode::kNotFound);
}

TEST_P(WriteExportTest, NoMatchesGiveTheHeaderAlone) {
  Put(kTenant, 0, "C0", "x", "");
  for (uint64_t alive : {0u, 1u, 100u}) {
    Output out = Run(Plan({}, alive));
    ASSERT_TRUE(out.status.ok()) << out.status;
    EXPECT_EQ(out.csv, "id,note,amount\r\n");
    EXPECT_EQ(out.rows, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(OneAndThreeThreads, WriteExportTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "ParallelRanges" : "CallingThread"; });

TEST_P(WriteExportTest, LargeScanKeepsKeyOrderAcrossBatches) {
  // Enough bytes for many 64 KiB chunks and, on three threads, ~40 key ranges of ~100 matches
  // (more than the workers may run ahead), whose pieces straddle chunk boundaries.
  const std::string note(300, 'n');
  for (uint32_t i = 0; i < 6000; ++i) Put(kTenant, i, fmt::format("C{:05}", (i * 7919) % 6000), note, "");
  // Neighbouring tenants, with keys that sort before and after every key of the tenant: the first
  // range must start at the tenant's first key and the last one stop at its last.
  for (uint32_t i = 0; i < 50; ++i) {
    Put(kTenant - 1, i, fmt::format("Z{:05}", i), "before", "");
    Put(kTenant + 1, i, fmt::format("A{:05}", i), "after", "");
  }
  std::vector<uint32_t> matches;
  for (uint32_t i = 0; i < 6000; ++i) {
    if (i % 3 != 0) matches.push_back(i);
  }
  ExportPlan plan = Plan(matches, 6000);
  plan.chunk_bytes = 64 << 10;
  plan.scan_range_matches = 100;
  Output out = Run(plan);
  ASSERT_TRUE(out.status.ok()) << out.status;
  EXPECT_EQ(out.rows, matches.size());
  std::string want = "id,note,amount\r\n";
  for (uint32_t k = 0; k < 6000; ++k) {
    // Key k belongs to the ordinal i with i * 7919 % 6000 == k.
    uint32_t i = 0;
    while ((i * 7919) % 6000 != k) ++i;
    if (i % 3 != 0) want += fmt::format("C{:05},{},\r\n", k, note);
  }
  EXPECT_EQ(out.csv, want);
  for (size_t i = 0; i < out.chunks.size(); ++i) {
    const auto row_ends = static_cast<uint64_t>(std::count(out.chunks[i].begin(), out.chunks[i].end(), '\r'));
    EXPECT_EQ(out.chunk_rows[i] + (i == 0 ? 1 : 0), row_ends) << "chunk " << i;
  }
}

TEST_P(WriteExportTest, ManyRangesStopWhenTheSinkOrTheStopCheckSaysSo) {
  const std::string note(200, 'n');
  for (uint32_t i = 0; i < 4000; ++i) Put(kTenant, i, fmt::format("C{:05}", (i * 7919) % 4000), note, "");
  std::vector<uint32_t> matches(4000);
  for (uint32_t i = 0; i < 4000; ++i) matches[i] = i;
  ExportPlan plan = Plan(matches, 4000);
  plan.chunk_bytes = 16 << 10;
  plan.scan_range_matches = 100;  // ~40 ranges: workers wait on the window when the caller stops
  ExpectStopsEarly(plan, /*stop_after_checks=*/5);
  // And the same plan runs to the end afterwards.
  Output full = Run(plan);
  ASSERT_TRUE(full.status.ok()) << full.status;
  EXPECT_EQ(full.rows, 4000u);
}

TEST_P(WriteExportTest, CorruptRecordLateInTheScanIsDataLossAfterTheRowsBeforeIt) {
  for (uint32_t i = 0; i < 4000; ++i) Put(kTenant, i, fmt::format("C{:05}", i), "x", "");
  // Past the middle of the key order: with ~40 ranges, in about range 24.
  ASSERT_TRUE(db_->db()
                  ->Put(rocksdb::WriteOptions(), db_->contacts(), keys::ContactKey(kTenant, "C02400"),
                        std::string("\x1a\x05\x08", 3))
                  .ok());
  std::vector<uint32_t> matches(4000);
  for (uint32_t i = 0; i < 4000; ++i) matches[i] = i;
  ExportPlan plan = Plan(matches, 4000);
  plan.chunk_bytes = 4 << 10;
  plan.scan_range_matches = 100;
  Output out = Run(plan);
  EXPECT_EQ(out.status.code(), absl::StatusCode::kDataLoss) << out.status;
  // Whatever went out before the error is whole rows in key order, all before the bad record.
  EXPECT_LE(out.rows, 2400u);
  std::string want = "id,note,amount\r\n";
  for (uint32_t i = 0; i < out.rows; ++i) want += fmt::format("C{:05},x,\r\n", i);
  EXPECT_EQ(out.csv, want);
}

}  // namespace
}  // namespace contacts::store
