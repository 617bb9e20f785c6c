// Page tokens (AIP-158). A token continues one listing only: it carries a fingerprint of the
// request that issued it, and a request with other parameters is refused rather than handed rows
// from that position under another filter. A token is web-safe base64 of
//
//   +------+-------------------------+-------------------------------------+
//   | "p2" | fingerprint (8 B, BE)   | position (the rest; each RPC's own) |
//   +------+-------------------------+-------------------------------------+
//
// The fingerprint hashes the request's type, the tenant's id and the request's deterministic wire
// bytes with the fields that do not define the result cleared by the caller. The hash guards
// against mistakes, not forgery: positions must only ever lead into the caller's own data. Tokens
// of earlier versions ("v1:<ordinal>", or a raw key) lack the mark and are refused like any token
// the service did not issue.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <google/protobuf/message.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace contacts {

// How the refusal of a token issued for another request begins (IsPageTokenOfAnotherRequest).
inline constexpr std::string_view kPageTokenOfAnotherRequest = "page_token: issued for a different request";

// A fingerprint of `defining` (a paged request with page_size, page_token and whatever else does
// not decide which rows come already cleared) for `tenant_id`, and of `binding`: what the request's
// names stood for when the first page was read (say, the id of the list a filter names), so that a
// name now meaning something else ends the paging too. Stable across processes and releases
// (absl::Hash is seeded per process), so a token outlives a restart.
uint64_t RequestFingerprint(uint32_t tenant_id, const google::protobuf::Message& defining,
                            std::string_view binding = {});

std::string EncodePageToken(uint64_t fingerprint, std::string_view position);

// The position held by `token`.
// INVALID_ARGUMENT "page_token: not a token this service issued", or, when it was issued for a
// request whose fingerprint is not `fingerprint`, kPageTokenOfAnotherRequest followed by
// `must_match` (what must be as on the first page) in parentheses.
absl::StatusOr<std::string> DecodePageToken(const std::string& token, uint64_t fingerprint,
                                            std::string_view must_match);

// Whether `status` is DecodePageToken's refusal of a token issued for another request (as a
// caller of the service sees it, e.g. audience-query of contact-store's).
bool IsPageTokenOfAnotherRequest(const absl::Status& status);

}  // namespace contacts
