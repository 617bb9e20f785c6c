// The RocksDB writes of one batch, staged so that they can be sorted and written in one step
// (StoreDb::IngestSorted, or a WriteBatch in key order).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <rocksdb/db.h>

namespace contacts::store {

// One write of a sorted batch: a put of `value` or a delete at `key` in family `cf`.
struct WriteOp {
  rocksdb::ColumnFamilyHandle* cf;
  uint32_t cf_id;  // cf->GetID(), a virtual call, taken once rather than per comparison
  std::string key;
  std::string value;
  bool is_delete;
};

// Sorts `ops` by family id, then by key (bytewise, RocksDB's default comparator). Ops with equal
// family and key keep their order. A family whose ops are in key order already (a batch's new
// ordinals) is not sorted again.
void SortWriteOps(std::vector<WriteOp>* ops);

// Whether two ops of sorted `ops` have the same family and key.
bool HasRepeatedKey(const std::vector<WriteOp>& ops);

}  // namespace contacts::store
