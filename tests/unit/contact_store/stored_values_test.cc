#include "services/contact_store/stored_values.h"

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace contacts::store {
namespace {

using contacts::internal::StoredContact;

using Entries = std::vector<std::pair<uint32_t, std::string>>;

Entries EntriesOf(const StoredContact& contact) {
  Entries out;
  ForEachStoredValue(contact, [&](uint32_t id, std::string_view value) { out.emplace_back(id, std::string(value)); });
  return out;
}

// A record as writers before session 19 left it: each value a StoredValue message.
StoredContact OldForm(const Entries& entries) {
  StoredContact contact;
  for (const auto& [id, value] : entries) {
    contacts::internal::StoredValue* entry = contact.add_values();
    entry->set_attribute_id(id);
    entry->set_value(value);
  }
  return contact;
}

TEST(StoredValuesTest, SetReplacesAndEmptyRemoves) {
  StoredContact contact;
  SetStoredValue(&contact, 3, "Pune");
  SetStoredValue(&contact, 1, "C1");
  SetStoredValue(&contact, 3, "Goa");
  EXPECT_EQ(StoredValueCount(contact), 2);
  EXPECT_EQ(StoredValueOf(contact, 3), "Goa");
  EXPECT_EQ(StoredValueOf(contact, 1), "C1");
  EXPECT_EQ(FindStoredValue(contact, 2), std::nullopt);
  SetStoredValue(&contact, 3, "");
  SetStoredValue(&contact, 9, "");  // removing what is not there changes nothing
  EXPECT_EQ(StoredValueCount(contact), 1);
  EXPECT_EQ(FindStoredValue(contact, 3), std::nullopt);
  EXPECT_EQ(StoredValueOf(contact, 3), "");
  EXPECT_EQ(StoredValueOf(contact, 1), "C1");
  EXPECT_EQ(contact.values_size(), 0);  // written packed only
}

TEST(StoredValuesTest, SameValuesWhateverTheOrderOrForm) {
  StoredContact a;
  SetStoredValue(&a, 1, "x");
  SetStoredValue(&a, 2, "y");
  StoredContact b;
  SetStoredValue(&b, 2, "y");
  SetStoredValue(&b, 1, "x");
  EXPECT_TRUE(SameStoredValues(a, b));
  EXPECT_TRUE(SameStoredValues(a, OldForm({{2, "y"}, {1, "x"}})));
  EXPECT_FALSE(SameStoredValues(a, OldForm({{2, "y"}})));
  SetStoredValue(&b, 2, "z");
  EXPECT_FALSE(SameStoredValues(a, b));
  SetStoredValue(&b, 2, "");
  EXPECT_FALSE(SameStoredValues(a, b));
}

// Records written while `values` was a map<uint32, bytes> (before session 11), or a repeated
// StoredValue (until session 19), hold the same bytes: each value is a length-delimited field 3
// holding key = 1 (varint) and value = 2 (bytes). Records written now hold field 9.
TEST(StoredValuesTest, ReadsRecordsOfEveryForm) {
  auto entry = [](uint8_t id, const std::string& value) {
    std::string body = {'\x08', static_cast<char>(id), '\x12', static_cast<char>(value.size())};
    body += value;
    return std::string{'\x1a', static_cast<char>(body.size())} + body;
  };
  const std::string pk_field(
      "\x0a\x02"
      "C7",
      4);
  // Three entries; the map kept the last of a repeated key.
  StoredContact contact;
  ASSERT_TRUE(contact.ParseFromString(pk_field + entry(1, "C7") + entry(4, "old") + entry(4, "Goa")));
  EXPECT_EQ(contact.primary_key(), "C7");
  EXPECT_EQ(StoredValueOf(contact, 1), "C7");
  EXPECT_EQ(StoredValueOf(contact, 4), "Goa");

  StoredContact written;
  written.set_primary_key("C7");
  SetStoredValue(&written, 1, "C7");
  SetStoredValue(&written, 4, "Goa");
  const std::string packed(
      "\x01\x02"
      "C7"
      "\x04\x03"
      "Goa",
      9);
  EXPECT_EQ(written.SerializeAsString(), pk_field + "\x4a\x09" + packed);
}

TEST(StoredValuesTest, SettingAValueMovesAnOldRecordToThePackedForm) {
  StoredContact contact = OldForm({{1, "C1"}, {4, "old"}, {4, "Goa"}, {7, "x@y.io"}});
  SetStoredValue(&contact, 7, "z@y.io");
  EXPECT_EQ(contact.values_size(), 0);
  EXPECT_EQ(StoredValueOf(contact, 1), "C1");
  EXPECT_EQ(StoredValueOf(contact, 4), "Goa");  // still the last of the repeated id
  EXPECT_EQ(StoredValueOf(contact, 7), "z@y.io");

  StoredContact removed = OldForm({{1, "C1"}, {4, "Goa"}});
  SetStoredValue(&removed, 4, "");
  EXPECT_EQ(EntriesOf(removed), (Entries{{1, "C1"}}));
}

// An old record may repeat an id (the last entry counts): a change that adds a value must not
// look like no change because the repeated entries made the counts equal.
TEST(StoredValuesTest, SameValuesLooksBothWaysPastRepeatedIds) {
  const StoredContact stored = OldForm({{4, "Goa"}, {4, "Goa"}});
  StoredContact next = stored;
  StoredContact changes;
  AppendPackedValue(changes.mutable_packed_values(), 4, "Goa");
  AppendPackedValue(changes.mutable_packed_values(), 7, "x");
  MergeStoredValues(&next, changes);
  EXPECT_EQ(StoredValueCount(next), StoredValueCount(stored));
  EXPECT_FALSE(SameStoredValues(stored, next));
  EXPECT_FALSE(SameStoredValues(next, stored));
  EXPECT_TRUE(SameStoredValues(stored, OldForm({{4, "Goa"}})));
  EXPECT_FALSE(SameStoredValues(OldForm({{4, "old"}, {4, "Goa"}}), OldForm({{4, "old"}})));
}

TEST(StoredValuesTest, ParsingRefusesRecordsWhosePackedValuesAreCutShort) {
  StoredContact good;
  good.set_primary_key("C1");
  SetStoredValue(&good, 1, "C1");
  SetStoredValue(&good, 4, "Goa");
  StoredContact parsed;
  EXPECT_TRUE(ParseStoredContact(good.SerializeAsString(), &parsed));
  EXPECT_EQ(StoredValueOf(parsed, 4), "Goa");
  StoredContact cut = good;
  cut.mutable_packed_values()->pop_back();  // the last value shorter than its length says
  EXPECT_FALSE(ParseStoredContact(cut.SerializeAsString(), &parsed));
  EXPECT_FALSE(ParseStoredContact(std::string("\x4a\x05\x01", 3), &parsed));  // protobuf refuses it too
  EXPECT_TRUE(ParseStoredContact(OldForm({{1, "C1"}}).SerializeAsString(), &parsed));
}

TEST(StoredValuesTest, MergeSetsReplacesAndRemovesInOnePass) {
  StoredContact contact = OldForm({{1, "C1"}, {2, "Pune"}, {3, "a@b.io"}});
  StoredContact changes;
  // A resolved row: "" clears an attribute.
  AppendPackedValue(changes.mutable_packed_values(), 2, "Goa");
  AppendPackedValue(changes.mutable_packed_values(), 3, "");
  AppendPackedValue(changes.mutable_packed_values(), 5, "+919900000001");
  AppendPackedValue(changes.mutable_packed_values(), 6, "");  // clearing what is not there
  MergeStoredValues(&contact, changes);
  EXPECT_EQ(contact.values_size(), 0);
  EXPECT_EQ(EntriesOf(contact), (Entries{{1, "C1"}, {2, "Goa"}, {5, "+919900000001"}}));
  // The same as setting them one by one.
  StoredContact one_by_one = OldForm({{1, "C1"}, {2, "Pune"}, {3, "a@b.io"}});
  ForEachStoredValue(changes, [&](uint32_t id, std::string_view value) { SetStoredValue(&one_by_one, id, value); });
  EXPECT_TRUE(SameStoredValues(contact, one_by_one));
}

TEST(StoredValuesTest, PackedEntriesTakeLongIdsAndValues) {
  const std::string long_value(300, 'v');  // a two-byte length
  StoredContact contact;
  SetStoredValue(&contact, 127, "a");
  SetStoredValue(&contact, 128, long_value);  // a two-byte id
  SetStoredValue(&contact, 4000000000u, "d");
  EXPECT_EQ(EntriesOf(contact), (Entries{{127, "a"}, {128, long_value}, {4000000000u, "d"}}));
  StoredContact parsed;
  ASSERT_TRUE(parsed.ParseFromString(contact.SerializeAsString()));
  EXPECT_TRUE(SameStoredValues(parsed, contact));
}

TEST(StoredValuesTest, AppendingWithAWriterWidensTheLengthAndUndoesErrorsAndEmptyValues) {
  StoredContact contact;
  std::string* packed = contact.mutable_packed_values();
  auto write = [](std::string text) {
    return [text](std::string* out) {
      out->append(text);
      return absl::OkStatus();
    };
  };
  auto first = AppendPackedValueWith(packed, 1, write("C1"));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, "C1");
  const std::string before_failures = *packed;
  // A writer that fails after writing part of its value, and one that writes nothing.
  auto failed = AppendPackedValueWith(packed, 2, [](std::string* out) {
    out->append("half");
    return absl::InvalidArgumentError("bad");
  });
  EXPECT_EQ(failed.status(), absl::InvalidArgumentError("bad"));
  auto empty = AppendPackedValueWith(packed, 3, write(""));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
  EXPECT_EQ(*packed, before_failures);
  const std::string long_value(300, 'v');  // a two-byte length
  auto widened = AppendPackedValueWith(packed, 200, write(long_value));
  ASSERT_TRUE(widened.ok());
  EXPECT_EQ(*widened, long_value);
  AppendPackedValue(packed, 4, "after");
  EXPECT_EQ(EntriesOf(contact), (Entries{{1, "C1"}, {200, long_value}, {4, "after"}}));
  std::string expected;
  AppendPackedValue(&expected, 1, "C1");
  AppendPackedValue(&expected, 200, long_value);
  AppendPackedValue(&expected, 4, "after");
  EXPECT_EQ(*packed, expected);
}

TEST(StoredValuesTest, AMalformedTailEndsTheEntries) {
  std::string packed;
  AppendPackedValue(&packed, 1, "C1");
  for (const std::string& tail : {std::string("\x02\x05"
                                              "ab",
                                              4),                                 // shorter than its length
                                  std::string("\x82", 1),                         // a varint cut short
                                  std::string("\x80\x80\x80\x80\x10\x00", 6)}) {  // an id beyond 32 bits
    const std::string bytes = packed + tail;  // the reader keeps a view: not a temporary
    PackedValueReader reader(bytes);
    uint32_t id = 0;
    std::string_view value;
    ASSERT_TRUE(reader.Next(&id, &value));
    EXPECT_EQ(value, "C1");
    EXPECT_FALSE(reader.Next(&id, &value));
    EXPECT_TRUE(reader.malformed());
  }
  PackedValueReader whole(packed);
  uint32_t id = 0;
  std::string_view value;
  EXPECT_TRUE(whole.Next(&id, &value));
  EXPECT_FALSE(whole.Next(&id, &value));
  EXPECT_FALSE(whole.malformed());
}

}  // namespace
}  // namespace contacts::store
