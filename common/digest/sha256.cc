#include "common/digest/sha256.h"

#include <cstdlib>

#include <openssl/evp.h>

#include "absl/strings/ascii.h"
#include "fmt/format.h"

namespace contacts {

struct Sha256::State {
  EVP_MD_CTX* context = nullptr;
  ~State() { EVP_MD_CTX_free(context); }
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  state_->context = EVP_MD_CTX_new();
  // Only allocation can fail here; there is no digest to report without the context.
  if (state_->context == nullptr || EVP_DigestInit_ex(state_->context, EVP_sha256(), nullptr) != 1) std::abort();
}

Sha256::~Sha256() = default;

void Sha256::Update(std::string_view bytes) {
  if (!bytes.empty()) EVP_DigestUpdate(state_->context, bytes.data(), bytes.size());
}

std::string Sha256::FinishHex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(state_->context, digest, &size);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    hex.push_back(kDigits[digest[i] >> 4]);
    hex.push_back(kDigits[digest[i] & 0xf]);
  }
  return hex;
}

absl::StatusOr<std::string> CanonicalSha256Hex(std::string_view field, std::string_view hex) {
  bool digits_only = true;
  for (char c : hex) digits_only &= absl::ascii_isxdigit(static_cast<unsigned char>(c));
  if (hex.size() != 64 || !digits_only) {
    return absl::InvalidArgumentError(
        fmt::format("{}: a SHA-256 is 64 hex digits (as sha256sum prints it), got {} characters{}", field, hex.size(),
                    digits_only ? "" : " with some not hex digits"));
  }
  return absl::AsciiStrToLower(std::string(hex));
}

}  // namespace contacts
