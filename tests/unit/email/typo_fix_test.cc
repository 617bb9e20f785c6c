#include "common/email/typo_fix.h"

#include <algorithm>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace contacts {
namespace {

TEST(DamerauLevenshteinTest, CountsTranspositionsAsOneEdit) {
  EXPECT_EQ(DamerauLevenshtein("gmail.com", "gmail.com", 2), 0);
  EXPECT_EQ(DamerauLevenshtein("gmial.com", "gmail.com", 2), 1);
  EXPECT_EQ(DamerauLevenshtein("gmai.com", "gmail.com", 2), 1);
  EXPECT_EQ(DamerauLevenshtein("gmaill.com", "gmail.com", 2), 1);
  EXPECT_EQ(DamerauLevenshtein("gnail.com", "gmail.com", 2), 1);
  EXPECT_EQ(DamerauLevenshtein("gmial.con", "gmail.com", 2), 2);
  EXPECT_EQ(DamerauLevenshtein("", "abc", 5), 3);
  EXPECT_EQ(DamerauLevenshtein("yahoo.com", "outlook.com", 2), 3);  // capped at limit + 1
}

// Full-table optimal string alignment distance, for checking the banded one.
int ReferenceDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<int>> d(a.size() + 1, std::vector<int>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = static_cast<int>(i);
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

TEST(DamerauLevenshteinTest, MatchesTheFullTableOnRandomStrings) {
  std::mt19937 rng(7);
  for (int round = 0; round < 20000; ++round) {
    std::string a(rng() % 9, 'a'), b;
    for (char& c : a) c = static_cast<char>('a' + rng() % 3);
    b = a;
    for (int edits = static_cast<int>(rng() % 4); edits > 0; --edits) {
      const size_t pos = b.empty() ? 0 : rng() % b.size();
      switch (rng() % 4) {
        case 0:
          b.insert(b.begin() + static_cast<long>(pos), static_cast<char>('a' + rng() % 3));
          break;
        case 1:
          if (!b.empty()) b.erase(pos, 1);
          break;
        case 2:
          if (!b.empty()) b[pos] = static_cast<char>('a' + rng() % 3);
          break;
        default:
          if (pos + 1 < b.size()) std::swap(b[pos], b[pos + 1]);
      }
    }
    const int limit = static_cast<int>(rng() % 4);
    const int expected = std::min(ReferenceDistance(a, b), limit + 1);
    ASSERT_EQ(DamerauLevenshtein(a, b, limit), expected) << a << " " << b << " limit " << limit;
  }
  const std::string long_a(100, 'x');
  EXPECT_EQ(DamerauLevenshtein(long_a, long_a + "yz", 2), 2);
}

struct TypoCase {
  const char* input;
  const char* fixed;
};

TEST(FixEmailTypoTest, FixesCommonDomainMisspellings) {
  const std::vector<TypoCase> cases = {
      {"john@gmial.com", "john@gmail.com"},
      {"john@gmai.com", "john@gmail.com"},
      {"john@gamil.com", "john@gmail.com"},
      {"john@gnail.com", "john@gmail.com"},
      {"john@gmaill.com", "john@gmail.com"},
      {"john@gmailcom", "john@gmail.com"},
      {"john@gmail.con", "john@gmail.com"},
      {"john@gmail.cm", "john@gmail.com"},
      {"john@gmail.co", "john@gmail.com"},
      {"john@gmail.comm", "john@gmail.com"},
      {"john@gmail.cpm", "john@gmail.com"},
      {"john@gmail.ocm", "john@gmail.com"},
      {"john@gmail.om", "john@gmail.com"},
      {"john@gmial.con", "john@gmail.com"},
      {"john@gmail.com.", "john@gmail.com"},
      {"a.b+c@hotmial.com", "a.b+c@hotmail.com"},
      {"x@hotmal.com", "x@hotmail.com"},
      {"x@hotmail.con", "x@hotmail.com"},
      {"x@yaho.com", "x@yahoo.com"},
      {"x@yahooo.com", "x@yahoo.com"},
      {"x@yahoo.con", "x@yahoo.com"},
      {"x@yahoo.cm", "x@yahoo.com"},
      {"x@yahoo.co.inn", "x@yahoo.co.in"},
      {"x@yaho.co.in", "x@yahoo.co.in"},
      {"x@outlok.com", "x@outlook.com"},
      {"x@outlook.cmo", "x@outlook.com"},
      {"x@iclod.com", "x@icloud.com"},
      {"x@rediffmial.com", "x@rediffmail.com"},
      {"x@protonmial.com", "x@protonmail.com"},
      {"x@aol.con", "x@aol.com"},
      {"x@live.cmo", "x@live.com"},
      {"x@msn.cm", "x@msn.com"},
      {"x@gmx.con", "x@gmx.com"},
      {"x@mail.con", "x@mail.com"},
      {"x@GMIAL.COM", "x@gmail.com"},
  };
  for (const TypoCase& c : cases) {
    std::optional<std::string> fixed = FixEmailTypo(c.input);
    ASSERT_TRUE(fixed.has_value()) << c.input;
    EXPECT_EQ(*fixed, c.fixed) << c.input;
  }
}

TEST(FixEmailTypoTest, LeavesRealDomainsAlone) {
  for (const char* email : {
           "a@gmail.com",      "a@mail.com",
           "a@email.com",      "a@ymail.com",
           "a@googlemail.com", "a@yahoo.com",
           "a@yahoo.co.in",    "a@yahoo.co.uk",
           "a@yahoo.co.id",    "a@yahoo.co.jp",
           "a@yahoo.fr",       "a@yahoo.ca",
           "a@yahoo.in",       "a@hotmail.co.uk",
           "a@hotmail.fr",     "a@hotmail.cl",
           "a@live.ca",        "a@outlook.in",
           "a@outlook.es",     "a@aol.com",
           "a@aon.com",        "a@gmc.com",
           "a@gm.com",         "a@gmx.de",
           "a@gmx.net",        "a@me.com",
           "a@mac.com",        "a@cloud.com",
           "a@icloud.com",     "a@love.com",
           "a@yandex.ru",      "a@mail.ru",
           "a@protonmail.ch",  "a@proton.me",
           "a@example.com",    "a@company.co.in",
           "a@acme.io",        "a@gmail.company.com",
       }) {
    EXPECT_EQ(FixEmailTypo(email), std::nullopt) << email;
  }
}

// Real addresses the fixer once rewrote: li@foxmail.com -> hotmail.com, ann@fastmail.fm ->
// fastmail.com, raj@zohomail.eu -> zohomail.in, bob@hotmart.com -> hotmail.com.
TEST(FixEmailTypoTest, LeavesRealProvidersNearAProviderAlone) {
  for (const char* email : {"li@foxmail.com", "ann@fastmail.fm", "raj@zohomail.eu", "bob@hotmart.com", "a@fastmail.com",
                            "a@zohomail.com", "a@hushmail.com", "a@tuta.com"}) {
    EXPECT_EQ(FixEmailTypo(email), std::nullopt) << email;
  }
}

// Another real top-level label is another domain, not a typo of the provider's; the allow-list
// need not know them.
TEST(FixEmailTypoTest, LeavesADifferentRealTopLevelLabelAlone) {
  for (const char* domain : {"fastmail.to", "fastmail.cn", "fastmail.ca", "fastmail.fm", "zohomail.eu", "proton.ai",
                             "gmail.cn", "gmail.net", "gmail.io"}) {
    EXPECT_EQ(SuggestDomainFix(domain), std::nullopt) << domain;
  }
  // The provider's own label cut short by a letter is still a slip, and so is a label that is no
  // TLD.
  EXPECT_EQ(SuggestDomainFix("fastmail.co"), "fastmail.com");
  EXPECT_EQ(SuggestDomainFix("fastmail.cm"), "fastmail.com");
  EXPECT_EQ(SuggestDomainFix("proton.mee"), "proton.me");
  EXPECT_EQ(SuggestDomainFix("hotmail.co.ul"), "hotmail.co.uk");
}

// A different first letter makes a different name (foxmail, wahoo, xcloud), and so do edits
// that are not slips of the hand (photon for proton: h is nowhere near r; hotmart for hotmail).
TEST(FixEmailTypoTest, LeavesNamesThatAreNotSlipsAlone) {
  for (const char* domain : {"fotmail.com", "wahoo.com", "xcloud.com", "tahoo.com", "photon.me", "hotmarl.com",
                             "gmaxl.com", "hotmeil.com"}) {
    EXPECT_EQ(SuggestDomainFix(domain), std::nullopt) << domain;
  }
}

// Slips of the hand are fixed: a key's neighbour, a letter doubled or next to its key, swapped or
// missing, at most two of them.
TEST(FixEmailTypoTest, FixesSlipsOfTheHand) {
  const std::vector<TypoCase> cases = {
      {"x@gmaol.com", "x@gmail.com"},     {"x@gmsil.com", "x@gmail.com"},       {"x@gmasil.com", "x@gmail.com"},
      {"x@ggmail.com", "x@gmail.com"},    {"x@hotmaik.com", "x@hotmail.com"},   {"x@yahooo.co.in", "x@yahoo.co.in"},
      {"x@yajoo.com", "x@yahoo.com"},     {"x@outlool.com", "x@outlook.com"},   {"x@icluod.com", "x@icloud.com"},
      {"x@hotmial.cmo", "x@hotmail.com"}, {"x@fastmial.com", "x@fastmail.com"}, {"x@zohomial.in", "x@zohomail.in"},
  };
  for (const TypoCase& c : cases) {
    EXPECT_EQ(FixEmailTypo(c.input), c.fixed) << c.input;
  }
}

TEST(FixEmailTypoTest, LeavesShortNamesThatAreOneEditFromAShortProviderAlone) {
  // One edit inside the name of a short provider lands on real company domains.
  for (const char* email : {"a@aoo.com", "a@msc.com", "a@gmz.com", "a@live.org", "a@line.com"}) {
    EXPECT_EQ(FixEmailTypo(email), std::nullopt) << email;
  }
}

TEST(FixEmailTypoTest, LeavesDomainsThreeEditsAwayAlone) {
  for (const char* email : {"a@gmail.xyz", "a@gmaaaail.com", "a@hotmail.xyz", "a@yahoo.co.xyz"}) {
    EXPECT_EQ(FixEmailTypo(email), std::nullopt) << email;
  }
}

TEST(FixEmailTypoTest, LeavesAmbiguousDomainsAlone) {
  // hmail.com is one edit from both gmail.com and mail.com.
  EXPECT_EQ(FixEmailTypo("a@hmail.com"), std::nullopt);
  // yahoo.co.un is one edit from both yahoo.co.uk and yahoo.co.in.
  EXPECT_EQ(FixEmailTypo("a@yahoo.co.un"), std::nullopt);
}

TEST(FixEmailTypoTest, RejectsMalformedInput) {
  EXPECT_EQ(FixEmailTypo(""), std::nullopt);
  EXPECT_EQ(FixEmailTypo("gmial.com"), std::nullopt);
  EXPECT_EQ(FixEmailTypo("@gmial.com"), std::nullopt);
  EXPECT_EQ(FixEmailTypo("john@"), std::nullopt);
}

TEST(FixEmailTypoTest, UsesTheLastAtSign) { EXPECT_EQ(FixEmailTypo("\"a@b\"@gmial.com"), "\"a@b\"@gmail.com"); }

TEST(FixEmailTypoTest, MemoisedAnswersMatchAcrossThreads) {
  const std::vector<std::string> inputs = {"a@gmial.com", "b@gmail.com", "c@yahooo.com", "d@example.com"};
  std::vector<std::optional<std::string>> expected;
  for (const auto& in : inputs) expected.push_back(FixEmailTypo(in));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const size_t k = static_cast<size_t>(i + t) % inputs.size();
        if (FixEmailTypo(inputs[k]) != expected[k]) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
  EXPECT_EQ(expected[0], "a@gmail.com");
  EXPECT_EQ(expected[1], std::nullopt);
}

}  // namespace
}  // namespace contacts
