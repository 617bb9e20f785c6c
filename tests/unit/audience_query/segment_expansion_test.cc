#include "services/audience_query/segment_expansion.h"

#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "contacts/v1/contact_store.pb.h"

#include "services/audience_query/filter_spec.h"
#include "services/audience_query/filter_text.h"
#include "services/audience_query/filter_tree.h"

namespace contacts {
namespace {

using google::protobuf::util::MessageDifferencer;
using ::testing::UnorderedElementsAre;

v1::Filter MustParse(const std::string& text) {
  auto parsed = ParseFilterText(text);
  EXPECT_TRUE(parsed.ok()) << text << ": " << parsed.status();
  return parsed.ok() ? *parsed : v1::Filter();
}

// Segments saved as text; counts lookups per name.
class FakeSegments {
 public:
  void Save(const std::string& name, const std::string& text) { saved_[name] = MustParse(text); }
  void SaveTree(const std::string& name, const v1::Filter& filter) { saved_[name] = filter; }

  SegmentLookup Lookup() {
    return [this](const std::string& name) -> absl::StatusOr<v1::Filter> {
      ++lookups_[name];
      ++total_lookups_;
      if (!unavailable_.empty()) return absl::UnavailableError(unavailable_);
      auto found = saved_.find(name);
      if (found == saved_.end()) return absl::NotFoundError("no segment " + name);
      return found->second;
    };
  }

  // As contact-store answers: segment names match case-insensitively (ASCII).
  SegmentLookup StoreLikeLookup() {
    return [this](const std::string& name) -> absl::StatusOr<v1::Filter> {
      ++total_lookups_;
      for (const auto& [saved_name, filter] : saved_) {
        if (LowerAscii(saved_name) == LowerAscii(name)) return filter;
      }
      return absl::NotFoundError("no segment " + name);
    };
  }

  static std::string LowerAscii(std::string text) {
    for (char& c : text) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    return text;
  }

  std::map<std::string, v1::Filter> saved_;
  std::map<std::string, int> lookups_;
  int total_lookups_ = 0;  // by either lookup: each is one GetSegment round trip in production
  std::string unavailable_;
};

std::string ExpandedTextWith(const std::string& text, const SegmentLookup& lookup) {
  auto expanded = ExpandSegments(MustParse(text), lookup);
  if (!expanded.ok()) return "error: " + std::string(expanded.status().message());
  return PrintFilterText(*expanded);
}

std::string ExpandedText(const std::string& text, FakeSegments& segments) {
  return ExpandedTextWith(text, segments.Lookup());
}

TEST(SegmentExpansionTest, FilterWithoutSegmentsIsUnchanged) {
  FakeSegments segments;
  EXPECT_EQ(ExpandedText("a = 1 AND in_list(\"x\")", segments), "a = 1 AND in_list(\"x\")");
  EXPECT_TRUE(segments.lookups_.empty());
}

TEST(SegmentExpansionTest, ReplacesSegmentTermsByTheirFilter) {
  FakeSegments segments;
  segments.Save("pune", "city = \"Pune\"");
  segments.Save("adults", "age >= 18 OR verified = true");
  EXPECT_EQ(ExpandedText("in_segment(\"pune\") AND NOT in_segment(\"adults\")", segments),
            "city = \"Pune\" AND NOT (age >= 18 OR verified = true)");
}

TEST(SegmentExpansionTest, ExpandsNestedSegments) {
  FakeSegments segments;
  segments.Save("a", "x = 1 AND in_segment(\"b\")");
  segments.Save("b", "y = 2 OR in_segment(\"c\")");
  segments.Save("c", "z = 3");
  EXPECT_EQ(ExpandedText("in_segment(\"a\")", segments), "x = 1 AND (y = 2 OR z = 3)");
}

TEST(SegmentExpansionTest, LooksUpEachSegmentOncePerCall) {
  FakeSegments segments;
  segments.Save("a", "in_segment(\"c\") OR x = 1");
  segments.Save("b", "in_segment(\"c\") AND y = 1");
  segments.Save("c", "z = 3");
  EXPECT_EQ(ExpandedText("in_segment(\"a\") AND in_segment(\"b\") AND in_segment(\"a\")", segments),
            "(z = 3 OR x = 1) AND (z = 3 AND y = 1) AND (z = 3 OR x = 1)");
  EXPECT_EQ(segments.lookups_["a"], 1);
  EXPECT_EQ(segments.lookups_["c"], 1);
}

// `in_segment("<prefix><from>") OR ... OR in_segment("<prefix><to - 1>")`.
std::string SegmentsOr(const std::string& prefix, int from, int to) {
  std::string text;
  for (int i = from; i < to; ++i) text += fmt::format("{}in_segment(\"{}{}\")", i == from ? "" : " OR ", prefix, i);
  return text;
}

// Each lookup is a round trip to the store: a segment named many times, in any case, costs one.
TEST(SegmentExpansionTest, LooksUpASegmentNamedAThousandTimesOnce) {
  FakeSegments segments;
  segments.Save("Pune", "city = \"Pune\"");
  const char* spellings[] = {"Pune", "pune", "PUNE", "pUnE"};
  std::string text;
  for (int i = 0; i < 1000; ++i) text += fmt::format("{}in_segment(\"{}\")", i == 0 ? "" : " OR ", spellings[i % 4]);
  auto expanded = ExpandSegments(MustParse(text), segments.StoreLikeLookup());
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(FilterTermCount(*expanded), 1000u);
  EXPECT_FALSE(HasSegmentTerms(*expanded));
  EXPECT_EQ(segments.total_lookups_, 1);
}

TEST(SegmentExpansionTest, RefusesTooManyDistinctSegmentsBeforeLookingAnyUp) {
  FakeSegments segments;
  for (size_t i = 0; i <= kMaxSegmentsPerFilter; ++i) segments.Save(fmt::format("s{}", i), fmt::format("x = {}", i));
  auto status = ExpandSegments(MustParse(SegmentsOr("s", 0, kMaxSegmentsPerFilter + 1)), segments.Lookup()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "the filter uses more than 100 distinct segments, counting those inside other segments; the first one "
            "over is \"s100\"");
  EXPECT_EQ(segments.total_lookups_, 0);

  // At the limit: one lookup each. Names in another case are the same segments, not more.
  const std::string at_limit =
      SegmentsOr("s", 0, kMaxSegmentsPerFilter) + " AND (" + SegmentsOr("S", 0, kMaxSegmentsPerFilter) + ")";
  auto expanded = ExpandSegments(MustParse(at_limit), segments.StoreLikeLookup());
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(segments.total_lookups_, static_cast<int>(kMaxSegmentsPerFilter));
}

// Segments inside other segments count too, each filter checked before its segments are looked
// up, so that no filter, however its segments nest, costs more than kMaxSegmentsPerFilter lookups.
TEST(SegmentExpansionTest, CountsSegmentsNestedInsideOthers) {
  FakeSegments segments;
  // top -> a0..a49, each a<i> -> b<i>: 101 segments.
  segments.Save("top", SegmentsOr("a", 0, 50));
  for (int i = 0; i < 50; ++i) {
    segments.Save(fmt::format("a{}", i), fmt::format("in_segment(\"b{}\") AND y = 1", i));
    segments.Save(fmt::format("b{}", i), "z = 1");
  }
  EXPECT_EQ(ExpandedText("in_segment(\"top\")", segments),
            "error: the filter uses more than 100 distinct segments, counting those inside other segments; the "
            "first one over is \"b49\" (used by top -> a49)");
  EXPECT_EQ(segments.total_lookups_, 100);
  segments.total_lookups_ = 0;
  EXPECT_EQ(ExpandedText("in_segment(\"a0\") AND in_segment(\"top\")", segments).rfind("error: the filter uses", 0),
            0u);
  EXPECT_LE(segments.total_lookups_, 100);
  // Without one of them it fits: 100 segments, 100 lookups.
  segments.Save("top", SegmentsOr("a", 0, 49));
  segments.total_lookups_ = 0;
  auto expanded = ExpandSegments(MustParse("in_segment(\"top\")"), segments.Lookup());
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(segments.total_lookups_, 99);

  // A saved filter naming too many is refused once it is read, before its segments are looked up.
  segments.Save("wide", SegmentsOr("w", 0, kMaxSegmentsPerFilter + 1));
  segments.total_lookups_ = 0;
  EXPECT_EQ(ExpandedText("in_segment(\"wide\")", segments),
            "error: the filter uses more than 100 distinct segments, counting those inside other segments; the "
            "first one over is \"w99\" (used by wide)");
  EXPECT_EQ(segments.total_lookups_, 1);
}

TEST(SegmentExpansionTest, RefusesCyclesNamingThem) {
  FakeSegments segments;
  segments.Save("a", "in_segment(\"b\")");
  segments.Save("b", "x = 1 AND in_segment(\"a\")");
  EXPECT_EQ(ExpandedText("in_segment(\"a\")", segments), "error: segment cycle: a -> b -> a");
  segments.Save("self", "in_segment(\"self\")");
  EXPECT_EQ(ExpandedText("q = 1 OR in_segment(\"self\")", segments), "error: segment cycle: self -> self");
  segments.Save("outer", "in_segment(\"b\")");
  EXPECT_EQ(ExpandedText("in_segment(\"outer\")", segments), "error: segment cycle: b -> a -> b");
}

TEST(SegmentExpansionTest, SameSegmentTwiceOnOnePathIsNotACycleWhenNotNested) {
  FakeSegments segments;
  segments.Save("leaf", "z = 1");
  segments.Save("both", "in_segment(\"leaf\") OR NOT in_segment(\"leaf\")");
  EXPECT_EQ(ExpandedText("in_segment(\"both\")", segments), "z = 1 OR NOT z = 1");
}

TEST(SegmentExpansionTest, RefusesUnknownSegments) {
  FakeSegments segments;
  EXPECT_EQ(ExpandedText("in_segment(\"x\")", segments), "error: unknown segment \"x\"");
  segments.Save("a", "in_segment(\"b\")");
  segments.Save("b", "in_segment(\"gone\")");
  EXPECT_EQ(ExpandedText("in_segment(\"a\")", segments), "error: unknown segment \"gone\" (used by a -> b)");
  auto status = ExpandSegments(MustParse("in_segment(\"x\")"), segments.Lookup()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

TEST(SegmentExpansionTest, PassesOtherLookupErrorsThrough) {
  FakeSegments segments;
  segments.unavailable_ = "store down";
  auto status = ExpandSegments(MustParse("in_segment(\"x\")"), segments.Lookup()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "store down");
}

TEST(SegmentExpansionTest, BoundsNestingDepth) {
  FakeSegments segments;
  for (int i = 0; i < 20; ++i) segments.Save("s" + std::to_string(i), "in_segment(\"s" + std::to_string(i + 1) + "\")");
  segments.Save("s20", "x = 1");
  const std::string error = ExpandedText("in_segment(\"s0\")", segments);
  EXPECT_EQ(error.rfind("error: segments nest deeper than 16: s0 -> s1 -> ", 0), 0u) << error;
  EXPECT_NE(error.find("s15 -> s16"), std::string::npos) << error;
  EXPECT_EQ(ExpandedText("in_segment(\"s5\")", segments), "x = 1");  // 15 levels are fine
}

// A segment expanded once is reused for its later uses; the nesting bound must still count the
// levels inside it, so a filter is refused whatever the order of its terms.
TEST(SegmentExpansionTest, BoundsNestingDepthWhateverTheOrderOfTheTerms) {
  FakeSegments segments;
  for (int i = 0; i < 20; ++i) segments.Save("s" + std::to_string(i), "in_segment(\"s" + std::to_string(i + 1) + "\")");
  segments.Save("s20", "x = 1");
  const std::string deep_first = ExpandedText("in_segment(\"s0\") AND in_segment(\"s5\")", segments);
  const std::string deep_last = ExpandedText("in_segment(\"s5\") AND in_segment(\"s0\")", segments);
  EXPECT_EQ(deep_first.rfind("error: segments nest deeper than 16: s0 -> s1 -> ", 0), 0u) << deep_first;
  EXPECT_EQ(deep_last, deep_first);
  // s6 is reached at two depths: fine where it is shallow, refused once reached through s5.
  segments.Save("wrapper", "in_segment(\"s6\") OR in_segment(\"s5\")");
  EXPECT_EQ(ExpandedText("in_segment(\"wrapper\")", segments),
            "error: segments nest deeper than 16: wrapper -> s5 -> s6 -> s7 -> s8 -> s9 -> s10 -> s11 -> s12 -> s13 -> "
            "s14 -> s15 -> s16 -> s17 -> s18 -> s19 -> s20");
  EXPECT_EQ(ExpandedText("in_segment(\"s5\") AND in_segment(\"s6\")", segments), "x = 1 AND x = 1");
}

// Each tree is within kMaxFilterDepth on its own, but a query nesting a deep segment deep inside
// it is refused once expanded (ResolveFilterSpec), naming both depths.
TEST(SegmentExpansionTest, BoundsTheExpandedDepth) {
  auto nested_nots = [](int levels, v1::Filter innermost) {
    v1::Filter filter = std::move(innermost);
    for (int i = 0; i < levels; ++i) {
      v1::Filter outer;
      *outer.mutable_not_() = std::move(filter);
      filter = std::move(outer);
    }
    return filter;
  };
  FakeSegments segments;
  segments.SaveTree("deep", nested_nots(20, MustParse("x = 1")));
  v1::FilterSpec spec;
  *spec.mutable_filter() = nested_nots(20, MustParse("in_segment(\"deep\")"));
  ASSERT_TRUE(ValidateFilterTree(spec.filter(), "filter").ok());
  auto resolved = ResolveFilterSpec(spec, segments.Lookup());
  ASSERT_EQ(resolved.status().code(), absl::StatusCode::kInvalidArgument) << resolved.status();
  EXPECT_EQ(
      resolved.status().message(),
      fmt::format("filter: nests 41 levels deep once segments are expanded, at most {} are allowed", kMaxFilterDepth));
  *spec.mutable_filter() = nested_nots(10, MustParse("in_segment(\"deep\")"));
  EXPECT_TRUE(ResolveFilterSpec(spec, segments.Lookup()).ok());  // 31 levels
}

TEST(SegmentExpansionTest, BoundsTheExpandedSize) {
  FakeSegments segments;
  // Each level doubles: 2^14 terms > kMaxFilterTerms.
  segments.Save("s14", "x = 1");
  for (int i = 13; i >= 0; --i) {
    const std::string next = "in_segment(\"s" + std::to_string(i + 1) + "\")";
    segments.Save("s" + std::to_string(i), next + " OR " + next);
  }
  EXPECT_EQ(ExpandedText("in_segment(\"s0\")", segments),
            "error: the filter has more than 10000 terms once segments are expanded");
  auto fine = ExpandSegments(MustParse("in_segment(\"s6\")"), segments.Lookup());  // 2^8 terms
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_EQ(FilterTermCount(*fine), 256u);
}

TEST(SegmentExpansionTest, InvalidSavedFilterIsNamed) {
  FakeSegments segments;
  v1::Filter broken;
  broken.mutable_term()->mutable_attribute()->set_attribute("a");
  segments.SaveTree("broken", broken);
  EXPECT_EQ(ExpandedText("in_segment(\"broken\")", segments),
            "error: segment \"broken\".term.attribute: operator is not set");
}

TEST(SegmentExpansionTest, EmptySavedFilterMeansEveryContact) {
  FakeSegments segments;
  segments.SaveTree("all", v1::Filter());
  EXPECT_EQ(ExpandedText("in_segment(\"all\") AND a = 1", segments), "identified() AND a = 1");
}

TEST(CheckSegmentExpandsTest, RefusesASaveThatWouldCloseACycle) {
  FakeSegments segments;
  segments.Save("a", "x = 1 AND in_segment(\"b\")");
  segments.Save("b", "y = 1");
  // Updating b to use a would make a -> b -> a.
  auto status = CheckSegmentExpands("b", MustParse("in_segment(\"a\")"), segments.Lookup());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "segment cycle: b -> a -> b");
  // A segment using itself.
  status = CheckSegmentExpands("c", MustParse("in_segment(\"c\") OR z = 1"), segments.Lookup());
  EXPECT_EQ(status.message(), "segment cycle: c -> c");
  // Fine: a new segment on top of a.
  EXPECT_TRUE(CheckSegmentExpands("c", MustParse("in_segment(\"a\") OR z = 1"), segments.Lookup()).ok());
  // Unknown inner segment.
  status = CheckSegmentExpands("c", MustParse("in_segment(\"nope\")"), segments.Lookup());
  EXPECT_EQ(status.message(), "unknown segment \"nope\" (used by c)");
}

TEST(CheckSegmentExpandsTest, SegmentNamesMatchCaseInsensitivelyLikeTheStore) {
  FakeSegments segments;
  segments.Save("Inner", "city = \"Pune\"");
  segments.Save("outer", "in_segment(\"inner\") AND age >= 30");
  // Updating Inner (named in another case) to use outer closes inner -> outer -> inner: the store
  // would save it over Inner, so the check must treat "INNER" and "inner" as the segment itself.
  auto status = CheckSegmentExpands("INNER", MustParse("in_segment(\"outer\")"), segments.StoreLikeLookup());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "segment cycle: INNER -> outer -> inner");
  // A segment naming itself in another case.
  status = CheckSegmentExpands("Self", MustParse("in_segment(\"SELF\") OR z = 1"), segments.StoreLikeLookup());
  EXPECT_EQ(status.message(), "segment cycle: Self -> SELF");
}

TEST(SegmentExpansionTest, DetectsCyclesWhateverTheCaseOfTheNames) {
  FakeSegments segments;
  segments.Save("a", "in_segment(\"B\")");
  segments.Save("b", "in_segment(\"A\")");
  EXPECT_EQ(ExpandedTextWith("in_segment(\"a\")", segments.StoreLikeLookup()), "error: segment cycle: a -> B -> A");
}

google::protobuf::RepeatedPtrField<v1::Segment> AsSaved(const FakeSegments& segments) {
  google::protobuf::RepeatedPtrField<v1::Segment> all;
  for (const auto& [name, filter] : segments.saved_) {
    v1::Segment* segment = all.Add();
    segment->set_name(name);
    *segment->mutable_filter() = filter;
  }
  return all;
}

TEST(CheckSegmentUsersStillWorkTest, RefusesAnUpdateThatMakesAUserTooDeep) {
  std::string nots;
  for (int i = 0; i < 20; ++i) nots += "NOT ";
  FakeSegments segments;
  segments.Save("Inner", "x = 1");
  segments.Save("outer", nots + "in_segment(\"inner\")");  // 21 levels once expanded
  segments.Save("unrelated", "y = 1");
  const auto saved = AsSaved(segments);
  // Inner alone at 21 levels is fine, but outer would reach 41.
  auto status = CheckSegmentUsersStillWork("INNER", MustParse(nots + "x = 1"), saved);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(),
            "segment \"INNER\" is used by segment \"outer\", which would then fail: segment \"outer\" nests 41 "
            "levels deep once segments are expanded, at most 32 are allowed");
  EXPECT_TRUE(CheckSegmentUsersStillWork("inner", MustParse("x = 2 AND y = 3"), saved).ok());
  EXPECT_TRUE(CheckSegmentUsersStillWork("unrelated", MustParse(nots + "y = 1"), saved).ok());
}

TEST(CheckSegmentUsersStillWorkTest, FollowsUsersThroughOtherSegments) {
  // s0 -> s1 -> ... -> s15: 16 segments, the most that may nest.
  FakeSegments segments;
  segments.Save("s15", "x = 1");
  for (int i = 14; i >= 0; --i) segments.Save(fmt::format("s{}", i), fmt::format("in_segment(\"s{}\")", i + 1));
  segments.Save("extra", "y = 1");
  const auto saved = AsSaved(segments);
  ASSERT_TRUE(ExpandSegments(MustParse("in_segment(\"s0\")"), segments.Lookup()).ok());
  // s15 using one more segment is fine for s15 itself, not for s0.
  const v1::Filter deeper = MustParse("in_segment(\"extra\")");
  ASSERT_TRUE(CheckSegmentExpands("s15", deeper, segments.Lookup()).ok());
  auto status = CheckSegmentUsersStillWork("s15", deeper, saved);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(),
            "segment \"s15\" is used by segment \"s0\", which would then fail: segments nest deeper than 16: s0 -> "
            "s1 -> s2 -> s3 -> s4 -> s5 -> s6 -> s7 -> s8 -> s9 -> s10 -> s11 -> s12 -> s13 -> s14 -> s15 -> extra");
}

TEST(CheckSegmentUsersStillWorkTest, DoesNotBlameTheUpdateForUsersAlreadyBroken) {
  FakeSegments segments;
  segments.Save("inner", "x = 1");
  segments.Save("broken", "in_segment(\"inner\") AND in_segment(\"missing\")");
  std::string nots;
  for (int i = 0; i < 25; ++i) nots += "NOT ";
  EXPECT_TRUE(CheckSegmentUsersStillWork("inner", MustParse(nots + "x = 1"), AsSaved(segments)).ok());
}

// The caller's check (the store's, in the service) decides too: once per user while the update
// passes it, again only for a user that fails afterwards; its own errors are passed on.
TEST(CheckSegmentUsersStillWorkTest, AppliesTheCallersCheckToEveryUser) {
  FakeSegments segments;
  segments.Save("inner", "x = 1");
  segments.Save("outer", "in_segment(\"inner\") AND y = 1");
  segments.Save("outermost", "in_segment(\"outer\") OR z = 1");
  segments.Save("unrelated", "x = 2");
  segments.Save("broken", "in_segment(\"inner\") AND w = 1");
  const auto saved = AsSaved(segments);
  std::vector<std::string> checked;
  // Refuses a segment whose expansion holds a term on `refused`, and anything named "broken".
  std::string refused = "nothing";
  const SegmentCheck check = [&](const v1::Segment& segment, const SegmentLookup& lookup) -> absl::Status {
    checked.push_back(segment.name());
    if (segment.name() == "broken") return absl::InvalidArgumentError("broken anyway");
    absl::StatusOr<v1::Filter> expanded = ExpandSegments(segment.filter(), lookup);
    if (!expanded.ok()) return expanded.status();
    if (expanded->DebugString().find("\"" + refused + "\"") != std::string::npos) {
      return absl::InvalidArgumentError(fmt::format("filter: unknown attribute \"{}\"", refused));
    }
    return absl::OkStatus();
  };
  EXPECT_TRUE(CheckSegmentUsersStillWork("inner", MustParse("x = 3"), saved, check).ok());
  // Every user once (broken twice: it fails both before and after), never inner or unrelated.
  EXPECT_THAT(checked, UnorderedElementsAre("outer", "outermost", "broken", "broken"));

  refused = "v";
  checked.clear();
  auto status = CheckSegmentUsersStillWork("inner", MustParse("v = 1"), saved, check);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(),
            "segment \"inner\" is used by segment \"outer\", which would then fail: filter: unknown attribute \"v\"");

  const SegmentCheck store_down = [](const v1::Segment&, const SegmentLookup&) {
    return absl::UnavailableError("connection refused");
  };
  EXPECT_EQ(CheckSegmentUsersStillWork("inner", MustParse("x = 3"), saved, store_down).code(),
            absl::StatusCode::kUnavailable);
}

// A segment counts itself: one that saves can be used alone in a filter.
TEST(CheckSegmentExpandsTest, RefusesASegmentUsingTooManySegments) {
  FakeSegments segments;
  for (size_t i = 0; i < kMaxSegmentsPerFilter; ++i) segments.Save(fmt::format("s{}", i), "x = 1");
  auto status = CheckSegmentExpands("new", MustParse(SegmentsOr("s", 0, kMaxSegmentsPerFilter)), segments.Lookup());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "the filter uses more than 100 distinct segments, counting those inside other segments; the first one "
            "over is \"s99\" (used by new)");
  EXPECT_TRUE(
      CheckSegmentExpands("new", MustParse(SegmentsOr("s", 0, kMaxSegmentsPerFilter - 1)), segments.Lookup()).ok());
}

TEST(CheckSegmentUsersStillWorkTest, RefusesAnUpdateThatMakesAUserUseTooManySegments) {
  FakeSegments segments;
  segments.Save("inner", "x = 1");
  segments.Save("outer", "in_segment(\"inner\") AND y = 1");
  for (size_t i = 0; i < kMaxSegmentsPerFilter; ++i) segments.Save(fmt::format("s{}", i), "z = 1");
  const auto saved = AsSaved(segments);
  // inner with 99 segments is 100 on its own, but outer would reach 101.
  const v1::Filter wider = MustParse(SegmentsOr("s", 0, kMaxSegmentsPerFilter - 1));
  ASSERT_TRUE(CheckSegmentExpands("inner", wider, segments.Lookup()).ok());
  auto status = CheckSegmentUsersStillWork("inner", wider, saved);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(),
            "segment \"inner\" is used by segment \"outer\", which would then fail: the filter uses more than 100 "
            "distinct segments, counting those inside other segments; the first one over is \"s98\" (used by outer "
            "-> inner)");
  EXPECT_TRUE(
      CheckSegmentUsersStillWork("inner", MustParse(SegmentsOr("s", 0, kMaxSegmentsPerFilter - 2)), saved).ok());
}

TEST(SegmentUsersTest, FindsTheSegmentsNamingOneWhateverTheCase) {
  FakeSegments segments;
  segments.Save("Inner", "city = \"Pune\"");
  segments.Save("outer", "in_segment(\"inner\") AND age >= 30");
  segments.Save("other", "NOT in_segment(\"INNER\")");
  segments.Save("unrelated", "in_segment(\"outer\")");
  const auto all = AsSaved(segments);
  EXPECT_EQ(SegmentUsers("Inner", all), (std::vector<std::string>{"other", "outer"}));
  EXPECT_EQ(SegmentUsers("INNER", all), (std::vector<std::string>{"other", "outer"}));
  EXPECT_EQ(SegmentUsers("Outer", all), (std::vector<std::string>{"unrelated"}));
  EXPECT_TRUE(SegmentUsers("unrelated", all).empty());
}

TEST(CheckSegmentExpandsTest, RefusesASegmentTooDeepOnceExpanded) {
  FakeSegments segments;
  std::string nots;
  for (int i = 0; i < 20; ++i) nots += "NOT ";
  segments.Save("deep", nots + "x = 1");
  auto status = CheckSegmentExpands("deeper", MustParse(nots + "in_segment(\"deep\")"), segments.Lookup());
  EXPECT_EQ(status.message(),
            "segment \"deeper\" nests 41 levels deep once segments are expanded, at most 32 are allowed");
}

// ----- FilterSpec -----

TEST(FilterSpecTest, NeitherTreeNorTextMeansEveryContact) {
  FakeSegments segments;
  auto filter = ResolveFilterSpec(v1::FilterSpec(), segments.Lookup());
  ASSERT_TRUE(filter.ok());
  EXPECT_EQ(filter->node_case(), v1::Filter::NODE_NOT_SET);
  v1::FilterSpec empty_tree;
  empty_tree.mutable_filter();
  filter = ResolveFilterSpec(empty_tree, segments.Lookup());
  ASSERT_TRUE(filter.ok());
  EXPECT_EQ(filter->node_case(), v1::Filter::NODE_NOT_SET);
}

TEST(FilterSpecTest, TextAndTreeGiveTheSameFilter) {
  FakeSegments segments;
  v1::FilterSpec text;
  text.set_text("city = \"Pune\" AND age >= 30");
  v1::FilterSpec tree;
  *tree.mutable_filter() = MustParse("city = \"Pune\" AND age >= 30");
  auto from_text = ResolveFilterSpec(text, segments.Lookup());
  auto from_tree = ResolveFilterSpec(tree, segments.Lookup());
  ASSERT_TRUE(from_text.ok() && from_tree.ok());
  EXPECT_TRUE(MessageDifferencer::Equals(*from_text, *from_tree));
}

TEST(FilterSpecTest, RefusesBothAndNamesTheBrokenPart) {
  FakeSegments segments;
  v1::FilterSpec both;
  both.set_text("a = 1");
  *both.mutable_filter() = MustParse("a = 1");
  EXPECT_EQ(ResolveFilterSpec(both, segments.Lookup()).status().message(),
            "filter: give either filter.filter (a tree) or filter.text, not both");

  v1::FilterSpec bad_text;
  bad_text.set_text("age >=");
  auto status = ResolveFilterSpec(bad_text, segments.Lookup()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "filter.text: position 7: expected a value after \">=\", found end of input");

  v1::FilterSpec bad_tree;
  bad_tree.mutable_filter()->mutable_and_()->add_filters();
  EXPECT_EQ(ResolveFilterSpec(bad_tree, segments.Lookup()).status().message(),
            "filter.filter.and[0]: empty filter node (set one of and, or, not, term)");
}

TEST(FilterSpecTest, ExpandsSegments) {
  FakeSegments segments;
  segments.Save("vip", "in_list(\"vip\")");
  v1::FilterSpec spec;
  spec.set_text("in_segment(\"vip\") AND a = 1");
  auto filter = ResolveFilterSpec(spec, segments.Lookup());
  ASSERT_TRUE(filter.ok()) << filter.status();
  EXPECT_FALSE(HasSegmentTerms(*filter));
  EXPECT_EQ(PrintFilterText(*filter), "in_list(\"vip\") AND a = 1");
}

TEST(BuildSegmentTest, KeepsTheUnexpandedFilterAndItsText) {
  FakeSegments segments;
  segments.Save("pune", "city = \"Pune\"");
  v1::FilterSpec spec;
  spec.set_text("in_segment(\"pune\") and age > 30");
  auto segment = BuildSegment("pune adults", spec, segments.Lookup());
  ASSERT_TRUE(segment.ok()) << segment.status();
  EXPECT_EQ(segment->name(), "pune adults");
  EXPECT_EQ(segment->filter_text(), "in_segment(\"pune\") and age > 30");
  EXPECT_TRUE(HasSegmentTerms(segment->filter()));
}

TEST(BuildSegmentTest, RefusesBadNamesAndEmptyFilters) {
  FakeSegments segments;
  v1::FilterSpec spec;
  spec.set_text("a = 1");
  EXPECT_EQ(BuildSegment("", spec, segments.Lookup()).status().message(), "segment name is empty");
  EXPECT_EQ(BuildSegment("a\nb", spec, segments.Lookup()).status().message(), "segment name holds a control character");
  EXPECT_EQ(BuildSegment(" a", spec, segments.Lookup()).status().message(),
            "segment name \" a\" starts or ends with a space");
  EXPECT_EQ(BuildSegment(std::string(129, 'x'), spec, segments.Lookup()).status().message(),
            "segment name is 129 bytes long, at most 128 are allowed");
  EXPECT_EQ(BuildSegment("ok", v1::FilterSpec(), segments.Lookup()).status().message(),
            "segment: a filter is required (filter.filter or filter.text)");
  spec.set_text("in_segment(\"ok\")");
  EXPECT_EQ(BuildSegment("ok", spec, segments.Lookup()).status().message(), "segment cycle: ok -> ok");
}

// A saved segment travels whole in every ListSegments answer: one far larger than a segment needs
// (the reported case: 25 MB of IN values) is refused, and before the store is asked anything.
TEST(BuildSegmentTest, RefusesASegmentOverTheSizeLimitBeforeAnyLookup) {
  FakeSegments segments;
  segments.Save("pune", "city = \"Pune\"");
  auto in_list = [](const std::string& attribute, int count, size_t value_bytes) {
    v1::Filter filter;
    auto* predicate = filter.mutable_term()->mutable_attribute();
    predicate->set_attribute(attribute);
    predicate->set_op(v1::IN);
    for (int i = 0; i < count; ++i) predicate->add_values(fmt::format("{:0{}}", i, value_bytes));
    return filter;
  };
  // One full IN list of 100-byte values (emails, ids) is what a large segment is for: it saves.
  v1::FilterSpec spec;
  *spec.mutable_filter()->mutable_and_()->add_filters() = MustParse("in_segment(\"pune\")");
  *spec.mutable_filter()->mutable_and_()->add_filters() = in_list("email", kMaxInValues, 100);
  auto built = BuildSegment("big", spec, segments.Lookup());
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_LE(built->ByteSizeLong(), kMaxSegmentBytes);
  EXPECT_EQ(segments.total_lookups_, 1);

  // Two of them do not, and "pune" is not looked up.
  *spec.mutable_filter()->mutable_and_()->add_filters() = in_list("customer_id", kMaxInValues, 100);
  v1::Segment expected;
  expected.set_name("big");
  *expected.mutable_filter() = spec.filter();
  ASSERT_GT(expected.ByteSizeLong(), kMaxSegmentBytes);
  segments.total_lookups_ = 0;
  built = BuildSegment("big", spec, segments.Lookup());
  EXPECT_EQ(built.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(built.status().message(),
            fmt::format("segment \"big\" is {} bytes serialized (filter and filter text), at most 1048576 are allowed",
                        expected.ByteSizeLong()));
  EXPECT_EQ(segments.total_lookups_, 0);
}

v1::Segment SavedSegment(const std::string& name, const std::string& text) {
  v1::Segment segment;
  segment.set_id(7);
  segment.set_name(name);
  *segment.mutable_filter() = MustParse(text);
  segment.set_filter_text(text);
  segment.set_created_at_micros(1700000000000000);
  segment.set_modified_at_micros(1700000000000000);
  return segment;
}

TEST(CheckSegmentCatalogRoomTest, ATenantHasAtMostAThousandSegments) {
  v1::ListSegmentsResponse catalog;
  for (size_t i = 0; i + 1 < kMaxSegmentsPerTenant; ++i) {
    *catalog.add_segments() = SavedSegment(fmt::format("s{}", i), "a = 1");
  }
  const v1::Segment next = SavedSegment("new", "a = 2");
  EXPECT_TRUE(CheckSegmentCatalogRoom(next, catalog.segments(), 64 << 20).ok());
  *catalog.add_segments() = SavedSegment("s999", "a = 1");
  absl::Status status = CheckSegmentCatalogRoom(next, catalog.segments(), 64 << 20);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(),
            "segment \"new\": the tenant has 1000 segments, at most 1000 are allowed; delete one first");
  // Replacing one (an update, names compared as the store does) adds none, even past the limit.
  EXPECT_TRUE(CheckSegmentCatalogRoom(SavedSegment("S5", "a = 3"), catalog.segments(), 64 << 20).ok());
  *catalog.add_segments() = SavedSegment("s1000", "a = 1");  // saved before the limit existed
  EXPECT_TRUE(CheckSegmentCatalogRoom(SavedSegment("s5", "a = 3"), catalog.segments(), 64 << 20).ok());
}

// contact-store's ListSegments returns every segment in one message: the segments together must
// stay under a budget, counted exactly as that message's size.
TEST(CheckSegmentCatalogRoomTest, TheSegmentsTogetherStayUnderTheCatalogBudget) {
  v1::ListSegmentsResponse catalog;
  for (int i = 0; i < 3; ++i) *catalog.add_segments() = SavedSegment(fmt::format("s{}", i), "city = \"Pune\"");
  v1::Segment next = SavedSegment("next", "city = \"Mumbai\" OR city = \"Delhi\"");
  next.clear_id();  // as BuildSegment makes it: the store adds id and times
  next.clear_created_at_micros();
  next.clear_modified_at_micros();
  v1::ListSegmentsResponse with_next = catalog;
  *with_next.add_segments() = next;
  const size_t needed = with_next.ByteSizeLong();

  EXPECT_TRUE(CheckSegmentCatalogRoom(next, catalog.segments(), needed).ok());
  absl::Status status = CheckSegmentCatalogRoom(next, catalog.segments(), needed - 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(),
            fmt::format("segment \"next\": with it ({} bytes) the tenant's segments would take {} bytes, at most {} "
                        "are allowed (so that they can be listed in one message); delete or shrink some first",
                        next.ByteSizeLong(), needed, needed - 1));

  // Over the budget (saved before it existed): an update that does not grow its segment still
  // goes through, one that grows it does not.
  const size_t budget = catalog.ByteSizeLong() / 2;
  EXPECT_TRUE(CheckSegmentCatalogRoom(SavedSegment("S1", "city = \"Pune\""), catalog.segments(), budget).ok());
  EXPECT_TRUE(CheckSegmentCatalogRoom(SavedSegment("s1", "a = 1"), catalog.segments(), budget).ok());
  EXPECT_EQ(
      CheckSegmentCatalogRoom(SavedSegment("s1", "city = \"Pune\" OR city = \"Mumbai\""), catalog.segments(), budget)
          .code(),
      absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace contacts
