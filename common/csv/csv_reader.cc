#include "common/csv/csv_reader.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace contacts {
namespace csv_internal {
namespace {

constexpr uint32_t kQuoted = 1;         // the raw span starts with the opening quote
constexpr uint32_t kNeedsUnescape = 2;  // holds "" or characters after the closing quote
constexpr size_t kInitialCapacity = size_t{256} << 10;
// Field spans are stored as 32-bit offsets into the record.
constexpr size_t kMaxRecordBytesCap = size_t{1} << 31;

// Line breaks (LF, CRLF, lone CR) inside a quoted field's raw bytes.
uint64_t CountLineBreaks(const char* b, const char* e) {
  const size_t n = static_cast<size_t>(e - b);
  if (std::memchr(b, '\n', n) == nullptr && std::memchr(b, '\r', n) == nullptr) return 0;
  uint64_t breaks = 0;
  for (const char* p = b; p < e; ++p) {
    if (*p == '\n') {
      ++breaks;
    } else if (*p == '\r' && (p + 1 == e || p[1] != '\n')) {
      ++breaks;
    }
  }
  return breaks;
}

// Unescapes a quoted raw field `"...""..."tail` into out; returns the end of what was written.
char* UnescapeQuoted(const char* b, const char* e, char* out) {
  const char* p = b + 1;  // past the opening quote
  while (p < e) {
    const char c = *p++;
    if (c != '"') {
      *out++ = c;
    } else if (p < e && *p == '"') {
      *out++ = '"';
      ++p;
    } else {
      // Closing quote: the rest (lenient tail) is literal.
      const size_t tail = static_cast<size_t>(e - p);
      std::memcpy(out, p, tail);
      return out + tail;
    }
  }
  return out;
}

}  // namespace

CsvTokenizer::CsvTokenizer(CsvDialect dialect, CsvLimits limits) : dialect_(dialect), limits_(limits) {
  limits_.max_record_bytes = std::min(limits_.max_record_bytes, kMaxRecordBytesCap);
  std::fill(std::begin(special_), std::end(special_), false);
  special_[static_cast<unsigned char>(dialect_.delimiter)] = true;
  special_[static_cast<unsigned char>('\n')] = true;
  special_[static_cast<unsigned char>('\r')] = true;
  Reset(CsvPosition{});
}

void CsvTokenizer::Reset(const CsvPosition& position) {
  end_ = 0;
  base_offset_ = position.byte_offset;
  eof_ = false;
  bom_checked_ = position.byte_offset != 0;
  rec_start_ = pos_ = field_begin_ = 0;
  field_flags_ = 0;
  state_ = State::kFieldStart;
  spans_.clear();
  record_number_ = position.record_number;
  line_number_ = position.line_number;
  resume_ = position;
  error_ = absl::OkStatus();
}

std::pair<char*, size_t> CsvTokenizer::WritableSpace() {
  if (rec_start_ > 0) {
    const size_t keep = end_ - rec_start_;
    std::memmove(buf_.get(), buf_.get() + rec_start_, keep);
    base_offset_ += rec_start_;
    pos_ -= rec_start_;
    field_begin_ -= rec_start_;
    end_ = keep;
    rec_start_ = 0;
  }
  // Grow when less than a quarter is free, so reads stay large and a long record can complete.
  if (capacity_ == 0 || capacity_ - end_ < capacity_ / 4) {
    const size_t new_capacity = capacity_ == 0 ? kInitialCapacity : capacity_ * 2;
    // Not zeroed: only bytes below end_ are read, and every one is copied or appended first.
    auto bigger = std::make_unique_for_overwrite<char[]>(new_capacity);
    if (end_ > 0) std::memcpy(bigger.get(), buf_.get(), end_);
    buf_ = std::move(bigger);
    capacity_ = new_capacity;
  }
  return {buf_.get() + end_, capacity_ - end_};
}

void CsvTokenizer::CommitWritten(size_t n) { end_ += n; }

absl::Status CsvTokenizer::Fail(absl::Status status) {
  error_ = std::move(status);
  return error_;
}

absl::Status CsvTokenizer::FieldTooLong(size_t size) {
  return Fail(absl::InvalidArgumentError(
      fmt::format("line {} (record {}): field {} is longer than the limit of {} bytes (at least {} bytes)",
                  line_number_, record_number_, spans_.size() + 1, limits_.max_field_bytes, size)));
}

absl::Status CsvTokenizer::TooManyFields() {
  return Fail(absl::InvalidArgumentError(
      fmt::format("line {} (record {}): more than {} fields", line_number_, record_number_, limits_.max_fields)));
}

absl::Status CsvTokenizer::RecordTooLong(size_t size) {
  return Fail(absl::InvalidArgumentError(
      fmt::format("line {} (record {}): record is longer than the limit of {} bytes (at least {} bytes)", line_number_,
                  record_number_, limits_.max_record_bytes, size)));
}

void CsvTokenizer::EmitRecord(CsvRecord* record, const char* rec) {
  record->position = CsvPosition{base_offset_ + rec_start_, record_number_, line_number_};
  record->fields.clear();
  size_t unescape_bytes = 0;
  for (const FieldSpan& span : spans_) {
    if (span.flags & kNeedsUnescape) unescape_bytes += span.end - span.begin;
  }
  char* out = nullptr;
  if (unescape_bytes > 0) {
    // Sized once before any view is taken, so the views stay valid.
    if (unescaped_.size() < unescape_bytes) unescaped_.resize(unescape_bytes);
    out = unescaped_.data();
  }
  for (const FieldSpan& span : spans_) {
    const char* b = rec + span.begin;
    const char* e = rec + span.end;
    if (!(span.flags & kQuoted)) {
      record->fields.emplace_back(b, static_cast<size_t>(e - b));
    } else if (!(span.flags & kNeedsUnescape)) {
      record->fields.emplace_back(b + 1, static_cast<size_t>(e - b) - 2);
    } else {
      char* start = out;
      out = UnescapeQuoted(b, e, out);
      record->fields.emplace_back(start, static_cast<size_t>(out - start));
    }
  }
}

absl::StatusOr<CsvTokenizer::Result> CsvTokenizer::Parse(CsvRecord* record) {
  if (!error_.ok()) return error_;
  if (capacity_ == 0) {
    // Nothing was ever appended.
    return eof_ ? Result::kEnd : Result::kNeedMoreInput;
  }
  if (!bom_checked_) {
    // Only at input offset 0 (Reset sets bom_checked_ otherwise).
    static constexpr char kBom[] = "\xEF\xBB\xBF";
    const size_t avail = std::min<size_t>(end_ - rec_start_, 3);
    if (std::memcmp(buf_.get() + rec_start_, kBom, avail) == 0) {
      if (avail < 3 && !eof_) return Result::kNeedMoreInput;
      if (avail == 3) {
        rec_start_ += 3;
        pos_ = field_begin_ = rec_start_;
      }
    }
    bom_checked_ = true;
  }

  char* const buf = buf_.get();
  const char* rec = buf + rec_start_;
  const char* p = buf + pos_;
  const char* const e = buf + end_;
  const char* fb = buf + field_begin_;
  uint32_t flags = field_flags_;
  State state = state_;
  const char delim = dialect_.delimiter;
  const bool* const special = special_;
  bool terminated = false;

  for (;;) {
    switch (state) {
      case State::kFieldStart:
        if (p == e) goto need_more;
        fb = p;
        if (*p == '"') {
          ++p;
          flags = kQuoted;
          state = State::kQuoted;
          continue;
        }
        flags = 0;
        state = State::kUnquoted;
        [[fallthrough]];
      case State::kUnquoted:
        while (p != e && !special[static_cast<unsigned char>(*p)]) ++p;
        if (p == e) goto need_more;
        goto field_end;
      case State::kQuoted: {
        const char* q = static_cast<const char*>(std::memchr(p, '"', static_cast<size_t>(e - p)));
        if (q == nullptr) {
          p = e;
          goto need_more;
        }
        p = q + 1;
        state = State::kQuoteInQuoted;
      }
        [[fallthrough]];
      case State::kQuoteInQuoted:
        if (p == e) goto need_more;
        if (*p == '"') {
          flags |= kNeedsUnescape;
          ++p;
          state = State::kQuoted;
          continue;
        }
        if (special[static_cast<unsigned char>(*p)]) goto field_end;
        // Lenient: text after the closing quote is kept literally.
        flags |= kNeedsUnescape;
        state = State::kUnquoted;
        continue;
      case State::kAfterCr:
        terminated = true;  // also when resuming here after kNeedMoreInput
        if (p == e) {
          if (!eof_) goto need_more;
          goto record_done;
        }
        if (*p == '\n') ++p;
        goto record_done;
    }

  field_end : {
    // *p is the delimiter, CR or LF ending the field [fb, p).
    const size_t raw = static_cast<size_t>(p - fb);
    if (raw - ((flags & kQuoted) ? 2 : 0) > limits_.max_field_bytes) return FieldTooLong(raw);
    if (spans_.size() >= limits_.max_fields) return TooManyFields();
    spans_.push_back(FieldSpan{static_cast<uint32_t>(fb - rec), static_cast<uint32_t>(p - rec), flags});
    const char c = *p++;
    if (c == delim) {
      state = State::kFieldStart;
      continue;
    }
    terminated = true;
    if (c == '\n') goto record_done;
    state = State::kAfterCr;
    continue;
  }

  need_more:
    if (!eof_) {
      if (state != State::kFieldStart && state != State::kAfterCr) {
        const size_t raw = static_cast<size_t>(p - fb);
        // raw - 2 (its quotes) rather than max_field_bytes + 2, which wraps for the largest limit.
        if (raw > 2 && raw - 2 > limits_.max_field_bytes) return FieldTooLong(raw);
      }
      if (static_cast<size_t>(p - rec) > limits_.max_record_bytes) return RecordTooLong(static_cast<size_t>(p - rec));
      pos_ = static_cast<size_t>(p - buf);
      field_begin_ = static_cast<size_t>(fb - buf);
      field_flags_ = flags;
      state_ = state;
      return Result::kNeedMoreInput;
    }
    // End of input with p == e.
    switch (state) {
      case State::kFieldStart:
        if (spans_.empty()) {
          pos_ = static_cast<size_t>(p - buf);
          state_ = state;
          return Result::kEnd;
        }
        fb = p;  // "a," at the end: one more empty field
        flags = 0;
        [[fallthrough]];
      case State::kUnquoted:
      case State::kQuoteInQuoted: {
        const size_t raw = static_cast<size_t>(p - fb);
        if (raw - ((flags & kQuoted) ? 2 : 0) > limits_.max_field_bytes) return FieldTooLong(raw);
        if (spans_.size() >= limits_.max_fields) return TooManyFields();
        spans_.push_back(FieldSpan{static_cast<uint32_t>(fb - rec), static_cast<uint32_t>(p - rec), flags});
        goto record_done;
      }
      case State::kQuoted:
        return Fail(absl::InvalidArgumentError(
            fmt::format("line {} (record {}): quoted field {} is not terminated at end of input", line_number_,
                        record_number_, spans_.size() + 1)));
      case State::kAfterCr:
        terminated = true;
        goto record_done;
    }

  record_done : {
    const size_t rec_len = static_cast<size_t>(p - rec);
    if (rec_len > limits_.max_record_bytes) return RecordTooLong(rec_len);
    uint64_t lines = terminated ? 1 : 0;
    for (const FieldSpan& span : spans_) {
      if (span.flags & kQuoted) lines += CountLineBreaks(rec + span.begin, rec + span.end);
    }
    const bool blank = spans_.size() == 1 && spans_[0].begin == spans_[0].end;
    if (!blank) EmitRecord(record, rec);
    rec_start_ = pos_ = field_begin_ = static_cast<size_t>(p - buf);
    state_ = State::kFieldStart;
    spans_.clear();
    line_number_ += lines;
    if (!blank) {
      ++record_number_;
      resume_ = CsvPosition{base_offset_ + rec_start_, record_number_, line_number_};
      return Result::kRecord;
    }
    // fb too: a blank line's field began before the next record, and need_more saves fb (its
    // offset would fall below rec_start_, and WritableSpace's shift would wrap it).
    rec = fb = p;
    state = State::kFieldStart;
    terminated = false;
  }
  }
}

}  // namespace csv_internal

CsvReader::CsvReader(std::unique_ptr<ByteSource> source, CsvDialect dialect, CsvLimits limits)
    : source_(std::move(source)), tokenizer_(dialect, limits) {}

absl::StatusOr<bool> CsvReader::Next(CsvRecord* record) {
  using Result = csv_internal::CsvTokenizer::Result;
  for (;;) {
    absl::StatusOr<Result> result = tokenizer_.Parse(record);
    if (!result.ok()) return result.status();
    if (*result == Result::kRecord) return true;
    if (*result == Result::kEnd) return false;
    auto [space, size] = tokenizer_.WritableSpace();
    absl::StatusOr<size_t> n = source_->Read(space, size);
    if (!n.ok()) return n.status();
    if (*n == 0) {
      tokenizer_.SetEndOfInput();
    } else {
      tokenizer_.CommitWritten(*n);
    }
  }
}

absl::Status CsvReader::Seek(const CsvPosition& position) {
  absl::Status status = source_->Seek(position.byte_offset);
  if (!status.ok()) return status;
  tokenizer_.Reset(position);
  return absl::OkStatus();
}

CsvPushParser::CsvPushParser(CsvDialect dialect, CsvLimits limits, CsvPosition start) : tokenizer_(dialect, limits) {
  tokenizer_.Reset(start);
}

absl::Status CsvPushParser::Drain(RecordCallback on_record) {
  using Result = csv_internal::CsvTokenizer::Result;
  for (;;) {
    absl::StatusOr<Result> result = tokenizer_.Parse(&record_);
    if (!result.ok()) {
      error_ = result.status();
      return error_;
    }
    if (*result != Result::kRecord) return absl::OkStatus();
    absl::Status status = on_record(record_);
    if (!status.ok()) {
      error_ = status;
      return error_;
    }
  }
}

absl::Status CsvPushParser::Feed(std::string_view chunk, RecordCallback on_record) {
  if (!error_.ok()) return error_;
  while (!chunk.empty()) {
    auto [space, size] = tokenizer_.WritableSpace();
    const size_t n = std::min(size, chunk.size());
    std::memcpy(space, chunk.data(), n);
    tokenizer_.CommitWritten(n);
    chunk.remove_prefix(n);
    absl::Status status = Drain(on_record);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status CsvPushParser::Finish(RecordCallback on_record) {
  if (!error_.ok()) return error_;
  tokenizer_.SetEndOfInput();
  return Drain(on_record);
}

char DetectDelimiter(std::string_view sample, char preferred) {
  static constexpr std::array<char, 4> kCandidates = {',', ';', '\t', '|'};
  static constexpr size_t kMaxRecords = 20;
  char best = ',';
  size_t best_matching = 0;
  size_t best_fields = 0;
  for (const char candidate : kCandidates) {
    std::vector<size_t> counts;
    for (const bool at_end : {false, true}) {
      csv_internal::CsvTokenizer tokenizer(CsvDialect{candidate}, CsvLimits{});
      std::string_view rest = sample;
      CsvRecord record;
      bool done = false;
      while (!done && counts.size() < kMaxRecords) {
        absl::StatusOr<csv_internal::CsvTokenizer::Result> result = tokenizer.Parse(&record);
        if (!result.ok()) break;
        switch (*result) {
          case csv_internal::CsvTokenizer::Result::kRecord:
            counts.push_back(record.fields.size());
            break;
          case csv_internal::CsvTokenizer::Result::kEnd:
            done = true;
            break;
          case csv_internal::CsvTokenizer::Result::kNeedMoreInput: {
            if (rest.empty()) {
              // A truncated last record is only used when the sample holds no complete record.
              if (at_end) {
                tokenizer.SetEndOfInput();
              } else {
                done = true;
              }
              break;
            }
            auto [space, size] = tokenizer.WritableSpace();
            const size_t n = std::min(size, rest.size());
            std::memcpy(space, rest.data(), n);
            tokenizer.CommitWritten(n);
            rest.remove_prefix(n);
            break;
          }
        }
      }
      if (!counts.empty()) break;
    }
    if (counts.empty() || counts[0] < 2) continue;
    const size_t matching = static_cast<size_t>(std::count(counts.begin(), counts.end(), counts[0]));
    // On a tie the preferred delimiter wins: in a .txt, tab-separated, "Name (Last, First)" and
    // "Smith, John" split under ',' as evenly as under '\t'.
    const bool tie_break = candidate == preferred || (best != preferred && counts[0] > best_fields);
    if (matching > best_matching || (matching == best_matching && tie_break)) {
      best = candidate;
      best_matching = matching;
      best_fields = counts[0];
    }
  }
  return best;
}

}  // namespace contacts
