#include "common/paging/page_token.h"

#include <gtest/gtest.h>

#include "contacts/v1/contact_store.pb.h"

#include "absl/strings/escaping.h"

namespace contacts {
namespace {

v1::StoreQueryRequest QueryFor(const std::string& city) {
  v1::StoreQueryRequest request;
  v1::AttributePredicate* predicate = request.mutable_filter()->mutable_term()->mutable_attribute();
  predicate->set_attribute("city");
  predicate->set_op(v1::EQ);
  predicate->add_values(city);
  return request;
}

TEST(PageTokenTest, ATokenGivesBackItsPositionForTheSameRequestOnly) {
  const uint64_t pune = RequestFingerprint(7, QueryFor("Pune"));
  const std::string token = EncodePageToken(pune, std::string("\x00\x01\xff", 3));
  auto position = DecodePageToken(token, pune, "the filter");
  ASSERT_TRUE(position.ok()) << position.status();
  EXPECT_EQ(*position, std::string("\x00\x01\xff", 3));

  auto other_filter = DecodePageToken(token, RequestFingerprint(7, QueryFor("Goa")), "the filter");
  EXPECT_EQ(other_filter.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(other_filter.status().message(),
            "page_token: issued for a different request (the filter); start again without a page token");
  EXPECT_TRUE(IsPageTokenOfAnotherRequest(other_filter.status()));

  auto other_tenant = DecodePageToken(token, RequestFingerprint(8, QueryFor("Pune")), "the tenant");
  EXPECT_TRUE(IsPageTokenOfAnotherRequest(other_tenant.status()));
}

TEST(PageTokenTest, FingerprintsDependOnTheRequestsTypeAndAreStable) {
  EXPECT_EQ(RequestFingerprint(1, QueryFor("Pune")), RequestFingerprint(1, QueryFor("Pune")));
  EXPECT_NE(RequestFingerprint(1, v1::StoreQueryRequest()), RequestFingerprint(1, v1::ListAnonymousRequest()));
  // Pinned: a token must outlive a restart and an upgrade, so the hash may not change silently.
  EXPECT_EQ(RequestFingerprint(1, v1::ListAnonymousRequest()), 5351877934542653030ull);
  EXPECT_NE(RequestFingerprint(1, QueryFor("Pune")), RequestFingerprint(2, QueryFor("Pune")));
}

TEST(PageTokenTest, TokensTheServiceDidNotIssueAreRefused) {
  std::string old_format;
  absl::WebSafeBase64Escape("v1:42", &old_format);
  for (const std::string& token : {std::string("not base64!"), old_format, EncodePageToken(1, "").substr(0, 4)}) {
    SCOPED_TRACE(token);
    auto position = DecodePageToken(token, 1, "x");
    EXPECT_EQ(position.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(position.status().message(), "page_token: not a token this service issued");
    EXPECT_FALSE(IsPageTokenOfAnotherRequest(position.status()));
  }
  EXPECT_FALSE(IsPageTokenOfAnotherRequest(absl::NotFoundError(std::string(kPageTokenOfAnotherRequest))));
}

}  // namespace
}  // namespace contacts
