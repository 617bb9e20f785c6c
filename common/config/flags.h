// FlagSet: a tiny command-line flag parser with environment overrides, shared by every service so
// that ops and scripts can configure them alike.
//
// Precedence, lowest to highest: the registered default, then the environment variable
// CONTACTS_<NAME in capitals> (e.g. CONTACTS_DATA_DIR for --data_dir), then the command line
// (--name=value, --name value, --flag, --noflag for booleans). In the "--name value" form the value
// may not itself look like a flag (start with "--", or "-" and a flag's name): a forgotten value
// must not swallow the next flag, so write such a value as --name=--value. An integer flag may
// carry a range that Parse() enforces on every source. Describe() shows each value and where it
// came from, for the startup log.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace contacts {

// True when `arg`, found where a flag's separate value belongs ("--data_dir VALUE"), is the next
// flag instead: it starts with "--", or it is "-" followed by a name for which
// `is_single_dash_flag` says yes (the name is what precedes any '='; without the callback, a
// single dash never makes a flag). A forgotten value must not swallow the next flag: FlagSet and
// contactsctl refuse such an argument and ask for --name=<value>.
bool LooksLikeFlag(std::string_view arg, const std::function<bool(std::string_view name)>& is_single_dash_flag = {});

// The values an integer flag accepts, both ends included. Default: any int64.
struct IntRange {
  int64_t min = std::numeric_limits<int64_t>::min();
  int64_t max = std::numeric_limits<int64_t>::max();
};

class FlagSet {
 public:
  explicit FlagSet(std::string program);
  FlagSet(const FlagSet&) = delete;
  FlagSet& operator=(const FlagSet&) = delete;

  // Register a flag. The returned pointer stays valid for the FlagSet's life and holds the
  // default until Parse() runs. Names are [a-z0-9_]+; registering a name twice, or an Int whose
  // default is outside its range, is a programming error (crashes).
  std::string* String(std::string name, std::string default_value, std::string help);
  int64_t* Int(std::string name, int64_t default_value, std::string help, IntRange range = {});
  bool* Bool(std::string name, bool default_value, std::string help);

  // Apply env overrides, then argv. Errors:
  //   INVALID_ARGUMENT naming the flag (or env variable): unknown flag, missing value (also when
  //     the next argument is a flag), a value that is not an integer / boolean, an integer
  //     outside its flag's range ("--workers must be 1 to 64, got 0"), a positional argument
  //     (including "--bool_flag false": booleans take --name=false).
  //   CANCELLED("help") after printing usage to stdout for --help / -h: the caller exits 0.
  // On error, flags parsed before the bad one keep their new values (callers exit anyway).
  absl::Status Parse(int argc, char** argv);

  // Same as Parse() but from a vector (argv[0] not included); for tests and wrappers.
  absl::Status ParseArgs(const std::vector<std::string>& args);

  // One "name=value (source)" line per flag, sorted by name; source is default, env or flag.
  std::string Describe() const;

  // The usage text printed by --help.
  std::string Usage() const;

  // The environment variable that overrides `name`: "CONTACTS_" + name in capitals.
  static std::string EnvName(std::string_view name);

 private:
  enum class Type { kString, kInt, kBool };
  enum class Source { kDefault, kEnv, kFlag };
  struct Flag {
    std::string name;
    Type type;
    std::string help;
    std::string default_text;
    IntRange range;  // kInt only
    Source source = Source::kDefault;
    std::unique_ptr<std::string> string_value;
    std::unique_ptr<int64_t> int_value;
    std::unique_ptr<bool> bool_value;
  };

  Flag& Register(std::string name, Type type, std::string help);
  static absl::Status Assign(Flag& flag, std::string_view value, std::string_view where, Source source);
  static std::string ValueText(const Flag& flag);
  // The flag names that also work after a single dash: the registered ones, "no" + a registered
  // one, "h" and "help".
  bool IsSingleDashFlag(std::string_view name) const;

  std::string program_;
  std::map<std::string, Flag> flags_;
};

// True for the status Parse() returns after printing --help: exit 0.
bool IsHelpRequested(const absl::Status& status);

// The flags every service shares.
struct CommonFlags {
  std::string* listen;          // HOST:PORT to serve gRPC on; port 0 picks a free one.
  std::string* data_dir;        // Folder for the service's files (RocksDB, spool).
  std::string* metrics_listen;  // HOST:PORT of the Prometheus endpoint; "" or "off" disables it.
  std::string* log_level;       // trace, debug, info, warn, error, critical, off.
  std::string* api_keys_file;   // "<key> <tenant> <role>" per line; "" turns auth off.
  int64_t* api_keys_reload_ms;  // How often the keys file is checked for changes; 0: read at start only.
  int64_t* grace_period_ms;     // How long in-flight calls may run after SIGTERM.
  int64_t* deadline_cap_ms;     // Upper bound on any call's server-side deadline.
  int64_t* max_message_bytes;   // Max gRPC message size, both directions.
  // TLS of the gRPC listener (the /metrics endpoint stays plaintext): cert and key both or
  // neither; the client CA only on top of them. "" for all three: plaintext.
  std::string* tls_cert_file;       // PEM certificate chain.
  std::string* tls_key_file;        // PEM private key of tls_cert_file.
  std::string* tls_client_ca_file;  // PEM CA bundle; set: clients need a certificate it signed (mTLS).
  int64_t* tls_refresh_interval_s;  // How often every TLS file the service uses is re-read.
};

// Registers listen, data_dir, metrics_listen, log_level (default info), api_keys_file (default ""),
// api_keys_reload_ms (10000, 0 to a day), grace_period_ms (10000, 0 or more), deadline_cap_ms (300000, 1 or more) and
// max_message_bytes (64 MiB, 1 to INT32_MAX), tls_cert_file, tls_key_file, tls_client_ca_file (default "") and
// tls_refresh_interval_s (60, 1 to 86400). The string values are checked by StartService
// (service_main.h).
CommonFlags RegisterCommonFlags(FlagSet& flags, std::string default_listen, std::string default_metrics_listen,
                                std::string default_data_dir);

// The flags of a service that calls contact-store (import-processor, audience-query).
struct StoreClientFlags {
  std::string* address;          // --store: HOST:PORT.
  std::string* tls_ca_file;      // --store_tls_ca_file: set, TLS verifying the store against it.
  std::string* tls_cert_file;    // --store_tls_cert_file + --store_tls_key_file: the client
  std::string* tls_key_file;     //   certificate, for a store that requires one (mTLS).
  std::string* tls_server_name;  // --store_tls_server_name: the name the store's certificate must
                                 //   carry; "": the host of --store.
};

// Registers store (default "127.0.0.1:50051"), store_tls_ca_file, store_tls_cert_file,
// store_tls_key_file and store_tls_server_name (default ""). Checked by CheckStoreClientFlags
// (service_main.h).
StoreClientFlags RegisterStoreClientFlags(FlagSet& flags);

}  // namespace contacts
