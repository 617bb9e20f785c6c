#include "services/import_processor/distinct_keys.h"

#include <random>

#include <gtest/gtest.h>

#include "tests/unit/import_processor/job_test_base.h"

namespace contacts::test {
namespace {

std::vector<AttributeInfo> Schema(AttributeType key_type) {
  return {
      {"customer_id", key_type, true}, {"email", AttributeType::kEmail, false}, {"city", AttributeType::kText, false}};
}

PrimaryKeySpec Spec(AttributeType type, std::string attribute = "customer_id") {
  PrimaryKeySpec spec;
  spec.attribute = std::move(attribute);
  spec.type = type;
  spec.email_fixer = FakeTypoFixer;
  return spec;
}

// Feeds the header and rows (fields split at ',') to a check and returns its answer.
std::optional<internal::DistinctKeys> Check(PrimaryKeySpec spec, std::vector<AttributeInfo> schema,
                                            const std::vector<std::string>& header,
                                            const std::vector<std::string>& rows) {
  DistinctKeyCheck check(std::move(spec), std::move(schema));
  check.OnHeader(header);
  for (const std::string& row : rows) {
    std::vector<std::string_view> fields;
    size_t start = 0;
    while (true) {
      size_t comma = row.find(',', start);
      fields.push_back(std::string_view(row).substr(start, comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    check.OnRecord(fields);
  }
  return check.Finish();
}

TEST(DistinctKeyCheckTest, DistinctKeysNameTheSuggestedColumnAndHowTheyWereRead) {
  PrimaryKeySpec spec = Spec(AttributeType::kText);
  spec.value_options.default_country_code = "44";
  auto keys = Check(spec, Schema(AttributeType::kText), {"City", "Customer ID", "email"},
                    {"Pune,c1,a@x.com", "Pune,c2,a@x.com", "Goa,c3,"});
  ASSERT_TRUE(keys.has_value());
  EXPECT_EQ(keys->column_index(), 1u);
  EXPECT_EQ(keys->type(), v1::TEXT);
  EXPECT_EQ(keys->default_country_code(), "44");
}

TEST(DistinctKeyCheckTest, KeysEqualOnlyOnceNormalisedRepeat) {
  const std::vector<std::string> header = {"customer_id", "city"};
  EXPECT_FALSE(Check(Spec(AttributeType::kText), Schema(AttributeType::kText), header, {"c1,Pune", " c1 ,Goa"}));
  EXPECT_FALSE(
      Check(Spec(AttributeType::kEmail), Schema(AttributeType::kEmail), header, {"A@X.com,Pune", "a@x.COM,Goa"}));
  EXPECT_FALSE(Check(Spec(AttributeType::kInteger), Schema(AttributeType::kInteger), header, {"007,Pune", "7,Goa"}));
  EXPECT_FALSE(Check(Spec(AttributeType::kMobile), Schema(AttributeType::kMobile), header,
                     {"9876543210,Pune", "+91 98765 43210,Goa"}));
  EXPECT_TRUE(Check(Spec(AttributeType::kText), Schema(AttributeType::kText), header, {"c1,Pune", "c2,Pune"}));
}

TEST(DistinctKeyCheckTest, EmailsATypoFixWouldMergeRepeatWhetherOrNotTheImportFixesTypos) {
  const std::vector<std::string> header = {"customer_id"};
  const std::vector<std::string> rows = {"a@gmial.com", "a@gmail.com"};
  EXPECT_FALSE(Check(Spec(AttributeType::kEmail), Schema(AttributeType::kEmail), header, rows));
  PrimaryKeySpec no_fixer = Spec(AttributeType::kEmail);
  no_fixer.email_fixer = nullptr;
  EXPECT_TRUE(Check(no_fixer, Schema(AttributeType::kEmail), header, rows));
}

TEST(DistinctKeyCheckTest, RowsTheImportRejectsSupersedeNothing) {
  // Ragged rows and rows whose key is empty or invalid are rejected by the import, so they repeat
  // no key even when they hold one.
  EXPECT_TRUE(Check(Spec(AttributeType::kInteger), Schema(AttributeType::kInteger), {"customer_id", "city"},
                    {"1,Pune", "1", "1,Goa,extra", "x,Goa", ",Goa", ",Agra", "2,Goa"}));
}

TEST(DistinctKeyCheckTest, NoAnswerWithoutASuggestedColumnOrPastTheRowLimit) {
  EXPECT_FALSE(Check(Spec(AttributeType::kText), Schema(AttributeType::kText), {"reference", "city"}, {"c1,Pune"}));
  EXPECT_FALSE(Check(Spec(AttributeType::kText, "nope"), Schema(AttributeType::kText), {"customer_id"}, {"c1"}));
  PrimaryKeySpec limited = Spec(AttributeType::kText);
  limited.max_rows = 2;
  EXPECT_TRUE(Check(limited, Schema(AttributeType::kText), {"customer_id"}, {"c1", "c2"}));
  EXPECT_FALSE(Check(limited, Schema(AttributeType::kText), {"customer_id"}, {"c1", "c2", "c3"}));
}

TEST(AnyRepeatedTest, FindsOneRepeatAmongManyAndNoneWhereThereIsNone) {
  EXPECT_FALSE(AnyRepeated({}));
  EXPECT_FALSE(AnyRepeated({42}));
  EXPECT_TRUE(AnyRepeated({42, 42}));
  std::mt19937_64 random(7);
  std::vector<uint64_t> hashes(200000);
  for (uint64_t& hash : hashes) hash = random();
  EXPECT_FALSE(AnyRepeated(hashes));
  // Hashes that share the bitmap's bits but differ elsewhere are not repeats.
  std::vector<uint64_t> sharing_bits;
  for (uint64_t i = 0; i < 1000; ++i) sharing_bits.push_back(i << 40);
  EXPECT_FALSE(AnyRepeated(sharing_bits));
  for (size_t at : {size_t{0}, size_t{123456}, hashes.size() - 1}) {
    std::vector<uint64_t> repeated = hashes;
    repeated.push_back(hashes[at]);
    std::swap(repeated.back(), repeated[repeated.size() / 2]);
    EXPECT_TRUE(AnyRepeated(repeated)) << at;
  }
}

}  // namespace
}  // namespace contacts::test
