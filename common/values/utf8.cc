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

namespace {

constexpr bool IsNonAsciiWhiteSpace(char32_t c) {
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200B) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x2060 || c == 0x3000 || c == 0xFEFF;
}

// Every such character is U+0085, U+00A0 (0xC2 and one byte) or three bytes led by 0xE1, 0xE2,
// 0xE3 or 0xEF, whose code points are neither overlong nor surrogates: checking that the bytes
// after the lead are continuation bytes is all the validation needed.
NonAsciiWhiteSpace DecodeWhiteSpace(const unsigned char* p, size_t available) {
  NonAsciiWhiteSpace none;
  if (p[0] == 0xC2) {
    if (available < 2 || (p[1] != 0x85 && p[1] != 0xA0)) return none;
    return {p[1], 2};
  }
  if (p[0] != 0xE1 && p[0] != 0xE2 && p[0] != 0xE3 && p[0] != 0xEF) return none;
  if (available < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return none;
  const auto c = static_cast<char32_t>(((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu));
  return IsNonAsciiWhiteSpace(c) ? NonAsciiWhiteSpace{c, 3} : none;
}

}  // namespace

NonAsciiWhiteSpace NonAsciiWhiteSpaceAt(std::string_view text, size_t pos) {
  return DecodeWhiteSpace(reinterpret_cast<const unsigned char*>(text.data()) + pos, text.size() - pos);
}

NonAsciiWhiteSpace NonAsciiWhiteSpaceBefore(std::string_view text, size_t end) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  // A lead byte never doubles as a continuation byte, so a whole character found here is one.
  if (end >= 2 && p[end - 2] == 0xC2) return DecodeWhiteSpace(p + end - 2, 2);
  if (end >= 3) {
    // Led by 0xC2, these three bytes would give a character that ends one byte short of `end`.
    if (const NonAsciiWhiteSpace space = DecodeWhiteSpace(p + end - 3, 3); space.size == 3) return space;
  }
  return {};
}

}  // namespace contacts
