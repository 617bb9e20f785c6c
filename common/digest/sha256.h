// SHA-256 of bytes fed in pieces, and the hex form clients exchange (as sha256sum prints it):
// uploads are checked against the digest their client declares, and report the one they got.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace contacts {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view bytes);
  // The digest of everything fed so far, as 64 lower-case hex digits. Ends the hash: call once.
  std::string FinishHex();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A client's hex digest in the form FinishHex gives: 64 hex digits, any case, lower-cased.
// INVALID_ARGUMENT naming `field` otherwise.
absl::StatusOr<std::string> CanonicalSha256Hex(std::string_view field, std::string_view hex);

}  // namespace contacts
