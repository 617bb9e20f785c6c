// Whole-string UTF-8 validation for TEXT values and anything else that must be valid UTF-8 before
// it goes into a protobuf string field. (Uploads are checked as they stream by a separate,
// incremental validator; this one needs the whole string.)
#pragma once

#include <string_view>

namespace contacts {

// True when `text` is well-formed UTF-8 per RFC 3629 / Unicode 3.9 table 3-7: no overlong forms,
// no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence. NUL bytes are
// valid UTF-8 and accepted here; callers that forbid them check separately. Empty is valid.
bool IsValidUtf8(std::string_view text);

}  // namespace contacts
