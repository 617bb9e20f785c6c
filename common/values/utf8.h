// Whole-string UTF-8 validation for TEXT values and anything else that must be valid UTF-8 before
// it goes into a protobuf string field. (Uploads are checked as they stream by a separate,
// incremental validator; this one needs the whole string.) Also finds the white space beyond ASCII
// that values are trimmed of (typed_value.h).
#pragma once

#include <cstddef>
#include <string_view>

namespace contacts {

// True when `text` is well-formed UTF-8 per RFC 3629 / Unicode 3.9 table 3-7: no overlong forms,
// no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence. NUL bytes are
// valid UTF-8 and accepted here; callers that forbid them check separately. Empty is valid.
bool IsValidUtf8(std::string_view text);

// One character of UTF-8 text: its code point and size in bytes. A byte that does not start a
// well-formed sequence (RFC 3629, as IsValidUtf8) comes alone, as code point kNotUtf8.
inline constexpr char32_t kNotUtf8 = 0xFFFFFFFF;
struct Utf8Char {
  char32_t code_point;
  size_t size;
};
// REQUIRES: pos < text.size().
Utf8Char DecodeUtf8At(std::string_view text, size_t pos);

// A white-space character beyond ASCII, found in UTF-8 text: Unicode's White_Space characters above
// U+007F (U+0085 next line, U+00A0 no-break space, U+1680, U+2000..U+200A, U+2028 and U+2029 line
// and paragraph separators, U+202F narrow no-break space, U+205F, U+3000 ideographic space) and the
// zero-width U+200B, U+2060 and U+FEFF (BOM), which spreadsheets leave around values too. Not the
// joiners U+200C/U+200D, direction marks or variation selectors: they belong to the text beside them.
struct NonAsciiWhiteSpace {
  char32_t code_point = 0;
  size_t size = 0;  // bytes; 0 when there is none

  // U+0085, U+2028, U+2029: white space at an end, but no space between words.
  bool BreaksLine() const { return code_point == 0x85 || code_point == 0x2028 || code_point == 0x2029; }
};

// The white-space character that starts at text[pos] / ends just before text[end], or size 0. Only
// a whole, well-formed sequence counts: a lone 0xC2 or 0xA0 is not part of a U+00A0.
// REQUIRES: pos < text.size(); end <= text.size().
NonAsciiWhiteSpace NonAsciiWhiteSpaceAt(std::string_view text, size_t pos);
NonAsciiWhiteSpace NonAsciiWhiteSpaceBefore(std::string_view text, size_t end);

}  // namespace contacts
