// CSV export of contacts: the record walk and the CSV rendering behind ContactRepository::Export.
// The repository resolves the columns and the filter under the tenant's lock and takes a snapshot;
// everything after that (reading records from the snapshot, rendering rows, cutting chunks) is here
// and needs no lock.
//
// Speed: an export renders ~100 MB of CSV per million contacts, so records are not parsed into
// StoredContact messages (a map, a string per value, allocations per record). StoredContactFields
// reads only the ordinal and the chosen attribute values straight from the wire bytes, as views
// into the RocksDB value, and CsvRowWriter (common/csv/csv_writer.h) writes each row straight into
// the chunk. Most-contacts exports read the contacts column family in key order with a large
// readahead, split into key ranges read by several threads; small selections read their records
// by ordinal with MultiGet.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <roaring/roaring.hh>
#include <rocksdb/db.h>

#include "absl/status/status.h"
#include "services/contact_store/stop_check.h"
#include "services/contact_store/store_db.h"

namespace contacts::store {

// Receives each chunk of CSV (the first one starts with the header row) and the number of data
// rows in it. It may take the bytes (swap or move from *csv); the writer reuses whatever string is
// left there. Returns false to stop the export (the client went away).
using ExportSink = std::function<bool(std::string* csv, uint64_t rows)>;

// Chunks are cut at the first row boundary past this size (a parallel pass may overshoot by up to
// a quarter of it: it appends rows rendered in pieces). Default for ExportPlan::chunk_bytes.
inline constexpr size_t kExportChunkBytes = 1 << 20;

// Reads the ordinal and the values of chosen attributes from the wire bytes of a contacts CF
// record (contacts.internal.StoredContact), without building the message: field 2 (ordinal), the
// entries of field 3 (the old form's values) and those of field 9 (packed_values, read after every
// field 3 entry, as stored_values.h does); every other field is skipped. Follows protobuf's parsing
// rules for what it reads: fields in any order, the last occurrence of a field or map key wins, a
// map entry without key or value means 0 or "", a known field number with an unexpected wire type
// is an unknown field. Unlike ParseFromArray it does not re-check that values are UTF-8 (they were
// checked when written) and it rejects groups (never written by proto3).
class StoredContactFields {
 public:
  // `attribute_ids`: the attributes to pick, in output order; an id may repeat.
  explicit StoredContactFields(std::vector<uint32_t> attribute_ids);

  // Reads `record`. On success ordinal() is its ordinal (0 when absent) and values()[i] the value
  // of attribute_ids[i] ("" when the contact has none): views into `record`, valid while it is.
  // Errors: DATA_LOSS when `record` is not well-formed protobuf wire bytes (truncated varint or
  // length, a length past the end, field number 0, a group or an unknown wire type), or its packed
  // values are malformed (ParseStoredContact refuses those too).
  absl::Status Read(std::string_view record);

  uint32_t ordinal() const { return ordinal_; }
  const std::vector<std::string_view>& values() const { return values_; }

 private:
  // Index in values_ of the first column of `attribute_id`, or -1 when it is not picked.
  int ColumnOf(uint64_t attribute_id) const;

  std::vector<uint32_t> attribute_ids_;
  std::vector<int> column_of_id_;                  // by attribute id, for ids below kDenseIds
  bool has_sparse_ids_ = false;                    // some id >= kDenseIds: ColumnOf searches
  std::vector<std::pair<size_t, size_t>> copies_;  // (column, earlier column of the same id)
  uint32_t ordinal_ = 0;
  std::vector<std::string_view> values_;
};

struct ExportColumn {
  uint32_t attribute_id = 0;
  std::string name;  // header cell
  // INTEGER, DECIMAL or MOBILE: plain numbers are not neutralised as formulas. A mobile's canonical
  // form (E.164: '+' and digits) is such a number and never a formula; a quote before it would reach
  // every system that sends to the exported numbers.
  bool numeric = false;
  // Values never need CSV quotes (every type but TEXT: CsvWriteOptions::plain_columns).
  bool plain = false;
};

// What to export, as resolved under the tenant's lock.
struct ExportPlan {
  uint32_t tenant_id = 0;
  std::vector<ExportColumn> columns;  // the primary key first
  Roaring matches;                    // ordinals of the contacts to export
  uint64_t alive = 0;                 // live contacts of the tenant: decides scan or point reads
  // Records and columns agree in this snapshot (taken under the lock). Not owned.
  const rocksdb::Snapshot* snapshot = nullptr;
  // Default: kExportChunkBytes.
  size_t chunk_bytes = kExportChunkBytes;
  // A key-ordered pass over at least parallel_scan_min_matches matches is split into key ranges
  // read and rendered by this many threads at once (rows still come in key order); 1 keeps every
  // pass on the calling thread. Default: 2.
  int scan_threads = 2;
  // Default: 50000; smaller exports take a few milliseconds on one thread.
  uint64_t parallel_scan_min_matches = 50000;
  // Matches per key range of a parallel pass (about 1 MiB of CSV at ~100 bytes a row), fewer
  // when the records are wide; at most 1024 ranges. Default: 8192.
  uint64_t scan_range_matches = 8192;
  // A ' before cells that a spreadsheet would run as a formula (=, +, -, @ first; numbers in
  // numeric columns excepted). Off (StoreExportRequest.cells_as_stored): every cell as stored, for
  // a file that goes back into a system rather than into a spreadsheet. Default: true.
  bool neutralize_formulas = true;
};

// Writes the header row, then one row per contact in plan.matches (cells neutralised against
// spreadsheet formulas unless plan.neutralize_formulas is off, numbers in numeric columns left alone), in chunks of
// about plan.chunk_bytes, to `sink`. Rows come in key order when most contacts match (a pass over the contacts column
// family, split into key ranges read at once by plan.scan_threads threads), else in ordinal order. `stop` (may be
// empty) is checked before each chunk. Errors: CANCELLED when `stop` returns true or `sink` returns false; DATA_LOSS
// for a corrupt record; NOT_FOUND when a matched ordinal has no record; RocksDB errors as FromRocksStatus maps them.
absl::Status WriteExport(StoreDb& db, const ExportPlan& plan, const ExportSink& sink, const StopCheck& stop);

}  // namespace contacts::store
