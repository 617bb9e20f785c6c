#include "tests/testing/role_check.h"

#include <chrono>
#include <fstream>
#include <future>
#include <utility>

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>

#include "common/auth/auth.h"

namespace contacts::test {
namespace {

// The status of one call of `method` ("/package.Service/Method") with an empty request, with
// `key` in x-api-key unless empty. A streaming method answers like a unary one here: the server
// refuses (or not) before it reads or writes a message.
grpc::Status CallWithKey(grpc::GenericStub& stub, const std::string& method, const std::string& key) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  if (!key.empty()) ctx.AddMetadata("x-api-key", key);
  // No bytes: the serialised form of any message with no field set (a ByteBuffer without a slice
  // is no message at all).
  const grpc::Slice no_bytes(std::string{});
  grpc::ByteBuffer request(&no_bytes, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  return done.get_future().get();
}

bool Refused(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
         status.error_code() == grpc::StatusCode::UNAUTHENTICATED;
}

}  // namespace

std::string WriteRoleKeyFile(const std::string& dir) {
  const std::string path = dir + "/api_keys";
  std::ofstream out(path);
  out << fmt::format("{} acme reader\n{} acme writer\n{} acme admin\n", kAcmeRoleKeys.reader, kAcmeRoleKeys.writer,
                     kAcmeRoleKeys.admin);
  return path;
}

std::vector<std::string> RoleMismatches(const std::shared_ptr<grpc::Channel>& channel, std::string_view service,
                                        const std::map<std::string, std::string>& lowest_role, const RoleKeys& keys) {
  std::vector<std::string> mismatches;
  const google::protobuf::ServiceDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(std::string(service));
  if (descriptor == nullptr) return {fmt::format("service {} is not linked into the test", service)};
  grpc::GenericStub stub(channel);
  std::map<std::string, bool> listed;
  for (const auto& [method, role] : lowest_role) listed[method] = false;
  for (int m = 0; m < descriptor->method_count(); ++m) {
    const std::string name = descriptor->method(m)->name();
    const std::string path = fmt::format("/{}/{}", service, name);
    auto expected = lowest_role.find(name);
    if (expected == lowest_role.end()) {
      mismatches.push_back(fmt::format("{}: not in the expected roles", name));
      continue;
    }
    listed[name] = true;
    const absl::StatusOr<Role> lowest = ParseRole(expected->second);
    if (!lowest.ok()) {
      mismatches.push_back(fmt::format("{}: {}", name, std::string(lowest.status().message())));
      continue;
    }
    if (grpc::Status status = CallWithKey(stub, path, ""); status.error_code() != grpc::StatusCode::UNAUTHENTICATED) {
      mismatches.push_back(fmt::format("{} without a key: {} \"{}\", not UNAUTHENTICATED", name,
                                       static_cast<int>(status.error_code()), status.error_message()));
    }
    for (const auto& [role, key] : {std::pair<Role, std::string>{Role::kReader, keys.reader},
                                    {Role::kWriter, keys.writer},
                                    {Role::kAdmin, keys.admin}}) {
      const grpc::Status status = CallWithKey(stub, path, key);
      const bool should_pass = role >= *lowest;
      if (Refused(status) == should_pass) {
        mismatches.push_back(fmt::format("{} as {}: {} ({} \"{}\"), but its lowest role is {}", name, RoleName(role),
                                         should_pass ? "refused" : "let through", static_cast<int>(status.error_code()),
                                         status.error_message(), expected->second));
      }
    }
  }
  for (const auto& [method, found] : listed) {
    if (!found) mismatches.push_back(fmt::format("{}: expected, but not a method of {}", method, service));
  }
  return mismatches;
}

}  // namespace contacts::test
