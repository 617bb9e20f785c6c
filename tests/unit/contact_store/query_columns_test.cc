#include "services/contact_store/query_columns.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/values/typed_value.h"
#include "services/contact_store/filter_evaluator.h"
#include "services/contact_store/stored_values.h"

namespace contacts::store {
namespace {

using contacts::internal::StoredContact;
using ::testing::HasSubstr;

// Lowers the number of distinct values a column keeps per-value bitmaps for, for one test.
class ScopedValueBitmapLimit {
 public:
  explicit ScopedValueBitmapLimit(size_t limit) { AttributeColumn::set_value_bitmap_limit_for_testing(limit); }
  ~ScopedValueBitmapLimit() {
    AttributeColumn::set_value_bitmap_limit_for_testing(AttributeColumn::kDefaultValueBitmapLimit);
  }
};

// Drives one indexed attribute (id 3) of a TenantColumns through random creates, value changes,
// clears and deletes, keeping a model of every live contact's canonical value, and checks the
// column against it: predicates over the whole population and over a random universe, and the
// number of value bitmaps against the number of distinct values alive.
class RandomColumnHarness {
 public:
  static constexpr uint32_t kAttribute = 3;

  RandomColumnHarness(AttributeType type, int distinct, uint32_t seed) : type_(type), distinct_(distinct), rng_(seed) {
    columns_.set_layout({1, 2});
    columns_.AddAttributeColumn(kAttribute, type);
  }

  TenantColumns& columns() { return columns_; }
  const AttributeColumn& column() const { return *columns_.attribute_column(kAttribute); }

  std::string RandomRaw() {
    const int n = static_cast<int>(rng_() % distinct_);
    switch (type_) {
      case AttributeType::kInteger:
        return std::to_string(n - distinct_ / 2);
      case AttributeType::kDecimal:
        return fmt::format("{}.{}", n / 4 - 3, n % 4 * 25);
      case AttributeType::kBoolean:
        return n % 2 ? "true" : "false";
      case AttributeType::kDate:
        return fmt::format("2020-{:02}-{:02}", 1 + n / 28 % 12, 1 + n % 28);
      default:
        return fmt::format("v{:03}", n);
    }
  }

  std::string RandomCanonical() { return *NormalizeValue(type_, RandomRaw()); }

  // One random write: create, change, clear or delete.
  void Step(uint32_t ordinals) {
    const uint32_t o = rng_() % ordinals;
    auto it = live_.find(o);
    if (it == live_.end()) {
      StoredContact after = Contact(o, rng_() % 5 == 0 ? "" : RandomCanonical());
      columns_.Apply(nullptr, &after);
      live_[o] = after;
      return;
    }
    StoredContact before = it->second;
    switch (rng_() % 6) {
      case 0:
        columns_.Apply(&before, nullptr);
        live_.erase(it);
        return;
      case 1: {
        StoredContact after = Contact(o, "");
        columns_.Apply(&before, &after);
        it->second = after;
        return;
      }
      case 2: {  // unchanged value, other fields change
        StoredContact after = before;
        after.add_list_ids(7);
        columns_.Apply(&before, &after);
        it->second = after;
        return;
      }
      default: {
        StoredContact after = Contact(o, RandomCanonical());
        columns_.Apply(&before, &after);
        it->second = after;
      }
    }
  }

  // Checks `count` random predicates; returns how many matched something (so callers can tell the
  // check was not vacuous).
  int CheckRandomPredicates(int count) {
    int nonempty = 0;
    for (int i = 0; i < count; ++i) {
      contacts::v1::AttributePredicate p = RandomPredicate();
      auto predicate = TypedPredicate::Create(p, type_, {});
      EXPECT_TRUE(predicate.ok()) << predicate.status();
      if (!predicate.ok()) continue;
      Roaring universe = RandomUniverse();
      for (const Roaring* u : {&columns_.alive(), static_cast<const Roaring*>(&universe)}) {
        Roaring expected;
        for (const auto& [o, contact] : live_) {
          if (!u->contains(o)) continue;
          if (predicate->MatchesCanonical(StoredValueOf(contact, kAttribute))) expected.add(o);
        }
        Roaring got = column().Evaluate(*predicate, *u, /*universe_is_alive=*/u == &columns_.alive());
        EXPECT_EQ(got, expected) << p.DebugString() << "got " << got.cardinality() << ", want "
                                 << expected.cardinality();
        if (u == &columns_.alive()) {
          // Counted from the value sizes whenever the column keeps value bitmaps.
          std::optional<uint64_t> count = column().CountMatches(*predicate);
          const bool countable = p.op() == contacts::v1::Operator::IS_SET ||
                                 (column().has_value_bitmaps() && p.op() != contacts::v1::Operator::IS_NOT_SET);
          EXPECT_EQ(count.has_value(), countable) << p.DebugString();
          if (count) {
            EXPECT_EQ(*count, expected.cardinality()) << p.DebugString();
          }
        }
        nonempty += expected.cardinality() > 0 ? 1 : 0;
      }
    }
    return nonempty;
  }

  size_t DistinctValuesAlive() const {
    std::set<std::string> values;
    for (const auto& [o, contact] : live_) {
      if (std::string_view value = StoredValueOf(contact, kAttribute); !value.empty())
        values.insert(std::string(value));
    }
    return values.size();
  }

 private:
  StoredContact Contact(uint32_t o, const std::string& canonical) {
    StoredContact c;
    c.set_primary_key(fmt::format("k{}", o));
    c.set_ordinal(o);
    if (!canonical.empty()) SetStoredValue(&c, kAttribute, canonical);
    return c;
  }

  contacts::v1::AttributePredicate RandomPredicate() {
    using contacts::v1::Operator;
    static constexpr Operator kOps[] = {Operator::EQ,     Operator::NE,        Operator::LT,      Operator::LE,
                                        Operator::GT,     Operator::GE,        Operator::BETWEEN, Operator::IN,
                                        Operator::IS_SET, Operator::IS_NOT_SET};
    contacts::v1::AttributePredicate p;
    p.set_attribute("a");
    p.set_op(kOps[rng_() % std::size(kOps)]);
    if (p.op() == Operator::BETWEEN) {
      std::string a = RandomCanonical(), b = RandomCanonical();
      if (CompareValues(type_, a, b) > 0) std::swap(a, b);
      p.add_values(a);
      p.add_values(b);
    } else if (p.op() == Operator::IN) {
      for (int i = 0; i < 3; ++i) p.add_values(RandomRaw());
    } else if (p.op() != Operator::IS_SET && p.op() != Operator::IS_NOT_SET) {
      p.add_values(RandomRaw());
    }
    return p;
  }

  Roaring RandomUniverse() {
    Roaring out;
    for (uint32_t o : columns_.alive()) {
      if (rng_() % 3 != 0) out.add(o);
    }
    return out;
  }

  AttributeType type_;
  int distinct_;
  std::mt19937 rng_;
  TenantColumns columns_;
  std::map<uint32_t, StoredContact> live_;
};

class ValueBitmapTypesTest : public ::testing::TestWithParam<AttributeType> {};

TEST_P(ValueBitmapTypesTest, ValueBitmapsStayExactAcrossCreatesChangesClearsAndDeletes) {
  RandomColumnHarness harness(GetParam(), 40, 7);
  int nonempty = 0;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 300; ++i) harness.Step(/*ordinals=*/400);
    ASSERT_TRUE(harness.column().has_value_bitmaps());
    // An emptied value's bitmap is dropped: one bitmap per distinct value alive, no more.
    ASSERT_EQ(harness.column().value_bitmap_count(), harness.DistinctValuesAlive());
    nonempty += harness.CheckRandomPredicates(20);
  }
  EXPECT_GT(nonempty, 100);
}

TEST_P(ValueBitmapTypesTest, ScanAnswersStayExactAfterTheColumnOutgrowsItsValueBitmaps) {
  ScopedValueBitmapLimit limit(2);
  RandomColumnHarness harness(GetParam(), 40, 11);
  for (int i = 0; i < 300; ++i) harness.Step(400);
  // BOOLEAN has two values and so keeps its bitmaps; every other type outgrows them.
  EXPECT_EQ(harness.column().has_value_bitmaps(), GetParam() == AttributeType::kBoolean);
  int nonempty = 0;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 300; ++i) harness.Step(400);
    nonempty += harness.CheckRandomPredicates(20);
  }
  EXPECT_GT(nonempty, 50);
}

INSTANTIATE_TEST_SUITE_P(Types, ValueBitmapTypesTest,
                         ::testing::Values(AttributeType::kInteger, AttributeType::kDecimal, AttributeType::kText,
                                           AttributeType::kBoolean, AttributeType::kDate),
                         [](const auto& info) { return std::string(AttributeTypeName(info.param)); });

contacts::v1::AttributePredicate Eq(const std::string& value) {
  contacts::v1::AttributePredicate p;
  p.set_attribute("city");
  p.set_op(contacts::v1::EQ);
  p.add_values(value);
  return p;
}

Roaring EvaluateText(const AttributeColumn& column, const contacts::v1::AttributePredicate& p,
                     const Roaring& universe) {
  auto predicate = TypedPredicate::Create(p, AttributeType::kText, {});
  EXPECT_TRUE(predicate.ok());
  return column.Evaluate(*predicate, universe);
}

TEST(QueryColumnsTest, ColumnSwitchesToScanOnlyWhenDistinctValuesAliveExceedTheLimit) {
  ScopedValueBitmapLimit limit(3);
  AttributeColumn column(AttributeType::kText);
  Roaring all;
  all.addRange(0, 100);
  for (uint32_t o = 0; o < 30; ++o) column.Set(o, std::string(1, static_cast<char>('a' + o % 3)));
  EXPECT_TRUE(column.has_value_bitmaps());
  EXPECT_EQ(column.value_bitmap_count(), 3u);
  // Clearing every "a" frees its bitmap, so a new value "d" still fits.
  for (uint32_t o = 0; o < 30; o += 3) column.Set(o, "");
  EXPECT_EQ(column.value_bitmap_count(), 2u);
  column.Set(40, "d");
  column.Set(41, "b");  // an existing value adds no bitmap
  EXPECT_TRUE(column.has_value_bitmaps());
  EXPECT_EQ(column.value_bitmap_count(), 3u);
  EXPECT_EQ(EvaluateText(column, Eq("d"), all), Roaring::bitmapOf(1, 40));
  EXPECT_EQ(EvaluateText(column, Eq("a"), all).cardinality(), 0u);
  EXPECT_EQ(EvaluateText(column, Eq("b"), all).cardinality(), 11u);
  // Changing a value in place moves the ordinal between bitmaps.
  column.Set(40, "b");
  EXPECT_EQ(EvaluateText(column, Eq("d"), all).cardinality(), 0u);
  EXPECT_EQ(EvaluateText(column, Eq("b"), all).cardinality(), 12u);
  EXPECT_EQ(column.value_bitmap_count(), 2u);
  column.Set(42, "d");
  column.Set(43, "e");  // the fourth distinct value: bitmaps dropped for good
  EXPECT_FALSE(column.has_value_bitmaps());
  EXPECT_EQ(column.value_bitmap_count(), 0u);
  column.Set(43, "");
  EXPECT_FALSE(column.has_value_bitmaps());
  EXPECT_EQ(EvaluateText(column, Eq("d"), all), Roaring::bitmapOf(1, 42));
  EXPECT_EQ(EvaluateText(column, Eq("e"), all).cardinality(), 0u);
  EXPECT_EQ(EvaluateText(column, Eq("b"), all).cardinality(), 12u);
}

TEST(QueryColumnsTest, NotEqualOverManyValuesSubtractsTheRestAndStaysInsideTheUniverse) {
  AttributeColumn column(AttributeType::kInteger);
  for (uint32_t o = 0; o < 1000; ++o) column.Set(o, std::to_string(o % 10));
  contacts::v1::AttributePredicate p;
  p.set_attribute("n");
  p.set_op(contacts::v1::NE);
  p.add_values("3");
  auto predicate = TypedPredicate::Create(p, AttributeType::kInteger, {});
  ASSERT_TRUE(predicate.ok());
  Roaring universe;
  universe.addRange(500, 2000);  // beyond the column's ordinals too
  Roaring got = column.Evaluate(*predicate, universe);
  EXPECT_EQ(got.cardinality(), 450u);
  EXPECT_FALSE(got.contains(503));
  EXPECT_TRUE(got.contains(504));
  EXPECT_EQ(got.maximum(), 999u);
  EXPECT_EQ(got.minimum(), 500u);
}

// A plain date against a DATETIME is midnight UTC, but as an upper bound (<=, the end of
// BETWEEN, and > as the opposite of <=) it covers its whole day, as created_before does.
TEST(QueryColumnsTest, PlainDateAsAnUpperBoundOfADateTimeCoversItsWholeDay) {
  AttributeColumn column(AttributeType::kDateTime);
  const char* values[] = {"2024-03-30T23:59:59Z", "2024-03-31T00:00:00Z", "2024-03-31T12:00:00Z",
                          "2024-03-31T23:59:59.999999Z", "2024-04-01T00:00:00Z"};
  for (uint32_t o = 0; o < 5; ++o) column.Set(o, *NormalizeValue(AttributeType::kDateTime, values[o]));
  Roaring all;
  all.addRange(0, 5);
  auto matching = [&](contacts::v1::Operator op, std::vector<std::string> literals) {
    contacts::v1::AttributePredicate p;
    p.set_attribute("seen");
    p.set_op(op);
    for (std::string& literal : literals) p.add_values(std::move(literal));
    auto predicate = TypedPredicate::Create(p, AttributeType::kDateTime, {});
    EXPECT_TRUE(predicate.ok()) << predicate.status();
    Roaring got = column.Evaluate(*predicate, all);
    Roaring scanned;
    for (uint32_t o = 0; o < 5; ++o) {
      if (predicate->MatchesCanonical(*NormalizeValue(AttributeType::kDateTime, values[o]))) scanned.add(o);
    }
    EXPECT_EQ(got, scanned) << p.DebugString();  // the column and a record scan agree
    return got;
  };
  using contacts::v1::Operator;
  EXPECT_EQ(matching(Operator::LE, {"2024-03-31"}), Roaring::bitmapOf(4, 0, 1, 2, 3));
  EXPECT_EQ(matching(Operator::LE, {" 2024-03-31 "}), Roaring::bitmapOf(4, 0, 1, 2, 3));
  EXPECT_EQ(matching(Operator::GT, {"2024-03-31"}), Roaring::bitmapOf(1, 4));
  EXPECT_EQ(matching(Operator::BETWEEN, {"2024-03-31", "2024-03-31"}), Roaring::bitmapOf(3, 1, 2, 3));
  EXPECT_EQ(matching(Operator::LT, {"2024-03-31"}), Roaring::bitmapOf(1, 0));
  EXPECT_EQ(matching(Operator::GE, {"2024-03-31"}), Roaring::bitmapOf(4, 1, 2, 3, 4));
  EXPECT_EQ(matching(Operator::EQ, {"2024-03-31"}), Roaring::bitmapOf(1, 1));  // midnight itself
  // A datetime literal is the instant it names, in either position.
  EXPECT_EQ(matching(Operator::LE, {"2024-03-31T00:00:00Z"}), Roaring::bitmapOf(2, 0, 1));
  EXPECT_EQ(matching(Operator::BETWEEN, {"2024-03-31", "2024-03-31T12:00:00Z"}), Roaring::bitmapOf(2, 1, 2));
  // A DATE attribute compares days, untouched by the rule.
  AttributeColumn dates(AttributeType::kDate);
  dates.Set(0, "2024-03-31");
  dates.Set(1, "2024-04-01");
  contacts::v1::AttributePredicate p;
  p.set_attribute("day");
  p.set_op(Operator::GT);
  p.add_values("2024-03-31");
  auto predicate = TypedPredicate::Create(p, AttributeType::kDate, {});
  ASSERT_TRUE(predicate.ok());
  EXPECT_EQ(dates.Evaluate(*predicate, all), Roaring::bitmapOf(1, 1));
}

TEST(QueryColumnsTest, UpperBoundMicrosTrimsThePlainDateAsNormalisingDoes) {
  const int64_t midnight = *DateTimeMicrosOf(*NormalizeValue(AttributeType::kDateTime, "2024-03-31"));
  EXPECT_EQ(UpperBoundMicros("2024-03-31", midnight), midnight + kMicrosPerDay - 1);
  EXPECT_EQ(UpperBoundMicros(" 2024-03-31\t", midnight), midnight + kMicrosPerDay - 1);
  EXPECT_EQ(UpperBoundMicros("2024-03-31\u00A0", midnight), midnight + kMicrosPerDay - 1);
  EXPECT_EQ(UpperBoundMicros("2024-03-31T00:00:00Z", midnight), midnight);
}

TEST(QueryColumnsTest, FilterTimeBoundTrimsThePlainDateAsNormalisingDoes) {
  auto day_end = FilterEvaluator::TimeBound("2024-03-31", /*upper=*/true, "created");
  ASSERT_TRUE(day_end.ok());
  EXPECT_EQ(FilterEvaluator::TimeBound(" 2024-03-31 ", true, "created").value_or(0), *day_end);
  EXPECT_EQ(FilterEvaluator::TimeBound(" 2024-03-31", false, "created").value_or(0), *day_end - kMicrosPerDay + 1);
}

// A tenant with one attribute (id 5) and no column for it, and a few live contacts, so that terms
// on it are record scans with a universe to scan.
void SetUpScannedAttribute(TenantState* tenant, const std::string& name, contacts::v1::AttributeType type) {
  contacts::v1::Attribute attribute;
  attribute.set_id(5);
  attribute.set_name(name);
  attribute.set_type(type);
  tenant->attributes[5] = attribute;
  tenant->attribute_by_name[name] = 5;
  tenant->columns.set_layout({1, 2});
  for (uint32_t o = 0; o < 4; ++o) {
    StoredContact contact;
    contact.set_primary_key(fmt::format("k{}", o));
    contact.set_ordinal(o);
    tenant->columns.Apply(nullptr, &contact);
  }
}

// audience-query accepts 10,000 terms after expanding segments; the store must take them too.
TEST(QueryColumnsTest, FilterEvaluatorTakesTenThousandTermsAndRefusesMore) {
  TenantState tenant;
  SetUpScannedAttribute(&tenant, "age", contacts::v1::INTEGER);
  int scans = 0;
  RecordScan scan = [&](uint32_t, const TypedPredicate&) -> absl::StatusOr<Roaring> {
    ++scans;
    return Roaring();
  };
  auto or_of = [](int terms) {
    contacts::v1::Filter filter;
    for (int i = 0; i < terms; ++i) {
      auto* predicate = filter.mutable_or_()->add_filters()->mutable_term()->mutable_attribute();
      predicate->set_attribute("age");
      predicate->set_op(contacts::v1::EQ);
      predicate->add_values(std::to_string(i % kMaxRecordScans));
    }
    return filter;
  };
  FilterEvaluator evaluator(tenant, scan);
  EXPECT_TRUE(evaluator.Evaluate(or_of(10000)).ok());
  EXPECT_EQ(scans, kMaxRecordScans);  // repeats share a scan
  auto refused = evaluator.Evaluate(or_of(10001));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(), "filter: more than 10000 terms");
}

// Each predicate on an attribute without a column reads every record under the tenant's lock: a
// filter of 4,000 copies of one such term read them 4,000 times, and went on after its caller had
// gone, holding writes back for minutes. Repeats (in any spelling of the attribute) now share one
// scan, more than kMaxRecordScans distinct ones are refused, and a caller that has gone stops it.
TEST(QueryColumnsTest, FilterEvaluatorScansEachDistinctPredicateOnceAndStopsWhenTheCallerHasGone) {
  TenantState tenant;
  SetUpScannedAttribute(&tenant, "note", contacts::v1::TEXT);
  int scans = 0;
  RecordScan scan = [&](uint32_t, const TypedPredicate&) -> absl::StatusOr<Roaring> {
    ++scans;
    return Roaring();
  };
  auto or_of = [](int distinct, int copies) {
    contacts::v1::Filter filter;
    for (int i = 0; i < distinct * copies; ++i) {
      auto* predicate = filter.mutable_or_()->add_filters()->mutable_term()->mutable_attribute();
      predicate->set_attribute(i % 2 ? "note" : "NOTE");
      predicate->set_op(contacts::v1::EQ);
      predicate->add_values(fmt::format("v{}", i % distinct));
    }
    return filter;
  };
  FilterEvaluator evaluator(tenant, scan);
  ASSERT_TRUE(evaluator.Evaluate(or_of(1, 4000)).ok());
  EXPECT_EQ(scans, 1);
  scans = 0;
  FilterEvaluator fresh(tenant, scan);
  ASSERT_TRUE(fresh.Evaluate(or_of(kMaxRecordScans, 3)).ok());
  EXPECT_EQ(scans, kMaxRecordScans);
  FilterEvaluator another(tenant, scan);
  auto refused = another.Evaluate(or_of(kMaxRecordScans + 1, 1));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("without an index (\"note\" is one)"));

  // Over no contact (audience-query's check of a segment before saving it) nothing is read, and
  // the terms are still resolved and counted.
  scans = 0;
  contacts::v1::Filter probe;
  probe.mutable_and_()->add_filters()->mutable_term()->set_identity(contacts::v1::ANONYMOUS);
  *probe.mutable_and_()->add_filters() = or_of(3, 2);
  FilterEvaluator checking(tenant, scan);
  auto none = checking.Evaluate(probe);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->isEmpty());
  EXPECT_EQ(scans, 0);
  *probe.mutable_and_()->mutable_filters(1) = or_of(kMaxRecordScans + 1, 1);
  EXPECT_EQ(FilterEvaluator(tenant, scan).Evaluate(probe).status().code(), absl::StatusCode::kInvalidArgument);

  int checks = 0;
  FilterEvaluator stopped(tenant, scan, [&] { return ++checks > 2; });
  auto cancelled = stopped.Evaluate(or_of(1, 10));
  EXPECT_EQ(cancelled.status().code(), absl::StatusCode::kCancelled) << cancelled.status();
  EXPECT_EQ(checks, 3);
}

TEST(QueryColumnsTest, DroppedAndReaddedColumnAnswersFromItsNewValuesOnly) {
  TenantColumns columns;
  columns.set_layout({1, 2});
  columns.AddAttributeColumn(3, AttributeType::kText);
  for (uint32_t o = 0; o < 20; ++o) {
    StoredContact c;
    c.set_primary_key(fmt::format("k{}", o));
    c.set_ordinal(o);
    SetStoredValue(&c, 3, o % 2 ? "Pune" : "Goa");
    columns.Apply(nullptr, &c);
  }
  EXPECT_EQ(EvaluateText(*columns.attribute_column(3), Eq("Pune"), columns.alive()).cardinality(), 10u);
  columns.DropAttributeColumn(3);
  EXPECT_EQ(columns.attribute_column(3), nullptr);
  columns.AddAttributeColumn(3, AttributeType::kText);
  EXPECT_EQ(EvaluateText(*columns.attribute_column(3), Eq("Pune"), columns.alive()).cardinality(), 0u);
  for (uint32_t o = 0; o < 4; ++o) columns.SetAttribute(3, o, "Pune");
  EXPECT_EQ(EvaluateText(*columns.attribute_column(3), Eq("Pune"), columns.alive()), Roaring::bitmapOf(4, 0, 1, 2, 3));
  EXPECT_EQ(columns.attribute_column(3)->value_bitmap_count(), 1u);
  // Later writes maintain the new column.
  StoredContact before;
  before.set_primary_key("k1");
  before.set_ordinal(1);
  SetStoredValue(&before, 3, "Pune");
  StoredContact after = before;
  SetStoredValue(&after, 3, "Goa");
  columns.Apply(&before, &after);
  EXPECT_EQ(EvaluateText(*columns.attribute_column(3), Eq("Pune"), columns.alive()), Roaring::bitmapOf(3, 0, 2, 3));
  EXPECT_EQ(EvaluateText(*columns.attribute_column(3), Eq("Goa"), columns.alive()), Roaring::bitmapOf(1, 1));
  columns.Apply(&after, nullptr);
  EXPECT_EQ(EvaluateText(*columns.attribute_column(3), Eq("Goa"), columns.alive()).cardinality(), 0u);
  EXPECT_EQ(columns.attribute_column(3)->value_bitmap_count(), 1u);
}

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
  SetStoredValue(&a, 1, "a@x.io");
  SetStoredValue(&a, 3, "42");
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
  SetStoredValue(&b, 3, "7");
  columns.Apply(&a, &b);
  EXPECT_EQ(columns.ListSize(9), 0u);
  EXPECT_EQ(columns.attribute_column(3)->Evaluate(*predicate, columns.alive()).cardinality(), 0u);
  columns.Apply(&b, nullptr);
  EXPECT_FALSE(columns.alive().contains(5));
  EXPECT_FALSE(columns.has_email().contains(5));
}

// A large commit sets its new contacts column by column (ApplyFreshOrdinalStates); applied one
// change at a time, the same contacts must leave every column exactly as that does.
TEST(QueryColumnsTest, NewContactsOfALargeCommitEndAsWhenAppliedOneByOne) {
  auto make_columns = [] {
    TenantColumns columns;
    columns.set_layout({1, 2});
    columns.AddAttributeColumn(3, AttributeType::kInteger);
    columns.AddAttributeColumn(4, AttributeType::kText);
    return columns;
  };
  TenantColumns batched = make_columns();
  TenantColumns single = make_columns();
  std::mt19937 rng(11);
  std::vector<StoredContact> earlier(100);  // stored before the commit, some changed by it
  std::vector<StoredContact> later(600);
  std::vector<uint32_t> ordinals(earlier.size() + later.size());
  std::iota(ordinals.begin(), ordinals.end(), 0u);
  std::shuffle(ordinals.begin() + static_cast<long>(earlier.size()), ordinals.end(), rng);
  auto fill = [&](StoredContact& contact, size_t i) {
    contact.set_primary_key(fmt::format("pk{}", i));
    contact.set_ordinal(ordinals[i]);
    contact.set_created_at_micros(1000 + static_cast<int64_t>(rng() % 500));
    contact.set_modified_at_micros(2000 + static_cast<int64_t>(rng() % 500));
    if (rng() % 4 != 0) SetStoredValue(&contact, 1, fmt::format("e{}@x.io", i));
    if (rng() % 3 != 0) SetStoredValue(&contact, 2, fmt::format("+91900000{:04}", i));
    if (rng() % 5 != 0) SetStoredValue(&contact, 3, std::to_string(rng() % 20));
    if (rng() % 2 != 0) SetStoredValue(&contact, 4, fmt::format("city{}", rng() % 7));
    SetStoredValue(&contact, 5, "not indexed");
    if (rng() % 3 == 0) contact.add_list_ids(7);
    if (rng() % 2 == 0) contact.add_list_ids(9);
    if (rng() % 10 == 0) contact.add_blacklist()->set_channel(contacts::v1::SMS);
  };
  for (size_t i = 0; i < earlier.size(); ++i) {
    fill(earlier[i], i);
    batched.Apply(nullptr, &earlier[i]);
    single.Apply(nullptr, &earlier[i]);
  }
  std::vector<ContactChange> changes;
  std::vector<StoredContact> changed(earlier.size());
  for (size_t i = 0; i < earlier.size(); i += 3) {  // every third earlier contact changes or goes
    changed[i] = earlier[i];
    SetStoredValue(&changed[i], 3, std::to_string(100 + i));
    changes.emplace_back(&earlier[i], i % 2 == 0 ? &changed[i] : nullptr);
  }
  for (size_t i = 0; i < later.size(); ++i) {
    fill(later[i], earlier.size() + i);
    changes.emplace_back(nullptr, &later[i]);
  }
  std::shuffle(changes.begin(), changes.end(), rng);
  ASSERT_GE(changes.size(), TenantColumns::kFreshColumnWiseMin);
  batched.ApplyChanges(changes);
  for (const auto& [before, after] : changes) single.Apply(before, after);

  EXPECT_EQ(batched.alive(), single.alive());
  EXPECT_EQ(batched.has_email(), single.has_email());
  EXPECT_EQ(batched.has_mobile(), single.has_mobile());
  EXPECT_EQ(batched.list(7), single.list(7));
  EXPECT_EQ(batched.list(9), single.list(9));
  EXPECT_EQ(batched.blacklisted(contacts::v1::SMS), single.blacklisted(contacts::v1::SMS));
  EXPECT_GT(batched.list(9).cardinality(), 100u);
  for (int64_t from : {1000, 1100, 1250, 2000, 2300}) {
    EXPECT_EQ(batched.CreatedBetween(batched.alive(), from, from + 200),
              single.CreatedBetween(single.alive(), from, from + 200));
    EXPECT_EQ(batched.ModifiedBetween(batched.alive(), from, from + 200),
              single.ModifiedBetween(single.alive(), from, from + 200));
  }
  EXPECT_EQ(batched.ControlGroup(batched.alive(), 77, 3000), single.ControlGroup(single.alive(), 77, 3000));
  for (uint32_t id : {3u, 4u}) {
    const AttributeColumn& a = *batched.attribute_column(id);
    const AttributeColumn& b = *single.attribute_column(id);
    EXPECT_EQ(a.present(), b.present()) << id;
    EXPECT_EQ(a.value_bitmap_count(), b.value_bitmap_count()) << id;
    for (int n = 0; n < 20; ++n) {
      contacts::v1::AttributePredicate p;
      p.set_attribute("a");
      p.set_op(contacts::v1::EQ);
      p.add_values(id == 3 ? std::to_string(n) : fmt::format("city{}", n % 7));
      auto predicate = TypedPredicate::Create(p, id == 3 ? AttributeType::kInteger : AttributeType::kText, {});
      ASSERT_TRUE(predicate.ok());
      EXPECT_EQ(a.Evaluate(*predicate, batched.alive()), b.Evaluate(*predicate, single.alive())) << id << " " << n;
    }
  }
}

TEST(QueryColumnsTest, NegativeLookupsFollowInsertsUpdatesAndDeletes) {
  TenantColumns columns;
  columns.set_layout({1, 2});  // email = attribute 1, mobile = attribute 2
  auto contact = [](const std::string& pk, uint32_t ordinal, const std::string& email, const std::string& mobile) {
    contacts::internal::StoredContact c;
    c.set_primary_key(pk);
    c.set_ordinal(ordinal);
    if (!email.empty()) SetStoredValue(&c, 1, email);
    if (!mobile.empty()) SetStoredValue(&c, 2, mobile);
    SetStoredValue(&c, 3, "other");
    return c;
  };
  const auto a = contact("a", 1, "a@x.io", "+911");
  const auto b = contact("b", 2, "shared@x.io", "");
  const auto c = contact("c", 3, "shared@x.io", "+913");
  columns.Apply(nullptr, &a);
  columns.Apply(nullptr, &b);
  columns.Apply(nullptr, &c);
  EXPECT_TRUE(columns.MayHavePrimaryKey("a"));
  EXPECT_FALSE(columns.MayHavePrimaryKey("z"));
  EXPECT_TRUE(columns.MayHaveLookupValue(1, "shared@x.io"));
  EXPECT_FALSE(columns.MayHaveLookupValue(2, "shared@x.io"));  // the value, but as a mobile
  EXPECT_FALSE(columns.MayHaveLookupValue(1, ""));

  // Updates: an unchanged email and primary key stay; a changed mobile moves; a cleared one goes.
  const auto a2 = contact("a", 1, "a@x.io", "+912");
  columns.Apply(&a, &a2);
  EXPECT_TRUE(columns.MayHavePrimaryKey("a"));
  EXPECT_TRUE(columns.MayHaveLookupValue(1, "a@x.io"));
  EXPECT_FALSE(columns.MayHaveLookupValue(2, "+911"));
  EXPECT_TRUE(columns.MayHaveLookupValue(2, "+912"));
  const auto a3 = contact("a", 1, "a@x.io", "");
  columns.Apply(&a2, &a3);
  EXPECT_FALSE(columns.MayHaveLookupValue(2, "+912"));
  // The same update applied twice over leaves the counts as they were.
  columns.Apply(&a3, &a3);
  EXPECT_TRUE(columns.MayHavePrimaryKey("a"));
  EXPECT_TRUE(columns.MayHaveLookupValue(1, "a@x.io"));

  // A value two contacts share stays until the last of them lets go of it.
  const auto b2 = contact("b", 2, "b@x.io", "");
  columns.Apply(&b, &b2);
  EXPECT_TRUE(columns.MayHaveLookupValue(1, "shared@x.io"));
  columns.Apply(&c, nullptr);
  EXPECT_FALSE(columns.MayHaveLookupValue(1, "shared@x.io"));
  EXPECT_FALSE(columns.MayHaveLookupValue(2, "+913"));
  EXPECT_FALSE(columns.MayHavePrimaryKey("c"));
  // A contact moving to a new primary key (a delete and an insert in one Apply) moves its key.
  const auto b3 = contact("b-new", 2, "b@x.io", "");
  columns.Apply(&b2, &b3);
  EXPECT_FALSE(columns.MayHavePrimaryKey("b"));
  EXPECT_TRUE(columns.MayHavePrimaryKey("b-new"));
  EXPECT_TRUE(columns.MayHaveLookupValue(1, "b@x.io"));
  columns.Apply(&b3, nullptr);
  columns.Apply(&a3, nullptr);
  EXPECT_FALSE(columns.MayHavePrimaryKey("a"));
  EXPECT_FALSE(columns.MayHaveLookupValue(1, "a@x.io"));
  EXPECT_FALSE(columns.MayHaveLookupValue(1, "b@x.io"));
}

TEST(QueryColumnsTest, LookupOrdinalsNameEveryHolderOfAValueInOrder) {
  TenantColumns columns;
  columns.set_layout({1, 2});
  auto contact = [](uint32_t ordinal, const std::string& email) {
    contacts::internal::StoredContact c;
    c.set_primary_key(fmt::format("pk{}", ordinal));
    c.set_ordinal(ordinal);
    SetStoredValue(&c, 1, email);
    return c;
  };
  using Ordinals = std::vector<uint32_t>;
  std::vector<contacts::internal::StoredContact> held;
  for (uint32_t o : {7, 3, 9, 5}) held.push_back(contact(o, "shared@x.io"));
  for (const auto& c : held) columns.Apply(nullptr, &c);
  EXPECT_EQ(columns.LookupValueOrdinals(1, "shared@x.io"), (Ordinals{3, 5, 7, 9}));
  EXPECT_EQ(columns.LookupValueOrdinals(2, "shared@x.io"), Ordinals{});  // a mobile of that text
  EXPECT_EQ(columns.LookupValueOrdinals(1, "other@x.io"), Ordinals{});

  // The first holder leaving (by a changed value, then a delete) leaves the others named.
  const auto seven_moved = contact(7, "seven@x.io");
  columns.Apply(&held[0], &seven_moved);
  EXPECT_EQ(columns.LookupValueOrdinals(1, "shared@x.io"), (Ordinals{3, 5, 9}));
  EXPECT_EQ(columns.LookupValueOrdinals(1, "seven@x.io"), Ordinals{7});
  columns.Apply(&held[1], nullptr);
  EXPECT_EQ(columns.LookupValueOrdinals(1, "shared@x.io"), (Ordinals{5, 9}));
  // A contact taking a new ordinal with the same value moves its entry (ColumnUpdate applies it as
  // a delete and an insert).
  const auto nine_renumbered = contact(11, "shared@x.io");
  columns.Apply(&held[2], nullptr);
  columns.Apply(nullptr, &nine_renumbered);
  EXPECT_EQ(columns.LookupValueOrdinals(1, "shared@x.io"), (Ordinals{5, 11}));
  columns.Apply(&nine_renumbered, nullptr);
  columns.Apply(&held[3], nullptr);
  EXPECT_EQ(columns.LookupValueOrdinals(1, "shared@x.io"), Ordinals{});
  EXPECT_FALSE(columns.MayHaveLookupValue(1, "shared@x.io"));
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
