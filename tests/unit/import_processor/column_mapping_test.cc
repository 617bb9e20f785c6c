#include "services/import_processor/column_mapping.h"

#include <gtest/gtest.h>

namespace contacts {
namespace {

std::vector<AttributeInfo> Schema() {
  return {{"email", AttributeType::kEmail, false},
          {"mobile", AttributeType::kMobile, false},
          {"customer_id", AttributeType::kText, true},
          {"first_name", AttributeType::kText, false},
          {"city", AttributeType::kText, false}};
}

TEST(NormalizeColumnNameTest, LowerCasesAndDropsSeparators) {
  EXPECT_EQ(NormalizeColumnName("E-mail Address"), "emailaddress");
  EXPECT_EQ(NormalizeColumnName("First_Name"), "firstname");
  EXPECT_EQ(NormalizeColumnName("  CITY "), "city");
  EXPECT_EQ(NormalizeColumnName("Ünit"), "\xc3\x9cnit");  // non-ASCII kept as is
}

TEST(SuggestAttributesTest, MatchesByNormalisedNameAndSynonyms) {
  std::vector<std::string> columns = {"E-mail", "Mobile Number", "Customer ID", "First Name", "Age", "City"};
  std::vector<std::string> got = SuggestAttributes(columns, Schema());
  EXPECT_EQ(got, (std::vector<std::string>{"email", "mobile", "customer_id", "first_name", "", "city"}));
}

TEST(SuggestAttributesTest, EmailAddressAndPhoneMapToSystemAttributes) {
  std::vector<std::string> got = SuggestAttributes({"Email Address", "Phone"}, Schema());
  EXPECT_EQ(got, (std::vector<std::string>{"email", "mobile"}));
}

TEST(SuggestAttributesTest, SuggestsEachAttributeOnce) {
  // "Email" matches exactly and wins over the earlier synonym column.
  std::vector<std::string> got = SuggestAttributes({"Mail", "Email", "E_MAIL"}, Schema());
  EXPECT_EQ(got, (std::vector<std::string>{"", "email", ""}));
}

TEST(SuggestAttributesTest, DropsTrailingNumberOrAddressWhenThatMatches) {
  std::vector<std::string> got = SuggestAttributes({"City Name", "City Address"}, Schema());
  EXPECT_EQ(got, (std::vector<std::string>{"", "city"}));
}

TEST(SuggestAttributesTest, SynonymNeedsTheAttributeToExist) {
  std::vector<std::string> got = SuggestAttributes({"Phone"}, {{"email", AttributeType::kEmail, true}});
  EXPECT_EQ(got, (std::vector<std::string>{""}));
}

AttributeType Infer(std::vector<std::string_view> values) {
  TypeInferrer inferrer;
  for (auto v : values) inferrer.Add(v);
  return inferrer.Result();
}

TEST(TypeInferrerTest, PicksTheFirstTypeAcceptingEverySample) {
  EXPECT_EQ(Infer({"1", "42", "-7"}), AttributeType::kInteger);
  EXPECT_EQ(Infer({"1", "4.5", ""}), AttributeType::kDecimal);
  EXPECT_EQ(Infer({"yes", "no", "TRUE"}), AttributeType::kBoolean);
  EXPECT_EQ(Infer({"2024-01-31", "1999/2/3"}), AttributeType::kDate);
  EXPECT_EQ(Infer({"2024-01-31", "2024-01-31T10:00:00Z"}), AttributeType::kDateTime);
  EXPECT_EQ(Infer({"a@example.com", "B@Example.org"}), AttributeType::kEmail);
  EXPECT_EQ(Infer({"+91 98765 43210", "+1 (415) 555-0100"}), AttributeType::kMobile);
  EXPECT_EQ(Infer({"Pune", "42"}), AttributeType::kText);
}

TEST(TypeInferrerTest, BlankSamplesAreIgnoredAndNoSampleMeansText) {
  EXPECT_EQ(Infer({}), AttributeType::kText);
  EXPECT_EQ(Infer({"", "  "}), AttributeType::kText);
  EXPECT_EQ(Infer({"", "12", " "}), AttributeType::kInteger);
}

}  // namespace
}  // namespace contacts
