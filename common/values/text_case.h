// ASCII case folding for attribute names, type names, emails and text filters (CONTAINS,
// STARTS_WITH). Only the 26 ASCII letters are folded; every other byte, including UTF-8 sequences,
// compares exactly. That is deliberate: it is locale-free, allocation-free and byte-stable, so an
// index and a residual filter always agree. Full Unicode case folding is out of scope.
#pragma once

#include <string>
#include <string_view>

namespace contacts {

// 'A'..'Z' -> 'a'..'z'; other bytes unchanged.
constexpr char AsciiLowerChar(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Returns a copy of `text` with ASCII letters lower-cased.
std::string AsciiLower(std::string_view text);

// Lower-cases ASCII letters of `text` in place.
void AsciiLowerInPlace(std::string& text);

// True when a and b are equal after ASCII lower-casing.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// True when `needle` occurs in `haystack`, ignoring ASCII case. An empty needle is always found.
bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle);

// True when `text` begins (ends) with `prefix` (`suffix`), ignoring ASCII case.
bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix);
bool EndsWithIgnoreCase(std::string_view text, std::string_view suffix);

}  // namespace contacts
