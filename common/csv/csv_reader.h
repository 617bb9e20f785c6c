// Streaming RFC 4180 CSV reader for imports: bounded memory on files of any size (only the record
// being parsed is buffered), fields handed out as std::string_view without per-field allocation,
// and a position (byte offset, record number, line number) for every record so that an import can
// report rows precisely and resume after a crash.
//
// Accepted input:
//   - fields separated by CsvDialect::delimiter, records ended by LF, CRLF or a lone CR; the last
//     record may lack a line ending;
//   - quoted fields ("...") may contain the delimiter, CR, LF and doubled quotes (""), which are
//     unescaped to one quote; CRLF inside a quoted field is kept as is;
//   - a UTF-8 byte order mark (EF BB BF) at byte 0 of the input is dropped;
//   - blank lines (nothing between two line endings) are skipped: they are not records, but they
//     do count as lines. A line holding only "" is a record with one empty field;
//   - lenient: a quote inside an unquoted field is literal (a"b -> a"b), and characters after a
//     closing quote are appended literally up to the next delimiter ("a"b -> ab).
// Rejected input (INVALID_ARGUMENT, message starting "line L (record R): "), after which the reader
// stays failed and returns the same error:
//   - a quoted field still open at end of input;
//   - a field longer than CsvLimits::max_field_bytes, a record with more than
//     CsvLimits::max_fields fields, or a record longer than CsvLimits::max_record_bytes.
//
// Numbering: records are numbered from 1 in file order, the header (if any) being record 1; blank
// lines are not numbered. Lines are numbered from 1 and count every line ending, including those
// inside quoted fields and blank lines. Byte offsets are 0-based offsets into the input, counting
// the BOM, so they are valid arguments for lseek.
//
// Ragged rows are the caller's business: CsvRecord::fields.size() is the field count.
//
// Two front ends share one tokenizer:
//   CsvReader      pull: Next(&record) over a ByteSource (fd, file, istream, memory); Seek() to a
//                  position saved earlier (crash-recovery resume).
//   CsvPushParser  push: Feed(chunk, callback) ... Finish(callback), for bytes arriving in chunks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/csv/byte_source.h"

namespace contacts {

struct CsvDialect {
  // One byte; must not be '"', CR or LF. Default: ','.
  char delimiter = ',';
};

struct CsvLimits {
  // Longest field, in raw bytes between its quotes (an upper bound of its unescaped size). Default:
  // 1 MiB.
  size_t max_field_bytes = size_t{1} << 20;
  // Most fields in a record. Default: 4096.
  size_t max_fields = 4096;
  // Longest record, in raw input bytes including quotes and line ending. Also bounds the reader's
  // buffer (at most about twice this). Default: 16 MiB.
  size_t max_record_bytes = size_t{16} << 20;
};

// Where a record starts (or where reading should resume).
struct CsvPosition {
  uint64_t byte_offset = 0;    // 0-based offset into the input
  uint64_t record_number = 1;  // 1-based; the header is record 1
  uint64_t line_number = 1;    // 1-based

  friend bool operator==(const CsvPosition&, const CsvPosition&) = default;
};

struct CsvRecord {
  // Views into the reader's buffers: valid until the next call on the reader (Next, Seek, Feed,
  // Finish). Reusing one CsvRecord across calls reuses this vector's capacity.
  std::vector<std::string_view> fields;
  // Where the record starts.
  CsvPosition position;
};

// Picks the delimiter among ',', ';', '|' and '\t' from the first records of `sample` (quote
// aware). A candidate qualifies when the first record has more than one field under it; among
// those, the one under which most of the sampled records (up to 20) have the same field count as
// the first wins, then `preferred` (when it qualifies; '\0' for none: a .txt upload passes '\t'),
// then the one giving more fields, then the order , ; \t |. Returns ',' when none qualifies. A
// truncated last line in the sample is ignored.
char DetectDelimiter(std::string_view sample, char preferred = '\0');

namespace csv_internal {

// The resumable tokenizer behind both front ends. It owns a byte buffer holding the record being
// parsed plus read-ahead, and keeps its scan state between calls so that feeding one byte at a
// time costs linear time.
class CsvTokenizer {
 public:
  enum class Result { kRecord, kNeedMoreInput, kEnd };

  CsvTokenizer(CsvDialect dialect, CsvLimits limits);

  // Forgets buffered bytes and state; the next byte appended is input byte `position.byte_offset`.
  void Reset(const CsvPosition& position);

  // Space to append input into; always at least 1 byte. Moves (compacts) buffered bytes, so it
  // invalidates views of earlier records.
  std::pair<char*, size_t> WritableSpace();
  void CommitWritten(size_t n);
  void SetEndOfInput() { eof_ = true; }
  bool end_of_input() const { return eof_; }

  // Parses the next record into *record. kNeedMoreInput: append bytes (or SetEndOfInput) and call
  // again. Errors are sticky.
  absl::StatusOr<Result> Parse(CsvRecord* record);

  // The position just after the last record returned (or the Reset position before any).
  CsvPosition ResumePosition() const { return resume_; }

 private:
  enum class State : uint8_t { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted, kAfterCr };
  struct FieldSpan {
    uint32_t begin;  // relative to the record start, raw (including quotes)
    uint32_t end;
    uint32_t flags;
  };

  absl::Status Fail(absl::Status status);
  absl::Status FieldTooLong(size_t size);
  absl::Status TooManyFields();
  absl::Status RecordTooLong(size_t size);
  void EmitRecord(CsvRecord* record, const char* rec);

  CsvDialect dialect_;
  CsvLimits limits_;
  bool special_[256];  // delimiter, CR, LF

  std::unique_ptr<char[]> buf_;
  size_t capacity_ = 0;
  size_t end_ = 0;            // valid bytes in buf_
  uint64_t base_offset_ = 0;  // input offset of buf_[0]
  bool eof_ = false;
  bool bom_checked_ = false;

  // Scan state of the record being parsed.
  size_t rec_start_ = 0;  // index in buf_
  size_t pos_ = 0;        // index in buf_
  size_t field_begin_ = 0;
  uint32_t field_flags_ = 0;
  State state_ = State::kFieldStart;
  std::vector<FieldSpan> spans_;

  uint64_t record_number_ = 1;
  uint64_t line_number_ = 1;
  CsvPosition resume_;
  std::string unescaped_;
  absl::Status error_;
};

}  // namespace csv_internal

// Pull reader over a ByteSource.
//
//   ASSIGN_OR_RETURN(auto source, OpenFileByteSource(path));
//   CsvReader reader(std::move(source), {.delimiter = ';'});
//   CsvRecord record;
//   while (true) {
//     ASSIGN_OR_RETURN(bool more, reader.Next(&record));
//     if (!more) break;
//     ... record.fields, record.position ...
//   }
class CsvReader {
 public:
  explicit CsvReader(std::unique_ptr<ByteSource> source, CsvDialect dialect = {}, CsvLimits limits = {});

  // Reads the next record into *record. Returns true when a record was read, false at the end of
  // input. Errors: malformed input or limits (INVALID_ARGUMENT, see the file comment), sticky
  // until Seek; errors of the source, returned as they are (calling Next again retries the read).
  absl::StatusOr<bool> Next(CsvRecord* record);

  // Restarts reading at `position`, which must be the start of a record (CsvRecord::position) or a
  // ResumePosition() obtained from a reader over the same input; the records that follow are
  // numbered from it. Clears a previous error. Errors: the source cannot seek (UNIMPLEMENTED) or
  // its seek error.
  absl::Status Seek(const CsvPosition& position);

  // Position just after the last record returned: where to resume once that record is processed.
  CsvPosition ResumePosition() const { return tokenizer_.ResumePosition(); }

 private:
  std::unique_ptr<ByteSource> source_;
  csv_internal::CsvTokenizer tokenizer_;
};

// Push parser: bytes arrive in chunks of any size, split anywhere (even inside a quoted field, a
// CRLF or the BOM); each complete record is handed to the callback, whose views are valid during
// the call only. Memory stays bounded whatever the chunk size.
class CsvPushParser {
 public:
  using RecordCallback = absl::FunctionRef<absl::Status(const CsvRecord&)>;

  // `start`: the input position of the first byte to be fed (default: start of input), for
  // resuming mid-file.
  explicit CsvPushParser(CsvDialect dialect = {}, CsvLimits limits = {}, CsvPosition start = {});

  // Consumes `chunk`, calling `on_record` for every record it completes. Errors: malformed input
  // (sticky), or the first non-OK status returned by `on_record` (which stops parsing; the parser
  // is then failed).
  absl::Status Feed(std::string_view chunk, RecordCallback on_record);

  // Marks the end of input and emits the last record if it lacks a line ending. Errors: as Feed,
  // plus an unterminated quoted field. REQUIRES: no Feed after Finish.
  absl::Status Finish(RecordCallback on_record);

  CsvPosition ResumePosition() const { return tokenizer_.ResumePosition(); }

 private:
  absl::Status Drain(RecordCallback on_record);

  csv_internal::CsvTokenizer tokenizer_;
  CsvRecord record_;
  absl::Status error_;
};

}  // namespace contacts
