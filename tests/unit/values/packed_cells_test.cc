// Packed cells: the round trip, and every way the bytes can be malformed.
#include "common/values/packed_cells.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace contacts {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(PackedCellsTest, RowsComeBackAsWrittenWithEmptyAndLongValues) {
  const std::string long_value(300, 'x');  // a two-byte length
  std::string cells;
  for (std::string_view value : {"C1", "", "ana@x.io", long_value.c_str(), "Pune", ""}) AppendPackedCell(&cells, value);
  EXPECT_EQ(cells.substr(0, 3), std::string("\x02"
                                            "C1",
                                            3));
  std::vector<std::string_view> out;
  ASSERT_TRUE(SplitPackedCells(cells, 2, 3, &out).ok());
  EXPECT_THAT(out, ElementsAre("C1", "", "ana@x.io", long_value, "Pune", ""));
  ASSERT_TRUE(SplitPackedCells("", 0, 3, &out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(PackedCellsTest, MalformedBytesNameTheRowColumnAndByte) {
  std::string cells;
  AppendPackedCell(&cells, "C1");
  AppendPackedCell(&cells, "ana@x.io");
  std::vector<std::string_view> out;
  // One row fewer in the bytes than announced: the second row's first length is missing.
  absl::Status status = SplitPackedCells(cells, 2, 2, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("row 1 column 0: the bytes end before the value's length at byte 12"));
  // A value cut short.
  status = SplitPackedCells(cells.substr(0, cells.size() - 1), 1, 2, &out);
  EXPECT_THAT(status.message(), HasSubstr("row 0 column 1: a value of 8 bytes runs past the end at byte 4"));
  // Bytes left over.
  status = SplitPackedCells(cells + "\x01z", 1, 2, &out);
  EXPECT_THAT(status.message(), HasSubstr("2 bytes left after the last of 1 rows, at byte 12"));
  // A length whose varint never ends, and one past 64 bits.
  status = SplitPackedCells("\xff\xff", 1, 1, &out);
  EXPECT_THAT(status.message(), HasSubstr("the bytes end before the value's length"));
  status = SplitPackedCells(std::string(10, '\xff') + "\x01", 1, 1, &out);
  EXPECT_THAT(status.message(), HasSubstr("the value's length overflows"));
  // The largest length a varint can hold is still checked against the bytes left.
  status = SplitPackedCells(std::string(9, '\xff') + "\x01", 1, 1, &out);
  EXPECT_THAT(status.message(), HasSubstr("runs past the end"));
}

}  // namespace
}  // namespace contacts
