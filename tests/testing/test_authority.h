// A throwaway certificate authority for tests and benchmarks of TLS: a CA and the server and client
// certificates it signed, made with the openssl CLI (scripts/setup.sh installs it).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace contacts::test {

// The PEM files of one CA and the certificates it signed.
struct TestAuthority {
  std::string ca_file;
  std::string server_cert_file;  // subjectAltName IP:127.0.0.1, DNS:localhost; serverAuth
  std::string server_key_file;
  std::string client_cert_file;  // clientAuth
  std::string client_key_file;
};

// Makes a CA named `name` and its server and client certificates under `dir`/`name` (P-256 keys:
// fast to make), all valid for `days` days from now (1 or more). Errors: INTERNAL with openssl's
// output.
absl::StatusOr<TestAuthority> MakeTestAuthority(const std::string& dir, const std::string& name, int days = 2);

}  // namespace contacts::test
