#include "common/csv/utf8_stream.h"

#include <bit>
#include <cstring>

#include <fmt/format.h>

namespace contacts {
namespace {

constexpr uint64_t kHighBits = 0x8080808080808080ULL;
constexpr uint64_t kLowSeven = 0x7F7F7F7F7F7F7F7FULL;
constexpr uint64_t kNewlines = 0x0A0A0A0A0A0A0A0AULL;
constexpr uint64_t kReturns = 0x0D0D0D0D0D0D0D0DULL;
constexpr uint64_t kLowBits = 0x0101010101010101ULL;

// 1 in the low bit of each byte of an all-ASCII word that equals the byte of `pattern` (exact: no
// carries cross bytes because every byte < 0x80).
inline uint64_t MarkBytes(uint64_t word, uint64_t pattern) {
  const uint64_t x = word ^ pattern;  // zero bytes where equal
  const uint64_t nonzero = ((x & kLowSeven) + kLowSeven) | x;
  return (~nonzero & kHighBits) >> 7;
}

// Sum of marks. By a multiply rather than __builtin_popcountll: built for plain x86-64 (no
// POPCNT), that is a call into libgcc per word, ~2% of an upload's CPU.
inline int SumMarks(uint64_t marks) { return static_cast<int>((marks * kLowBits) >> 56); }

// Line ends in an all-ASCII word as the CSV reader reads them: LF, CRLF and a lone CR each end a
// line. Counts every CR and every LF not right after a CR; `*after_cr` says whether the byte
// before the word was a CR and is set to whether the word's last byte is one.
inline int CountLineEnds(uint64_t word, bool* after_cr) {
  const uint64_t lf = MarkBytes(word, kNewlines);
  const uint64_t cr = MarkBytes(word, kReturns);
  constexpr bool kLittle = std::endian::native == std::endian::little;  // memory order of the bytes
  const uint64_t carry = *after_cr ? 1 : 0;
  const uint64_t cr_before = kLittle ? (cr << 8) | carry : (cr >> 8) | (carry << 56);
  *after_cr = ((kLittle ? cr >> 56 : cr) & 1) != 0;
  return SumMarks(cr) + SumMarks(lf & ~cr_before);
}

}  // namespace

absl::Status Utf8StreamValidator::Fail(uint64_t offset, std::string_view why) {
  error_offset_ = offset;
  error_line_ = line_;
  offset_ = offset;  // bytes_seen(): the bytes before the ill-formed sequence
  error_ = absl::InvalidArgumentError(fmt::format("invalid UTF-8 at byte {} (line {}): {}", offset, line_, why));
  return error_;
}

absl::Status Utf8StreamValidator::Feed(std::string_view chunk) {
  if (!error_.ok()) return error_;
  const unsigned char* const begin = reinterpret_cast<const unsigned char*>(chunk.data());
  const unsigned char* const end = begin + chunk.size();
  const unsigned char* p = begin;
  auto offset_of = [&](const unsigned char* q) { return offset_ + static_cast<uint64_t>(q - begin); };

  for (;;) {
    // Continue a sequence (possibly begun in an earlier chunk).
    while (pending_ > 0) {
      if (p == end) {
        offset_ += chunk.size();
        return absl::OkStatus();
      }
      const unsigned char b = *p;
      if (b < next_lo_ || b > next_hi_) {
        return Fail(sequence_start_,
                    fmt::format("byte 0x{:02X} cannot follow lead byte 0x{:02X} (at byte {})", b, lead_, offset_of(p)));
      }
      next_lo_ = 0x80;
      next_hi_ = 0xBF;
      --pending_;
      ++p;
    }
    // ASCII fast path, 8 bytes at a time.
    while (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      if (word & kHighBits) break;
      line_ += static_cast<uint64_t>(CountLineEnds(word, &after_cr_));
      p += 8;
    }
    if (p == end) break;
    const unsigned char b = *p;
    if (b < 0x80) {
      // A CR ends a line (alone or before LF); so does an LF not right after a CR.
      if (b == '\r' || (b == '\n' && !after_cr_)) ++line_;
      after_cr_ = b == '\r';
      ++p;
      continue;
    }
    after_cr_ = false;
    lead_ = b;
    sequence_start_ = offset_of(p);
    if (b >= 0xC2 && b <= 0xDF) {
      pending_ = 1;
    } else if (b == 0xE0) {
      pending_ = 2;
      next_lo_ = 0xA0;  // below is overlong
    } else if (b == 0xED) {
      pending_ = 2;
      next_hi_ = 0x9F;  // above is a surrogate
    } else if (b >= 0xE1 && b <= 0xEF) {
      pending_ = 2;
    } else if (b == 0xF0) {
      pending_ = 3;
      next_lo_ = 0x90;  // below is overlong
    } else if (b >= 0xF1 && b <= 0xF3) {
      pending_ = 3;
    } else if (b == 0xF4) {
      pending_ = 3;
      next_hi_ = 0x8F;  // above is beyond U+10FFFF
    } else if (b >= 0x80 && b <= 0xBF) {
      return Fail(sequence_start_, fmt::format("unexpected continuation byte 0x{:02X}", b));
    } else {
      return Fail(sequence_start_, fmt::format("byte 0x{:02X} never appears in UTF-8", b));
    }
    ++p;
  }
  offset_ += chunk.size();
  return absl::OkStatus();
}

absl::Status Utf8StreamValidator::Finish() {
  if (!error_.ok()) return error_;
  if (pending_ > 0) {
    return Fail(sequence_start_,
                fmt::format("sequence starting with 0x{:02X} is cut short by the end of input", lead_));
  }
  return absl::OkStatus();
}

}  // namespace contacts
