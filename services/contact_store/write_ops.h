// The RocksDB writes of one batch, staged so that they can be sorted and written in one step
// (StoreDb::IngestSorted, or a WriteBatch in key order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <absl/functional/function_ref.h>
#include <rocksdb/db.h>

namespace contacts::store {

// The bytes of staged ops' keys and values, in blocks that never move. A large batch stages a
// record and a key for each contact: held as strings they were two heap allocations per contact,
// freed one by one after the write (with the page faults of memory handed back and taken again).
// Not thread-safe: each thread that stages ops keeps its own.
class WriteOpBytes {
 public:
  // Blocks double from the first size up to the last, as a single contact's write needs little: a
  // full block holds ~3,500 contacts' records and keys; a 25,000-row batch, whose parts are staged
  // into stores of their own, takes a few dozen.
  static constexpr size_t kFirstBlockBytes = 16 << 10;
  static constexpr size_t kMaxBlockBytes = 1 << 20;

  WriteOpBytes() = default;
  // The moved-from object is left empty (not handing out room in blocks it no longer owns).
  WriteOpBytes(WriteOpBytes&& other) noexcept;
  WriteOpBytes& operator=(WriteOpBytes&& other) noexcept;

  // Room for `size` bytes, valid while this (or what adopts its blocks) lives.
  char* Allocate(size_t size);
  // A copy of `bytes`.
  std::string_view Copy(std::string_view bytes);
  // A copy of what `write` appends to an empty scratch string (reused, so no allocation each).
  std::string_view Build(absl::FunctionRef<void(std::string*)> write);
  // Takes over `other`'s blocks, so that views into them live as long as this.
  void Adopt(WriteOpBytes&& other);

 private:
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* next_ = nullptr;  // free room in the last block
  size_t left_ = 0;
  size_t next_block_bytes_ = kFirstBlockBytes;
  std::string scratch_;
};

// One write of a sorted batch: a put of `value` or a delete at `key` in family `cf`. The bytes
// belong to whoever staged the op (a WriteOpBytes, or strings that outlive the write).
struct WriteOp {
  rocksdb::ColumnFamilyHandle* cf;
  uint32_t cf_id;  // cf->GetID(), a virtual call, taken once rather than per comparison
  std::string_view key;
  std::string_view value;
  bool is_delete;
};

// Sorts `ops` by family id, then by key (bytewise, RocksDB's default comparator). Ops with equal
// family and key keep their order. A family whose ops are in key order already (a batch's new
// ordinals) is not sorted again. Returns whether two ops have the same family and key.
[[nodiscard]] bool SortWriteOps(std::vector<WriteOp>* ops);

}  // namespace contacts::store
