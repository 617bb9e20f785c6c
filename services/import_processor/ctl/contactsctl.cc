// contactsctl: a command-line client of import-processor for people and scripts.
//
//   contactsctl upload FILE [--map COLUMN=ATTRIBUTE ...] [--create NAME:TYPE[:indexed] ...] [--list ID ...]
//                      [--fix-typos] [--mode upsert|add|update] [--dry-run] [--delimiter D] [--wait]
//   contactsctl job ID | watch ID | cancel ID
//   contactsctl jobs [--state STATE] [--limit N]
//   contactsctl errors ID            (CSV on stdout: row_number,column,value,reason)
//   contactsctl fixes ID             (email typo fixes, the same CSV: value = the address before,
//                                    reason = "email typo fixed to <address>")
//   contactsctl delete (--file F | --keys a,b,...) [--by email] [--list ID ...] [--wait]
//
// Global flags (anywhere): --import HOST:PORT (default 127.0.0.1:50052, env CONTACTS_IMPORT),
// --api-key KEY (env CONTACTS_API_KEY), --tenant NAME (env CONTACTS_TENANT), and TLS:
// --tls-ca FILE (env CONTACTS_TLS_CA; PEM CA certificates: set, the call uses TLS and verifies
// import-processor's certificate against them), --tls-cert FILE and --tls-key FILE (env
// CONTACTS_TLS_CERT, CONTACTS_TLS_KEY; a client certificate for mutual TLS), --tls-server-name NAME
// (env CONTACTS_TLS_SERVER_NAME; the name the certificate must carry when --import's host is not in
// it, e.g. an IP address).
// Exit status: 0 success (a job that ended COMPLETED or COMPLETED_WITH_ERRORS), 1 error, 2 usage,
// 3 the job ended FAILED or CANCELLED.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "contacts/v1/import_processor.grpc.pb.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/config/flags.h"
#include "common/tls/tls_files.h"
#include "common/values/attribute_type.h"

namespace {

using contacts::v1::ImportProcessor;
namespace v1 = contacts::v1;

constexpr size_t kChunkBytes = 1 << 20;

struct Options {
  std::string command;
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> values;  // --name value
  std::map<std::string, bool> switches;            // --name
  std::string import_address = "127.0.0.1:50052";
  std::string api_key;
  std::string tenant;
  std::string tls_ca_file;    // empty: plaintext
  std::string tls_cert_file;  // empty: no client certificate
  std::string tls_key_file;
  std::string tls_server_name;             // empty: the host of import_address
  std::set<std::string> from_environment;  // global flags whose value came from their variable
};

// The flags every command takes, each with its environment variable. The TLS ones are not called
// --tls-cert-file like the services' flags: their CONTACTS_TLS_CERT_FILE and CONTACTS_TLS_KEY_FILE
// are set in the service's own container, where contactsctl would take the server's certificate for
// a client one.
struct GlobalFlag {
  const char* name;
  const char* env;
  std::string Options::*value;
};
constexpr GlobalFlag kGlobalFlags[] = {
    {"import", "CONTACTS_IMPORT", &Options::import_address},
    {"api-key", "CONTACTS_API_KEY", &Options::api_key},
    {"tenant", "CONTACTS_TENANT", &Options::tenant},
    {"tls-ca", "CONTACTS_TLS_CA", &Options::tls_ca_file},
    {"tls-cert", "CONTACTS_TLS_CERT", &Options::tls_cert_file},
    {"tls-key", "CONTACTS_TLS_KEY", &Options::tls_key_file},
    {"tls-server-name", "CONTACTS_TLS_SERVER_NAME", &Options::tls_server_name},
};

// "--tls-cert", or "CONTACTS_TLS_CERT (--tls-cert)" when the value came from the environment: a
// variable left over in the shell is otherwise hard to find.
std::string FlagSource(const Options& options, const std::string& name) {
  if (!options.from_environment.contains(name)) return "--" + name;
  for (const GlobalFlag& flag : kGlobalFlags) {
    if (flag.name == name) return fmt::format("{} (--{})", flag.env, name);
  }
  return "--" + name;
}

[[noreturn]] void Usage(const std::string& message) {
  if (!message.empty()) std::fprintf(stderr, "contactsctl: %s\n", message.c_str());
  std::fprintf(stderr,
               "usage:\n"
               "  contactsctl upload FILE [--map COLUMN=ATTRIBUTE ...] [--create NAME:TYPE[:indexed] ...]\n"
               "                     [--list ID ...] [--fix-typos] [--mode upsert|add|update] [--dry-run]\n"
               "                     [--delimiter D] [--wait]\n"
               "  contactsctl job ID | watch ID | cancel ID\n"
               "  contactsctl jobs [--state STATE] [--limit N]\n"
               "  contactsctl errors ID > rejected.csv\n"
               "  contactsctl fixes ID > fixed_emails.csv\n"
               "  contactsctl delete (--file F | --keys a,b,...) [--by email] [--list ID ...] [--wait]\n"
               "global flags: --import HOST:PORT (127.0.0.1:50052) --api-key KEY --tenant NAME\n"
               "  TLS: --tls-ca FILE [--tls-cert FILE --tls-key FILE] [--tls-server-name NAME]\n"
               "  (env CONTACTS_IMPORT, CONTACTS_API_KEY, CONTACTS_TENANT, CONTACTS_TLS_CA, ...)\n");
  std::exit(2);
}

// The flags each command takes besides the global ones (kGlobalFlags and --help). A
// flag another command takes is refused rather than ignored: `delete --dry-run` would delete for
// real (deletes have no dry run), `delete --mode add` would not be what was asked either.
const std::map<std::string, std::set<std::string>>& CommandFlags() {
  static const auto* const kFlags = new std::map<std::string, std::set<std::string>>{
      {"upload", {"map", "create", "list", "mode", "delimiter", "fix-typos", "dry-run", "wait"}},
      {"delete", {"file", "keys", "by", "list", "wait"}},
      {"jobs", {"state", "limit"}},
      {"job", {}},
      {"watch", {}},
      {"cancel", {}},
      {"errors", {}},
      {"fixes", {}},
  };
  return *kFlags;
}

// Positional arguments each command takes after its name.
size_t PositionalsOf(const std::string& command) {
  if (command == "upload" || command == "job" || command == "watch" || command == "cancel" || command == "errors" ||
      command == "fixes") {
    return 1;
  }
  return 0;
}

Options Parse(int argc, char** argv) {
  static const std::map<std::string, bool> kTakesValue = {
      {"map", true},   {"create", true}, {"list", true},       {"mode", true},    {"delimiter", true},
      {"state", true}, {"limit", true},  {"file", true},       {"keys", true},    {"by", true},
      {"wait", false}, {"help", false},  {"fix-typos", false}, {"dry-run", false}};
  Options options;
  for (const GlobalFlag& flag : kGlobalFlags) {
    if (const char* env = std::getenv(flag.env)) {
      options.*flag.value = env;
      options.from_environment.insert(flag.name);
    }
  }
  std::vector<std::string> command_flags;  // checked once the command is known
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) == 0) {
      std::string name = arg.substr(2);
      std::optional<std::string> value;
      if (size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      const GlobalFlag* global = nullptr;
      for (const GlobalFlag& flag : kGlobalFlags) {
        if (flag.name == name) global = &flag;
      }
      auto known = kTakesValue.find(name);
      if (known == kTakesValue.end() && global == nullptr) Usage("unknown flag --" + name);
      if (name == "help") Usage("");
      if (global == nullptr && !known->second) {
        // "--dry-run=false" must not mean a dry run: a switch's value is true or false.
        if (value && *value != "true" && *value != "false") {
          Usage(fmt::format("--{} is a switch: write --{} (or --{}=true / --{}=false), not --{}={}", name, name, name,
                            name, name, *value));
        }
        if (value == "false") {
          options.switches.erase(name);
        } else {
          options.switches[name] = true;
        }
        command_flags.push_back(name);
        continue;
      }
      if (!value) {
        // A forgotten value must not swallow the next flag ("--keys --wait" deleted the key
        // "--wait"); a value that does start with "--" can be given as --name=--value. Only
        // "--" makes a flag here: contactsctl has no single-dash ones, so "--keys -a" is a key.
        if (i + 1 >= argc || contacts::LooksLikeFlag(argv[i + 1])) {
          Usage("--" + name + " needs a value");
        }
        value = argv[++i];
      }
      if (global != nullptr) {
        options.*global->value = *value;
        options.from_environment.erase(name);
      } else {
        options.values.emplace(name, *value);
        command_flags.push_back(name);
      }
    } else if (options.command.empty()) {
      options.command = arg;
    } else {
      options.positional.push_back(arg);
    }
  }
  if (options.command.empty()) Usage("no command");
  auto flags = CommandFlags().find(options.command);
  if (flags == CommandFlags().end()) Usage("unknown command " + options.command);
  for (const std::string& name : command_flags) {
    if (!flags->second.contains(name)) Usage(fmt::format("{} does not take --{}", options.command, name));
  }
  if (options.positional.size() > PositionalsOf(options.command)) {
    Usage(fmt::format("{}: unexpected argument \"{}\"", options.command,
                      options.positional[PositionalsOf(options.command)]));
  }
  return options;
}

std::vector<std::string> All(const Options& options, const std::string& name) {
  std::vector<std::string> out;
  auto [begin, end] = options.values.equal_range(name);
  for (auto it = begin; it != end; ++it) out.push_back(it->second);
  return out;
}

std::optional<std::string> One(const Options& options, const std::string& name) {
  auto values = All(options, name);
  if (values.empty()) return std::nullopt;
  return values.back();
}

uint64_t ParseId(const std::string& text, const std::string& what) {
  char* end = nullptr;
  unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  // strtoull takes a sign and spaces ("-1" is 2^64 - 1): only digits are an id.
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0])) || *end != '\0') {
    Usage(fmt::format("{}: \"{}\" is not a number", what, text));
  }
  return value;
}

// The text of the PEM file the global flag `name` names, read once (a short-lived client needs no
// reloading). A folder, an unreadable file or one without a PEM block is a usage error.
std::string ReadPem(const Options& options, const std::string& name, const std::string& path) {
  absl::StatusOr<std::string> text = contacts::ReadPemFile(FlagSource(options, name), path);
  if (!text.ok()) Usage(std::string(text.status().message()));
  return *std::move(text);
}

// Plaintext without --tls-ca; with it TLS, verifying import-processor against those CAs and, with
// --tls-cert and --tls-key, presenting that client certificate. Flags that do not go together are a
// usage error (exit 2) naming the flag.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const Options& options) {
  if (!options.tls_cert_file.empty() && options.tls_key_file.empty()) {
    Usage(fmt::format("{} is set but --tls-key is not: give both or neither", FlagSource(options, "tls-cert")));
  }
  if (options.tls_cert_file.empty() && !options.tls_key_file.empty()) {
    Usage(fmt::format("{} is set but --tls-cert is not: give both or neither", FlagSource(options, "tls-key")));
  }
  if (options.tls_ca_file.empty()) {
    if (!options.tls_cert_file.empty()) {
      Usage(fmt::format("{} needs --tls-ca: a client certificate is sent only over TLS",
                        FlagSource(options, "tls-cert")));
    }
    if (!options.tls_server_name.empty()) {
      Usage(
          fmt::format("{} needs --tls-ca: the name is checked only over TLS", FlagSource(options, "tls-server-name")));
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadPem(options, "tls-ca", options.tls_ca_file);
  if (absl::Status ca = contacts::CheckCaFile(FlagSource(options, "tls-ca"), options.tls_ca_file); !ca.ok()) {
    Usage(std::string(ca.message()));
  }
  if (!options.tls_cert_file.empty()) {
    ssl.pem_cert_chain = ReadPem(options, "tls-cert", options.tls_cert_file);
    ssl.pem_private_key = ReadPem(options, "tls-key", options.tls_key_file);
    if (absl::Status pair = contacts::CheckKeyPair(FlagSource(options, "tls-cert"), options.tls_cert_file,
                                                   FlagSource(options, "tls-key"), options.tls_key_file);
        !pair.ok()) {
      Usage(std::string(pair.message()));
    }
  }
  return grpc::SslCredentials(ssl);
}

class Client {
 public:
  explicit Client(const Options& options) : options_(options) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
    stub_ =
        ImportProcessor::NewStub(grpc::CreateCustomChannel(options.import_address, ChannelCredentials(options), args));
  }

  // What to check when import-processor is UNAVAILABLE although something listens: a failed TLS
  // handshake reads the same as a server that is down.
  std::string UnavailableHint() const {
    if (options_.tls_ca_file.empty()) {
      return fmt::format("plaintext to {}: if import-processor serves TLS, give its CA with --tls-ca",
                         options_.import_address);
    }
    return fmt::format(
        "over TLS to {}: check that --tls-ca signed import-processor's certificate, that the certificate names {} "
        "and, if import-processor asks for a client certificate, --tls-cert and --tls-key",
        options_.import_address,
        options_.tls_server_name.empty() ? "the host of --import (or give --tls-server-name)"
                                         : "\"" + options_.tls_server_name + "\"");
  }

  std::unique_ptr<grpc::ClientContext> Context() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!options_.api_key.empty()) ctx->AddMetadata("x-api-key", options_.api_key);
    if (!options_.tenant.empty()) ctx->AddMetadata("x-tenant", options_.tenant);
    return ctx;
  }

  ImportProcessor::Stub& stub() { return *stub_; }

 private:
  const Options& options_;
  std::unique_ptr<ImportProcessor::Stub> stub_;
};

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  const auto index = static_cast<size_t>(code);
  return index < sizeof(kNames) / sizeof(kNames[0]) ? kNames[index] : "UNKNOWN";
}

int Fail(const Client& client, const grpc::Status& status) {
  std::fprintf(stderr, "contactsctl: %s: %s\n", CodeName(status.error_code()), status.error_message().c_str());
  // Refused: nothing listens, so TLS is not the question.
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
      !absl::StrContains(status.error_message(), "Connection refused")) {
    std::fprintf(stderr, "contactsctl: %s\n", client.UnavailableHint().c_str());
  }
  return 1;
}

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
  std::printf("job %s\n  kind: %s\n  state: %s%s\n  file: %s\n  %s\n", job.id().c_str(),
              v1::JobKind_Name(job.kind()).c_str(), v1::JobState_Name(job.state()).c_str(),
              job.dry_run() ? " (dry run)" : "", job.file_name().c_str(), Counts(job).c_str());
  for (const auto& [reason, n] : job.counts().rejected_by_reason()) {
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
  while (true) {
    auto ctx = client.Context();
    v1::GetJobRequest request;
    request.set_job_id(job_id);
    auto reader = client.stub().WatchJob(ctx.get(), request);
    v1::Job job;
    while (reader->Read(&job)) {
      last = job;
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
    if (!status.ok() && status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) return Fail(client, status);
  }
  PrintJob(last);
  return ExitFor(last);
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Opens `path` to upload it and sets *total to its size; says why not on stderr (a missing file, a
// folder) and returns nullopt.
std::optional<std::ifstream> OpenForUpload(const std::string& path, uint64_t* total) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    std::fprintf(stderr, "contactsctl: %s is a directory, not a file\n", path.c_str());
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

// Streams `in` (of `total` bytes) after `first` in 1 MiB chunks, with a progress bar on stderr.
grpc::Status SendFile(Client& client, std::istream& in, uint64_t total, const v1::UploadRequest& first, bool progress,
                      v1::UploadResponse* response) {
  auto ctx = client.Context();
  auto writer = client.stub().Upload(ctx.get(), response);
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
    // A file that grows while it is read sends more than its size at the start: stay at 100%.
    const int percent = total == 0 ? 100 : static_cast<int>(std::min<uint64_t>(100, 100 * sent / total));
    if (progress && percent != last_percent) {
      last_percent = percent;
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
  }
  if (tty) std::fprintf(stderr, "\n");
  writer->WritesDone();
  return writer->Finish();
}

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
  if (!status.ok()) return Fail(client, status);

  std::printf("upload %s: %llu bytes, delimiter %s\n", response.upload_id().c_str(),
              static_cast<unsigned long long>(response.size_bytes()),
              response.delimiter() == "\t" ? "TAB" : ("\"" + response.delimiter() + "\"").c_str());
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
    if (!status.ok()) return Fail(client, status);
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
  grpc::Status status = client.stub().StartDelete(ctx.get(), request, &job);
  if (!status.ok()) return Fail(client, status);
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
  std::printf("%-24s %-6s %-22s %-24s %s\n", "ID", "KIND", "STATE", "FILE", "COUNTS");
  while (printed < limit) {
    auto ctx = client.Context();
    v1::ListJobsResponse response;
    grpc::Status status = client.stub().ListJobs(ctx.get(), request, &response);
    if (!status.ok()) return Fail(client, status);
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

// The rejected rows, or with `fixes` the email typo fixes, of a job as CSV on stdout.
int Errors(Client& client, const Options& options, bool fixes) {
  if (options.positional.size() != 1) Usage(options.command + " needs a job ID");
  v1::GetJobErrorsRequest request;
  request.set_job_id(options.positional[0]);
  request.set_as_csv(true);
  request.set_fixes(fixes);
  auto ctx = client.Context();
  auto reader = client.stub().GetJobErrors(ctx.get(), request);
  v1::JobErrorChunk chunk;
  while (reader->Read(&chunk)) std::fwrite(chunk.csv().data(), 1, chunk.csv().size(), stdout);
  grpc::Status status = reader->Finish();
  if (!status.ok()) return Fail(client, status);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = Parse(argc, argv);
  Client client(options);
  const std::string& command = options.command;
  if (command == "upload") return Upload(client, options);
  if (command == "delete") return Delete(client, options);
  if (command == "jobs") return Jobs(client, options);
  if (command == "errors") return Errors(client, options, /*fixes=*/false);
  if (command == "fixes") return Errors(client, options, /*fixes=*/true);
  if (command == "job" || command == "watch" || command == "cancel") {
    if (options.positional.size() != 1) Usage(command + " needs a job ID");
    v1::GetJobRequest request;
    request.set_job_id(options.positional[0]);
    if (command == "watch") return Follow(client, request.job_id());
    auto ctx = client.Context();
    v1::Job job;
    grpc::Status status = command == "job" ? client.stub().GetJob(ctx.get(), request, &job)
                                           : client.stub().CancelJob(ctx.get(), request, &job);
    if (!status.ok()) return Fail(client, status);
    PrintJob(job);
    return 0;
  }
  Usage("unknown command " + command);
}
