// UploadSession: receives one uploaded file chunk by chunk and spools it to
// <spool_dir>/<upload id>.<ext>, checking it as it streams: size limit, UTF-8 (for .csv/.txt; a
// .zip is checked after extraction), and CSV structure (quotes closed, field and record limits).
// Finish() fsyncs, extracts a .zip with ExtractSingleDataFile under limits, and returns the
// preview: delimiter, header, the first sample rows, per-column inferred types and the row count.
// A session that fails or is dropped before Finish() succeeds removes its files.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/csv/csv_reader.h"
#include "common/csv/utf8_stream.h"
#include "common/values/typed_value.h"
#include "common/zip/safe_zip.h"
#include "services/import_processor/column_mapping.h"
#include "services/import_processor/distinct_keys.h"
#include "services/import_processor/spool_writer.h"

namespace contacts {

struct UploadLimits {
  // Bytes accepted per upload (the .zip itself for archives). Default: 2 GiB.
  uint64_t max_upload_bytes = uint64_t{2} << 30;
  // Largest chunk message. Default: 4 MiB.
  size_t max_chunk_bytes = size_t{4} << 20;
  // Rows shown in the preview. Default: 10.
  size_t preview_rows = 10;
  // Rows whose values feed type inference: the first this many with as many fields as the header
  // (a ragged row's values may sit under the wrong column, and the import rejects it). Default: 200.
  size_t inference_rows = 200;
  ZipLimits zip;
};

// One of the first data rows, as the Upload preview shows it.
struct SampleRow {
  // The values as read, each cut to kMaxReportedValueBytes. A ragged row (more or fewer values
  // than columns) is shown as it is, neither padded nor cut.
  std::vector<std::string> values;
  uint64_t line = 0;  // 1-based line of the data file on which the row starts
  // "" when the row has as many fields as the header; else the reason the import's error log will
  // give for rejecting it, whatever the mapping: "ragged_row: row has 2 fields, the header has 5".
  std::string problem;
};

struct UploadPreview {
  std::string data_path;  // the spooled data file (.csv or .txt)
  std::string extension;  // ".csv" or ".txt"
  char delimiter = ',';
  uint64_t size_bytes = 0;      // of the data file
  uint64_t uploaded_bytes = 0;  // as received
  uint64_t data_rows = 0;       // records after the header
  std::vector<std::string> columns;
  std::vector<AttributeType> inferred_types;  // parallel to columns
  std::vector<SampleRow> sample_rows;         // the first data rows
  // Starts of data records spread about evenly over the file (at most kMaxSplitPoints, none in
  // a file below 64 KiB), where a pass over the file can be split between threads.
  std::vector<CsvPosition> split_points;
  static constexpr size_t kMaxSplitPoints = 64;
  // How the keys were read when every row's was distinct (CheckDistinctKeys); else unset.
  std::optional<internal::DistinctKeys> distinct_keys;
  std::string sha256;  // of the bytes as received (the .zip itself for archives), lower-case hex
};

class UploadSession {
 public:
  // `file_name`: only its extension is used (.csv, .txt or .zip, any case). `delimiter`: "" to
  // detect, else one of ",", ";", "|", "\t".
  // Errors: INVALID_ARGUMENT for another extension or delimiter; INTERNAL when the spool file
  // cannot be created.
  static absl::StatusOr<std::unique_ptr<UploadSession>> Begin(const std::string& spool_dir,
                                                              const std::string& upload_id, std::string_view file_name,
                                                              std::string_view delimiter, const UploadLimits& limits);
  ~UploadSession();
  UploadSession(const UploadSession&) = delete;
  UploadSession& operator=(const UploadSession&) = delete;

  // Errors (the session is then failed and its files removed): INVALID_ARGUMENT for a chunk over
  // the limit, invalid UTF-8 ("invalid UTF-8 at byte N (line L): ...") or malformed CSV;
  // RESOURCE_EXHAUSTED past max_upload_bytes; INTERNAL for a write error.
  // The chunk is written to the spool file by the session's SpoolWriter while this call checks it.
  absl::Status Append(std::string chunk);

  // Errors: as Append, plus INVALID_ARGUMENT for an empty file (no header row), an upload that is
  // not what Expect declared, and every refusal of ExtractSingleDataFile for archives.
  absl::StatusOr<UploadPreview> Finish();

  // Also works out whether every row holds a different primary key (distinct_keys.h), for
  // UploadPreview::distinct_keys. Call before the first Append.
  void CheckDistinctKeys(std::unique_ptr<DistinctKeyCheck> check) { distinct_keys_ = std::move(check); }

  // Infers the columns' types with the tenant's value options (its default country code), as the
  // import will check the values; ValueOptions() otherwise. Call before the first Append.
  void InferWith(const ValueOptions& options) { inference_options_ = options; }

  // What the client declared it sends (UploadStart.size_bytes and sha256): an upload that differs
  // fails with INVALID_ARGUMENT, as soon as it runs past `size_bytes`, else in Finish. 0 and ""
  // check nothing; `sha256_hex` is lower-case (CanonicalSha256Hex). Call before the first Append.
  void Expect(uint64_t size_bytes, std::string sha256_hex) {
    expected_size_ = size_bytes;
    expected_sha256_ = std::move(sha256_hex);
  }

  uint64_t bytes_received() const { return received_; }

 private:
  UploadSession() = default;
  absl::Status Fail(absl::Status status);
  absl::Status Check(std::string_view bytes);  // UTF-8 + CSV of data bytes, in order
  absl::Status StartParser();
  absl::Status OnRecord(const CsvRecord& record);
  void RemoveFiles();

  UploadLimits limits_;
  std::string spool_dir_;
  std::string upload_id_;
  bool is_zip_ = false;
  std::string extension_;
  std::optional<char> delimiter_;
  std::string path_;                     // what is being written (the .zip for archives)
  std::string data_path_;                // the data file
  std::unique_ptr<SpoolWriter> writer_;  // of path_; null once finished or failed
  uint64_t received_ = 0;
  uint64_t expected_size_ = 0;   // 0: not declared
  std::string expected_sha256_;  // "": not declared
  bool finished_ = false;
  absl::Status error_;

  Utf8StreamValidator utf8_;
  std::string head_;  // first bytes, kept until the delimiter is detected
  std::unique_ptr<CsvPushParser> parser_;
  uint64_t records_ = 0;
  std::vector<std::string> columns_;
  std::vector<TypeInferrer> inferrers_;
  uint64_t inferred_rows_ = 0;  // rows fed to inferrers_
  std::vector<SampleRow> samples_;
  std::vector<CsvPosition> split_points_;
  uint64_t split_spacing_ = 64 << 10;                // bytes between split points; doubles when they fill up
  std::unique_ptr<DistinctKeyCheck> distinct_keys_;  // may be null
  ValueOptions inference_options_;
};

}  // namespace contacts
