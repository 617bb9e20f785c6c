// Packed cells: the positional values of a batch of rows as one byte string (contacts.v1
// PackedRows.cells). Each value is its byte length as a base-128 varint (as in protobuf),
// followed by its bytes; rows follow each other, each holding one value per column in column
// order. One string per batch instead of a message and a string per value is what makes it cheap
// to build, send and parse.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace contacts {

// Appends one value to `cells`.
void AppendPackedCell(std::string* cells, std::string_view value);

// Splits `cells` into exactly `rows` rows of `columns` values each, row after row, as views into
// `cells` (out->size() == rows * columns). INVALID_ARGUMENT, naming the row and column (0-based)
// and the byte offset, when the bytes end early, a length runs past the end or overflows, or bytes
// are left after the last row.
absl::Status SplitPackedCells(std::string_view cells, size_t rows, size_t columns, std::vector<std::string_view>* out);

}  // namespace contacts
