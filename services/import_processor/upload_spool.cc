#include "services/import_processor/upload_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>
#include <sys/stat.h>

#include "common/status/status_macros.h"
#include "common/values/text_case.h"
#include "services/import_processor/import_plan.h"

namespace contacts {
namespace {

constexpr size_t kDetectBytes = 64 << 10;

absl::Status Errno(std::string_view what, const std::string& path) {
  return absl::InternalError(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

absl::Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("fsync", dir);
  return absl::OkStatus();
}

std::string_view ExtensionOf(std::string_view file_name) {
  size_t dot = file_name.rfind('.');
  size_t slash = file_name.find_last_of("/\\");
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) return {};
  return file_name.substr(dot);
}

// Fields of the first record of `sample` read with `delimiter` (the whole sample when it holds no
// line ending).
size_t FirstRecordFields(std::string_view sample, char delimiter) {
  CsvPushParser parser(CsvDialect{delimiter});
  size_t fields = 0;
  auto first = [&](const CsvRecord& record) {
    fields = record.fields.size();
    return absl::CancelledError("first record read");  // stops the parser
  };
  if (parser.Feed(sample, first).ok()) (void)parser.Finish(first);
  return fields;
}

}  // namespace

absl::StatusOr<std::unique_ptr<UploadSession>> UploadSession::Begin(const std::string& spool_dir,
                                                                    const std::string& upload_id,
                                                                    std::string_view file_name,
                                                                    std::string_view delimiter,
                                                                    const UploadLimits& limits) {
  std::unique_ptr<UploadSession> session(new UploadSession());
  session->limits_ = limits;
  session->spool_dir_ = spool_dir;
  session->upload_id_ = upload_id;
  const std::string extension = AsciiLower(ExtensionOf(file_name));
  if (extension == ".zip") {
    session->is_zip_ = true;
  } else if (extension == ".csv" || extension == ".txt") {
    session->extension_ = extension;
  } else {
    return absl::InvalidArgumentError(
        fmt::format("file_name \"{}\": only .csv, .txt and .zip files can be uploaded", file_name));
  }
  if (!delimiter.empty()) {
    if (delimiter.size() != 1 || (delimiter != "," && delimiter != ";" && delimiter != "|" && delimiter != "\t")) {
      return absl::InvalidArgumentError(
          fmt::format("delimiter \"{}\": use \",\", \";\", \"|\", a tab, or empty to detect", delimiter));
    }
    session->delimiter_ = delimiter[0];
  }
  session->path_ = fmt::format("{}/{}{}", spool_dir, upload_id, session->is_zip_ ? ".zip" : extension);
  session->data_path_ = session->is_zip_ ? "" : session->path_;
  const int fd = ::open(session->path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("create", session->path_);
  absl::StatusOr<std::unique_ptr<SpoolWriter>> writer = SpoolWriter::Start(fd, session->path_);
  if (!writer.ok()) return writer.status();  // the session's destructor removes the file
  session->writer_ = *std::move(writer);
  return session;
}

UploadSession::~UploadSession() {
  writer_.reset();
  if (!finished_) RemoveFiles();
}

void UploadSession::RemoveFiles() {
  writer_.reset();
  if (!path_.empty()) ::unlink(path_.c_str());
  if (!data_path_.empty()) ::unlink(data_path_.c_str());
}

absl::Status UploadSession::Fail(absl::Status status) {
  if (error_.ok()) error_ = status;
  RemoveFiles();
  return status;
}

absl::Status UploadSession::Append(std::string chunk) {
  if (!error_.ok()) return error_;
  if (finished_) return absl::FailedPreconditionError("upload already finished");
  if (chunk.size() > limits_.max_chunk_bytes) {
    return Fail(absl::InvalidArgumentError(
        fmt::format("chunk of {} bytes is larger than the {} byte limit", chunk.size(), limits_.max_chunk_bytes)));
  }
  if (received_ + chunk.size() > limits_.max_upload_bytes) {
    return Fail(absl::ResourceExhaustedError(
        fmt::format("upload is larger than the limit of {} bytes (--max_upload_bytes)", limits_.max_upload_bytes)));
  }
  if (expected_size_ != 0 && received_ + chunk.size() > expected_size_) {
    return Fail(absl::InvalidArgumentError(
        fmt::format("upload is longer than start.size_bytes declares: {} bytes declared, {} received so far; "
                    "nothing was stored",
                    expected_size_, received_ + chunk.size())));
  }
  received_ += chunk.size();
  // Shared: the writer's thread copies it into the file while this one checks it.
  auto shared = std::make_shared<const std::string>(std::move(chunk));
  if (absl::Status s = writer_->Write(shared); !s.ok()) return Fail(s);
  if (!is_zip_) {
    if (absl::Status s = Check(*shared); !s.ok()) return Fail(s);
  }
  return absl::OkStatus();
}

absl::Status UploadSession::Check(std::string_view bytes) {
  RETURN_IF_ERROR(utf8_.Feed(bytes));
  if (parser_ == nullptr) {
    head_.append(bytes);
    if (head_.size() < kDetectBytes) return absl::OkStatus();
    RETURN_IF_ERROR(StartParser());
    std::string head = std::move(head_);
    head_.clear();
    return parser_->Feed(head, [this](const CsvRecord& r) { return OnRecord(r); });
  }
  return parser_->Feed(bytes, [this](const CsvRecord& r) { return OnRecord(r); });
}

absl::Status UploadSession::StartParser() {
  if (!delimiter_) {
    // A .txt is tab-separated, and its values may hold commas ("Smith, John") that ',' would
    // split: '\t' wins a tie, and a header of one column (no delimiter named, DetectDelimiter
    // then answers ',') is read with '\t'.
    const bool txt = extension_ == ".txt";
    delimiter_ = DetectDelimiter(head_, txt ? '\t' : '\0');
    if (txt && FirstRecordFields(head_, *delimiter_) < 2) delimiter_ = '\t';
  }
  parser_ = std::make_unique<CsvPushParser>(CsvDialect{*delimiter_});
  return absl::OkStatus();
}

absl::Status UploadSession::OnRecord(const CsvRecord& record) {
  ++records_;
  if (records_ == 1) {
    columns_.assign(record.fields.begin(), record.fields.end());
    inferrers_.assign(columns_.size(), TypeInferrer(inference_options_));
    if (distinct_keys_) distinct_keys_->OnHeader(columns_);
    return absl::OkStatus();
  }
  if (distinct_keys_) distinct_keys_->OnRecord(record.fields);
  const uint64_t data_row = records_ - 1;
  const uint64_t next_split =
      split_points_.empty() ? split_spacing_ : split_points_.back().byte_offset + split_spacing_;
  if (record.position.byte_offset >= next_split) {
    split_points_.push_back(record.position);
    if (split_points_.size() == UploadPreview::kMaxSplitPoints) {  // keep every other one, twice as far apart
      for (size_t i = 0; 2 * i + 1 < split_points_.size(); ++i) split_points_[i] = split_points_[2 * i + 1];
      split_points_.resize(UploadPreview::kMaxSplitPoints / 2);
      split_spacing_ *= 2;
    }
  }
  if (data_row <= limits_.preview_rows) {
    // Cut for display: ten whole records of long fields could make the Upload answer larger than
    // a client accepts, refused after the upload (and a job started with it) had been stored.
    SampleRow& sample = samples_.emplace_back();
    for (std::string_view field : record.fields) sample.values.push_back(CutReportedValue(field));
    sample.line = record.position.line_number;
    if (record.fields.size() != columns_.size()) {
      sample.problem = RejectionReason(kRaggedRowReasonKey, RaggedRowMessage(record.fields.size(), columns_.size()));
    }
  }
  // A ragged row is left out: a field missing or one too many shifts the values after it under
  // other columns ("Bob,Goa" under name,age,city makes "Goa" an age), and the import rejects the
  // row anyway (ragged_row).
  if (record.fields.size() == inferrers_.size() && inferred_rows_ < limits_.inference_rows) {
    ++inferred_rows_;
    for (size_t i = 0; i < inferrers_.size(); ++i) inferrers_[i].Add(record.fields[i]);
  }
  return absl::OkStatus();
}

absl::StatusOr<UploadPreview> UploadSession::Finish() {
  if (!error_.ok()) return error_;
  if (finished_) return absl::FailedPreconditionError("upload already finished");
  // Before anything reads the bytes: a cut-off file would fail on its last record or character,
  // which says less about what went wrong.
  if (expected_size_ != 0 && received_ != expected_size_) {
    return Fail(absl::InvalidArgumentError(
        fmt::format("upload was cut short: start.size_bytes declares {} bytes, {} arrived; nothing was stored",
                    expected_size_, received_)));
  }
  if (absl::Status s = writer_->Finish(); !s.ok()) return Fail(s);
  const std::string sha256 = writer_->sha256();
  writer_.reset();
  if (!expected_sha256_.empty() && sha256 != expected_sha256_) {
    return Fail(absl::InvalidArgumentError(
        fmt::format("upload's bytes are not the file declared: their SHA-256 is {}, start.sha256 declares {}; "
                    "nothing was stored",
                    sha256, expected_sha256_)));
  }

  UploadPreview preview;
  preview.uploaded_bytes = received_;
  preview.sha256 = sha256;
  if (is_zip_) {
    // The data file takes the extension of the archive's entry; the archive itself goes away.
    const std::string tmp_data = fmt::format("{}/{}.extracting", spool_dir_, upload_id_);
    data_path_ = tmp_data;
    ZipLimits zip = limits_.zip;
    absl::StatusOr<ExtractedEntry> entry = ExtractSingleDataFile(path_, tmp_data, zip);
    if (!entry.ok()) return Fail(entry.status());
    data_path_ = fmt::format("{}/{}{}", spool_dir_, upload_id_, entry->extension);
    if (::rename(tmp_data.c_str(), data_path_.c_str()) != 0) {
      ::unlink(tmp_data.c_str());
      return Fail(Errno("rename", tmp_data));
    }
    ::unlink(path_.c_str());
    path_.clear();
    extension_ = entry->extension;
    int fd = ::open(data_path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Fail(Errno("open", data_path_));
    std::string buffer(1 << 20, '\0');
    while (true) {
      ssize_t n = ::read(fd, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        absl::Status s = Errno("read", data_path_);
        ::close(fd);
        return Fail(s);
      }
      if (n == 0) break;
      if (absl::Status s = Check(std::string_view(buffer.data(), static_cast<size_t>(n))); !s.ok()) {
        ::close(fd);
        return Fail(s);
      }
    }
    ::close(fd);
  }

  if (absl::Status s = utf8_.Finish(); !s.ok()) return Fail(s);
  if (parser_ == nullptr) {
    if (absl::Status s = StartParser(); !s.ok()) return Fail(s);
    std::string head = std::move(head_);
    head_.clear();
    if (absl::Status s = parser_->Feed(head, [this](const CsvRecord& r) { return OnRecord(r); }); !s.ok()) {
      return Fail(s);
    }
  }
  if (absl::Status s = parser_->Finish([this](const CsvRecord& r) { return OnRecord(r); }); !s.ok()) return Fail(s);
  if (records_ == 0) return Fail(absl::InvalidArgumentError("the file is empty: the first row must be the header"));
  if (absl::Status s = FsyncDir(spool_dir_); !s.ok()) return Fail(s);

  struct stat st {};
  if (::stat(data_path_.c_str(), &st) != 0) return Fail(Errno("stat", data_path_));
  preview.data_path = data_path_;
  preview.extension = extension_;
  preview.delimiter = *delimiter_;
  preview.size_bytes = static_cast<uint64_t>(st.st_size);
  preview.data_rows = records_ - 1;
  preview.columns = std::move(columns_);
  for (const TypeInferrer& inferrer : inferrers_) preview.inferred_types.push_back(inferrer.Result());
  preview.sample_rows = std::move(samples_);
  preview.split_points = std::move(split_points_);
  if (distinct_keys_) {
    preview.distinct_keys = distinct_keys_->Finish();
    distinct_keys_.reset();
  }
  finished_ = true;
  return preview;
}

}  // namespace contacts
