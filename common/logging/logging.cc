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

// The length in bytes of the first character of `text` if it is well-formed UTF-8 (RFC 3629: no
// overlong form, no surrogate, nothing above U+10FFFF, not truncated), else 0.
size_t FirstCodePointSize(std::string_view text) {
  if (text.empty()) return 0;
  const auto byte = [&text](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t size = 0;
  unsigned char second_min = 0x80, second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    size = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    size = 3;
    if (lead == 0xE0) second_min = 0xA0;  // overlong
    if (lead == 0xED) second_max = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    size = 4;
    if (lead == 0xF0) second_min = 0x90;  // overlong
    if (lead == 0xF4) second_max = 0x8F;  // above U+10FFFF
  } else {
    return 0;  // a continuation byte, an overlong 2-byte lead (C0, C1) or F5..FF
  }
  if (text.size() < size || byte(1) < second_min || byte(1) > second_max) return 0;
  for (size_t i = 2; i < size; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
  }
  return size;
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
  return fmt::format("{}***{}", email.substr(0, FirstCodePointSize(email.substr(0, at))), email.substr(at));
}

std::string RedactMobile(std::string_view mobile) {
  std::string digits;
  for (char c : mobile) {
    if (std::isdigit(static_cast<unsigned char>(c))) digits += c;
  }
  const char* plus = !mobile.empty() && mobile.front() == '+' ? "+" : "";
  if (digits.size() < 7) return plus + std::string(digits.size(), '*');
  if (*plus != '\0' && digits.size() >= 10 && digits.size() <= 15) {
    // E.164 with a country code: 4 or more digits stay masked.
    return fmt::format("+{}{}{}", digits.substr(0, 2), std::string(digits.size() - 6, '*'),
                       digits.substr(digits.size() - 4));
  }
  return fmt::format("{}{}{}", plus, std::string(digits.size() - 2, '*'), digits.substr(digits.size() - 2));
}

}  // namespace contacts
