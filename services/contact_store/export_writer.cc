#include "services/contact_store/export_writer.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <rocksdb/perf_level.h>

#include "common/csv/csv_writer.h"
#include "common/status/status_macros.h"
#include "common/storage/key_codec.h"

namespace contacts::store {
namespace {

// Attribute ids below this are looked up in a table; larger ones (never seen in practice: ids
// count up from 1 per tenant) by a search over the columns.
constexpr uint64_t kDenseIds = 1 << 16;

// Protobuf wire types.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kFixed64 = 1;
constexpr uint32_t kLengthDelimited = 2;
constexpr uint32_t kFixed32 = 5;

// StoredContact field numbers (proto/contacts/internal/storage.proto) and those of its map entries.
constexpr uint64_t kOrdinalField = 2;
constexpr uint64_t kValuesField = 3;        // records written before session 19
constexpr uint64_t kPackedValuesField = 9;  // entries of varint id, varint length, bytes
constexpr uint64_t kEntryKeyField = 1;
constexpr uint64_t kEntryValueField = 2;

// A cursor over wire bytes. Every read checks the end; false means malformed.
class WireCursor {
 public:
  explicit WireCursor(std::string_view bytes)
      : p_(reinterpret_cast<const uint8_t*>(bytes.data())), end_(p_ + bytes.size()) {}

  bool done() const { return p_ == end_; }

  bool Varint(uint64_t* out) {
    if (p_ != end_ && *p_ < 0x80) {
      *out = *p_++;
      return true;
    }
    uint64_t result = 0;
    for (int i = 0; i < 10; ++i) {
      if (p_ == end_) return false;
      const uint8_t byte = *p_++;
      result |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
      if (byte < 0x80) {
        *out = result;
        return true;
      }
    }
    return false;  // more than 10 bytes
  }

  bool LengthDelimited(std::string_view* out) {
    uint64_t size = 0;
    if (!Varint(&size) || size > static_cast<uint64_t>(end_ - p_)) return false;
    *out = std::string_view(reinterpret_cast<const char*>(p_), size);
    p_ += size;
    return true;
  }

  // Skips the value of a field of `wire_type`.
  bool Skip(uint32_t wire_type) {
    uint64_t ignored = 0;
    std::string_view ignored_bytes;
    switch (wire_type) {
      case kVarint:
        return Varint(&ignored);
      case kFixed64:
        return Advance(8);
      case kLengthDelimited:
        return LengthDelimited(&ignored_bytes);
      case kFixed32:
        return Advance(4);
      default:
        return false;  // groups (3, 4) and the unused 6, 7
    }
  }

  // Reads a tag; false also for field number 0, which protobuf rejects.
  bool Tag(uint64_t* field, uint32_t* wire_type) {
    uint64_t tag = 0;
    if (!Varint(&tag)) return false;
    *field = tag >> 3;
    *wire_type = static_cast<uint32_t>(tag & 7);
    return *field != 0;
  }

 private:
  bool Advance(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) return false;
    p_ += n;
    return true;
  }

  const uint8_t* p_;
  const uint8_t* end_;
};

absl::Status Corrupt() { return absl::DataLossError("contact record is corrupt"); }

// The CSV chunk being filled: rows are written straight into a string sized ahead, whose unused
// tail is cut off when the chunk goes to the sink.
class ChunkWriter {
 public:
  // `header`: whether the first row is the header row.
  ChunkWriter(const ExportPlan& plan, size_t chunk_bytes, const ExportSink& sink, const StopCheck& stop,
              bool header = true)
      : csv_(Options(plan)), chunk_bytes_(std::max<size_t>(chunk_bytes, 1)), sink_(sink), stop_(stop) {
    if (!header) return;
    std::vector<std::string_view> header_row;
    for (const auto& column : plan.columns) header_row.push_back(column.name);
    WriteRow(header_row.data(), header_row.size());
    rows_ = 0;  // the header is not a data row
  }

  void WriteRow(const std::string_view* fields, size_t count) {
    const size_t room = CsvRowWriter::MaxRowBytes(fields, count);
    if (buffer_.size() - used_ < room) buffer_.resize(std::max(used_ + room, chunk_bytes_ + (chunk_bytes_ >> 4)));
    used_ = static_cast<size_t>(csv_.WriteRow(buffer_.data() + used_, fields, count) - buffer_.data());
    ++rows_;
  }

  // Appends rows rendered elsewhere (whole rows, `rows` of them).
  void Append(std::string_view csv, uint64_t rows) {
    if (buffer_.size() - used_ < csv.size())
      buffer_.resize(std::max(used_ + csv.size(), chunk_bytes_ + (chunk_bytes_ >> 4)));
    std::memcpy(buffer_.data() + used_, csv.data(), csv.size());
    used_ += csv.size();
    rows_ += rows;
  }

  // Hands the chunk to the sink when it is full, or when `force` and it holds anything.
  absl::Status Flush(bool force) {
    if (used_ < chunk_bytes_ && !(force && used_ > 0)) return absl::OkStatus();
    if (stop_ && stop_()) return absl::CancelledError("export cancelled or past its deadline");
    buffer_.resize(used_);
    if (!sink_(&buffer_, rows_)) return absl::CancelledError("export client went away");
    // Whatever string the sink left is written over from the start: its size counts as room, so
    // the next rows need no resize (which would zero-fill a chunk's worth of bytes first).
    used_ = 0;
    rows_ = 0;
    return absl::OkStatus();
  }

 private:
  static CsvWriteOptions Options(const ExportPlan& plan) {
    CsvWriteOptions options;
    options.neutralize_formulas = plan.neutralize_formulas;
    for (const auto& column : plan.columns) {
      options.numeric_columns.push_back(column.numeric);
      options.plain_columns.push_back(column.plain);
    }
    return options;
  }

  const CsvRowWriter csv_;
  const size_t chunk_bytes_;
  const ExportSink& sink_;
  const StopCheck& stop_;
  std::string buffer_;
  size_t used_ = 0;
  uint64_t rows_ = 0;
};

// Membership test for the scan: a flat bitmap when the ordinals are dense enough (one load per
// record instead of a container search), else the Roaring bitmap itself.
class OrdinalSet {
 public:
  explicit OrdinalSet(const Roaring& matches) : matches_(matches) {
    // 64M ordinals -> 8 MiB at most; ordinals are dense per tenant, so this covers ~all tenants.
    constexpr uint64_t kMaxFlatBits = uint64_t{1} << 26;
    if (matches.isEmpty() || matches.maximum() >= kMaxFlatBits) return;
    bits_.assign(matches.maximum() / 64 + 1, 0);
    for (const uint32_t ordinal : matches) bits_[ordinal / 64] |= uint64_t{1} << (ordinal % 64);
  }

  bool Contains(uint32_t ordinal) const {
    if (bits_.empty()) return matches_.contains(ordinal);
    const size_t word = ordinal / 64;
    return word < bits_.size() && (bits_[word] >> (ordinal % 64) & 1) != 0;
  }

 private:
  const Roaring& matches_;
  std::vector<uint64_t> bits_;
};

std::vector<uint32_t> AttributeIds(const std::vector<ExportColumn>& columns) {
  std::vector<uint32_t> ids;
  ids.reserve(columns.size());
  for (const auto& column : columns) ids.push_back(column.attribute_id);
  return ids;
}

// Turns off RocksDB's per-thread perf counters for a scope: counting every Next costs a few
// percent of a scan, and nothing reads them.
class PerfCountersOff {
 public:
  PerfCountersOff() : saved_(rocksdb::GetPerfLevel()) { rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable); }
  ~PerfCountersOff() { rocksdb::SetPerfLevel(saved_); }
  PerfCountersOff(const PerfCountersOff&) = delete;
  PerfCountersOff& operator=(const PerfCountersOff&) = delete;

 private:
  rocksdb::PerfLevel saved_;
};

// An iterator over the tenant's records in [lower, upper) in key order, from the snapshot. An
// empty `upper` means the end of the tenant's keys.
class TenantScan {
 public:
  TenantScan(StoreDb& db, const ExportPlan& plan, std::string lower, std::string upper)
      : lower_(std::move(lower)), upper_(std::move(upper)) {
    if (upper_.empty()) upper_ = keys::PrefixSuccessor(keys::ContactPrefix(plan.tenant_id));
    upper_slice_ = upper_;
    rocksdb::ReadOptions read;
    read.snapshot = plan.snapshot;
    read.fill_cache = false;  // a whole-tenant pass must not evict the working set
    // Few large reads instead of one per block, but not much past a range: RocksDB 7.8 reads
    // ahead regardless of iterate_upper_bound, in every file the range touches, and a parallel
    // pass holds ranges of ~1 MiB. Measured with 16 KiB blocks: 512 KiB against 2 MiB, 0.48
    // against 0.60 CPU-s in contact-store per 1M-row export (blocks: store_db.cc).
    read.readahead_size = 512 << 10;
    if (!upper_.empty()) read.iterate_upper_bound = &upper_slice_;
    it_.reset(db.db()->NewIterator(read, db.contacts()));
    it_->Seek(lower_);
  }
  // Not copyable or movable: the read options point into upper_.
  TenantScan(const TenantScan&) = delete;
  TenantScan& operator=(const TenantScan&) = delete;

  rocksdb::Iterator* operator->() { return it_.get(); }
  absl::Status status() const { return FromRocksStatus(it_->status(), "scan contacts"); }

 private:
  std::string lower_;
  std::string upper_;
  rocksdb::Slice upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

// Renders `record` when its ordinal is in `matches`, and hands over the chunk once it is full.
absl::Status RenderRecord(std::string_view record, const OrdinalSet& matches, StoredContactFields& fields,
                          ChunkWriter& out) {
  RETURN_IF_ERROR(fields.Read(record));
  if (!matches.Contains(fields.ordinal())) return absl::OkStatus();
  out.WriteRow(fields.values().data(), fields.values().size());
  return out.Flush(false);
}

// Renders the matching records of the key range [lower, upper) into `out`.
absl::Status ScanRange(StoreDb& db, const ExportPlan& plan, const OrdinalSet& matches, std::string lower,
                       std::string upper, StoredContactFields& fields, ChunkWriter& out) {
  PerfCountersOff perf_counters_off;
  TenantScan scan(db, plan, std::move(lower), std::move(upper));
  for (; scan->Valid(); scan->Next()) {
    const rocksdb::Slice value = scan->value();
    RETURN_IF_ERROR(RenderRecord(std::string_view(value.data(), value.size()), matches, fields, out));
  }
  return scan.status();
}

// Keys that cut the tenant's records into about `ranges` key ranges holding similar numbers of
// matches, in ascending order: the contact keys of matches sampled evenly by rank (8 per range,
// so the ranges come out even), every 8th of them once sorted. Ordinals whose entry is missing
// are skipped: the cuts only balance the work, any set of them gives the same rows.
absl::StatusOr<std::vector<std::string>> RangeCuts(StoreDb& db, const ExportPlan& plan, size_t ranges) {
  constexpr size_t kSamplesPerRange = 8;
  const uint64_t matched = plan.matches.cardinality();
  const size_t samples = static_cast<size_t>(std::min<uint64_t>(matched, ranges * kSamplesPerRange));
  std::vector<std::string> ordinal_keys;
  for (size_t i = 0; i < samples; ++i) {
    uint32_t ordinal = 0;
    if (plan.matches.select(static_cast<uint32_t>(matched * i / samples), &ordinal)) {
      ordinal_keys.push_back(keys::OrdinalKey(plan.tenant_id, ordinal));
    }
  }
  // Ranks ascend, so do the ordinals and their keys.
  const StoreDb::MultiGetResult pks = db.MultiGet(db.ordinals(), ordinal_keys, plan.snapshot, /*sorted_input=*/true);
  std::vector<std::string> sampled;
  for (size_t i = 0; i < ordinal_keys.size(); ++i) {
    if (pks.statuses[i].IsNotFound()) continue;
    RETURN_IF_ERROR(FromRocksStatus(pks.statuses[i], "sample contacts for a parallel export"));
    sampled.push_back(keys::ContactKey(plan.tenant_id, std::string_view(pks.values[i].data(), pks.values[i].size())));
  }
  std::sort(sampled.begin(), sampled.end());
  sampled.erase(std::unique(sampled.begin(), sampled.end()), sampled.end());
  std::vector<std::string> cuts;
  for (size_t i = kSamplesPerRange; i < sampled.size(); i += kSamplesPerRange) cuts.push_back(std::move(sampled[i]));
  return cuts;
}

// Rendered CSV of one key range, in pieces that each end on a row boundary.
struct RenderedRange {
  bool done = false;
  absl::Status status;
  std::vector<std::pair<std::string, uint64_t>> pieces;  // (CSV, data rows)
};

// Matches per key range of a parallel pass: plan.scan_range_matches, fewer when the tenant's
// records are wide, so that a range holds about kRangeBytes of records (RocksDB's estimate of the
// tenant's bytes, compressed, over its live contacts) and memory stays bounded whatever the rows.
uint64_t RangeMatches(StoreDb& db, const ExportPlan& plan) {
  constexpr uint64_t kRangeBytes = 1 << 20;
  constexpr uint64_t kMinRangeMatches = 64;
  const uint64_t most = std::max<uint64_t>(plan.scan_range_matches, 1);
  const std::string lower = keys::ContactPrefix(plan.tenant_id);
  const std::string upper = keys::PrefixSuccessor(lower);
  const rocksdb::Range range(lower, upper);
  rocksdb::SizeApproximationOptions options;
  options.include_memtables = true;
  uint64_t bytes = 0;
  if (upper.empty() || !db.db()->GetApproximateSizes(options, db.contacts(), &range, 1, &bytes).ok() || bytes == 0) {
    return most;
  }
  const uint64_t bytes_per_contact = std::max<uint64_t>(bytes / std::max<uint64_t>(plan.alive, 1), 1);
  return std::clamp<uint64_t>(kRangeBytes / bytes_per_contact, std::min(kMinRangeMatches, most), most);
}

// The key-ordered pass split over threads: the tenant's key range is cut into ranges of similar
// numbers of matches (RangeCuts); `threads` workers each take the next range, read it with their
// own iterator from the snapshot and render its rows into pieces; the calling thread hands the
// ranges' pieces to `out` strictly in range order, so rows keep their key order. Workers stay at
// most threads + 1 ranges ahead of the calling thread, so memory stays near (threads + 2) ranges
// of about 1 MiB of records each (RangeMatches).
absl::Status ParallelScanInKeyOrder(StoreDb& db, const ExportPlan& plan, const OrdinalSet& matches, ChunkWriter& out) {
  constexpr uint64_t kMaxRanges = 1024;
  const size_t threads = static_cast<size_t>(std::max(plan.scan_threads, 1));
  const size_t wanted = static_cast<size_t>(
      std::max<uint64_t>(threads, std::min(plan.matches.cardinality() / RangeMatches(db, plan), kMaxRanges)));
  ASSIGN_OR_RETURN(std::vector<std::string> cuts, RangeCuts(db, plan, wanted));
  const size_t ranges = cuts.size() + 1;
  const size_t window = threads + 1;
  const std::vector<uint32_t> attribute_ids = AttributeIds(plan.columns);

  std::mutex mu;
  std::condition_variable changed;
  std::vector<RenderedRange> rendered(ranges);
  size_t next_range = 0;   // the next range a worker takes
  size_t handed_over = 0;  // ranges the calling thread has passed to `out`
  bool failed = false;     // a range failed: the ranges after it are not needed
  bool abandoned = false;  // the calling thread stopped: workers finish their range and quit
  // Pieces already handed on, for workers to render into again: reusing their memory saves a
  // page fault per 4 KiB of CSV (~0.1 s per million contacts).
  std::vector<std::string> spare_pieces;
  const StopCheck never_stop;

  auto work = [&] {
    StoredContactFields fields(attribute_ids);
    RenderedRange* current = nullptr;
    ExportSink keep_piece = [&](std::string* csv, uint64_t rows) {
      current->pieces.emplace_back(std::move(*csv), rows);
      std::lock_guard lock(mu);
      if (spare_pieces.empty()) {
        *csv = std::string();
      } else {
        csv->swap(spare_pieces.back());
        spare_pieces.pop_back();
      }
      return !abandoned;
    };
    // One writer for all of this worker's ranges: after the first piece it renders into spares.
    ChunkWriter pieces(plan, plan.chunk_bytes / 4, keep_piece, never_stop, /*header=*/false);
    while (true) {
      size_t range = 0;
      {
        std::unique_lock lock(mu);
        changed.wait(lock,
                     [&] { return abandoned || failed || next_range == ranges || next_range < handed_over + window; });
        if (abandoned || failed || next_range == ranges) return;
        range = next_range++;
      }
      RenderedRange result;
      current = &result;
      result.status = ScanRange(db, plan, matches, range == 0 ? keys::ContactPrefix(plan.tenant_id) : cuts[range - 1],
                                range + 1 == ranges ? std::string() : cuts[range], fields, pieces);
      if (result.status.ok()) result.status = pieces.Flush(/*force=*/true);
      std::lock_guard lock(mu);
      if (!result.status.ok()) failed = true;
      result.done = true;
      rendered[range] = std::move(result);
      changed.notify_all();
    }
  };

  // Stops and joins the workers however this function ends (an error, or an exception from
  // starting a thread or allocating), so no joinable thread is ever destroyed.
  std::vector<std::thread> workers;
  auto stop_workers = [&] {
    {
      std::lock_guard lock(mu);
      abandoned = true;
      changed.notify_all();
    }
    for (std::thread& worker : workers) worker.join();
    workers.clear();
  };
  struct JoinOnExit {
    std::function<void()> join;
    ~JoinOnExit() { join(); }
  } join_on_exit{stop_workers};
  for (size_t i = 0; i < std::min(threads, ranges); ++i) workers.emplace_back(work);

  absl::Status status;
  for (size_t range = 0; range < ranges && status.ok(); ++range) {
    RenderedRange result;
    {
      std::unique_lock lock(mu);
      changed.wait(lock, [&] { return rendered[range].done; });
      result = std::move(rendered[range]);
    }
    status = result.status;
    for (size_t i = 0; i < result.pieces.size() && status.ok(); ++i) {
      out.Append(result.pieces[i].first, result.pieces[i].second);
      status = out.Flush(false);
    }
    std::lock_guard lock(mu);
    for (auto& piece : result.pieces) spare_pieces.push_back(std::move(piece.first));
    handed_over = range + 1;
    changed.notify_all();
  }
  return status;
}

// Point reads by ordinal, in batches: ordinal -> primary key, then primary key -> record.
absl::Status ReadByOrdinal(StoreDb& db, const ExportPlan& plan, StoredContactFields& fields, ChunkWriter& out) {
  constexpr size_t kBatch = 512;
  rocksdb::ReadOptions read;
  read.snapshot = plan.snapshot;
  read.fill_cache = false;
  std::vector<uint32_t> ordinals;
  std::vector<std::string> ordinal_keys;
  std::vector<std::string> contact_keys;
  std::vector<rocksdb::Slice> slices;
  std::vector<rocksdb::PinnableSlice> values(kBatch);
  std::vector<rocksdb::Status> statuses(kBatch);
  PerfCountersOff perf_counters_off;
  auto drain = [&]() -> absl::Status {
    const size_t n = ordinals.size();
    ordinal_keys.clear();
    for (const uint32_t ordinal : ordinals) ordinal_keys.push_back(keys::OrdinalKey(plan.tenant_id, ordinal));
    slices.assign(ordinal_keys.begin(), ordinal_keys.end());
    db.db()->MultiGet(read, db.ordinals(), n, slices.data(), values.data(), statuses.data(), /*sorted_input=*/true);
    contact_keys.clear();
    for (size_t i = 0; i < n; ++i) {
      if (!statuses[i].ok()) {
        return FromRocksStatus(statuses[i], fmt::format("ordinal {} of a live contact", ordinals[i]));
      }
      contact_keys.push_back(keys::ContactKey(plan.tenant_id, std::string_view(values[i].data(), values[i].size())));
      values[i].Reset();
    }
    slices.assign(contact_keys.begin(), contact_keys.end());
    db.db()->MultiGet(read, db.contacts(), n, slices.data(), values.data(), statuses.data());
    for (size_t i = 0; i < n; ++i) {
      RETURN_IF_ERROR(FromRocksStatus(statuses[i], "read contact for export"));
      RETURN_IF_ERROR(fields.Read(std::string_view(values[i].data(), values[i].size())));
      out.WriteRow(fields.values().data(), fields.values().size());
      RETURN_IF_ERROR(out.Flush(false));
    }
    for (size_t i = 0; i < n; ++i) values[i].Reset();
    ordinals.clear();
    return absl::OkStatus();
  };
  for (const uint32_t ordinal : plan.matches) {
    ordinals.push_back(ordinal);
    if (ordinals.size() == kBatch) RETURN_IF_ERROR(drain());
  }
  if (!ordinals.empty()) RETURN_IF_ERROR(drain());
  return absl::OkStatus();
}

}  // namespace

StoredContactFields::StoredContactFields(std::vector<uint32_t> attribute_ids)
    : attribute_ids_(std::move(attribute_ids)), values_(attribute_ids_.size()) {
  for (size_t i = 0; i < attribute_ids_.size(); ++i) {
    const uint32_t id = attribute_ids_[i];
    const auto first = std::find(attribute_ids_.begin(), attribute_ids_.begin() + i, id);
    if (first != attribute_ids_.begin() + i) {
      copies_.emplace_back(i, static_cast<size_t>(first - attribute_ids_.begin()));
      continue;
    }
    if (id >= kDenseIds) {
      has_sparse_ids_ = true;
      continue;
    }
    if (column_of_id_.size() <= id) column_of_id_.resize(id + 1, -1);
    column_of_id_[id] = static_cast<int>(i);
  }
}

int StoredContactFields::ColumnOf(uint64_t attribute_id) const {
  if (attribute_id < column_of_id_.size()) return column_of_id_[attribute_id];
  if (!has_sparse_ids_ || attribute_id < kDenseIds) return -1;
  for (size_t i = 0; i < attribute_ids_.size(); ++i) {
    if (attribute_ids_[i] == attribute_id) return static_cast<int>(i);
  }
  return -1;
}

absl::Status StoredContactFields::Read(std::string_view record) {
  ordinal_ = 0;
  std::fill(values_.begin(), values_.end(), std::string_view());
  WireCursor cursor(record);
  std::string_view packed;  // the last packed_values field
  while (!cursor.done()) {
    uint64_t field = 0;
    uint32_t wire_type = 0;
    if (!cursor.Tag(&field, &wire_type)) return Corrupt();
    if (field == kOrdinalField && wire_type == kVarint) {
      uint64_t ordinal = 0;
      if (!cursor.Varint(&ordinal)) return Corrupt();
      ordinal_ = static_cast<uint32_t>(ordinal);  // protobuf truncates a uint32 the same way
    } else if (field == kValuesField && wire_type == kLengthDelimited) {
      std::string_view entry_bytes;
      if (!cursor.LengthDelimited(&entry_bytes)) return Corrupt();
      uint64_t key = 0;
      std::string_view value;
      const auto* e = reinterpret_cast<const uint8_t*>(entry_bytes.data());
      if (entry_bytes.size() >= 4 && e[0] == 0x08 && e[1] < 0x80 && e[2] == 0x12 && e[3] < 0x80 &&
          entry_bytes.size() == 4u + e[3]) {
        // What protobuf writes for an id below 128 and a value below 128 bytes: key tag, key,
        // value tag, length, value.
        const int column = ColumnOf(e[1]);
        if (column >= 0) values_[static_cast<size_t>(column)] = entry_bytes.substr(4);
        continue;
      }
      WireCursor entry(entry_bytes);
      while (!entry.done()) {
        uint64_t entry_field = 0;
        uint32_t entry_wire_type = 0;
        if (!entry.Tag(&entry_field, &entry_wire_type)) return Corrupt();
        if (entry_field == kEntryKeyField && entry_wire_type == kVarint) {
          if (!entry.Varint(&key)) return Corrupt();
        } else if (entry_field == kEntryValueField && entry_wire_type == kLengthDelimited) {
          if (!entry.LengthDelimited(&value)) return Corrupt();
        } else if (!entry.Skip(entry_wire_type)) {
          return Corrupt();
        }
      }
      const int column = ColumnOf(static_cast<uint32_t>(key));
      if (column >= 0) values_[static_cast<size_t>(column)] = value;
    } else if (field == kPackedValuesField && wire_type == kLengthDelimited) {
      // Read after the loop: like protobuf, the last occurrence is the field's value, and its
      // entries come after every old-form entry (stored_values.h, ForEachStoredValue).
      if (!cursor.LengthDelimited(&packed)) return Corrupt();
    } else if (!cursor.Skip(wire_type)) {
      return Corrupt();
    }
  }
  WireCursor entries(packed);
  while (!entries.done()) {
    uint64_t id = 0;
    std::string_view value;
    if (!entries.Varint(&id) || id > UINT32_MAX || !entries.LengthDelimited(&value)) return Corrupt();
    const int column = ColumnOf(id);
    if (column >= 0) values_[static_cast<size_t>(column)] = value;
  }
  for (const auto& [column, source] : copies_) values_[column] = values_[source];
  return absl::OkStatus();
}

absl::Status WriteExport(StoreDb& db, const ExportPlan& plan, const ExportSink& sink, const StopCheck& stop) {
  StoredContactFields fields(AttributeIds(plan.columns));
  ChunkWriter out(plan, plan.chunk_bytes, sink, stop);
  if (plan.matches.cardinality() * 4 >= plan.alive) {
    // Most contacts: sequential passes in key order beat point reads.
    const OrdinalSet matches(plan.matches);
    if (plan.scan_threads > 1 && plan.matches.cardinality() >= plan.parallel_scan_min_matches) {
      RETURN_IF_ERROR(ParallelScanInKeyOrder(db, plan, matches, out));
    } else {
      RETURN_IF_ERROR(ScanRange(db, plan, matches, keys::ContactPrefix(plan.tenant_id), std::string(), fields, out));
    }
  } else {
    RETURN_IF_ERROR(ReadByOrdinal(db, plan, fields, out));
  }
  return out.Flush(/*force=*/true);
}

}  // namespace contacts::store
