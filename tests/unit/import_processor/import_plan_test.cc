#include "services/import_processor/import_plan.h"

#include <gtest/gtest.h>

namespace contacts {
namespace {

std::vector<AttributeInfo> Schema() {
  return {{"email", AttributeType::kEmail, false},
          {"mobile", AttributeType::kMobile, false},
          {"customer_id", AttributeType::kText, true},
          {"age", AttributeType::kInteger, false}};
}

const std::vector<std::string> kHeader = {"id", "Email", "Age", "Phone", "Notes"};

absl::StatusOr<ImportPlan> Plan(std::vector<ColumnMappingSpec> mapping, std::vector<NewAttributeSpec> create = {},
                                bool fix = false) {
  return BuildImportPlan(kHeader, mapping, Schema(), create, "customer_id", fix, ValueOptions{});
}

TEST(BuildImportPlanTest, ResolvesColumnsAndAttributes) {
  auto plan = Plan({{"id", "CUSTOMER_ID"}, {"Email", "email"}, {"Age", "age"}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->columns.size(), 3u);
  EXPECT_EQ(plan->primary_key, 0u);
  EXPECT_EQ(plan->columns[0].attribute, "customer_id");
  EXPECT_EQ(plan->columns[2].column_index, 2u);
  EXPECT_EQ(plan->columns[2].type, AttributeType::kInteger);
  EXPECT_EQ(plan->header_fields, 5u);
}

TEST(BuildImportPlanTest, RejectsUnmappedPrimaryKey) {
  auto plan = Plan({{"Email", "email"}});
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(plan.status().message().find("primary key"), std::string_view::npos);
}

TEST(BuildImportPlanTest, RejectsUnknownColumnAndAttribute) {
  EXPECT_NE(Plan({{"id", "customer_id"}, {"Nope", "email"}}).status().message().find("\"Nope\" is not in"),
            std::string_view::npos);
  EXPECT_NE(Plan({{"id", "customer_id"}, {"Notes", "notes"}}).status().message().find("does not exist"),
            std::string_view::npos);
}

TEST(BuildImportPlanTest, RejectsDuplicateMappings) {
  EXPECT_EQ(Plan({{"id", "customer_id"}, {"id", "email"}}).status().code(), absl::StatusCode::kInvalidArgument);
  auto twice = Plan({{"id", "customer_id"}, {"Email", "email"}, {"Notes", "Email"}});
  EXPECT_NE(twice.status().message().find("more than one column"), std::string_view::npos);
}

TEST(BuildImportPlanTest, NewAttributesAreCreatedUnlessTheyExistWithTheSameType) {
  auto plan = Plan({{"id", "customer_id"}, {"Notes", "notes"}, {"Age", "age"}},
                   {{"notes", AttributeType::kText, false}, {"age", AttributeType::kInteger, false}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->to_create.size(), 1u);
  EXPECT_EQ(plan->to_create[0].name, "notes");

  auto clash = Plan({{"id", "customer_id"}}, {{"age", AttributeType::kText, false}});
  EXPECT_NE(clash.status().message().find("already exists with type INTEGER"), std::string_view::npos);
  auto bad_name = Plan({{"id", "customer_id"}}, {{"9lives", AttributeType::kText, false}});
  EXPECT_EQ(bad_name.status().code(), absl::StatusCode::kInvalidArgument);
  auto no_type = Plan({{"id", "customer_id"}}, {{"x", static_cast<AttributeType>(0), false}});
  EXPECT_EQ(no_type.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BuildImportPlanTest, RejectsColumnNamePresentTwiceInHeader) {
  auto plan = BuildImportPlan({"id", "x", "x"}, {{"id", "customer_id"}, {"x", "age"}}, Schema(), {}, "customer_id",
                              false, ValueOptions{});
  EXPECT_NE(plan.status().message().find("more than once"), std::string_view::npos);
}

// Spreadsheets leave no-break spaces (U+00A0) and zero-width characters in header cells; the
// preview shows them as spaces or not at all, so a mapping typed from it names the column.
TEST(BuildImportPlanTest, MappedColumnFoundWhenTheHeaderDiffersOnlyInUnicodeWhiteSpace) {
  const std::vector<std::string> header = {"id\u00A0", "\uFEFFE-mail\u200B", "Mobile\u00A0\u00A0No", "Age"};
  auto plan = BuildImportPlan(header, {{"id", "customer_id"}, {"E-mail", "email"}, {"Mobile No", "mobile"}}, Schema(),
                              {}, "customer_id", false, ValueOptions{});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->columns.size(), 3u);
  EXPECT_EQ(plan->columns[0].column_index, 0u);
  EXPECT_EQ(plan->columns[1].column_index, 1u);
  EXPECT_EQ(plan->columns[2].column_index, 2u);
  // The job log names each column as the file spells it, trimmed.
  EXPECT_EQ(plan->columns[0].column, "id");
  EXPECT_EQ(plan->columns[1].column, "E-mail");
  EXPECT_EQ(plan->columns[2].column, "Mobile\u00A0\u00A0No");

  // Named exactly (as the preview's name is sent back) it is found too.
  auto exact = BuildImportPlan(header, {{"id\u00A0", "customer_id"}, {"Mobile\u00A0\u00A0No", "mobile"}}, Schema(), {},
                               "customer_id", false, ValueOptions{});
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_EQ(exact->columns[1].column_index, 2u);
}

TEST(BuildImportPlanTest, ColumnsThatReadAlikeAreAmbiguousUnlessNamedExactly) {
  const std::vector<std::string> header = {"id", "a b", "a\u00A0b", "Email", "Email\u00A0"};
  auto plan = [&](std::vector<ColumnMappingSpec> mapping) {
    return BuildImportPlan(header, mapping, Schema(), {}, "customer_id", false, ValueOptions{});
  };
  auto first = plan({{"id", "customer_id"}, {"a b", "age"}});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->columns[1].column_index, 1u);
  auto second = plan({{"id", "customer_id"}, {"a\u00A0b", "age"}});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->columns[1].column_index, 2u);
  auto neither = plan({{"id", "customer_id"}, {"a\u2007b", "age"}});
  EXPECT_EQ(neither.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(neither.status().message().find("matches more than one column"), std::string_view::npos)
      << neither.status();
  // Trimmed, "Email" and "Email\u00A0" are one name present twice.
  auto twice = plan({{"id", "customer_id"}, {"Email", "email"}});
  EXPECT_NE(twice.status().message().find("appears more than once"), std::string_view::npos) << twice.status();
}

TEST(BuildImportPlanTest, OneColumnNamedTwoWaysIsMappedTwice) {
  auto plan = BuildImportPlan({"id", "First\u00A0Name"},
                              {{"id", "customer_id"}, {"First Name", "age"}, {"First\u00A0Name", "email"}}, Schema(),
                              {}, "customer_id", false, ValueOptions{});
  EXPECT_NE(plan.status().message().find("is mapped twice"), std::string_view::npos) << plan.status();
}

std::optional<std::string> FakeFixer(std::string_view email) {
  if (email.ends_with("@gmial.com")) return std::string(email.substr(0, email.size() - 9)) + "gmail.com";
  return std::nullopt;
}

class RowValidatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto plan = Plan({{"id", "customer_id"}, {"Email", "email"}, {"Age", "age"}, {"Phone", "mobile"}}, {}, true);
    ASSERT_TRUE(plan.ok()) << plan.status();
    plan_ = *plan;
  }
  ImportPlan plan_;
  ValidatedRow row_;
  RowRejection rejection_;
};

TEST_F(RowValidatorTest, NormalisesAcceptedRows) {
  RowValidator validator(plan_, FakeFixer);
  ASSERT_TRUE(validator.Validate({"c1", " A@Example.COM ", "42", "098765 43210", "x"}, &row_, &rejection_));
  EXPECT_EQ(row_.values, (std::vector<std::string>{"c1", "a@example.com", "42", "+919876543210"}));
  EXPECT_TRUE(row_.fixes.empty());
  EXPECT_EQ(row_.primary_key(plan_), "c1");
}

TEST_F(RowValidatorTest, EmptyValuesAreNotSet) {
  RowValidator validator(plan_, FakeFixer);
  ASSERT_TRUE(validator.Validate({"c1", "", "", "", ""}, &row_, &rejection_));
  EXPECT_EQ(row_.values, (std::vector<std::string>{"c1", "", "", ""}));
}

TEST_F(RowValidatorTest, RejectsRaggedRows) {
  RowValidator validator(plan_, FakeFixer);
  EXPECT_FALSE(validator.Validate({"c1", "a@b.co"}, &row_, &rejection_));
  EXPECT_EQ(rejection_.reason_key, "ragged_row");
  EXPECT_EQ(rejection_.message, "row has 2 fields, the header has 5");
}

TEST_F(RowValidatorTest, RejectsInvalidValueWithColumnAndMessage) {
  RowValidator validator(plan_, FakeFixer);
  EXPECT_FALSE(validator.Validate({"c1", "a@b.co", "forty", "", ""}, &row_, &rejection_));
  EXPECT_EQ(rejection_.reason_key, "invalid_value:age");
  EXPECT_EQ(rejection_.column, "Age");
  EXPECT_EQ(rejection_.value, "forty");
  EXPECT_NE(rejection_.message.find("INTEGER"), std::string::npos);
}

TEST_F(RowValidatorTest, RejectsMissingPrimaryKey) {
  RowValidator validator(plan_, FakeFixer);
  EXPECT_FALSE(validator.Validate({"  ", "a@b.co", "1", "", ""}, &row_, &rejection_));
  EXPECT_EQ(rejection_.reason_key, "missing_primary_key");
  EXPECT_EQ(rejection_.column, "id");
}

TEST_F(RowValidatorTest, FixesEmailTyposWhenAsked) {
  RowValidator validator(plan_, FakeFixer);
  ASSERT_TRUE(validator.Validate({"c1", "Bob@GMIAL.com", "", "", ""}, &row_, &rejection_));
  EXPECT_EQ(row_.values[1], "bob@gmail.com");
  ASSERT_EQ(row_.fixes.size(), 1u);
  EXPECT_EQ(row_.fixes[0].original, "bob@gmial.com");
  EXPECT_EQ(row_.fixes[0].column, "Email");

  ImportPlan no_fix = plan_;
  no_fix.fix_email_typos = false;
  RowValidator plain(no_fix, FakeFixer);
  ASSERT_TRUE(plain.Validate({"c1", "Bob@GMIAL.com", "", "", ""}, &row_, &rejection_));
  EXPECT_EQ(row_.values[1], "bob@gmial.com");
  EXPECT_TRUE(row_.fixes.empty());
}

TEST_F(RowValidatorTest, ValidateKeyMatchesValidate) {
  RowValidator validator(plan_, FakeFixer);
  std::string key;
  EXPECT_TRUE(validator.ValidateKey({" c9 ", "", "", "", ""}, &key));
  EXPECT_EQ(key, "c9");
  EXPECT_FALSE(validator.ValidateKey({"c9", "", "x", "", ""}, &key));
}

}  // namespace
}  // namespace contacts
