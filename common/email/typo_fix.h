// Email domain typo correction for imports ("typo fix" option): john@gmial.com -> john@gmail.com.
//
// A domain is corrected only towards one of about 30 common mailbox providers (gmail.com,
// yahoo.com, yahoo.co.in, hotmail.com, outlook.com, ...), and only when that provider is the
// single provider nearest to it by Damerau-Levenshtein distance (adjacent transpositions count 1)
// and no other domain we know to be real (an allow-list: email.com, me.com, yahoo.fr, yahoo.ca,
// hotmail.de, gmc.com, aon.com, foxmail.com, ...) is strictly nearer; within:
//   - distance 2 for providers of 9 characters or more (gmail.com, yahoo.com, hotmail.com, ...);
//   - distance 1 for shorter providers (aol.com, msn.com, gmx.com, mail.com, live.com, ...), and
//     only when the edit is after the provider's first label (aol.con -> aol.com, but aon.com, a
//     real company domain, is left alone).
// Near is not enough: the edits must be slips of the hand (a letter missing, doubled or extra
// next to its key, two letters swapped, a QWERTY neighbour hit instead, a trailing dot), and the
// first letter never replaced (foxmail.com, wahoo.com, xcloud.com, photon.me and hotmart.com are
// other names). A domain differing only in its top-level label, when that label is another real
// one, is another domain (fastmail.fm, zohomail.eu, proton.ai); the provider's own label cut
// short by a letter is still a slip (gmail.co, yahoo.cm).
// A domain that is itself known to be real is never changed (exact matches win: mail.com stays
// mail.com though gmail.com is one edit away). Two providers at the same distance leave the
// domain alone (hmail.com: gmail.com or mail.com?).
//
// Results are memoised per domain in a per-thread cache (bounded), since domains repeat across
// millions of rows; the function is thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace contacts {

// Returns the corrected address when the domain of `normalized_email` (the part after its last
// '@', compared case-insensitively) is a likely misspelling of a common provider's domain, else
// nullopt (also for input without '@' or with an empty local part or domain). The local part is
// kept as given; the domain returned is the provider's, in lower case.
std::optional<std::string> FixEmailTypo(std::string_view normalized_email);

// The domain-level decision behind FixEmailTypo: the provider domain `domain` should become, or
// nullopt. Not memoised.
std::optional<std::string_view> SuggestDomainFix(std::string_view domain);

// Optimal-string-alignment Damerau-Levenshtein distance between a and b, or `limit` + 1 when it is
// larger than `limit`. Exposed for tests.
int DamerauLevenshtein(std::string_view a, std::string_view b, int limit);

}  // namespace contacts
