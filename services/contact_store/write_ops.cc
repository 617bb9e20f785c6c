#include "services/contact_store/write_ops.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <string_view>
#include <utility>

namespace contacts::store {
namespace {

// Where the keys of one family in a batch start to differ: they share the tenant's prefix, so
// the 8 bytes compared first are taken after it.
size_t CommonPrefixLength(const std::vector<WriteOp>& ops, const std::vector<uint32_t>& indexes) {
  const std::string_view first = ops[indexes.front()].key;
  size_t length = first.size();
  for (uint32_t index : indexes) {
    const std::string_view key = ops[index].key;
    length = std::min(length, key.size());
    length = std::mismatch(first.begin(), first.begin() + length, key.begin()).first - first.begin();
    if (length == 0) break;
  }
  return length;
}

// Bytes [offset, offset + 8) of `key` as a big-endian number, zero-padded: when two keys' numbers
// differ, the keys compare the same way (keys sharing their first `offset` bytes).
uint64_t KeyPrefixAt(std::string_view key, size_t offset) {
  uint64_t prefix = 0;
  for (size_t i = 0; i < 8; ++i) {
    prefix <<= 8;
    if (offset + i < key.size()) prefix |= static_cast<unsigned char>(key[offset + i]);
  }
  return prefix;
}

// Sorts the ops at `indexes` (one family, in staging order) by key, stably. Returns whether two of
// them have the same key.
bool SortFamily(const std::vector<WriteOp>& ops, std::vector<uint32_t>* indexes) {
  auto not_less = [&ops](uint32_t a, uint32_t b) { return !(ops[a].key < ops[b].key); };
  if (std::adjacent_find(indexes->begin(), indexes->end(), not_less) == indexes->end()) return false;
  // Comparing cached 8-byte prefixes first spares most comparisons a string compare, and most
  // element moves are 16 bytes instead of a WriteOp's 56.
  const size_t offset = CommonPrefixLength(ops, *indexes);
  struct Entry {
    uint64_t prefix;
    uint32_t index;
  };
  std::vector<Entry> entries;
  entries.reserve(indexes->size());
  for (uint32_t index : *indexes) entries.push_back({KeyPrefixAt(ops[index].key, offset), index});
  std::stable_sort(entries.begin(), entries.end(), [&ops](const Entry& a, const Entry& b) {
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    return ops[a.index].key < ops[b.index].key;
  });
  bool repeated = false;
  for (size_t i = 0; i < entries.size(); ++i) {
    (*indexes)[i] = entries[i].index;
    // Only keys with equal prefixes are read again: the keys lie in staging order, so reading
    // each in sorted order (a separate walk, as before) missed the cache on every one.
    repeated = repeated || (i > 0 && entries[i].prefix == entries[i - 1].prefix &&
                            ops[entries[i].index].key == ops[entries[i - 1].index].key);
  }
  return repeated;
}

}  // namespace

WriteOpBytes::WriteOpBytes(WriteOpBytes&& other) noexcept { *this = std::move(other); }

WriteOpBytes& WriteOpBytes::operator=(WriteOpBytes&& other) noexcept {
  blocks_ = std::move(other.blocks_);
  other.blocks_.clear();
  next_ = std::exchange(other.next_, nullptr);
  left_ = std::exchange(other.left_, 0);
  next_block_bytes_ = std::exchange(other.next_block_bytes_, kFirstBlockBytes);
  scratch_ = std::move(other.scratch_);
  return *this;
}

char* WriteOpBytes::Allocate(size_t size) {
  if (size > left_) {
    // A value larger than a quarter block gets a block of its own, so the room left stays usable.
    if (size > next_block_bytes_ / 4) return blocks_.emplace_back(new char[size]).get();
    blocks_.emplace_back(new char[next_block_bytes_]);
    next_ = blocks_.back().get();
    left_ = next_block_bytes_;
    next_block_bytes_ = std::min(2 * next_block_bytes_, kMaxBlockBytes);
  }
  char* out = next_;
  next_ += size;
  left_ -= size;
  return out;
}

std::string_view WriteOpBytes::Copy(std::string_view bytes) {
  if (bytes.empty()) return std::string_view("", 0);  // not a null pointer, which RocksDB would memcpy from
  char* out = Allocate(bytes.size());
  std::memcpy(out, bytes.data(), bytes.size());
  return {out, bytes.size()};
}

std::string_view WriteOpBytes::Build(absl::FunctionRef<void(std::string*)> write) {
  scratch_.clear();
  write(&scratch_);
  return Copy(scratch_);
}

void WriteOpBytes::Adopt(WriteOpBytes&& other) {
  // Where the blocks sit does not matter: this one's free room stays where it was.
  blocks_.insert(blocks_.end(), std::make_move_iterator(other.blocks_.begin()),
                 std::make_move_iterator(other.blocks_.end()));
  other.blocks_.clear();
  other.next_ = nullptr;
  other.left_ = 0;
}

bool SortWriteOps(std::vector<WriteOp>* ops) {
  std::map<uint32_t, std::vector<uint32_t>> by_family;  // a handful of families
  for (uint32_t i = 0; i < ops->size(); ++i) by_family[(*ops)[i].cf_id].push_back(i);
  std::vector<WriteOp> sorted;
  sorted.reserve(ops->size());
  bool repeated = false;
  for (auto& [family, indexes] : by_family) {
    repeated = SortFamily(*ops, &indexes) || repeated;
    for (uint32_t index : indexes) sorted.push_back(std::move((*ops)[index]));
  }
  ops->swap(sorted);
  return repeated;
}

}  // namespace contacts::store
