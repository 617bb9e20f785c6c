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
// Keeps the whole first character ("élodie@x.fr" -> "é***@x.fr"), or none if it is not valid
// UTF-8, so the result is valid UTF-8 whenever the domain is.
std::string RedactEmail(std::string_view email);

// Masks a phone number, keeping a leading '+', the number of digits and only a few of them
// (separators are dropped):
//   E.164 ('+' and 10 to 15 digits): the first 2 digits (country code, or its start) and the last
//     4: "+919876543210" -> "+91******3210", "+1 (555) 123-4567" -> "+15*****4567";
//   other numbers of 7 or more digits: the last 2: "9876543210" -> "********10",
//     "+12345678" -> "+******78";
//   fewer than 7 digits: fully masked: "+12345" -> "+*****".
std::string RedactMobile(std::string_view mobile);

}  // namespace contacts
