#include "common/paging/page_token.h"

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "absl/strings/escaping.h"
#include "common/storage/key_codec.h"
#include "common/storage/stable_hash.h"

namespace contacts {
namespace {

constexpr std::string_view kPageTokenMark = "p2";

}  // namespace

uint64_t RequestFingerprint(uint32_t tenant_id, const google::protobuf::Message& defining, std::string_view binding) {
  std::string bytes(defining.GetDescriptor()->full_name());
  bytes.push_back('\0');
  keys::PutFixed64BE(&bytes, tenant_id);
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);  // map entries in key order, say
    defining.SerializeToCodedStream(&coded);
  }
  // Empty for requests whose names bind nothing, so that their tokens stay those of before.
  if (!binding.empty()) {
    bytes.push_back('\0');
    bytes.append(binding);
  }
  return StableHash64(bytes);
}

std::string EncodePageToken(uint64_t fingerprint, std::string_view position) {
  std::string raw(kPageTokenMark);
  keys::PutFixed64BE(&raw, fingerprint);
  raw.append(position);
  std::string out;
  absl::WebSafeBase64Escape(raw, &out);
  return out;
}

absl::StatusOr<std::string> DecodePageToken(const std::string& token, uint64_t fingerprint,
                                            std::string_view must_match) {
  std::string raw;
  uint64_t issued_for = 0;
  std::string_view rest;
  if (absl::WebSafeBase64Unescape(token, &raw) && raw.starts_with(kPageTokenMark)) {
    rest = std::string_view(raw).substr(kPageTokenMark.size());
  }
  if (!keys::GetFixed64BE(&rest, &issued_for)) {
    return absl::InvalidArgumentError("page_token: not a token this service issued");
  }
  if (issued_for != fingerprint) {
    return absl::InvalidArgumentError(
        fmt::format("{} ({}); start again without a page token", kPageTokenOfAnotherRequest, must_match));
  }
  return std::string(rest);
}

bool IsPageTokenOfAnotherRequest(const absl::Status& status) {
  return absl::IsInvalidArgument(status) &&
         std::string_view(status.message().data(), status.message().size()).starts_with(kPageTokenOfAnotherRequest);
}

}  // namespace contacts
