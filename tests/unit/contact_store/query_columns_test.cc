#include "services/contact_store/query_columns.h"

#include <gtest/gtest.h>

namespace contacts::store {
namespace {

TEST(QueryColumnsTest, ControlGroupHashIsStableAndProportional) {
  // Pinned values: membership must never change across releases.
  EXPECT_EQ(TenantColumns::PrimaryKeyHash("C1"), TenantColumns::PrimaryKeyHash(std::string("C1")));
  EXPECT_NE(TenantColumns::PrimaryKeyHash("C1"), TenantColumns::PrimaryKeyHash("C2"));
  int in = 0;
  constexpr int kKeys = 100000;
  for (int i = 0; i < kKeys; ++i) {
    in += TenantColumns::InControlGroup(TenantColumns::PrimaryKeyHash("k" + std::to_string(i)), 12345, 1000);
  }
  EXPECT_NEAR(in / static_cast<double>(kKeys), 0.10, 0.005);
}

TEST(QueryColumnsTest, ApplyTracksListsIdentityAndDeletes) {
  TenantColumns columns;
  columns.set_layout({1, 2});
  columns.AddAttributeColumn(3, AttributeType::kInteger);
  contacts::internal::StoredContact a;
  a.set_primary_key("a");
  a.set_ordinal(5);
  (*a.mutable_values())[1] = "a@x.io";
  (*a.mutable_values())[3] = "42";
  a.add_list_ids(9);
  columns.Apply(nullptr, &a);
  EXPECT_TRUE(columns.alive().contains(5));
  EXPECT_TRUE(columns.has_email().contains(5));
  EXPECT_FALSE(columns.has_mobile().contains(5));
  EXPECT_EQ(columns.ListSize(9), 1u);
  contacts::v1::AttributePredicate p;
  p.set_attribute("n");
  p.set_op(contacts::v1::GT);
  p.add_values("41");
  auto predicate = TypedPredicate::Create(p, AttributeType::kInteger, {});
  ASSERT_TRUE(predicate.ok());
  EXPECT_EQ(columns.attribute_column(3)->Evaluate(*predicate, columns.alive()).cardinality(), 1u);
  contacts::internal::StoredContact b = a;
  b.clear_list_ids();
  (*b.mutable_values())[3] = "7";
  columns.Apply(&a, &b);
  EXPECT_EQ(columns.ListSize(9), 0u);
  EXPECT_EQ(columns.attribute_column(3)->Evaluate(*predicate, columns.alive()).cardinality(), 0u);
  columns.Apply(&b, nullptr);
  EXPECT_FALSE(columns.alive().contains(5));
  EXPECT_FALSE(columns.has_email().contains(5));
}

TEST(TypedPredicateTest, RejectsWrongLiteralsNamingTheAttribute) {
  contacts::v1::AttributePredicate p;
  p.set_attribute("age");
  p.set_op(contacts::v1::EQ);
  p.add_values("old");
  auto bad = TypedPredicate::Create(p, AttributeType::kInteger, {});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("\"age\""), std::string::npos);
  p.set_op(contacts::v1::CONTAINS);
  p.set_values(0, "1");
  EXPECT_EQ(TypedPredicate::Create(p, AttributeType::kInteger, {}).status().code(), absl::StatusCode::kInvalidArgument);
  p.set_op(contacts::v1::BETWEEN);
  EXPECT_EQ(TypedPredicate::Create(p, AttributeType::kInteger, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace contacts::store
