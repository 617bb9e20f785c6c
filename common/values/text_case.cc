#include "common/values/text_case.h"

namespace contacts {

std::string AsciiLower(std::string_view text) {
  std::string out(text);
  AsciiLowerInPlace(out);
  return out;
}

void AsciiLowerInPlace(std::string& text) {
  for (char& c : text) c = AsciiLowerChar(c);
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLowerChar(a[i]) != AsciiLowerChar(b[i])) return false;
  }
  return true;
}

bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && EqualsIgnoreCase(text.substr(0, prefix.size()), prefix);
}

bool EndsWithIgnoreCase(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && EqualsIgnoreCase(text.substr(text.size() - suffix.size()), suffix);
}

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) return true;
  if (needle.size() > haystack.size()) return false;
  // Scan for the first needle byte, then verify; O(n*m) worst case, linear for the short needles
  // filters use in practice.
  const char first = AsciiLowerChar(needle[0]);
  const std::string_view rest = needle.substr(1);
  const size_t last_start = haystack.size() - needle.size();
  for (size_t i = 0; i <= last_start; ++i) {
    if (AsciiLowerChar(haystack[i]) != first) continue;
    if (EqualsIgnoreCase(haystack.substr(i + 1, rest.size()), rest)) return true;
  }
  return false;
}

}  // namespace contacts
