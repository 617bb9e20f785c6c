// ChunkedColumn: fixed-size values by ordinal (a query column's integers, times or codes), held in
// chunks of kChunkSize values instead of one array.
//
// A std::vector grown to a new ordinal copies all it holds into an array twice the size
// (libstdc++'s resize doubles), so a column reaching N values has touched 2-4N of fresh memory and
// holds up to 2N; during a 1M-row import that growth was 5-8% of contact-store's CPU, two thirds of
// it the kernel zeroing fresh pages (tests/bench/RESULTS.md, session 24). Here the first chunk
// grows by doubling (a small tenant keeps a small column) and every further chunk is allocated once
// and never copied: a column touches about what it holds.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace contacts::store {

template <typename T>
class ChunkedColumn {
 public:
  static constexpr int kChunkBits = 16;
  static constexpr size_t kChunkSize = size_t{1} << kChunkBits;
  static constexpr size_t kFirstSize = 64;  // values of a column's first allocation

  // Ordinals [0, size()) are addressable.
  size_t size() const { return chunks_.size() <= 1 ? first_size_ : chunks_.size() << kChunkBits; }

  // Makes ordinals [0, n) addressable; values not set read as T{}. Invalidates references.
  void EnsureSize(size_t n) {
    if (n <= size()) return;
    if (chunks_.size() <= 1 && first_size_ < kChunkSize) {
      size_t grown = std::max(first_size_ * 2, kFirstSize);
      while (grown < n && grown < kChunkSize) grown *= 2;
      grown = std::min(grown, kChunkSize);
      auto first = std::make_unique<T[]>(grown);
      if (!chunks_.empty()) std::copy_n(chunks_[0].get(), first_size_, first.get());
      chunks_.resize(1);
      chunks_[0] = std::move(first);
      first_size_ = grown;
    }
    while (size() < n) chunks_.push_back(std::make_unique<T[]>(kChunkSize));
  }

  // REQUIRES: ordinal < size().
  T& operator[](size_t ordinal) { return chunks_[ordinal >> kChunkBits][ordinal & (kChunkSize - 1)]; }
  const T& operator[](size_t ordinal) const { return chunks_[ordinal >> kChunkBits][ordinal & (kChunkSize - 1)]; }

  // Heap bytes held.
  size_t MemoryBytes() const { return size() * sizeof(T) + chunks_.capacity() * sizeof(chunks_[0]); }

 private:
  std::vector<std::unique_ptr<T[]>> chunks_;
  size_t first_size_ = 0;  // values in chunks_[0]; kChunkSize once a second chunk exists
};

}  // namespace contacts::store
