#include "common/values/attribute_type.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace contacts {
namespace {

TEST(AttributeTypeTest, NumbersMatchTheProtoEnum) {
  // contacts.v1.AttributeType: TEXT = 1 ... MOBILE = 8. Persisted: must never change.
  EXPECT_EQ(static_cast<int>(AttributeType::kText), 1);
  EXPECT_EQ(static_cast<int>(AttributeType::kInteger), 2);
  EXPECT_EQ(static_cast<int>(AttributeType::kDecimal), 3);
  EXPECT_EQ(static_cast<int>(AttributeType::kBoolean), 4);
  EXPECT_EQ(static_cast<int>(AttributeType::kDate), 5);
  EXPECT_EQ(static_cast<int>(AttributeType::kDateTime), 6);
  EXPECT_EQ(static_cast<int>(AttributeType::kEmail), 7);
  EXPECT_EQ(static_cast<int>(AttributeType::kMobile), 8);
}

TEST(AttributeTypeTest, NamesAreTheProtoNames) {
  EXPECT_EQ(AttributeTypeName(AttributeType::kText), "TEXT");
  EXPECT_EQ(AttributeTypeName(AttributeType::kInteger), "INTEGER");
  EXPECT_EQ(AttributeTypeName(AttributeType::kDecimal), "DECIMAL");
  EXPECT_EQ(AttributeTypeName(AttributeType::kBoolean), "BOOLEAN");
  EXPECT_EQ(AttributeTypeName(AttributeType::kDate), "DATE");
  EXPECT_EQ(AttributeTypeName(AttributeType::kDateTime), "DATETIME");
  EXPECT_EQ(AttributeTypeName(AttributeType::kEmail), "EMAIL");
  EXPECT_EQ(AttributeTypeName(AttributeType::kMobile), "MOBILE");
  EXPECT_EQ(AttributeTypeName(static_cast<AttributeType>(0)), "UNKNOWN");
  EXPECT_EQ(AttributeTypeName(static_cast<AttributeType>(99)), "UNKNOWN");
}

TEST(AttributeTypeTest, ParseRoundTripsEveryNameInAnyCase) {
  std::set<std::string> seen;
  for (AttributeType type : kAllAttributeTypes) {
    const std::string name(AttributeTypeName(type));
    EXPECT_TRUE(seen.insert(name).second) << name;
    EXPECT_EQ(ParseAttributeTypeName(name), type);
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(c - 'A' + 'a');
    EXPECT_EQ(ParseAttributeTypeName(lower), type) << lower;
  }
  EXPECT_EQ(ParseAttributeTypeName("DateTime"), AttributeType::kDateTime);
  EXPECT_EQ(ParseAttributeTypeName("eMaIl"), AttributeType::kEmail);
}

TEST(AttributeTypeTest, ParseRejectsUnknownNames) {
  for (const char* name :
       {"", "UNKNOWN", "INT", "STRING", " TEXT", "TEXT ", "DATE_TIME", "ATTRIBUTE_TYPE_UNSPECIFIED"}) {
    EXPECT_EQ(ParseAttributeTypeName(name), std::nullopt) << name;
  }
}

TEST(AttributeTypeTest, FromNumberAcceptsOnlyEnumValues) {
  EXPECT_EQ(AttributeTypeFromNumber(0), std::nullopt);
  EXPECT_EQ(AttributeTypeFromNumber(9), std::nullopt);
  EXPECT_EQ(AttributeTypeFromNumber(-1), std::nullopt);
  for (int n = 1; n <= 8; ++n) {
    ASSERT_TRUE(AttributeTypeFromNumber(n).has_value()) << n;
    EXPECT_EQ(static_cast<int>(*AttributeTypeFromNumber(n)), n);
  }
}

}  // namespace
}  // namespace contacts
