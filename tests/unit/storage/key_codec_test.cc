#include "common/storage/key_codec.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace contacts::keys {
namespace {

using namespace std::string_literals;

constexpr int kRandomRounds = 5000;

int Sign(int v) { return (v > 0) - (v < 0); }

// Bytewise comparison, as RocksDB's default comparator does it.
int CompareBytes(std::string_view a, std::string_view b) { return Sign(a.compare(b)); }

template <typename T>
int CompareValues(const T& a, const T& b) {
  return (a > b) - (a < b);
}

bool InRange(std::string_view key, const std::string& lower, const std::string& upper) {
  return key >= lower && (upper.empty() || key < upper);
}

bool CoversKey(const std::string& prefix, std::string_view key) {
  return InRange(key, prefix, PrefixSuccessor(prefix));
}

// Random bytes drawn mostly from the bytes that stress the escaping (0x00, 0x01, 0xFE, 0xFF).
std::string RandomBytes(std::mt19937_64& rng, size_t max_len) {
  static constexpr char kAlphabet[] = {'\x00', '\x01', '\xFE', '\xFF', 'a', 'b', '\x7F', '\x80'};
  std::uniform_int_distribution<size_t> len_dist(0, max_len);
  std::uniform_int_distribution<int> pick(0, 9);
  std::uniform_int_distribution<int> any_byte(0, 255);
  std::string out(len_dist(rng), '\0');
  for (char& c : out) {
    int p = pick(rng);
    c = p < 8 ? kAlphabet[p] : static_cast<char>(any_byte(rng));
  }
  return out;
}

std::string Str(std::string_view s) {
  std::string out;
  PutStringOrdered(&out, s);
  return out;
}

std::string I64(int64_t v) {
  std::string out;
  PutInt64Ordered(&out, v);
  return out;
}

std::string F64(double v) {
  std::string out;
  PutDoubleOrdered(&out, v);
  return out;
}

// ---- fixed-width integers ------------------------------------------------------------------------

TEST(KeyCodecFixedTest, BigEndianBytesRoundTripAndSortLikeNumbers) {
  std::string out;
  PutFixed32BE(&out, 0x01020304u);
  PutFixed64BE(&out, 0x0A0B0C0D0E0F1011ull);
  EXPECT_EQ(out, "\x01\x02\x03\x04\x0A\x0B\x0C\x0D\x0E\x0F\x10\x11"s);
  std::string_view in = out;
  uint32_t a = 0;
  uint64_t b = 0;
  ASSERT_TRUE(GetFixed32BE(&in, &a));
  ASSERT_TRUE(GetFixed64BE(&in, &b));
  EXPECT_EQ(a, 0x01020304u);
  EXPECT_EQ(b, 0x0A0B0C0D0E0F1011ull);
  EXPECT_TRUE(in.empty());

  std::mt19937_64 rng(1);
  for (int i = 0; i < kRandomRounds; ++i) {
    uint64_t x = rng() >> (rng() % 64), y = rng() >> (rng() % 64);
    std::string ex, ey;
    PutFixed64BE(&ex, x);
    PutFixed64BE(&ey, y);
    ASSERT_EQ(CompareBytes(ex, ey), CompareValues(x, y)) << x << " vs " << y;
    uint32_t x32 = static_cast<uint32_t>(x), y32 = static_cast<uint32_t>(y);
    std::string fx, fy;
    PutFixed32BE(&fx, x32);
    PutFixed32BE(&fy, y32);
    ASSERT_EQ(CompareBytes(fx, fy), CompareValues(x32, y32));
  }
}

TEST(KeyCodecFixedTest, TruncatedInputFailsAndLeavesCursorAlone) {
  std::string three = "\x01\x02\x03";
  std::string_view in = three;
  uint32_t v32 = 7;
  uint64_t v64 = 7;
  EXPECT_FALSE(GetFixed32BE(&in, &v32));
  EXPECT_FALSE(GetFixed64BE(&in, &v64));
  EXPECT_EQ(in.size(), 3u);
  EXPECT_EQ(v32, 7u);
}

// ---- int64 -----------------------------------------------------------------------------------------

TEST(KeyCodecInt64Test, RoundTripsEdgeValues) {
  for (int64_t v : {std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0}, int64_t{1},
                    std::numeric_limits<int64_t>::max()}) {
    std::string enc = I64(v);
    ASSERT_EQ(enc.size(), 8u);
    std::string_view in = enc;
    int64_t out = 0;
    ASSERT_TRUE(GetInt64Ordered(&in, &out));
    EXPECT_EQ(out, v);
    EXPECT_EQ(*DecodeIndexInt64(EncodeIndexInt64(v)), v);
  }
  EXPECT_EQ(I64(0), "\x80\0\0\0\0\0\0\0"s);  // the sign bit is flipped
}

TEST(KeyCodecInt64Test, EncodingSortsLikeValuesAcrossSign) {
  std::mt19937_64 rng(2);
  std::vector<int64_t> specials = {std::numeric_limits<int64_t>::min(), -256, -1, 0, 1, 255,
                                   std::numeric_limits<int64_t>::max()};
  for (int i = 0; i < kRandomRounds; ++i) {
    int64_t a = static_cast<int64_t>(rng()) >> (rng() % 64);
    int64_t b = i % 10 == 0 ? specials[i / 10 % specials.size()] : static_cast<int64_t>(rng()) >> (rng() % 64);
    ASSERT_EQ(CompareBytes(I64(a), I64(b)), CompareValues(a, b)) << a << " vs " << b;
    std::string da, db;
    PutInt64OrderedDesc(&da, a);
    PutInt64OrderedDesc(&db, b);
    ASSERT_EQ(CompareBytes(da, db), -CompareValues(a, b)) << a << " vs " << b;
    std::string_view in = da;
    int64_t back = 0;
    ASSERT_TRUE(GetInt64OrderedDesc(&in, &back));
    ASSERT_EQ(back, a);
  }
}

// ---- double ----------------------------------------------------------------------------------------

double RandomDouble(std::mt19937_64& rng) {
  static const std::vector<double> kSpecials = {-std::numeric_limits<double>::infinity(),
                                                -std::numeric_limits<double>::max(),
                                                -1.5,
                                                -std::numeric_limits<double>::min(),
                                                -std::numeric_limits<double>::denorm_min(),
                                                -0.0,
                                                0.0,
                                                std::numeric_limits<double>::denorm_min(),
                                                std::numeric_limits<double>::min(),
                                                1.0,
                                                std::numeric_limits<double>::max(),
                                                std::numeric_limits<double>::infinity()};
  switch (rng() % 4) {
    case 0:
      return kSpecials[rng() % kSpecials.size()];
    case 1: {  // denormals of either sign
      double d = std::bit_cast<double>(rng() & 0x000FFFFFFFFFFFFFull);
      return rng() % 2 ? -d : d;
    }
    case 2:
      return std::uniform_real_distribution<double>(-1000, 1000)(rng);
    default: {  // any bit pattern but NaN
      double d;
      do d = std::bit_cast<double>(rng());
      while (std::isnan(d));
      return d;
    }
  }
}

TEST(KeyCodecDoubleTest, EncodingSortsLikeValuesIncludingSpecials) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < kRandomRounds; ++i) {
    double a = RandomDouble(rng), b = RandomDouble(rng);
    ASSERT_EQ(CompareBytes(F64(a), F64(b)), CompareValues(a, b)) << a << " vs " << b;
  }
}

TEST(KeyCodecDoubleTest, RoundTripsAndTreatsNegativeZeroAsZero) {
  std::mt19937_64 rng(4);
  for (int i = 0; i < 1000; ++i) {
    double v = RandomDouble(rng);
    absl::StatusOr<double> back = DecodeIndexDouble(EncodeIndexDouble(v));
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(*back, v);  // -0.0 == 0.0 compares equal
  }
  EXPECT_EQ(F64(-0.0), F64(0.0));
  double zero = *DecodeIndexDouble(F64(-0.0));
  EXPECT_FALSE(std::signbit(zero));
}

TEST(KeyCodecDoubleTest, NanSortsAfterInfinityAndIsRefusedOnDecode) {
  std::string nan = F64(std::numeric_limits<double>::quiet_NaN());
  EXPECT_GT(nan, F64(std::numeric_limits<double>::infinity()));
  EXPECT_EQ(nan, F64(-std::numeric_limits<double>::quiet_NaN()));  // one canonical NaN
  std::string_view in = nan;
  double out = 0;
  EXPECT_FALSE(GetDoubleOrdered(&in, &out));
  EXPECT_EQ(in.size(), 8u);
  EXPECT_EQ(DecodeIndexDouble(nan).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- bool ------------------------------------------------------------------------------------------

TEST(KeyCodecBoolTest, RoundTripsSortsFalseFirstAndRejectsOtherBytes) {
  EXPECT_EQ(*DecodeIndexBool(EncodeIndexBool(true)), true);
  EXPECT_EQ(*DecodeIndexBool(EncodeIndexBool(false)), false);
  EXPECT_LT(EncodeIndexBool(false), EncodeIndexBool(true));
  EXPECT_FALSE(DecodeIndexBool("\x02").ok());
  EXPECT_FALSE(DecodeIndexBool("").ok());
  EXPECT_FALSE(DecodeIndexBool("\x01\x00"s).ok());  // trailing byte
}

// ---- strings ---------------------------------------------------------------------------------------

TEST(KeyCodecStringTest, EscapesZeroAndTerminates) {
  EXPECT_EQ(Str(""), "\x00\x01"s);
  EXPECT_EQ(Str("a\0b"s),
            "a\x00\xFF"
            "b\x00\x01"s);
  EXPECT_EQ(Str("\xFF"), "\xFF\x00\x01"s);
}

TEST(KeyCodecStringTest, RoundTripsRandomBytes) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < kRandomRounds; ++i) {
    std::string s = RandomBytes(rng, 12);
    std::string enc = Str(s) + "tail";
    std::string_view in = enc;
    std::string out;
    ASSERT_TRUE(GetStringOrdered(&in, &out));
    ASSERT_EQ(out, s);
    ASSERT_EQ(in, "tail");
  }
}

TEST(KeyCodecStringTest, EncodingSortsLikeBytesEvenForPrefixes) {
  std::mt19937_64 rng(6);
  for (int i = 0; i < kRandomRounds; ++i) {
    std::string a = RandomBytes(rng, 6);
    std::string b = RandomBytes(rng, 6);
    if (i % 3 == 0) b = a + RandomBytes(rng, 3);  // prefixes of each other, often extended by 0x00
    if (i % 7 == 0) b = a.substr(0, a.size() / 2);
    ASSERT_EQ(CompareBytes(Str(a), Str(b)), CompareBytes(a, b));
  }
  // The hand-picked cases that break naive encodings.
  EXPECT_LT(Str(""), Str("\0"s));
  EXPECT_LT(Str("a"), Str("a\0"s));
  EXPECT_LT(Str("a\0"s), Str("a\x01"));
  EXPECT_LT(Str("a\0\xFF"s), Str("a\x01"));
  EXPECT_LT(Str("a\xFF"), Str("b"));
}

TEST(KeyCodecStringTest, CompositeSortsByStringFirstThenFollowingField) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < kRandomRounds; ++i) {
    std::string a = RandomBytes(rng, 5), b = RandomBytes(rng, 5);
    if (i % 4 == 0) b = a;
    if (i % 4 == 1) b = a + RandomBytes(rng, 2);
    // The following field is chosen to disagree with the string whenever it can.
    std::string fa = RandomBytes(rng, 4), fb = RandomBytes(rng, 4);
    int64_t na = static_cast<int64_t>(rng()), nb = static_cast<int64_t>(rng());
    int want = a != b ? CompareBytes(a, b) : CompareBytes(fa, fb);
    ASSERT_EQ(CompareBytes(Str(a) + Str(fa), Str(b) + Str(fb)), want);
    int want_num = a != b ? CompareBytes(a, b) : CompareValues(na, nb);
    ASSERT_EQ(CompareBytes(Str(a) + I64(na), Str(b) + I64(nb)), want_num);
  }
}

TEST(KeyCodecStringTest, MalformedInputIsRejectedWithoutMovingTheCursor) {
  for (std::string bad : {""s, "abc"s, "abc\0"s, "a\0\x02"s, "a\0\xFF"s, "\0"s, "\0\x00"s}) {
    std::string_view in = bad;
    std::string out = "unchanged";
    EXPECT_FALSE(GetStringOrdered(&in, &out)) << testing::PrintToString(bad);
    EXPECT_EQ(in.size(), bad.size());
    EXPECT_EQ(out, "unchanged");
    EXPECT_EQ(DecodeIndexString(bad).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(DecodeIndexString(Str("x") + "y").ok());  // trailing byte
}

TEST(KeyCodecStringTest, EscapedPrefixCoversExactlyTheStringsStartingWithIt) {
  std::mt19937_64 rng(8);
  for (int i = 0; i < kRandomRounds; ++i) {
    std::string p = RandomBytes(rng, 3);
    std::string s = i % 2 ? p + RandomBytes(rng, 3) : RandomBytes(rng, 5);
    std::string prefix;
    PutStringEscapedNoTerminator(&prefix, p);
    bool starts = s.compare(0, p.size(), p) == 0;
    ASSERT_EQ(CoversKey(prefix, Str(s)), starts) << testing::PrintToString(p) << " " << testing::PrintToString(s);
  }
}

// ---- PrefixSuccessor -------------------------------------------------------------------------------

TEST(KeyCodecPrefixSuccessorTest, IncrementsLastByteBelowFF) {
  EXPECT_EQ(PrefixSuccessor("abc"), "abd");
  EXPECT_EQ(PrefixSuccessor("ab\xFF\xFF"), "ac");
  EXPECT_EQ(PrefixSuccessor("a\xFE"), "a\xFF");
  EXPECT_EQ(PrefixSuccessor("\x00"s), "\x01");
  EXPECT_EQ(PrefixSuccessor("\xFF\xFF"), "");
  EXPECT_EQ(PrefixSuccessor(""), "");
}

TEST(KeyCodecPrefixSuccessorTest, BoundsExactlyTheKeysStartingWithThePrefix) {
  std::mt19937_64 rng(9);
  for (int i = 0; i < kRandomRounds; ++i) {
    std::string p = RandomBytes(rng, 3);
    std::string s = i % 2 ? p + RandomBytes(rng, 4) : RandomBytes(rng, 5);
    bool starts = s.compare(0, p.size(), p) == 0;
    ASSERT_EQ(CoversKey(p, s), starts) << testing::PrintToString(p) << " " << testing::PrintToString(s);
  }
}

// ---- keys: round trips and golden bytes --------------------------------------------------------------

TEST(KeyCodecKeysTest, ContactKeyRoundTripsAndHasPinnedBytes) {
  EXPECT_EQ(ContactKey(1, "a\0b"s),
            "\0\0\0\x01"
            "a\0\xFF"
            "b\0\x01"s);
  for (std::string pk : {""s, "alice@example.com"s, "\0\xFF\0"s}) {
    absl::StatusOr<std::string> back = DecodeContactKey(ContactKey(42, pk), 42);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, pk);
  }
  EXPECT_TRUE(ContactKey(42, "x").starts_with(ContactPrefix(42)));
}

// A batch builds its keys into one reused string: appending after bytes already there gives the
// same key as building it alone, after those bytes.
TEST(KeyCodecKeysTest, AppendedKeysEqualTheKeysBuiltAlone) {
  std::string out = "before";
  AppendContactKey(&out, 42, "a\0b"s);
  EXPECT_EQ(out, "before" + ContactKey(42, "a\0b"s));
  out = "before";
  AppendOrdinalKey(&out, 42, 0x01020304);
  EXPECT_EQ(out, "before" + OrdinalKey(42, 0x01020304));
  EXPECT_EQ(OrdinalKey(42, 0x01020304), "\0\0\0\x2a\x01\x02\x03\x04"s);
}

TEST(KeyCodecKeysTest, IndexKeyRoundTripsForEveryValueKind) {
  struct Case {
    IndexValueKind kind;
    std::string value;
  };
  std::vector<Case> cases = {{IndexValueKind::kString, EncodeIndexString("Pune\0x"s)},
                             {IndexValueKind::kInt64, EncodeIndexInt64(-30)},
                             {IndexValueKind::kDouble, EncodeIndexDouble(-2.5)},
                             {IndexValueKind::kBool, EncodeIndexBool(true)}};
  for (const Case& c : cases) {
    std::string key = IndexKey(7, 3, c.value, "pk\0\xFF"s);
    absl::StatusOr<IndexKeyFields> fields = DecodeIndexKey(key, 7, 3, c.kind);
    ASSERT_TRUE(fields.ok()) << fields.status();
    EXPECT_EQ(fields->encoded_value, c.value);
    EXPECT_EQ(fields->pk, "pk\0\xFF"s);
    EXPECT_EQ(*DecodeIndexKeyPk(key, 7, 3, c.kind), "pk\0\xFF"s);
    EXPECT_TRUE(CoversKey(IndexValuePrefix(7, 3, c.value), key));
    EXPECT_TRUE(CoversKey(IndexAttributePrefix(7, 3), key));
    EXPECT_FALSE(CoversKey(IndexAttributePrefix(7, 4), key));
  }
  EXPECT_EQ(
      *DecodeIndexString(
          DecodeIndexKey(IndexKey(7, 3, EncodeIndexString("Pune"), "p"), 7, 3, IndexValueKind::kString)->encoded_value),
      "Pune");
  EXPECT_EQ(IndexKey(1, 2, EncodeIndexBool(false), ""), "\0\0\0\x01\0\0\0\x02\0\0\x01"s);
}

TEST(KeyCodecKeysTest, IndexValuePrefixIsExactForStrings) {
  std::string ab = EncodeIndexString("ab");
  std::string prefix = IndexValuePrefix(1, 1, ab);
  EXPECT_TRUE(CoversKey(prefix, IndexKey(1, 1, ab, "zzz")));
  EXPECT_TRUE(CoversKey(prefix, IndexKey(1, 1, ab, "")));
  EXPECT_FALSE(CoversKey(prefix, IndexKey(1, 1, EncodeIndexString("abc"), "p")));
  EXPECT_FALSE(CoversKey(prefix, IndexKey(1, 1, EncodeIndexString("ab\0"s), "p")));
  EXPECT_FALSE(CoversKey(prefix, IndexKey(1, 1, EncodeIndexString("a"), "b")));
}

TEST(KeyCodecKeysTest, IndexStartsWithPrefixCoversLongerValuesOnly) {
  std::string prefix = IndexStringStartsWithPrefix(1, 1, "Pu");
  EXPECT_TRUE(CoversKey(prefix, IndexKey(1, 1, EncodeIndexString("Pune"), "p")));
  EXPECT_TRUE(CoversKey(prefix, IndexKey(1, 1, EncodeIndexString("Pu"), "p")));
  EXPECT_FALSE(CoversKey(prefix, IndexKey(1, 1, EncodeIndexString("P"), "u")));
  EXPECT_FALSE(CoversKey(prefix, IndexKey(1, 1, EncodeIndexString("Qu"), "p")));
}

TEST(KeyCodecKeysTest, IndexKeysSortByValueThenPk) {
  std::mt19937_64 rng(10);
  for (int i = 0; i < kRandomRounds; ++i) {
    int64_t a = static_cast<int64_t>(rng()) >> (rng() % 64), b = i % 3 ? static_cast<int64_t>(rng()) >> 60 : a;
    std::string pa = RandomBytes(rng, 4), pb = RandomBytes(rng, 4);
    int want = a != b ? CompareValues(a, b) : CompareBytes(pa, pb);
    ASSERT_EQ(CompareBytes(IndexKey(5, 9, EncodeIndexInt64(a), pa), IndexKey(5, 9, EncodeIndexInt64(b), pb)), want);

    std::string sa = RandomBytes(rng, 4), sb = i % 3 ? RandomBytes(rng, 4) : sa;
    int want_s = sa != sb ? CompareBytes(sa, sb) : CompareBytes(pa, pb);
    ASSERT_EQ(CompareBytes(IndexKey(5, 9, EncodeIndexString(sa), pa), IndexKey(5, 9, EncodeIndexString(sb), pb)),
              want_s);
  }
}

TEST(KeyCodecKeysTest, MembershipOrdinalCatalogAppliedAnonymousRoundTrip) {
  uint64_t big_list = 0x0102030405060708ull;
  EXPECT_EQ(*DecodeMembershipPk(MembershipKey(3, big_list, "p\0"s), 3, big_list), "p\0"s);
  EXPECT_TRUE(CoversKey(MembershipListPrefix(3, big_list), MembershipKey(3, big_list, "p")));
  EXPECT_FALSE(CoversKey(MembershipListPrefix(3, big_list + 1), MembershipKey(3, big_list, "p")));

  EXPECT_EQ(*DecodeOrdinal(OrdinalKey(3, 0xFFFFFFFEu), 3), 0xFFFFFFFEu);
  EXPECT_LT(OrdinalKey(3, 255), OrdinalKey(3, 256));
  EXPECT_TRUE(CoversKey(OrdinalPrefix(3), OrdinalKey(3, 0)));

  for (CatalogKind kind : {CatalogKind::kTenant, CatalogKind::kAttribute, CatalogKind::kList, CatalogKind::kSegment,
                           CatalogKind::kControlGroup, CatalogKind::kFormatVersion}) {
    std::string key = CatalogKey(3, kind, "vip\0"s);
    EXPECT_EQ(*DecodeCatalogName(key, 3, kind), "vip\0"s);
    EXPECT_TRUE(CoversKey(CatalogKindPrefix(3, kind), key));
  }
  EXPECT_FALSE(CoversKey(CatalogKindPrefix(3, CatalogKind::kList), CatalogKey(3, CatalogKind::kSegment, "x")));

  EXPECT_EQ(TenantRegistryKey("acme"),
            "\xFF\xFF\xFF\xFF"
            "T"
            "acme\0\x01"s);
  EXPECT_EQ(*DecodeTenantRegistryName(TenantRegistryKey("acme")), "acme");
  EXPECT_TRUE(CoversKey(TenantRegistryPrefix(), TenantRegistryKey("")));

  AppliedKeyFields applied = *DecodeAppliedKey(AppliedKey(3, "job-1", 17), 3);
  EXPECT_EQ(applied.job_id, "job-1");
  EXPECT_EQ(applied.batch_seq, 17u);
  EXPECT_LT(AppliedKey(3, "job-1", 2), AppliedKey(3, "job-1", 10));
  EXPECT_LT(AppliedKey(3, "job-1", ~uint64_t{0}), AppliedKey(3, "job-10", 0));
  EXPECT_TRUE(CoversKey(AppliedJobPrefix(3, "job-1"), AppliedKey(3, "job-1", 5)));
  EXPECT_FALSE(CoversKey(AppliedJobPrefix(3, "job-1"), AppliedKey(3, "job-10", 5)));

  EXPECT_EQ(*DecodeAnonymousKey(AnonymousKey(3, "guid-1"), 3), "guid-1");
  EXPECT_TRUE(CoversKey(AnonymousPrefix(3), AnonymousKey(3, "guid-1")));
}

TEST(KeyCodecKeysTest, CatalogKindValuesArePinned) {
  EXPECT_EQ(static_cast<int>(CatalogKind::kTenant), 1);
  EXPECT_EQ(static_cast<int>(CatalogKind::kAttribute), 2);
  EXPECT_EQ(static_cast<int>(CatalogKind::kList), 3);
  EXPECT_EQ(static_cast<int>(CatalogKind::kSegment), 4);
  EXPECT_EQ(static_cast<int>(CatalogKind::kControlGroup), 5);
  EXPECT_EQ(static_cast<int>(CatalogKind::kFormatVersion), 6);
  EXPECT_EQ(CatalogKey(1, CatalogKind::kAttribute, "age"),
            "\0\0\0\x01\x02"
            "age\0\x01"s);
}

TEST(KeyCodecKeysTest, AnonymousByTimeSortsNewestFirstAndRoundTrips) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < kRandomRounds; ++i) {
    int64_t a = static_cast<int64_t>(rng()) >> (rng() % 64), b = static_cast<int64_t>(rng()) >> (rng() % 64);
    std::string ga = RandomBytes(rng, 4), gb = RandomBytes(rng, 4);
    int want = a != b ? -CompareValues(a, b) : CompareBytes(ga, gb);
    ASSERT_EQ(CompareBytes(AnonymousByTimeKey(2, a, ga), AnonymousByTimeKey(2, b, gb)), want);
    AnonymousByTimeFields fields = *DecodeAnonymousByTime(AnonymousByTimeKey(2, a, ga), 2);
    ASSERT_EQ(fields.created_micros, a);
    ASSERT_EQ(fields.guid, ga);
  }
  std::string key = AnonymousByTimeKey(2, 1000, "g");
  EXPECT_TRUE(CoversKey(AnonymousByTimePrefix(2), key));
  EXPECT_LE(AnonymousByTimeSeek(2, 1000), key);
  // Seeking to a time skips every newer key and lands on the first key at or before it.
  EXPECT_LT(AnonymousByTimeKey(2, 1001, "\xFF"), AnonymousByTimeSeek(2, 1000));
  EXPECT_LT(AnonymousByTimeSeek(2, 1000), AnonymousByTimeKey(2, 999, ""));
}

// ---- tenant isolation ------------------------------------------------------------------------------

// Every key of `tenant` built with awkward field values (0xFF bytes, maximum ids).
std::vector<std::string> AllKeysOf(uint32_t tenant) {
  std::string ff = "\xFF\xFF\xFF";
  return {ContactKey(tenant, ff),
          IndexKey(tenant, 0xFFFFFFFFu, EncodeIndexString(ff), ff),
          IndexKey(tenant, 0, EncodeIndexInt64(std::numeric_limits<int64_t>::max()), ""),
          MembershipKey(tenant, ~uint64_t{0}, ff),
          OrdinalKey(tenant, 0xFFFFFFFFu),
          CatalogKey(tenant, CatalogKind::kFormatVersion, ff),
          AppliedKey(tenant, ff, ~uint64_t{0}),
          AnonymousKey(tenant, ff),
          AnonymousByTimeKey(tenant, std::numeric_limits<int64_t>::min(), ff)};
}

std::vector<std::string> AllPrefixesOf(uint32_t tenant) {
  return {ContactPrefix(tenant),
          IndexAttributePrefix(tenant, 0xFFFFFFFFu),
          IndexValuePrefix(tenant, 0xFFFFFFFFu, EncodeIndexString("\xFF")),
          IndexStringStartsWithPrefix(tenant, 0xFFFFFFFFu, "\xFF\xFF"),
          MembershipListPrefix(tenant, ~uint64_t{0}),
          OrdinalPrefix(tenant),
          CatalogKindPrefix(tenant, CatalogKind::kFormatVersion),
          AppliedJobPrefix(tenant, "\xFF"),
          AnonymousPrefix(tenant),
          AnonymousByTimePrefix(tenant)};
}

TEST(KeyCodecTenantTest, NoPrefixOfOneTenantCoversAnotherTenantsKeys) {
  std::vector<std::pair<uint32_t, uint32_t>> pairs = {{1, 2}, {0x000000FFu, 0x00000100u}, {0xFFFFFFFEu, 0}};
  for (auto [a, b] : pairs) {
    for (auto [mine, other] : {std::pair{a, b}, std::pair{b, a}}) {
      for (const std::string& prefix : AllPrefixesOf(mine)) {
        for (const std::string& key : AllKeysOf(other)) {
          ASSERT_FALSE(CoversKey(prefix, key)) << "tenant " << mine << " prefix covers tenant " << other;
        }
        EXPECT_FALSE(CoversKey(prefix, TenantRegistryKey("\xFF")));
      }
      for (const std::string& key : AllKeysOf(mine)) {
        EXPECT_TRUE(CoversKey(ContactPrefix(mine), key));
        EXPECT_EQ(*DecodeKeyTenant(key), mine);
      }
    }
  }
  for (const std::string& key : AllKeysOf(0xFFFFFFFEu)) {
    EXPECT_FALSE(CoversKey(TenantRegistryPrefix(), key));
  }
}

// ---- malformed keys --------------------------------------------------------------------------------

// Each decoder applied to a key; returns whether it accepted it.
using Decoder = bool (*)(std::string_view);
const std::vector<std::pair<std::string, Decoder>>& Decoders() {
  static const std::vector<std::pair<std::string, Decoder>> kDecoders = {
      {ContactKey(9, "pk\0"s), [](std::string_view k) { return DecodeContactKey(k, 9).ok(); }},
      {IndexKey(9, 4, EncodeIndexString("v\0"s), "pk"),
       [](std::string_view k) { return DecodeIndexKey(k, 9, 4, IndexValueKind::kString).ok(); }},
      {IndexKey(9, 4, EncodeIndexDouble(1.5), "pk"),
       [](std::string_view k) { return DecodeIndexKeyPk(k, 9, 4, IndexValueKind::kDouble).ok(); }},
      {MembershipKey(9, 4, "pk"), [](std::string_view k) { return DecodeMembershipPk(k, 9, 4).ok(); }},
      {OrdinalKey(9, 4), [](std::string_view k) { return DecodeOrdinal(k, 9).ok(); }},
      {CatalogKey(9, CatalogKind::kList, "l"),
       [](std::string_view k) { return DecodeCatalogName(k, 9, CatalogKind::kList).ok(); }},
      {TenantRegistryKey("t"), [](std::string_view k) { return DecodeTenantRegistryName(k).ok(); }},
      {AppliedKey(9, "job", 4), [](std::string_view k) { return DecodeAppliedKey(k, 9).ok(); }},
      {AnonymousKey(9, "g"), [](std::string_view k) { return DecodeAnonymousKey(k, 9).ok(); }},
      {AnonymousByTimeKey(9, 4, "g"), [](std::string_view k) { return DecodeAnonymousByTime(k, 9).ok(); }},
  };
  return kDecoders;
}

TEST(KeyCodecMalformedTest, EveryTruncationAndTrailingByteIsRejected) {
  for (const auto& [key, decode] : Decoders()) {
    ASSERT_TRUE(decode(key)) << testing::PrintToString(key);
    for (size_t len = 0; len < key.size(); ++len) {
      EXPECT_FALSE(decode(std::string_view(key).substr(0, len))) << testing::PrintToString(key) << " cut at " << len;
    }
    EXPECT_FALSE(decode(key + "x")) << testing::PrintToString(key);
  }
}

TEST(KeyCodecMalformedTest, BadEscapeIsRejected) {
  std::string key = ContactKey(9, "a\0b"s);
  key[4 + 2] = '\x02';  // 0x00 0xFF becomes 0x00 0x02
  absl::StatusOr<std::string> pk = DecodeContactKey(key, 9);
  EXPECT_EQ(pk.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(pk.status().message().find("offset 4"), std::string_view::npos) << pk.status();
}

TEST(KeyCodecMalformedTest, KeysOfAnotherTenantAttributeListOrKindAreRejected) {
  EXPECT_EQ(DecodeContactKey(ContactKey(1, "p"), 2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(DecodeIndexKeyPk(IndexKey(1, 3, EncodeIndexInt64(1), "p"), 1, 4, IndexValueKind::kInt64).ok());
  EXPECT_FALSE(DecodeIndexKeyPk(IndexKey(1, 3, EncodeIndexInt64(1), "p"), 1, 3, static_cast<IndexValueKind>(99)).ok());
  EXPECT_FALSE(DecodeMembershipPk(MembershipKey(1, 5, "p"), 1, 6).ok());
  EXPECT_FALSE(DecodeCatalogName(CatalogKey(1, CatalogKind::kList, "x"), 1, CatalogKind::kSegment).ok());
  EXPECT_FALSE(DecodeTenantRegistryName(CatalogKey(0xFFFFFFFFu, CatalogKind::kTenant, "x")).ok());
  EXPECT_FALSE(DecodeKeyTenant("\x01\x02").ok());
}

TEST(KeyCodecMalformedTest, RandomGarbageNeverCrashesAnyDecoder) {
  std::mt19937_64 rng(12);
  int accepted = 0;
  for (int i = 0; i < kRandomRounds; ++i) {
    std::string garbage = (i % 2 ? "\0\0\0\x09"s : ""s) + RandomBytes(rng, 24);
    for (const auto& entry : Decoders()) accepted += entry.second(garbage) ? 1 : 0;
  }
  EXPECT_LT(accepted, kRandomRounds * static_cast<int>(Decoders().size()));
}

}  // namespace
}  // namespace contacts::keys
