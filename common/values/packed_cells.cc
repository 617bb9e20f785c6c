#include "common/values/packed_cells.h"

#include <fmt/format.h>

namespace contacts {

void AppendPackedCell(std::string* cells, std::string_view value) {
  uint64_t length = value.size();
  while (length >= 0x80) {
    cells->push_back(static_cast<char>((length & 0x7f) | 0x80));
    length >>= 7;
  }
  cells->push_back(static_cast<char>(length));
  cells->append(value);
}

absl::Status SplitPackedCells(std::string_view cells, size_t rows, size_t columns, std::vector<std::string_view>* out) {
  out->clear();
  out->reserve(rows * columns);
  size_t offset = 0;
  for (size_t row = 0; row < rows; ++row) {
    for (size_t column = 0; column < columns; ++column) {
      auto bad = [&](std::string_view why) {
        return absl::InvalidArgumentError(
            fmt::format("row {} column {}: {} at byte {} of {}", row, column, why, offset, cells.size()));
      };
      uint64_t length = 0;
      int shift = 0;
      while (true) {
        if (offset >= cells.size()) return bad("the bytes end before the value's length");
        const auto byte = static_cast<unsigned char>(cells[offset++]);
        if (shift == 63 && byte > 1) return bad("the value's length overflows");
        length |= static_cast<uint64_t>(byte & 0x7f) << shift;
        if ((byte & 0x80) == 0) break;
        shift += 7;
        if (shift > 63) return bad("the value's length overflows");
      }
      if (length > cells.size() - offset) return bad(fmt::format("a value of {} bytes runs past the end", length));
      out->push_back(cells.substr(offset, length));
      offset += length;
    }
  }
  if (offset != cells.size()) {
    return absl::InvalidArgumentError(
        fmt::format("{} bytes left after the last of {} rows, at byte {}", cells.size() - offset, rows, offset));
  }
  return absl::OkStatus();
}

}  // namespace contacts
