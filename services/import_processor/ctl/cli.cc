#include "services/import_processor/ctl/cli.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/match.h"
#include "common/config/flags.h"
#include "common/tls/tls_files.h"

namespace contacts::ctl {
namespace {

// The flags every command takes, each with its environment variable. The TLS ones are not called
// --tls-cert-file like the services' flags: their CONTACTS_TLS_CERT_FILE and CONTACTS_TLS_KEY_FILE
// are set in the service's own container, where contactsctl would take the server's certificate for
// a client one. CONTACTS_STORE means what it means to import-processor and audience-query: the
// store's address.
struct GlobalFlag {
  const char* name;
  const char* env;
  std::string Options::*value;
};
constexpr GlobalFlag kGlobalFlags[] = {
    {"import", "CONTACTS_IMPORT", &Options::import_address},
    {"query", "CONTACTS_QUERY", &Options::query_address},
    {"store", "CONTACTS_STORE", &Options::store_address},
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
      {"tenant", {}},
      {"setup", {"primary-key", "type", "country-code"}},
      {"attributes", {}},
      {"count", {}},
      {"export", {"attributes", "as-stored"}},
      {"search", {"prefix", "limit"}},
      {"lists", {}},
      {"create-list", {}},
      {"segments", {}},
      {"save-segment", {"replace"}},
      {"delete-segment", {}},
  };
  return *kFlags;
}

// Positional arguments each command takes after its name, at most.
size_t PositionalsOf(const std::string& command) {
  static const std::set<std::string> kOne = {"upload", "job",    "watch",  "cancel",      "errors",        "fixes",
                                             "count",  "export", "search", "create-list", "delete-segment"};
  if (command == "save-segment") return 2;
  return kOne.contains(command) ? 1 : 0;
}

// The text of the PEM file the global flag `name` names, read once (a short-lived client needs no
// reloading). A folder, an unreadable file or one without a PEM block is a usage error.
std::string ReadPem(const Options& options, const std::string& name, const std::string& path) {
  absl::StatusOr<std::string> text = contacts::ReadPemFile(FlagSource(options, name), path);
  if (!text.ok()) Usage(std::string(text.status().message()));
  return *std::move(text);
}

// Plaintext without --tls-ca; with it TLS, verifying the service against those CAs and, with
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

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  const auto index = static_cast<size_t>(code);
  return index < sizeof(kNames) / sizeof(kNames[0]) ? kNames[index] : "UNKNOWN";
}

// The service's name and the global flag that holds its address.
struct ServiceName {
  const char* name;
  const char* flag;
};
ServiceName NameOf(Service service) {
  switch (service) {
    case Service::kImport:
      return {"import-processor", "--import"};
    case Service::kQuery:
      return {"audience-query", "--query"};
    case Service::kStore:
      return {"contact-store", "--store"};
  }
  return {"?", "?"};
}

// The usage, on `out`: stderr for a usage error, stdout for --help.
void PrintUsage(std::FILE* out) {
  std::fprintf(out,
               "usage:\n"
               "  imports (import-processor):\n"
               "  contactsctl upload FILE [--map COLUMN=ATTRIBUTE ...] [--create NAME:TYPE[:indexed] ...]\n"
               "                     [--list ID ...] [--fix-typos] [--mode upsert|add|update] [--dry-run]\n"
               "                     [--delimiter D] [--wait]\n"
               "  contactsctl job ID | watch ID | cancel ID\n"
               "  contactsctl jobs [--state STATE] [--limit N]\n"
               "  contactsctl errors ID > rejected.csv\n"
               "  contactsctl fixes ID > fixed_emails.csv\n"
               "  contactsctl delete (--file F | --keys a,b,...) [--by email] [--list ID ...] [--wait]\n"
               "  the tenant (contact-store):\n"
               "  contactsctl tenant\n"
               "  contactsctl setup --primary-key NAME [--type TYPE] [--country-code CC]\n"
               "  contactsctl attributes\n"
               "  contactsctl lists | create-list NAME\n"
               "  audiences (audience-query):\n"
               "  contactsctl count [FILTER]\n"
               "  contactsctl export [FILTER] [--attributes a,b,...] [--as-stored] > audience.csv\n"
               "  contactsctl search KEY [--prefix] [--limit N]\n"
               "  contactsctl segments | save-segment NAME FILTER [--replace] | delete-segment NAME\n"
               "global flags: --import HOST:PORT (127.0.0.1:50052) --query HOST:PORT (127.0.0.1:50053)\n"
               "  --store HOST:PORT (127.0.0.1:50051) --api-key KEY --tenant NAME\n"
               "  TLS: --tls-ca FILE [--tls-cert FILE --tls-key FILE] [--tls-server-name NAME]\n"
               "  (env CONTACTS_IMPORT, CONTACTS_QUERY, CONTACTS_STORE, CONTACTS_API_KEY, CONTACTS_TENANT,\n"
               "  CONTACTS_TLS_CA, ...)\n");
}

}  // namespace

[[noreturn]] void Usage(const std::string& message) {
  if (!message.empty()) std::fprintf(stderr, "contactsctl: %s\n", message.c_str());
  PrintUsage(stderr);
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  static const std::map<std::string, bool> kTakesValue = {
      {"map", true},         {"create", true},     {"list", true},         {"mode", true},       {"delimiter", true},
      {"state", true},       {"limit", true},      {"file", true},         {"keys", true},       {"by", true},
      {"primary-key", true}, {"type", true},       {"country-code", true}, {"attributes", true}, {"wait", false},
      {"help", false},       {"fix-typos", false}, {"dry-run", false},     {"prefix", false},    {"replace", false},
      {"as-stored", false}};
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
      if (name == "help") {
        // Asked for, as the services' --help: not a usage error.
        PrintUsage(stdout);
        std::exit(0);
      }
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
  // Now, not when a command first connects: `jobs` had printed its header by then.
  options.credentials = ChannelCredentials(options);
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

std::shared_ptr<grpc::Channel> Client::Connect(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  if (!options_.tls_server_name.empty()) args.SetSslTargetNameOverride(options_.tls_server_name);
  return grpc::CreateCustomChannel(address, options_.credentials, args);
}

v1::ImportProcessor::Stub& Client::import() {
  if (import_ == nullptr) import_ = v1::ImportProcessor::NewStub(Connect(options_.import_address));
  return *import_;
}

v1::AudienceQuery::Stub& Client::query() {
  if (query_ == nullptr) query_ = v1::AudienceQuery::NewStub(Connect(options_.query_address));
  return *query_;
}

v1::ContactStore::Stub& Client::store() {
  if (store_ == nullptr) store_ = v1::ContactStore::NewStub(Connect(options_.store_address));
  return *store_;
}

std::unique_ptr<grpc::ClientContext> Client::Context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!options_.api_key.empty()) ctx->AddMetadata("x-api-key", options_.api_key);
  if (!options_.tenant.empty()) ctx->AddMetadata("x-tenant", options_.tenant);
  return ctx;
}

std::string Client::UnavailableHint(Service service) const {
  const auto [name, flag] = NameOf(service);
  const std::string& address = service == Service::kImport  ? options_.import_address
                               : service == Service::kQuery ? options_.query_address
                                                            : options_.store_address;
  if (options_.tls_ca_file.empty()) {
    return fmt::format("plaintext to {}: if {} serves TLS, give its CA with --tls-ca", address, name);
  }
  return fmt::format(
      "over TLS to {}: check that --tls-ca signed {}'s certificate, that the certificate names {} and, if {} asks "
      "for a client certificate, --tls-cert and --tls-key",
      address, name,
      options_.tls_server_name.empty() ? fmt::format("the host of {} (or give --tls-server-name)", flag)
                                       : "\"" + options_.tls_server_name + "\"",
      name);
}

int Client::Fail(Service service, const grpc::Status& status, bool replied) const {
  std::fprintf(stderr, "contactsctl: %s: %s\n", CodeName(status.error_code()), status.error_message().c_str());
  // Refused: nothing listens, so TLS is not the question; nor is it after a reply came.
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE && !replied &&
      !absl::StrContains(status.error_message(), "Connection refused")) {
    std::fprintf(stderr, "contactsctl: %s\n", UnavailableHint(service).c_str());
  }
  return 1;
}

}  // namespace contacts::ctl
