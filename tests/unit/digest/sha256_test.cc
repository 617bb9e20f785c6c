#include "common/digest/sha256.h"

#include <string>

#include <gtest/gtest.h>

namespace contacts {
namespace {

std::string HexOf(std::string_view bytes) {
  Sha256 hash;
  hash.Update(bytes);
  return hash.FinishHex();
}

// FIPS 180-2's examples and the empty input, as sha256sum prints them.
TEST(Sha256Test, KnownDigests) {
  EXPECT_EQ(HexOf(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexOf("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexOf("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, PiecesHashAsTheWhole) {
  const std::string whole(100'003, 'x');
  Sha256 pieces;
  for (size_t at = 0; at < whole.size(); at += 4096) pieces.Update(std::string_view(whole).substr(at, 4096));
  pieces.Update("");
  EXPECT_EQ(pieces.FinishHex(), HexOf(whole));
}

TEST(Sha256Test, CanonicalHexLowerCasesAValidDigest) {
  auto canonical =
      CanonicalSha256Hex("start.sha256", "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
  ASSERT_TRUE(canonical.ok()) << canonical.status();
  EXPECT_EQ(*canonical, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, CanonicalHexRefusesOtherForms) {
  for (const std::string& bad : {std::string("abc"), std::string(63, 'a'), std::string(65, 'a'),
                                 std::string(63, 'a') + "g", std::string(62, 'a') + "  "}) {
    auto canonical = CanonicalSha256Hex("start.sha256", bad);
    ASSERT_FALSE(canonical.ok()) << bad;
    EXPECT_EQ(canonical.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(canonical.status().message().find("start.sha256: a SHA-256 is 64 hex digits"), std::string::npos)
        << canonical.status();
  }
}

}  // namespace
}  // namespace contacts
