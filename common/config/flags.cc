#include "common/config/flags.h"

#include <cctype>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "fmt/format.h"

namespace contacts {
namespace {

constexpr char kHelpMessage[] = "help";

bool ValidName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return true;
}

std::optional<bool> ParseBool(std::string_view text) {
  std::string lower = absl::AsciiStrToLower(std::string(text));
  if (lower == "true" || lower == "1" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "0" || lower == "no" || lower == "off") return false;
  return std::nullopt;
}

bool InRange(int64_t value, const IntRange& range) { return value >= range.min && value <= range.max; }

// "1 to 64", "0 or more", "100 or less"; "" for any int64.
std::string RangeText(const IntRange& range) {
  constexpr IntRange kAny;
  if (range.min == kAny.min && range.max == kAny.max) return "";
  if (range.max == kAny.max) return fmt::format("{} or more", range.min);
  if (range.min == kAny.min) return fmt::format("{} or less", range.max);
  return fmt::format("{} to {}", range.min, range.max);
}

}  // namespace

bool LooksLikeFlag(std::string_view arg, const std::function<bool(std::string_view name)>& is_single_dash_flag) {
  if (arg.rfind("--", 0) == 0) return true;
  if (!is_single_dash_flag || arg.size() < 2 || arg[0] != '-') return false;
  // One dash: a flag only if it names one ("-listen=x", "-h"), so values such as "-5" or "-" pass.
  std::string_view body = arg.substr(1);
  return is_single_dash_flag(body.substr(0, body.find('=')));
}

bool IsHelpRequested(const absl::Status& status) {
  return status.code() == absl::StatusCode::kCancelled && status.message() == kHelpMessage;
}

FlagSet::FlagSet(std::string program) : program_(std::move(program)) {}

std::string FlagSet::EnvName(std::string_view name) { return "CONTACTS_" + absl::AsciiStrToUpper(std::string(name)); }

FlagSet::Flag& FlagSet::Register(std::string name, Type type, std::string help) {
  if (!ValidName(name) || flags_.count(name) > 0) {
    std::cerr << "FlagSet: invalid or duplicate flag name '" << name << "'\n";
    std::abort();
  }
  Flag& flag = flags_[name];
  flag.name = std::move(name);
  flag.type = type;
  flag.help = std::move(help);
  return flag;
}

std::string* FlagSet::String(std::string name, std::string default_value, std::string help) {
  Flag& flag = Register(std::move(name), Type::kString, std::move(help));
  flag.default_text = default_value;
  flag.string_value = std::make_unique<std::string>(std::move(default_value));
  return flag.string_value.get();
}

int64_t* FlagSet::Int(std::string name, int64_t default_value, std::string help, IntRange range) {
  if (range.min > range.max || !InRange(default_value, range)) {
    std::cerr << "FlagSet: flag '" << name << "' has default " << default_value << " outside its range\n";
    std::abort();
  }
  Flag& flag = Register(std::move(name), Type::kInt, std::move(help));
  flag.range = range;
  flag.default_text = std::to_string(default_value);
  flag.int_value = std::make_unique<int64_t>(default_value);
  return flag.int_value.get();
}

bool* FlagSet::Bool(std::string name, bool default_value, std::string help) {
  Flag& flag = Register(std::move(name), Type::kBool, std::move(help));
  flag.default_text = default_value ? "true" : "false";
  flag.bool_value = std::make_unique<bool>(default_value);
  return flag.bool_value.get();
}

absl::Status FlagSet::Assign(Flag& flag, std::string_view value, std::string_view where, Source source) {
  // `where` names the flag itself, or the environment variable: then say which flag it sets.
  const bool from_env = source == Source::kEnv;
  switch (flag.type) {
    case Type::kString:
      *flag.string_value = std::string(value);
      break;
    case Type::kInt: {
      int64_t parsed = 0;
      if (!absl::SimpleAtoi(absl::string_view(value.data(), value.size()), &parsed)) {
        return absl::InvalidArgumentError(fmt::format("{}: \"{}\" is not an integer{}", where, value,
                                                      from_env ? fmt::format(" (flag --{})", flag.name) : ""));
      }
      if (!InRange(parsed, flag.range)) {
        // Checked here rather than in main(), so a value out of range is a usage error from every
        // source, found before the service opens or binds anything.
        return absl::InvalidArgumentError(fmt::format("{}--{} must be {}, got {}",
                                                      from_env ? fmt::format("{}: ", where) : "", flag.name,
                                                      RangeText(flag.range), parsed));
      }
      *flag.int_value = parsed;
      break;
    }
    case Type::kBool: {
      std::optional<bool> parsed = ParseBool(value);
      if (!parsed) {
        return absl::InvalidArgumentError(fmt::format("{}: \"{}\" is not a boolean ({}use true or false)", where, value,
                                                      from_env ? fmt::format("flag --{}; ", flag.name) : ""));
      }
      *flag.bool_value = *parsed;
      break;
    }
  }
  flag.source = source;
  return absl::OkStatus();
}

bool FlagSet::IsSingleDashFlag(std::string_view name) const {
  if (name == "h" || name == "help" || flags_.count(std::string(name)) > 0) return true;
  return name.rfind("no", 0) == 0 && flags_.count(std::string(name.substr(2))) > 0;
}

absl::Status FlagSet::Parse(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return ParseArgs(args);
}

absl::Status FlagSet::ParseArgs(const std::vector<std::string>& args) {
  for (auto& [name, flag] : flags_) {
    std::string env_name = EnvName(name);
    const char* env = std::getenv(env_name.c_str());
    if (env == nullptr) continue;
    absl::Status status = Assign(flag, env, fmt::format("environment variable {}", env_name), Source::kEnv);
    if (!status.ok()) return status;
  }

  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      std::cout << Usage();
      std::cout.flush();
      return absl::CancelledError(kHelpMessage);
    }
    if (arg.size() < 2 || arg[0] != '-') {
      return absl::InvalidArgumentError(fmt::format("unexpected argument \"{}\" (flags look like --name=value)", arg));
    }
    std::string_view body(arg);
    body.remove_prefix(body.size() > 2 && body[1] == '-' ? 2 : 1);
    std::string name;
    std::optional<std::string> value;
    if (size_t eq = body.find('='); eq != std::string_view::npos) {
      name = std::string(body.substr(0, eq));
      value = std::string(body.substr(eq + 1));
    } else {
      name = std::string(body);
    }
    auto it = flags_.find(name);
    if (it == flags_.end() && !value && name.size() > 2 && name.rfind("no", 0) == 0) {
      auto negated = flags_.find(name.substr(2));
      if (negated != flags_.end() && negated->second.type == Type::kBool) {
        *negated->second.bool_value = false;
        negated->second.source = Source::kFlag;
        continue;
      }
    }
    if (it == flags_.end()) {
      return absl::InvalidArgumentError(fmt::format("unknown flag --{} (see --help)", name));
    }
    Flag& flag = it->second;
    if (!value) {
      if (flag.type == Type::kBool) {
        // A boolean takes no separate value: "--verbose false" would leave "false" as a stray
        // argument, so say how to write it.
        if (i + 1 < args.size() && ParseBool(args[i + 1])) {
          return absl::InvalidArgumentError(
              fmt::format("unexpected argument \"{0}\" after boolean flag --{1}: write --{1}={0}", args[i + 1], name));
        }
        value = "true";
      } else if (i + 1 < args.size() &&
                 LooksLikeFlag(args[i + 1], [this](std::string_view next) { return IsSingleDashFlag(next); })) {
        // A forgotten value must not swallow the next flag ("--data_dir --listen=x").
        return absl::InvalidArgumentError(
            fmt::format("flag --{0} needs a value, but the next argument \"{1}\" is a flag; to give a value "
                        "starting with '-' write it as --{0}=<value>",
                        name, args[i + 1]));
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(fmt::format("flag --{} needs a value", name));
      }
    }
    absl::Status status = Assign(flag, *value, fmt::format("flag --{}", name), Source::kFlag);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

std::string FlagSet::ValueText(const Flag& flag) {
  switch (flag.type) {
    case Type::kString:
      return *flag.string_value;
    case Type::kInt:
      return std::to_string(*flag.int_value);
    case Type::kBool:
      return *flag.bool_value ? "true" : "false";
  }
  return "";
}

std::string FlagSet::Describe() const {
  std::string out;
  for (const auto& [name, flag] : flags_) {
    const char* source = flag.source == Source::kEnv ? "env" : flag.source == Source::kFlag ? "flag" : "default";
    out += fmt::format("{}={} ({})\n", name, ValueText(flag), source);
  }
  return out;
}

std::string FlagSet::Usage() const {
  std::string out =
      fmt::format("Usage: {} [--flag=value ...]\n\nFlags (env CONTACTS_<NAME> overrides the default):\n", program_);
  for (const auto& [name, flag] : flags_) {
    const char* type = flag.type == Type::kString ? "string" : flag.type == Type::kInt ? "int" : "bool";
    const std::string range = flag.type == Type::kInt ? RangeText(flag.range) : "";
    out += fmt::format("  --{} ({}; env {})\n      {}{} Default: \"{}\".\n", name, type, EnvName(name), flag.help,
                       range.empty() ? "" : fmt::format(" Range: {}.", range), flag.default_text);
  }
  return out;
}

CommonFlags RegisterCommonFlags(FlagSet& flags, std::string default_listen, std::string default_metrics_listen,
                                std::string default_data_dir) {
  CommonFlags common;
  common.listen =
      flags.String("listen", std::move(default_listen), "HOST:PORT to serve gRPC on; port 0 picks a free one.");
  common.data_dir = flags.String("data_dir", std::move(default_data_dir), "Folder for this service's files.");
  common.metrics_listen = flags.String("metrics_listen", std::move(default_metrics_listen),
                                       "HOST:PORT of the Prometheus /metrics endpoint; \"\" or \"off\" disables it.");
  common.log_level = flags.String("log_level", "info", "trace, debug, info, warn, error, critical or off.");
  common.api_keys_file =
      flags.String("api_keys_file", "", "File of \"<api key> <tenant> <role>\" lines; empty turns auth off.");
  common.api_keys_reload_ms = flags.Int("api_keys_reload_ms", 10000,
                                        "How often --api_keys_file is checked for changes, applied without a "
                                        "restart; 0 reads it at start only.",
                                        {.min = 0, .max = int64_t{24} * 3600 * 1000});
  common.grace_period_ms =
      flags.Int("grace_period_ms", 10000, "How long in-flight calls may finish after SIGTERM.", {.min = 0});
  common.deadline_cap_ms =
      flags.Int("deadline_cap_ms", 300000, "Upper bound on any call's server-side deadline.", {.min = 1});
  // gRPC takes the limit as an int.
  common.max_message_bytes = flags.Int("max_message_bytes", int64_t{64} << 20, "Max gRPC message size (bytes).",
                                       {.min = 1, .max = std::numeric_limits<int32_t>::max()});
  common.tls_cert_file = flags.String("tls_cert_file", "",
                                      "PEM certificate chain of the gRPC listener; with --tls_key_file turns TLS on, "
                                      "empty serves plaintext.");
  common.tls_key_file = flags.String("tls_key_file", "", "PEM private key of --tls_cert_file.");
  common.tls_client_ca_file =
      flags.String("tls_client_ca_file", "",
                   "PEM CA certificates; set, every client must present a certificate they signed (mutual TLS).");
  // A day at most: cert-manager renews a certificate well before it expires, and a longer
  // interval would leave a renewed one unused past that point.
  common.tls_refresh_interval_s =
      flags.Int("tls_refresh_interval_s", 60,
                "How often the TLS files (also the --store_tls_* ones) are re-read, so renewed certificates are used "
                "without a restart; in seconds.",
                {.min = 1, .max = 86400});
  return common;
}

StoreClientFlags RegisterStoreClientFlags(FlagSet& flags) {
  return StoreClientFlags{
      .address = flags.String("store", "127.0.0.1:50051", "HOST:PORT of contact-store."),
      .tls_ca_file = flags.String("store_tls_ca_file", "",
                                  "PEM CA certificates; set, calls to contact-store use TLS and its certificate "
                                  "must be signed by them. Empty: plaintext."),
      .tls_cert_file = flags.String("store_tls_cert_file", "",
                                    "PEM client certificate chain sent to contact-store (for its "
                                    "--tls_client_ca_file); needs --store_tls_key_file."),
      .tls_key_file = flags.String("store_tls_key_file", "", "PEM private key of --store_tls_cert_file."),
      .tls_server_name = flags.String("store_tls_server_name", "",
                                      "Name contact-store's certificate must carry, when it is not the host of "
                                      "--store (e.g. --store is an IP); empty: that host."),
  };
}

}  // namespace contacts
