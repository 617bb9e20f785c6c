// Logging setup shared by every service: spdlog's default logger writes to stderr with time, level
// and service name on each line. Also redaction helpers, because logs at info level must never
// carry a raw email address or mobile number.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace contacts {

// Makes spdlog's default logger a stderr logger named `service` at `level` (trace, debug, info,
// warn, warning, error, critical, off; case-insensitive). Lines look like
// "2024-05-01T10:00:00.123Z I contact-store [1234] message".
// Errors: INVALID_ARGUMENT for an unknown level (the logger is still set up, at info).
absl::Status InitLogging(std::string_view level, std::string_view service);

// "john.doe@example.com" -> "j***@example.com"; no '@' -> "***". Never returns the local part.
std::string RedactEmail(std::string_view email);

// "+919876543210" -> "+91******3210": keeps a leading '+' and up to 2 digits of country code
// and the last 4 digits, masks the rest; short inputs (< 7 digits) are fully masked.
std::string RedactMobile(std::string_view mobile);

}  // namespace contacts
