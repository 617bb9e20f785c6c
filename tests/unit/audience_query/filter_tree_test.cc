#include "services/audience_query/filter_tree.h"

#include <string>

#include <gtest/gtest.h>

#include "services/audience_query/filter_text.h"

namespace contacts {
namespace {

v1::Filter MustParse(const std::string& text) {
  auto parsed = ParseFilterText(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : v1::Filter();
}

std::string ErrorOf(const v1::Filter& filter) {
  auto status = ValidateFilterTree(filter);
  if (status.ok()) return "OK";
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  return std::string(status.message());
}

TEST(FilterTreeTest, DepthAndTermCount) {
  EXPECT_EQ(FilterDepth(v1::Filter()), 0);
  EXPECT_EQ(FilterDepth(MustParse("a = 1")), 1);
  EXPECT_EQ(FilterDepth(MustParse("NOT a = 1")), 2);
  EXPECT_EQ(FilterDepth(MustParse("a = 1 AND (b = 1 OR NOT c = 1)")), 4);
  EXPECT_EQ(FilterTermCount(MustParse("a = 1 AND (b = 1 OR NOT c = 1)")), 3u);
}

TEST(FilterTreeTest, FindsSegmentTermsAnywhere) {
  EXPECT_FALSE(HasSegmentTerms(MustParse("a = 1 AND in_list(\"x\")")));
  EXPECT_TRUE(HasSegmentTerms(MustParse("a = 1 AND (b = 2 OR NOT in_segment(\"x\"))")));
  EXPECT_EQ(SegmentTermNames(MustParse("in_segment(\"b\") OR NOT (in_segment(\"a\") AND in_segment(\"b\"))")),
            (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(SegmentTermNames(MustParse("in_list(\"b\")")).empty());
}

TEST(FilterTreeTest, ParsedTreesAreValid) {
  EXPECT_EQ(ErrorOf(MustParse("a BETWEEN 1 AND 2 OR b IN (1) OR c IS SET OR blacklisted(\"sms\") OR "
                              "created_between(\"\", \"\")")),
            "OK");
}

TEST(FilterTreeTest, EmptyNodesAreNamedByPath) {
  EXPECT_EQ(ErrorOf(v1::Filter()), "filter: empty filter node (set one of and, or, not, term)");
  v1::Filter filter = MustParse("a = 1 AND NOT b = 2");
  filter.mutable_and_()->mutable_filters(1)->mutable_not_()->Clear();
  EXPECT_EQ(ErrorOf(filter), "filter.and[1].not: empty filter node (set one of and, or, not, term)");
  v1::Filter empty_or;
  empty_or.mutable_or_();
  EXPECT_EQ(ErrorOf(empty_or), "filter.or: needs at least one filter");
  v1::Filter empty_term;
  empty_term.mutable_term();
  EXPECT_EQ(ErrorOf(empty_term), "filter.term: term has no kind");
}

TEST(FilterTreeTest, PredicateShapes) {
  v1::Filter filter = MustParse("a BETWEEN 1 AND 2");
  filter.mutable_term()->mutable_attribute()->mutable_values()->RemoveLast();
  EXPECT_EQ(ErrorOf(filter), "filter.term.attribute: BETWEEN needs 2 values, got 1");

  filter = MustParse("a IN (1)");
  filter.mutable_term()->mutable_attribute()->clear_values();
  EXPECT_EQ(ErrorOf(filter), "filter.term.attribute: IN needs at least 1 value, got 0");

  filter = MustParse("a IS SET");
  filter.mutable_term()->mutable_attribute()->add_values("x");
  EXPECT_EQ(ErrorOf(filter), "filter.term.attribute: IS SET needs 0 values, got 1");

  filter = MustParse("a = 1");
  filter.mutable_term()->mutable_attribute()->set_op(v1::OPERATOR_UNSPECIFIED);
  EXPECT_EQ(ErrorOf(filter), "filter.term.attribute: operator is not set");

  filter.mutable_term()->mutable_attribute()->set_op(static_cast<v1::Operator>(99));
  EXPECT_EQ(ErrorOf(filter), "filter.term.attribute: unknown operator 99");

  filter = MustParse("a = 1");
  filter.mutable_term()->mutable_attribute()->set_attribute("1a");
  EXPECT_EQ(ErrorOf(filter), "filter.term.attribute: attribute name \"1a\" is not of the form [A-Za-z][A-Za-z0-9_]*");
  filter.mutable_term()->mutable_attribute()->set_attribute("");
  EXPECT_EQ(ErrorOf(filter), "filter.term.attribute: attribute name is empty");
}

TEST(FilterTreeTest, NamesIdentityAndChannelMustBeSet) {
  v1::Filter filter;
  filter.mutable_term()->set_in_list("");
  EXPECT_EQ(ErrorOf(filter), "filter.term.in_list: list name is empty");
  filter.mutable_term()->set_in_segment("");
  EXPECT_EQ(ErrorOf(filter), "filter.term.in_segment: segment name is empty");
  filter.mutable_term()->set_in_control_group("");
  EXPECT_EQ(ErrorOf(filter), "filter.term.in_control_group: control group name is empty");
  filter.mutable_term()->set_identity(v1::IDENTITY_UNSPECIFIED);
  EXPECT_EQ(ErrorOf(filter), "filter.term.identity: identity is not set or unknown");
  filter.mutable_term()->set_blacklisted(v1::CHANNEL_UNSPECIFIED);
  EXPECT_EQ(ErrorOf(filter), "filter.term.blacklisted: channel is not set or unknown");
}

// No attribute, list, segment or control group can have a longer name (contact-store refuses
// them), and the store's answer would echo the whole name in a status header too large for gRPC.
TEST(FilterTreeTest, RefusesNamesLongerThanTheStoreAllows) {
  v1::Filter filter = MustParse("a = 1");
  filter.mutable_term()->mutable_attribute()->set_attribute(std::string(kMaxAttributeNameBytes, 'a'));
  EXPECT_EQ(ErrorOf(filter), "OK");
  filter.mutable_term()->mutable_attribute()->set_attribute(std::string(kMaxAttributeNameBytes + 1, 'a'));
  EXPECT_EQ(ErrorOf(filter), "filter.term.attribute: attribute name is 65 bytes long, at most 64 are allowed");
  filter.mutable_term()->set_in_list(std::string(kMaxCatalogNameBytes, 'x'));
  EXPECT_EQ(ErrorOf(filter), "OK");
  filter.mutable_term()->set_in_list(std::string(20000, 'x'));
  EXPECT_EQ(ErrorOf(filter), "filter.term.in_list: list name is 20000 bytes long, at most 128 are allowed");
  filter.mutable_term()->set_in_segment(std::string(129, 'x'));
  EXPECT_EQ(ErrorOf(filter), "filter.term.in_segment: segment name is 129 bytes long, at most 128 are allowed");
  filter.mutable_term()->set_in_control_group(std::string(129, 'x'));
  EXPECT_EQ(ErrorOf(filter),
            "filter.term.in_control_group: control group name is 129 bytes long, at most 128 are allowed");
}

// contact-store evaluates no IN list longer than 10,000 values: a longer one is refused before it
// can be saved in a segment that could then never be counted.
TEST(FilterTreeTest, RefusesInListsLongerThanTheStoreEvaluates) {
  EXPECT_EQ(kMaxInValues, 10000);
  v1::Filter filter = MustParse("a = 1 AND city IN (\"x\")");
  auto* values = filter.mutable_and_()->mutable_filters(1)->mutable_term()->mutable_attribute()->mutable_values();
  while (values->size() < kMaxInValues) values->Add(std::to_string(values->size()));
  EXPECT_EQ(ErrorOf(filter), "OK");
  values->Add("one too many");
  EXPECT_EQ(ErrorOf(filter),
            "filter.and[1].term.attribute: IN on \"city\" has 10001 values, at most 10000 are allowed");
  while (values->size() < 25000) values->Add("v");
  EXPECT_EQ(ErrorOf(filter),
            "filter.and[1].term.attribute: IN on \"city\" has 25000 values, at most 10000 are allowed");
}

TEST(FilterTreeTest, RefusesTreesThatAreTooDeepOrTooLarge) {
  v1::Filter deep = MustParse("a = 1");
  for (int i = 0; i < kMaxFilterDepth; ++i) {
    v1::Filter parent;
    *parent.mutable_not_() = deep;
    deep = parent;
  }
  EXPECT_EQ(ErrorOf(deep), "filter: nests 33 levels deep, at most 32 are allowed");

  v1::Filter wide;
  for (size_t i = 0; i <= kMaxFilterTerms; ++i) *wide.mutable_or_()->add_filters() = MustParse("a = 1");
  EXPECT_EQ(ErrorOf(wide), "filter: has 10001 terms, at most 10000 are allowed");
}

}  // namespace
}  // namespace contacts
