#include "common/email/typo_fix.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <iterator>
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
    "mail.de",     "email.de",      "foxmail.com",     "fastmail.fm", "zohomail.eu",  "hotmart.com",    "hushmail.com",
    "tuta.com",    "yeah.net",
};

// Top-level labels that are real (IANA's country codes, and the generic ones mail addresses use):
// a domain that differs from a provider only there is another domain (fastmail.fm, proton.ai),
// not a typo.
constexpr std::string_view kCountryTlds =
    "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt bv bw by bz "
    "ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er es et eu fi fj fk fm "
    "fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir is "
    "it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm "
    "mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr "
    "ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sj sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg "
    "th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw";
constexpr std::string_view kGenericTlds[] = {
    "com",  "net",   "org",  "edu",  "gov",  "mil",  "int",    "info",  "biz",  "name", "pro", "mobi",
    "tel",  "cat",   "coop", "aero", "asia", "jobs", "travel", "app",   "dev",  "xyz",  "top", "online",
    "site", "store", "shop", "tech", "club", "live", "email",  "cloud", "blog", "art",
};

// QWERTY rows; each row sits about half a key right of the one above.
constexpr std::string_view kKeyRows[] = {"1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"};

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

bool IsRealTld(std::string_view label) {
  if (label.size() == 2) {
    for (size_t i = 0; i + 2 <= kCountryTlds.size(); i += 3) {
      if (kCountryTlds.substr(i, 2) == label) return true;
    }
    return false;
  }
  return std::find(std::begin(kGenericTlds), std::end(kGenericTlds), label) != std::end(kGenericTlds);
}

struct Key {
  int row = -1;
  int column = 0;
};

Key KeyOf(char c) {
  for (int row = 0; row < static_cast<int>(std::size(kKeyRows)); ++row) {
    if (const size_t column = kKeyRows[row].find(c); column != std::string_view::npos) {
      return {row, static_cast<int>(column)};
    }
  }
  return {};
}

// Neighbours on a QWERTY keyboard (fat-finger slips): same row, or the two keys touching from the
// row above or below.
bool KeysAdjacent(char a, char b) {
  Key upper = KeyOf(a);
  Key lower = KeyOf(b);
  if (upper.row < 0 || lower.row < 0) return false;
  if (upper.row == lower.row) return std::abs(upper.column - lower.column) == 1;
  if (upper.row > lower.row) std::swap(upper, lower);
  return lower.row == upper.row + 1 && (lower.column == upper.column || lower.column == upper.column - 1);
}

// Whether `typed` is `target` with `distance` slips of the kinds people make: a letter missing,
// a letter doubled or an extra one next to its key, two letters swapped, a key's neighbour hit
// instead (never for the first letter: foxmail, wahoo and xcloud are other names, not slips), a
// trailing dot. A cheapest alignment needing any other edit (hotmart for hotmail: r and t for
// i and l; photon for proton: h for r) is a different name.
bool IsLikelySlip(std::string_view typed, std::string_view target, int distance) {
  const size_t n = typed.size();
  const size_t m = target.size();
  constexpr int kNo = 1 << 20;
  std::vector<int> d((n + 1) * (m + 1), kNo);
  auto at = [&](size_t i, size_t j) -> int& { return d[i * (m + 1) + j]; };
  auto extra_is_slip = [&](size_t k) {  // typed[k] has no counterpart in target
    const char c = typed[k];
    if (c == '.' && k + 1 == n) return true;
    const bool doubled = (k > 0 && typed[k - 1] == c) || (k + 1 < n && typed[k + 1] == c);
    const bool next_key = (k > 0 && KeysAdjacent(typed[k - 1], c)) || (k + 1 < n && KeysAdjacent(typed[k + 1], c));
    return doubled || next_key;
  };
  for (size_t i = 0; i <= n; ++i) {
    for (size_t j = 0; j <= m; ++j) {
      int& v = at(i, j);
      if (i == 0 && j == 0) v = 0;
      if (j > 0) v = std::min(v, at(i, j - 1) + 1);  // a letter missing
      if (i > 0 && extra_is_slip(i - 1)) v = std::min(v, at(i - 1, j) + 1);
      if (i > 0 && j > 0) {
        if (typed[i - 1] == target[j - 1]) {
          v = std::min(v, at(i - 1, j - 1));
        } else if (j > 1 && KeysAdjacent(typed[i - 1], target[j - 1])) {
          v = std::min(v, at(i - 1, j - 1) + 1);
        }
      }
      if (i > 1 && j > 1 && typed[i - 1] == target[j - 2] && typed[i - 2] == target[j - 1]) {
        v = std::min(v, at(i - 2, j - 2) + 1);
      }
    }
  }
  return at(n, m) <= distance;
}

// Whether `typed` differs from `target` only in its top-level label, and that label is another
// real one rather than the target's cut short by a letter (gmail.co, gmail.cm, yahoo.cm stay
// slips of .com).
bool DiffersOnlyByARealTld(std::string_view typed, std::string_view target) {
  const size_t dot = typed.rfind('.');
  if (dot == std::string_view::npos || dot + 1 > target.size() ||
      typed.substr(0, dot + 1) != target.substr(0, dot + 1)) {
    return false;
  }
  const std::string_view tld = typed.substr(dot + 1);
  const std::string_view target_tld = target.substr(dot + 1);
  if (tld.size() < 2 || !IsRealTld(tld)) return false;
  const bool one_letter_short = tld.size() + 1 == target_tld.size() && DamerauLevenshtein(tld, target_tld, 1) == 1;
  return !one_letter_short;
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
  // Near is not enough: the edits must be ones a hand makes, and not a swap of one real TLD for
  // another (fastmail.fm, zohomail.eu).
  if (DiffersOnlyByARealTld(lower, target) || !IsLikelySlip(lower, target, best)) return std::nullopt;
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
