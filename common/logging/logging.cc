#include "common/logging/logging.h"

#include <cctype>
#include <optional>

#include "absl/strings/ascii.h"
#include "fmt/format.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace contacts {
namespace {

std::optional<spdlog::level::level_enum> ParseLevel(std::string_view text) {
  std::string lower = absl::AsciiStrToLower(std::string(text));
  if (lower == "trace") return spdlog::level::trace;
  if (lower == "debug") return spdlog::level::debug;
  if (lower == "info") return spdlog::level::info;
  if (lower == "warn" || lower == "warning") return spdlog::level::warn;
  if (lower == "error") return spdlog::level::err;
  if (lower == "critical") return spdlog::level::critical;
  if (lower == "off") return spdlog::level::off;
  return std::nullopt;
}

}  // namespace

absl::Status InitLogging(std::string_view level, std::string_view service) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto named = std::make_shared<spdlog::logger>(std::string(service), std::move(sink));
  named->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %L %n [%t] %v", spdlog::pattern_time_type::utc);
  std::optional<spdlog::level::level_enum> parsed = ParseLevel(level);
  named->set_level(parsed.value_or(spdlog::level::info));
  named->flush_on(spdlog::level::trace);  // stderr is unbuffered anyway; keep lines whole and prompt.
  spdlog::set_default_logger(named);
  if (!parsed) {
    return absl::InvalidArgumentError(
        fmt::format("log level \"{}\" is not one of trace, debug, info, warn, error, critical, off", level));
  }
  return absl::OkStatus();
}

std::string RedactEmail(std::string_view email) {
  size_t at = email.rfind('@');
  if (at == std::string_view::npos || at == 0) return "***";
  return fmt::format("{}***{}", email.substr(0, 1), email.substr(at));
}

std::string RedactMobile(std::string_view mobile) {
  std::string digits;
  for (char c : mobile) {
    if (std::isdigit(static_cast<unsigned char>(c))) digits += c;
  }
  bool plus = !mobile.empty() && mobile.front() == '+';
  if (digits.size() < 7) return std::string(plus ? "+" : "") + std::string(digits.size(), '*');
  return fmt::format("{}{}{}{}", plus ? "+" : "", digits.substr(0, 2), std::string(digits.size() - 6, '*'),
                     digits.substr(digits.size() - 4));
}

}  // namespace contacts
