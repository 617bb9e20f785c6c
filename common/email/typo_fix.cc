#include "common/email/typo_fix.h"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

namespace contacts {
namespace {

// Targets of corrections: high-volume consumer mailbox domains.
constexpr std::array<std::string_view, 32> kProviders = {
    "gmail.com",      "googlemail.com", "yahoo.com",      "yahoo.co.in",    "yahoo.co.uk",  "ymail.com",
    "rocketmail.com", "hotmail.com",    "hotmail.co.uk",  "outlook.com",    "live.com",     "msn.com",
    "icloud.com",     "aol.com",        "rediffmail.com", "protonmail.com", "proton.me",    "gmx.com",
    "gmx.net",        "mail.com",       "zoho.com",       "yandex.com",     "yandex.ru",    "mail.ru",
    "comcast.net",    "verizon.net",    "sbcglobal.net",  "fastmail.com",   "tutanota.com", "zohomail.in",
    "bellsouth.net",  "btinternet.com",
};

// Real domains that are near a provider and must never be "corrected" (nor corrected into).
constexpr std::string_view kOtherRealDomains[] = {
    "email.com",   "me.com",        "mac.com",         "aim.com",     "gm.com",       "gmc.com",        "gmx.de",
    "gmx.at",      "gmx.ch",        "gmx.fr",          "gmx.us",      "gmx.co.uk",    "web.de",         "aon.com",
    "cloud.com",   "love.com",      "life.com",        "like.com",    "lime.com",     "line.me",        "att.net",
    "cox.net",     "qq.com",        "163.com",         "126.com",     "naver.com",    "hanmail.net",    "daum.net",
    "sky.com",     "libero.it",     "virgilio.it",     "tiscali.it",  "orange.fr",    "free.fr",        "sfr.fr",
    "laposte.net", "wanadoo.fr",    "t-online.de",     "freenet.de",  "pm.me",        "hey.com",        "sify.com",
    "rediff.com",  "inbox.com",     "inbox.ru",        "bk.ru",       "list.ru",      "rambler.ru",     "ya.ru",
    "seznam.cz",   "wp.pl",         "o2.pl",           "onet.pl",     "interia.pl",   "shaw.ca",        "rogers.com",
    "telus.net",   "bigpond.com",   "optusnet.com.au", "xtra.co.nz",  "uol.com.br",   "bol.com.br",     "terra.com.br",
    "charter.net", "earthlink.net", "juno.com",        "netzero.net", "frontier.com", "windstream.net", "protonmail.ch",
    "tuta.io",     "tutanota.de",   "zohomail.com",    "zoho.in",     "zoho.eu",      "yahoo.in",       "googlemail.de",
    "mail.de",     "email.de",
};

// Country domains of the international providers: yahoo.fr, hotmail.co.uk, live.ca, ... are all
// real, and some are only 2 edits from the .com.
constexpr std::string_view kRegionalBases[] = {"yahoo", "hotmail", "live", "outlook", "aol", "msn", "yandex", "zoho"};
constexpr std::string_view kRegionalSuffixes[] = {
    "fr",     "de",     "it",     "es",     "ca",     "cl",     "hk",     "in",     "ie",     "be",     "nl",
    "se",     "dk",     "no",     "fi",     "at",     "ch",     "pl",     "ru",     "gr",     "pt",     "cz",
    "hu",     "ro",     "ua",     "by",     "kz",     "tr",     "jp",     "kr",     "ph",     "sg",     "my",
    "vn",     "th",     "id",     "ar",     "mx",     "br",     "pe",     "co.uk",  "co.in",  "co.jp",  "co.id",
    "co.nz",  "co.za",  "co.kr",  "co.th",  "co.il",  "com.au", "com.br", "com.ar", "com.mx", "com.sg", "com.ph",
    "com.my", "com.tw", "com.hk", "com.vn", "com.tr", "com.co", "com.pe", "com.cn", "net",    "eu",     "de.vu",
};

constexpr size_t kLongDomain = 9;
constexpr size_t kCacheEntries = size_t{1} << 16;

struct KnownDomain {
  std::string name;
  bool provider;
};

struct KnownDomainIndex {
  std::vector<KnownDomain> all;
  absl::flat_hash_set<std::string> names;
  std::vector<std::vector<const KnownDomain*>> by_length;  // index: name length
};

const KnownDomainIndex& KnownDomains() {
  static const KnownDomainIndex* const index = [] {
    auto* known = new KnownDomainIndex();
    auto add = [&](std::string name, bool provider) {
      if (known->names.insert(name).second) known->all.push_back({std::move(name), provider});
    };
    for (std::string_view d : kProviders) add(std::string(d), true);
    for (std::string_view d : kOtherRealDomains) add(std::string(d), false);
    for (std::string_view base : kRegionalBases) {
      for (std::string_view suffix : kRegionalSuffixes) add(std::string(base) + "." + std::string(suffix), false);
    }
    for (const KnownDomain& d : known->all) {
      if (known->by_length.size() <= d.name.size()) known->by_length.resize(d.name.size() + 1);
      known->by_length[d.name.size()].push_back(&d);
    }
    return known;
  }();
  return *index;
}

}  // namespace

int DamerauLevenshtein(std::string_view a, std::string_view b, int limit) {
  const int n = static_cast<int>(a.size());
  const int m = static_cast<int>(b.size());
  if (std::abs(n - m) > limit) return limit + 1;
  // Three rows of the optimal-string-alignment table; on the stack for domain-sized input.
  constexpr int kStackColumns = 64;
  std::array<int, kStackColumns + 1> stack_rows[3];
  std::vector<int> heap_rows;
  int* before = stack_rows[0].data();
  int* prev = stack_rows[1].data();
  int* cur = stack_rows[2].data();
  if (m > kStackColumns) {
    heap_rows.resize(3 * static_cast<size_t>(m + 1));
    before = heap_rows.data();
    prev = before + (m + 1);
    cur = prev + (m + 1);
  }
  // Only the band |i - j| <= limit can hold values <= limit (Ukkonen); cells just outside the
  // band read as "too far".
  const int too_far = limit + 1;
  for (int j = 0; j <= m; ++j) prev[j] = j <= limit ? j : too_far;
  for (int i = 1; i <= n; ++i) {
    const int lo = std::max(1, i - limit);
    const int hi = std::min(m, i + limit);
    cur[0] = i <= limit ? i : too_far;
    cur[lo - 1] = lo == 1 ? cur[0] : too_far;
    int row_min = cur[0];
    for (int j = lo; j <= hi; ++j) {
      const int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int v = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) v = std::min(v, before[j - 2] + 1);
      cur[j] = v;
      row_min = std::min(row_min, v);
    }
    if (hi < m) cur[hi + 1] = too_far;
    if (row_min > limit) return too_far;
    int* const oldest = before;
    before = prev;
    prev = cur;
    cur = oldest;
  }
  return std::min(prev[m], too_far);
}

std::optional<std::string_view> SuggestDomainFix(std::string_view domain) {
  if (domain.empty() || domain.size() > 253) return std::nullopt;
  std::string lower(domain);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  constexpr int kMaxDistance = 2;
  int best = kMaxDistance + 1;
  const KnownDomain* provider = nullptr;  // the provider at distance `best`, if exactly one
  int providers_at_best = 0;
  const KnownDomainIndex& index = KnownDomains();
  if (index.names.contains(lower)) return std::nullopt;  // a real domain: exact matches win
  const size_t min_length = lower.size() > kMaxDistance ? lower.size() - kMaxDistance : 0;
  const size_t max_length = std::min(lower.size() + kMaxDistance, index.by_length.size() - 1);
  for (size_t length = min_length; length <= max_length; ++length) {
    for (const KnownDomain* known : index.by_length[length]) {
      const int d = DamerauLevenshtein(lower, known->name, kMaxDistance);
      if (d > kMaxDistance || d > best) continue;
      if (d < best) {
        best = d;
        provider = nullptr;
        providers_at_best = 0;
      }
      if (known->provider) {
        provider = known;
        ++providers_at_best;
      }
    }
  }
  // A real non-provider domain strictly nearer than every provider blocks the fix; on a tie the
  // provider wins (yahoo.cm is far likelier yahoo.com than yahoo.ca), but two providers tie.
  if (providers_at_best != 1) return std::nullopt;
  const std::string_view target = provider->name;
  if (target.size() >= kLongDomain) return target;  // best <= 2
  if (best > 1) return std::nullopt;
  // Short providers: only slips after the first label (aol.con, live.co), since one edit inside a
  // short name lands on real company domains.
  const size_t dot = target.find('.');
  if (lower.size() > dot && lower.compare(0, dot + 1, target.substr(0, dot + 1)) == 0) return target;
  return std::nullopt;
}

std::optional<std::string> FixEmailTypo(std::string_view normalized_email) {
  const size_t at = normalized_email.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == normalized_email.size()) return std::nullopt;
  const std::string_view domain = normalized_email.substr(at + 1);

  // Per-thread memo: domain -> provider ("" when no fix). No locks on the hot path.
  thread_local absl::flat_hash_map<std::string, std::string> cache;
  std::string_view fixed;
  const auto it = cache.find(absl::string_view(domain.data(), domain.size()));
  if (it != cache.end()) {
    fixed = std::string_view(it->second.data(), it->second.size());
  } else {
    if (cache.size() >= kCacheEntries) cache.clear();
    const std::optional<std::string_view> suggestion = SuggestDomainFix(domain);
    fixed = suggestion.value_or(std::string_view());
    cache.emplace(std::string(domain), std::string(fixed));
  }
  if (fixed.empty()) return std::nullopt;
  std::string result;
  result.reserve(at + 1 + fixed.size());
  result.append(normalized_email.substr(0, at + 1));
  result.append(fixed);
  return result;
}

}  // namespace contacts
