// Lets fmt::format take absl::string_view (Debian's Abseil does not alias it to std::string_view),
// e.g. fmt::format("{}", status.message()).
#pragma once

#include <string_view>

#include <fmt/format.h>

#include "absl/strings/string_view.h"

template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view value, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(std::string_view(value.data(), value.size()), ctx);
  }
};
