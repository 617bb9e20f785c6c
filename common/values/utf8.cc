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

}  // namespace

Utf8Char DecodeUtf8At(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return {lead, 1};
  size_t size = 0;
  char32_t min = 0;  // below it, the sequence is an overlong form
  if (lead >= 0xC2 && lead <= 0xDF) {
    size = 2;
    min = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    size = 3;
    min = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    size = 4;
    min = 0x10000;
  } else {
    return {kNotUtf8, 1};
  }
  if (i + size > text.size()) return {kNotUtf8, 1};
  char32_t code_point = lead & (0x7F >> size);
  for (size_t k = 1; k < size; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return {kNotUtf8, 1};
    code_point = (code_point << 6) | (byte(i + k) & 0x3F);
  }
  if (code_point < min || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    return {kNotUtf8, 1};
  }
  return {code_point, size};
}

NonAsciiWhiteSpace NonAsciiWhiteSpaceAt(std::string_view text, size_t pos) {
  const Utf8Char c = DecodeUtf8At(text, pos);
  if (c.code_point == kNotUtf8 || !IsNonAsciiWhiteSpace(c.code_point)) return {};
  return {c.code_point, c.size};
}

NonAsciiWhiteSpace NonAsciiWhiteSpaceBefore(std::string_view text, size_t end) {
  // Every such character takes 2 or 3 bytes; cut at `end`, so that one must end exactly there. A
  // lead byte never doubles as a continuation byte, so a whole character found here is one.
  const std::string_view before = text.substr(0, end);
  for (const size_t size : {size_t{2}, size_t{3}}) {
    if (end < size) break;
    if (const NonAsciiWhiteSpace space = NonAsciiWhiteSpaceAt(before, end - size); space.size == size) return space;
  }
  return {};
}

}  // namespace contacts
