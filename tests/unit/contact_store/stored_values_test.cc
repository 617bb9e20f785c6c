#include "services/contact_store/stored_values.h"

#include <string>

#include <gtest/gtest.h>

namespace contacts::store {
namespace {

using contacts::internal::StoredContact;

TEST(StoredValuesTest, SetReplacesAndEmptyRemoves) {
  StoredContact contact;
  SetStoredValue(&contact, 3, "Pune");
  SetStoredValue(&contact, 1, "C1");
  SetStoredValue(&contact, 3, "Goa");
  EXPECT_EQ(contact.values_size(), 2);
  EXPECT_EQ(StoredValueOf(contact, 3), "Goa");
  EXPECT_EQ(StoredValueOf(contact, 1), "C1");
  EXPECT_EQ(FindStoredValue(contact, 2), nullptr);
  SetStoredValue(&contact, 3, "");
  SetStoredValue(&contact, 9, "");  // removing what is not there changes nothing
  EXPECT_EQ(contact.values_size(), 1);
  EXPECT_EQ(FindStoredValue(contact, 3), nullptr);
  EXPECT_EQ(StoredValueOf(contact, 3), "");
  EXPECT_EQ(StoredValueOf(contact, 1), "C1");
}

TEST(StoredValuesTest, SameValuesWhateverTheOrder) {
  StoredContact a;
  SetStoredValue(&a, 1, "x");
  SetStoredValue(&a, 2, "y");
  StoredContact b;
  SetStoredValue(&b, 2, "y");
  SetStoredValue(&b, 1, "x");
  EXPECT_TRUE(SameStoredValues(a, b));
  SetStoredValue(&b, 2, "z");
  EXPECT_FALSE(SameStoredValues(a, b));
  SetStoredValue(&b, 2, "");
  EXPECT_FALSE(SameStoredValues(a, b));
}

// Records written while `values` was a map<uint32, bytes> (before session 11) hold the same bytes:
// each value is a length-delimited field 3 holding key = 1 (varint) and value = 2 (bytes).
TEST(StoredValuesTest, ReadsRecordsWrittenAsAMap) {
  auto entry = [](uint8_t id, const std::string& value) {
    std::string body = {'\x08', static_cast<char>(id), '\x12', static_cast<char>(value.size())};
    body += value;
    return std::string{'\x1a', static_cast<char>(body.size())} + body;
  };
  // primary_key = "C7", then three entries; the map kept the last of a repeated key.
  const std::string record = std::string(
                                 "\x0a\x02"
                                 "C7",
                                 4) +
                             entry(1, "C7") + entry(4, "old") + entry(4, "Goa");
  StoredContact contact;
  ASSERT_TRUE(contact.ParseFromString(record));
  EXPECT_EQ(contact.primary_key(), "C7");
  EXPECT_EQ(StoredValueOf(contact, 1), "C7");
  EXPECT_EQ(StoredValueOf(contact, 4), "Goa");
  // And what is written now reads back the same way.
  StoredContact written;
  written.set_primary_key("C7");
  SetStoredValue(&written, 1, "C7");
  SetStoredValue(&written, 4, "Goa");
  EXPECT_EQ(written.SerializeAsString(), std::string("\x0a\x02"
                                                     "C7",
                                                     4) +
                                             entry(1, "C7") + entry(4, "Goa"));
}

}  // namespace
}  // namespace contacts::store
