#include "services/import_processor/ctl/import_commands.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "common/digest/sha256.h"
#include "common/values/attribute_type.h"

namespace contacts::ctl {
namespace {

constexpr size_t kChunkBytes = 1 << 20;

std::string Counts(const v1::Job& job) {
  const v1::JobCounts& c = job.counts();
  if (job.kind() == v1::DELETE) {
    return fmt::format("received={} deleted={} not_found={} rejected={}", c.received(), c.deleted(), c.not_found(),
                       c.rejected());
  }
  return fmt::format(
      "received={} inserted={} updated={} unchanged={} duplicate={} skipped={} rejected={} emails_fixed={}",
      c.received(), c.inserted(), c.updated(), c.unchanged(), c.duplicate(), c.skipped(), c.rejected(),
      c.emails_fixed());
}

void PrintJob(const v1::Job& job) {
  std::printf("job %s\n  kind: %s\n  state: %s%s\n  file: %s%s\n  %s\n", job.id().c_str(),
              v1::JobKind_Name(job.kind()).c_str(), v1::JobState_Name(job.state()).c_str(),
              job.dry_run() ? " (dry run)" : "", job.file_name().c_str(),
              job.file_sha256().empty() ? "" : (" (sha256 " + job.file_sha256() + ")").c_str(), Counts(job).c_str());
  // Sorted by reason: a protobuf map's order is unspecified, and differed from call to call.
  const std::map<std::string, uint64_t> rejected(job.counts().rejected_by_reason().begin(),
                                                 job.counts().rejected_by_reason().end());
  for (const auto& [reason, n] : rejected) {
    std::printf("    rejected %s: %llu\n", reason.c_str(), static_cast<unsigned long long>(n));
  }
  if (job.bytes_total() > 0) {
    std::printf("  progress: %llu / %llu bytes\n", static_cast<unsigned long long>(job.bytes_done()),
                static_cast<unsigned long long>(job.bytes_total()));
  }
  if (job.finished_at_micros() > 0 && job.started_at_micros() > 0) {
    std::printf("  took: %.3f s\n", static_cast<double>(job.finished_at_micros() - job.started_at_micros()) / 1e6);
  }
  if (!job.error().empty()) std::printf("  error: %s\n", job.error().c_str());
}

int ExitFor(const v1::Job& job) {
  return job.state() == v1::COMPLETED || job.state() == v1::COMPLETED_WITH_ERRORS ? 0 : 3;
}

bool IsFinal(v1::JobState state) {
  return state == v1::COMPLETED || state == v1::COMPLETED_WITH_ERRORS || state == v1::FAILED || state == v1::CANCELLED;
}

// Follows the job until it ends (re-watching if the server's deadline cap ends a stream).
int Follow(Client& client, const std::string& job_id) {
  const bool tty = isatty(STDERR_FILENO);
  v1::Job last;
  bool replied = false;
  while (true) {
    auto ctx = client.Context();
    v1::GetJobRequest request;
    request.set_job_id(job_id);
    auto reader = client.import().WatchJob(ctx.get(), request);
    v1::Job job;
    while (reader->Read(&job)) {
      last = job;
      replied = true;
      std::string line = fmt::format("{} {}", v1::JobState_Name(job.state()), Counts(job));
      if (job.bytes_total() > 0) {
        line += fmt::format(" ({:.0f}%)",
                            100.0 * static_cast<double>(job.bytes_done()) / static_cast<double>(job.bytes_total()));
      }
      std::fprintf(stderr, tty ? "\r\033[K%s" : "%s\n", line.c_str());
    }
    grpc::Status status = reader->Finish();
    if (tty) std::fprintf(stderr, "\n");
    if (IsFinal(last.state())) break;
    if (!status.ok() && status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED)
      return client.Fail(Service::kImport, status, replied);
  }
  PrintJob(last);
  return ExitFor(last);
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Whether the service reads `path` as a .zip: by its extension, in any case, as it does.
bool IsZip(const std::string& path) {
  const std::string name = BaseName(path);
  const size_t dot = name.find_last_of('.');
  return dot != std::string::npos && absl::AsciiStrToLower(name.substr(dot)) == ".zip";
}

// Opens `path` to upload it and sets *total to its size; says why not on stderr (a missing file, a
// folder) and returns nullopt.
std::optional<std::ifstream> OpenForUpload(const std::string& path, uint64_t* total) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    std::fprintf(stderr, "contactsctl: %s is a directory, not a file\n", path.c_str());
    return std::nullopt;
  }
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec)) {
    // DeclareContent reads it twice: a pipe would be empty the second time.
    std::fprintf(stderr, "contactsctl: %s is not a regular file (a pipe?): save it to a file and upload that\n",
                 path.c_str());
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "contactsctl: cannot open %s\n", path.c_str());
    return std::nullopt;
  }
  in.seekg(0, std::ios::end);
  *total = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  return in;
}

// Declares the file's size and SHA-256 in `start` (one read of it, ~65 ms per 100 MB), so that the
// service refuses a stream that arrives short or changed instead of importing what came.
grpc::Status DeclareContent(std::istream& in, uint64_t total, v1::UploadStart* start) {
  Sha256 hash;
  std::string buffer(kChunkBytes, '\0');
  uint64_t read = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hash.Update(std::string_view(buffer.data(), static_cast<size_t>(in.gcount())));
    read += static_cast<uint64_t>(in.gcount());
  }
  if (in.bad()) return grpc::Status(grpc::StatusCode::ABORTED, "reading the file failed; nothing was sent");
  if (read != total) {
    return grpc::Status(
        grpc::StatusCode::ABORTED,
        fmt::format("the file changed while it was read ({} bytes, then {}); nothing was sent", total, read));
  }
  in.clear();
  if (!in.seekg(0)) return grpc::Status(grpc::StatusCode::ABORTED, "cannot read the file again; nothing was sent");
  start->set_size_bytes(total);
  start->set_sha256(hash.FinishHex());
  return grpc::Status::OK;
}

// Draws the upload's progress on stderr: a bar redrawn in place on a terminal, else a line at
// every 10%.
void ShowProgress(bool tty, int percent, uint64_t sent, uint64_t total) {
  constexpr int kWidth = 30;
  const int filled = percent * kWidth / 100;
  if (tty) {
    std::fprintf(stderr, "\r[%s%s] %3d%% %.1f/%.1f MiB", std::string(static_cast<size_t>(filled), '#').c_str(),
                 std::string(static_cast<size_t>(kWidth - filled), ' ').c_str(), percent,
                 static_cast<double>(sent) / (1 << 20), static_cast<double>(total) / (1 << 20));
  } else if (percent % 10 == 0) {
    std::fprintf(stderr, "uploaded %d%%\n", percent);
  }
}

// Streams `in` (of `total` bytes) after `first`, which it completes with DeclareContent, in 1 MiB
// chunks, with a progress bar on stderr. The bar stops at 99% until the service has accepted the
// upload: it can still refuse it after the last chunk (or at `start`, when all of a small file was
// already on its way), and "100%" followed by an error reads as a success that then failed.
grpc::Status SendFile(Client& client, std::istream& in, uint64_t total, v1::UploadRequest first, bool progress,
                      v1::UploadResponse* response) {
  if (grpc::Status declared = DeclareContent(in, total, first.mutable_start()); !declared.ok()) return declared;
  auto ctx = client.Context();
  auto writer = client.import().Upload(ctx.get(), response);
  const bool tty = progress && isatty(STDERR_FILENO);
  bool ok = writer->Write(first);
  std::string buffer(kChunkBytes, '\0');
  uint64_t sent = 0;
  int last_percent = -1;
  while (ok && in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.bad()) {
      // Finishing the stream would store the part read so far as the whole file.
      ctx->TryCancel();
      writer->Finish();
      return grpc::Status(grpc::StatusCode::ABORTED, "reading the file failed; nothing was stored");
    }
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    v1::UploadRequest chunk;
    chunk.set_chunk(buffer.data(), n);
    ok = writer->Write(chunk);
    sent += n;
    // A file that grows while it is read sends more than its size at the start (the service
    // refuses it, having been told the size): stay at 99% meanwhile.
    const int percent = total == 0 ? 99 : static_cast<int>(std::min<uint64_t>(99, 100 * sent / total));
    if (progress && percent != last_percent) {
      last_percent = percent;
      ShowProgress(tty, percent, sent, total);
    }
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (progress && status.ok()) ShowProgress(tty, 100, sent, total);
  if (tty) std::fprintf(stderr, "\n");
  return status;
}

}  // namespace

int Upload(Client& client, const Options& options) {
  if (options.positional.size() != 1) Usage("upload needs exactly one FILE");
  const std::string& path = options.positional[0];
  uint64_t total = 0;
  std::optional<std::ifstream> in = OpenForUpload(path, &total);
  if (!in) return 1;

  v1::UploadRequest first;
  v1::UploadStart* start = first.mutable_start();
  start->set_file_name(BaseName(path));
  if (auto d = One(options, "delimiter")) start->set_delimiter(*d == "tab" || *d == "\\t" ? "\t" : *d);
  const std::vector<std::string> maps = All(options, "map");
  if (maps.empty()) {
    // Without a mapping the upload is a preview: an import option would be dropped without a word,
    // and a caller checking the exit status would take the preview for the import it asked for.
    for (const char* name : {"create", "list", "mode", "fix-typos", "dry-run", "wait"}) {
      if (options.values.contains(name) || options.switches.contains(name)) {
        Usage(fmt::format("--{} needs --map (without it, upload only previews the file)", name));
      }
    }
  } else {
    v1::StartImportRequest* import = start->mutable_import();
    for (const std::string& m : maps) {
      // At the last '=': attribute names never hold one, column names may ("score=raw").
      size_t eq = m.rfind('=');
      if (eq == std::string::npos) Usage("--map takes COLUMN=ATTRIBUTE, got " + m);
      v1::ColumnMapping* mapping = import->add_mapping();
      mapping->set_column(m.substr(0, eq));
      mapping->set_attribute(m.substr(eq + 1));
    }
    for (const std::string& c : All(options, "create")) {
      const std::vector<std::string> parts = absl::StrSplit(c, ':');
      const std::optional<contacts::AttributeType> type =
          parts.size() > 1 ? contacts::ParseAttributeTypeName(parts[1]) : std::nullopt;
      // A third part other than "indexed" (a typo such as "index") would create the attribute
      // unindexed without a word.
      if (parts.size() < 2 || parts.size() > 3 || (parts.size() == 3 && parts[2] != "indexed") || !type) {
        Usage(
            "--create takes NAME:TYPE[:indexed] with TYPE one of text, integer, decimal, boolean, date, datetime, "
            "email, mobile; got " +
            c);
      }
      v1::NewAttribute* attribute = import->add_create_attributes();
      attribute->set_name(parts[0]);
      attribute->set_type(static_cast<v1::AttributeType>(static_cast<int>(*type)));  // same numbers
      attribute->set_indexed(parts.size() == 3);
    }
    for (const std::string& list : All(options, "list")) import->add_list_ids(ParseId(list, "--list"));
    import->set_fix_email_typos(options.switches.contains("fix-typos"));
    import->set_dry_run(options.switches.contains("dry-run"));
    const std::string mode = One(options, "mode").value_or("upsert");
    if (mode == "upsert") {
      import->set_mode(v1::UPSERT);
    } else if (mode == "add") {
      import->set_mode(v1::ADD_ONLY);
    } else if (mode == "update") {
      import->set_mode(v1::UPDATE_ONLY);
    } else {
      Usage("--mode takes upsert, add or update");
    }
  }

  v1::UploadResponse response;
  grpc::Status status = SendFile(client, *in, total, first, /*progress=*/true, &response);
  if (!status.ok()) return client.Fail(Service::kImport, status);

  // For a .zip the service answers the size of the data file it extracted but the SHA-256 of the
  // bytes it received, the .zip's (which `total` counts: the service checked it against start).
  const std::string size = IsZip(path)
                               ? fmt::format("{} bytes extracted from a {}-byte .zip", response.size_bytes(), total)
                               : fmt::format("{} bytes", response.size_bytes());
  std::printf("upload %s: %s, delimiter %s, sha256 %s%s\n", response.upload_id().c_str(), size.c_str(),
              response.delimiter() == "\t" ? "TAB" : ("\"" + response.delimiter() + "\"").c_str(),
              response.sha256().c_str(), IsZip(path) ? " (of the .zip)" : "");
  for (const v1::ColumnPreview& column : response.columns()) {
    std::printf("  column %u %-24s -> %-16s %s\n", column.index(), ("\"" + column.name() + "\"").c_str(),
                column.suggested_attribute().empty() ? "(no match)" : column.suggested_attribute().c_str(),
                v1::AttributeType_Name(column.inferred_type()).c_str());
  }
  if (!response.has_job()) return 0;
  std::printf("job %s %s\n", response.job().id().c_str(), v1::JobState_Name(response.job().state()).c_str());
  if (!options.switches.contains("wait")) return 0;
  return Follow(client, response.job().id());
}

int Delete(Client& client, const Options& options) {
  v1::StartDeleteRequest request;
  auto file = One(options, "file");
  auto keys = One(options, "keys");
  if (file.has_value() == keys.has_value()) Usage("delete needs either --file or --keys");
  if (keys) {
    for (absl::string_view key : absl::StrSplit(*keys, ',', absl::SkipEmpty())) {
      request.mutable_keys()->add_keys(std::string(key));
    }
  } else {
    // Upload the key file first (no import), then delete from it.
    uint64_t total = 0;
    std::optional<std::ifstream> in = OpenForUpload(*file, &total);
    if (!in) return 1;
    v1::UploadRequest first;
    first.mutable_start()->set_file_name(BaseName(*file));
    v1::UploadResponse response;
    grpc::Status status = SendFile(client, *in, total, first, /*progress=*/false, &response);
    if (!status.ok()) return client.Fail(Service::kImport, status);
    request.set_upload_id(response.upload_id());
  }
  const std::string by = One(options, "by").value_or("pk");
  if (by == "email") {
    request.set_key_kind(v1::BatchDeleteRequest::EMAIL);
  } else if (by != "pk" && by != "primary_key") {
    Usage("--by takes pk or email");
  }
  for (const std::string& list : All(options, "list")) request.add_list_ids(ParseId(list, "--list"));
  auto ctx = client.Context();
  v1::Job job;
  grpc::Status status = client.import().StartDelete(ctx.get(), request, &job);
  if (!status.ok()) return client.Fail(Service::kImport, status);
  std::printf("job %s %s\n", job.id().c_str(), v1::JobState_Name(job.state()).c_str());
  if (!options.switches.contains("wait")) return 0;
  return Follow(client, job.id());
}

int Jobs(Client& client, const Options& options) {
  v1::ListJobsRequest request;
  if (auto state = One(options, "state")) {
    v1::JobState parsed;
    if (!v1::JobState_Parse(absl::AsciiStrToUpper(*state), &parsed)) {
      Usage("--state takes QUEUED, RUNNING, COMPLETED, ...");
    }
    request.set_state(parsed);
  }
  const uint64_t limit = One(options, "limit") ? ParseId(*One(options, "limit"), "--limit") : 20;
  request.set_page_size(static_cast<uint32_t>(std::min<uint64_t>(limit, 1000)));
  uint64_t printed = 0;
  bool replied = false;
  while (printed < limit) {
    auto ctx = client.Context();
    v1::ListJobsResponse response;
    grpc::Status status = client.import().ListJobs(ctx.get(), request, &response);
    if (!status.ok()) return client.Fail(Service::kImport, status, replied);
    // After the first answer: a call refused (a key, a handshake) leaves stdout empty, as the
    // other commands do.
    if (!replied) std::printf("%-24s %-6s %-22s %-24s %s\n", "ID", "KIND", "STATE", "FILE", "COUNTS");
    replied = true;
    for (const v1::Job& job : response.jobs()) {
      if (printed++ >= limit) break;
      std::printf("%-24s %-6s %-22s %-24s %s\n", job.id().c_str(), v1::JobKind_Name(job.kind()).c_str(),
                  v1::JobState_Name(job.state()).c_str(), job.file_name().c_str(), Counts(job).c_str());
    }
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  return 0;
}

int Errors(Client& client, const Options& options, bool fixes) {
  if (options.positional.size() != 1) Usage(options.command + " needs a job ID");
  v1::GetJobErrorsRequest request;
  request.set_job_id(options.positional[0]);
  request.set_as_csv(true);
  request.set_fixes(fixes);
  auto ctx = client.Context();
  auto reader = client.import().GetJobErrors(ctx.get(), request);
  v1::JobErrorChunk chunk;
  bool replied = false;
  while (reader->Read(&chunk)) {
    replied = true;
    std::fwrite(chunk.csv().data(), 1, chunk.csv().size(), stdout);
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return client.Fail(Service::kImport, status, replied);
  return 0;
}

int JobCommand(Client& client, const Options& options) {
  const std::string& command = options.command;
  if (options.positional.size() != 1) Usage(command + " needs a job ID");
  v1::GetJobRequest request;
  request.set_job_id(options.positional[0]);
  if (command == "watch") return Follow(client, request.job_id());
  auto ctx = client.Context();
  v1::Job job;
  grpc::Status status = command == "job" ? client.import().GetJob(ctx.get(), request, &job)
                                         : client.import().CancelJob(ctx.get(), request, &job);
  if (!status.ok()) return client.Fail(Service::kImport, status);
  PrintJob(job);
  return 0;
}

}  // namespace contacts::ctl
