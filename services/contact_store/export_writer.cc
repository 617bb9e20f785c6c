#include "services/contact_store/export_writer.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
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
constexpr uint64_t kValuesField = 3;
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
  ChunkWriter(const std::vector<ExportColumn>& columns, size_t chunk_bytes, const ExportSink& sink,
              const std::function<bool()>& stop)
      : csv_(Options(columns)), chunk_bytes_(std::max<size_t>(chunk_bytes, 1)), sink_(sink), stop_(stop) {
    std::vector<std::string_view> header;
    for (const auto& column : columns) header.push_back(column.name);
    WriteRow(header.data(), header.size());
    rows_ = 0;  // the header is not a data row
  }

  void WriteRow(const std::string_view* fields, size_t count) {
    const size_t room = CsvRowWriter::MaxRowBytes(fields, count);
    if (buffer_.size() - used_ < room) buffer_.resize(std::max(used_ + room, chunk_bytes_ + (chunk_bytes_ >> 4)));
    used_ = static_cast<size_t>(csv_.WriteRow(buffer_.data() + used_, fields, count) - buffer_.data());
    ++rows_;
  }

  // Hands the chunk to the sink when it is full, or when `force` and it holds anything.
  absl::Status Flush(bool force) {
    if (used_ < chunk_bytes_ && !(force && used_ > 0)) return absl::OkStatus();
    if (stop_ && stop_()) return absl::CancelledError("export cancelled or past its deadline");
    buffer_.resize(used_);
    if (!sink_(&buffer_, rows_)) return absl::CancelledError("export client went away");
    buffer_.clear();  // whatever string the sink left: its capacity is reused
    used_ = 0;
    rows_ = 0;
    return absl::OkStatus();
  }

 private:
  static CsvWriteOptions Options(const std::vector<ExportColumn>& columns) {
    CsvWriteOptions options;
    options.neutralize_formulas = true;
    for (const auto& column : columns) options.numeric_columns.push_back(column.numeric);
    return options;
  }

  const CsvRowWriter csv_;
  const size_t chunk_bytes_;
  const ExportSink& sink_;
  const std::function<bool()>& stop_;
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

// An iterator over the tenant's records in key order, from the snapshot, for one whole pass.
class TenantScan {
 public:
  TenantScan(StoreDb& db, const ExportPlan& plan)
      : prefix_(keys::ContactPrefix(plan.tenant_id)), upper_(keys::PrefixSuccessor(prefix_)), upper_slice_(upper_) {
    rocksdb::ReadOptions read;
    read.snapshot = plan.snapshot;
    read.fill_cache = false;        // a whole-tenant pass must not evict the working set
    read.readahead_size = 2 << 20;  // few large reads instead of one per block
    if (!upper_.empty()) read.iterate_upper_bound = &upper_slice_;
    it_.reset(db.db()->NewIterator(read, db.contacts()));
    it_->Seek(prefix_);
  }
  rocksdb::Iterator* operator->() { return it_.get(); }
  absl::Status status() const { return FromRocksStatus(it_->status(), "scan contacts"); }

 private:
  std::string prefix_;
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

// One sequential pass in key order on the calling thread.
absl::Status ScanInKeyOrder(StoreDb& db, const ExportPlan& plan, StoredContactFields& fields, ChunkWriter& out) {
  const OrdinalSet matches(plan.matches);
  PerfCountersOff perf_counters_off;
  TenantScan scan(db, plan);
  for (; scan->Valid(); scan->Next()) {
    const rocksdb::Slice value = scan->value();
    RETURN_IF_ERROR(RenderRecord(std::string_view(value.data(), value.size()), matches, fields, out));
  }
  return scan.status();
}

// Record values copied out of the iterator, back to back, for the rendering thread.
struct RecordBatch {
  std::string bytes;
  std::vector<size_t> ends;  // end offset of each record in `bytes`
};

// The bounded hand-off between the scanning thread and the rendering one: a fixed pool of
// batches circulates between them, so memory stays at kPipelineBatches batches.
class BatchPipe {
 public:
  explicit BatchPipe(size_t batches) {
    for (size_t i = 0; i < batches; ++i) empty_.push_back(std::make_unique<RecordBatch>());
  }

  // Scanner: an empty batch to fill, or nullptr once the renderer has stopped.
  std::unique_ptr<RecordBatch> TakeEmpty() {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return closed_ || !empty_.empty(); });
    if (closed_) return nullptr;
    auto batch = std::move(empty_.front());
    empty_.pop_front();
    batch->bytes.clear();
    batch->ends.clear();
    return batch;
  }
  // Scanner: hands over a filled batch.
  void Push(std::unique_ptr<RecordBatch> batch) {
    std::lock_guard lock(mu_);
    full_.push_back(std::move(batch));
    changed_.notify_all();
  }
  // Scanner: no more batches; `status` is the scan's.
  void Finish(absl::Status status) {
    std::lock_guard lock(mu_);
    finished_ = true;
    scan_status_ = std::move(status);
    changed_.notify_all();
  }

  // Renderer: the next filled batch, or nullptr when the scan has finished and all were taken.
  std::unique_ptr<RecordBatch> Pop() {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return finished_ || !full_.empty(); });
    if (full_.empty()) return nullptr;
    auto batch = std::move(full_.front());
    full_.pop_front();
    return batch;
  }
  // Renderer: gives a rendered batch back.
  void Recycle(std::unique_ptr<RecordBatch> batch) {
    std::lock_guard lock(mu_);
    empty_.push_back(std::move(batch));
    changed_.notify_all();
  }
  // Renderer: stops the scanner at its next batch (an error, or the client went away).
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    changed_.notify_all();
  }
  absl::Status scan_status() {
    std::lock_guard lock(mu_);
    return scan_status_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<std::unique_ptr<RecordBatch>> empty_;
  std::deque<std::unique_ptr<RecordBatch>> full_;
  bool finished_ = false;
  bool closed_ = false;
  absl::Status scan_status_;
};

// The same pass as ScanInKeyOrder on two threads: a scanning thread runs the iterator (block
// reads, decompression, checksums, merging: about half the CPU of an export) and copies the
// values into batches; the calling thread decodes, renders and hands chunks to the sink. Rows
// keep their key order and memory stays bounded.
absl::Status PipelinedScanInKeyOrder(StoreDb& db, const ExportPlan& plan, StoredContactFields& fields,
                                     ChunkWriter& out) {
  constexpr size_t kPipelineBatches = 3;
  constexpr size_t kBatchBytes = 512 << 10;
  BatchPipe pipe(kPipelineBatches);
  std::thread scanner([&db, &plan, &pipe] {
    PerfCountersOff perf_counters_off;
    TenantScan scan(db, plan);
    std::unique_ptr<RecordBatch> batch = pipe.TakeEmpty();
    for (; batch != nullptr && scan->Valid(); scan->Next()) {
      const rocksdb::Slice value = scan->value();
      batch->bytes.append(value.data(), value.size());
      batch->ends.push_back(batch->bytes.size());
      if (batch->bytes.size() >= kBatchBytes) {
        pipe.Push(std::move(batch));
        batch = pipe.TakeEmpty();
      }
    }
    if (batch != nullptr && !batch->ends.empty()) pipe.Push(std::move(batch));
    pipe.Finish(scan.status());
  });
  const OrdinalSet matches(plan.matches);
  absl::Status status;
  while (status.ok()) {
    std::unique_ptr<RecordBatch> batch = pipe.Pop();
    if (batch == nullptr) break;
    size_t begin = 0;
    for (const size_t end : batch->ends) {
      status = RenderRecord(std::string_view(batch->bytes).substr(begin, end - begin), matches, fields, out);
      if (!status.ok()) break;
      begin = end;
    }
    pipe.Recycle(std::move(batch));
  }
  pipe.Close();
  scanner.join();
  RETURN_IF_ERROR(status);
  return pipe.scan_status();
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
    } else if (!cursor.Skip(wire_type)) {
      return Corrupt();
    }
  }
  for (const auto& [column, source] : copies_) values_[column] = values_[source];
  return absl::OkStatus();
}

absl::Status WriteExport(StoreDb& db, const ExportPlan& plan, const ExportSink& sink,
                         const std::function<bool()>& stop) {
  StoredContactFields fields(AttributeIds(plan.columns));
  ChunkWriter out(plan.columns, plan.chunk_bytes, sink, stop);
  if (plan.matches.cardinality() * 4 >= plan.alive) {
    // Most contacts: one sequential pass in key order beats point reads.
    if (plan.alive >= plan.pipelined_scan_min_contacts) {
      RETURN_IF_ERROR(PipelinedScanInKeyOrder(db, plan, fields, out));
    } else {
      RETURN_IF_ERROR(ScanInKeyOrder(db, plan, fields, out));
    }
  } else {
    RETURN_IF_ERROR(ReadByOrdinal(db, plan, fields, out));
  }
  return out.Flush(/*force=*/true);
}

}  // namespace contacts::store
