// Streaming UTF-8 validation for uploads: bytes are checked as they arrive, chunk by chunk (a
// multi-byte sequence may be split across chunks), so a file in Latin-1 or Windows-1252 is refused
// before it is parsed, with the place of the first bad byte.
//
// Well-formed means Unicode's Table 3-7: no overlong forms (C0, C1, E0 80..9F, F0 80..8F), no
// surrogates (ED A0..BF), nothing above U+10FFFF (F4 90.., F5..FF), no stray continuation bytes,
// no sequence cut short by the next byte or by the end of input. A BOM is valid UTF-8 and is not
// special here.
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"

namespace contacts {

class Utf8StreamValidator {
 public:
  // Checks the next bytes of the input. Errors: INVALID_ARGUMENT "invalid UTF-8 at byte B (line
  // L): ..." where B is the 0-based input offset of the first byte of the ill-formed sequence (for
  // a lead byte followed by a bad byte, the lead byte) and L the 1-based line holding it (a line
  // ends with LF, CRLF or a lone CR, as CsvReader reads them). Once failed, every later call
  // returns the same error.
  absl::Status Feed(std::string_view chunk);

  // Ends the input. Errors: as Feed, or a sequence left incomplete by the end of input.
  absl::Status Finish();

  // Bytes accepted so far; when failed, the offset of the ill-formed sequence.
  uint64_t bytes_seen() const { return offset_; }
  // Line number of the next byte (1-based).
  uint64_t line_number() const { return line_; }
  bool failed() const { return !error_.ok(); }
  // Valid when failed(): where the error is.
  uint64_t error_offset() const { return error_offset_; }
  uint64_t error_line() const { return error_line_; }

 private:
  absl::Status Fail(uint64_t offset, std::string_view why);

  uint64_t offset_ = 0;  // input offset of the next byte
  uint64_t line_ = 1;
  bool after_cr_ = false;  // the last byte was a CR: an LF next ends no further line
  // A sequence in progress: bytes still expected, and the range allowed for the next one.
  int pending_ = 0;
  unsigned char next_lo_ = 0x80;
  unsigned char next_hi_ = 0xBF;
  uint64_t sequence_start_ = 0;
  unsigned char lead_ = 0;

  absl::Status error_;
  uint64_t error_offset_ = 0;
  uint64_t error_line_ = 0;
};

}  // namespace contacts
