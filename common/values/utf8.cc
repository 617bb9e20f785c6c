#include "common/values/utf8.h"

#include <cstdint>
#include <cstring>

namespace contacts {

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const unsigned char* const end = p + text.size();
  while (p < end) {
    // Fast path: eight ASCII bytes at a time.
    if (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, sizeof(word));
      if ((word & 0x8080808080808080ULL) == 0) {
        p += 8;
        continue;
      }
    }
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    // Table 3-7: the first continuation byte's range depends on the lead byte.
    int continuation;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      continuation = 1;
    } else if (c == 0xE0) {
      continuation = 2;
      low = 0xA0;  // no overlong 3-byte forms
    } else if (c == 0xED) {
      continuation = 2;
      high = 0x9F;  // no surrogates
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      continuation = 2;
    } else if (c == 0xF0) {
      continuation = 3;
      low = 0x90;  // no overlong 4-byte forms
    } else if (c >= 0xF1 && c <= 0xF3) {
      continuation = 3;
    } else if (c == 0xF4) {
      continuation = 3;
      high = 0x8F;  // nothing above U+10FFFF
    } else {
      return false;  // 0x80..0xC1 (continuation or overlong lead) and 0xF5..0xFF
    }
    if (end - p <= continuation) return false;
    if (p[1] < low || p[1] > high) return false;
    for (int i = 2; i <= continuation; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
    }
    p += continuation + 1;
  }
  return true;
}

}  // namespace contacts
