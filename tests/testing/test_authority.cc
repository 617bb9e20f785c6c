#include "tests/testing/test_authority.h"

#include <filesystem>
#include <fstream>
#include <vector>

#include "fmt/format.h"
#include "tests/testing/service_process.h"

namespace contacts::test {

absl::StatusOr<TestAuthority> MakeTestAuthority(const std::string& dir, const std::string& name, int days) {
  const std::string at = fmt::format("{}/{}", dir, name);
  std::error_code error;
  std::filesystem::create_directories(at, error);
  if (error) return absl::InternalError(fmt::format("cannot create {}: {}", at, error.message()));
  std::ofstream(at + "/server.ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n";
  std::ofstream(at + "/client.ext") << "extendedKeyUsage=clientAuth\n";
  const std::string new_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::vector<std::string> commands = {
      fmt::format("openssl req -x509 {} -keyout ca.key -out ca.pem -days {} -subj '/CN={} test CA'", new_key, days,
                  name),
      fmt::format("openssl req -new {} -keyout server.key -out server.csr -subj '/CN=localhost'", new_key),
      fmt::format(
          "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days {} -extfile server.ext "
          "-out server.pem",
          days),
      fmt::format("openssl req -new {} -keyout client.key -out client.csr -subj '/CN={} client'", new_key, name),
      fmt::format(
          "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -set_serial 3 -days {} -extfile client.ext "
          "-out client.pem",
          days),
  };
  for (const std::string& command : commands) {
    std::string output;
    if (RunShell(fmt::format("cd '{}' && {} 2>&1", at, command), &output) != 0) {
      return absl::InternalError(fmt::format("{} failed:\n{}", command, output));
    }
  }
  return TestAuthority{.ca_file = at + "/ca.pem",
                       .server_cert_file = at + "/server.pem",
                       .server_key_file = at + "/server.key",
                       .client_cert_file = at + "/client.pem",
                       .client_key_file = at + "/client.key"};
}

}  // namespace contacts::test
