// A 64-bit hash of bytes that never changes across processes, builds or releases (absl::Hash is
// seeded per process): for fingerprints kept outside the process, such as page tokens, and as a
// hash independent of absl::Hash (the import's dedup fingerprints pair the two).
#pragma once

#include <cstdint>
#include <string_view>

namespace contacts {

// FNV-1a 64 over the bytes and their length, with murmur3's 64-bit finaliser. Do not change:
// page tokens issued by a running store hold it.
inline uint64_t StableHash64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h ^= bytes.size();
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

}  // namespace contacts
