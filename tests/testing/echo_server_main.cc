// test-echo-server: the smallest service built on the shared bootstrap (FlagSet, logging,
// Authenticator, ServerRunner), so integration tests can check it before any real service exists.
//
// Besides health and reflection it serves one method without a .proto, on raw bytes:
//   /contacts.test.Echo/Sleep   request: milliseconds as decimal text; needs role writer.
//   Sleeps in small steps, checking cancellation and the capped deadline like a long handler does,
//   then answers "tenant=<tenant> role=<role> slept_ms=<n>".
//   /contacts.test.Echo/Forward request: milliseconds; calls Sleep on this same server with the
//   caller's credentials (ForwardCredentials) and answers what Sleep answered.
#include <chrono>
#include <cstdio>
#include <thread>

#include <grpcpp/create_channel.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/impl/rpc_service_method.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/method_handler.h>

#include "absl/strings/numbers.h"
#include "common/auth/grpc_auth.h"
#include "common/config/flags.h"
#include "common/logging/logging.h"
#include "common/server/server_runner.h"
#include "common/status/grpc_status.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace {

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return "";
  std::string out;
  for (const grpc::Slice& slice : slices) out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  return out;
}

class EchoService : public grpc::Service {
 public:
  EchoService(const contacts::Authenticator* auth, int64_t deadline_cap_ms)
      : auth_(auth), deadline_cap_ms_(deadline_cap_ms) {
    AddMethod(new grpc::internal::RpcServiceMethod(
        "/contacts.test.Echo/Sleep", grpc::internal::RpcMethod::NORMAL_RPC,
        new grpc::internal::RpcMethodHandler<EchoService, grpc::ByteBuffer, grpc::ByteBuffer>(
            [](EchoService* service, grpc::ServerContext* ctx, const grpc::ByteBuffer* request,
               grpc::ByteBuffer* response) { return service->Sleep(ctx, request, response); },
            this)));
    AddMethod(new grpc::internal::RpcServiceMethod(
        "/contacts.test.Echo/Forward", grpc::internal::RpcMethod::NORMAL_RPC,
        new grpc::internal::RpcMethodHandler<EchoService, grpc::ByteBuffer, grpc::ByteBuffer>(
            [](EchoService* service, grpc::ServerContext* ctx, const grpc::ByteBuffer* request,
               grpc::ByteBuffer* response) { return service->Forward(ctx, request, response); },
            this)));
  }

  // REQUIRES: before the first Forward call.
  void set_self_address(const std::string& address) {
    self_ = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  }

  grpc::Status Forward(grpc::ServerContext* ctx, const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
    grpc::ClientContext outgoing;
    contacts::ForwardCredentials(*ctx, &outgoing);
    outgoing.set_deadline(contacts::EffectiveDeadline(*ctx, deadline_cap_ms_));
    grpc::internal::RpcMethod method("/contacts.test.Echo/Sleep", grpc::internal::RpcMethod::NORMAL_RPC);
    return grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(self_.get(), method, &outgoing,
                                                                                 *request, response);
  }

  grpc::Status Sleep(grpc::ServerContext* ctx, const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
    absl::StatusOr<contacts::CallIdentity> identity = contacts::AuthenticateCall(*auth_, *ctx, contacts::Role::kWriter);
    if (!identity.ok()) return contacts::ToGrpcStatus(identity.status());
    std::string text = ToString(*request);
    int64_t ms = 0;
    if (!absl::SimpleAtoi(text, &ms) || ms < 0) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, fmt::format("\"{}\" is not a number of ms", text));
    }
    auto deadline = contacts::EffectiveDeadline(*ctx, deadline_cap_ms_);
    auto start = std::chrono::steady_clock::now();
    spdlog::info("sleep started: {} ms for tenant {}", ms, identity->tenant);
    while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(ms)) {
      if (contacts::CallCancelledOrExpired(*ctx, deadline)) {
        return contacts::ToGrpcStatus(
            contacts::StatusOfStoppedCall(absl::CancelledError("sleep stopped"), *ctx, deadline));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    std::string answer =
        fmt::format("tenant={} role={} slept_ms={}", identity->tenant, contacts::RoleName(identity->role), ms);
    grpc::Slice slice(answer);
    *response = grpc::ByteBuffer(&slice, 1);
    spdlog::info("sleep finished: {} ms", ms);
    return grpc::Status::OK;
  }

 private:
  const contacts::Authenticator* auth_;
  int64_t deadline_cap_ms_;
  std::shared_ptr<grpc::Channel> self_;
};

}  // namespace

int main(int argc, char** argv) {
  contacts::FlagSet flags("test-echo-server");
  contacts::CommonFlags common = contacts::RegisterCommonFlags(flags, "127.0.0.1:50099", "127.0.0.1:9499", "");
  if (absl::Status status = flags.Parse(argc, argv); !status.ok()) {
    if (contacts::IsHelpRequested(status)) return 0;
    std::fprintf(stderr, "test-echo-server: %s\n", std::string(status.message()).c_str());
    return 2;
  }
  if (absl::Status status = contacts::InitLogging(*common.log_level, "test-echo-server"); !status.ok()) {
    spdlog::error("{}", std::string(status.message()));
    return 2;
  }
  spdlog::info("flags:\n{}", flags.Describe());

  contacts::Authenticator auth = contacts::Authenticator::Disabled();
  if (!common.api_keys_file->empty()) {
    absl::StatusOr<contacts::Authenticator> loaded = contacts::Authenticator::FromFile(*common.api_keys_file);
    if (!loaded.ok()) {
      spdlog::critical("{}", loaded.status().ToString());
      return 2;
    }
    auth = *std::move(loaded);
    spdlog::info("auth on: {} API keys", auth.key_count());
  }
  EchoService echo(&auth, *common.deadline_cap_ms);

  contacts::ServerRunner runner(contacts::ServerOptions{
      .service_name = "test-echo-server",
      .listen = *common.listen,
      .metrics_listen = *common.metrics_listen,
      .grace_period_ms = *common.grace_period_ms,
      .max_message_bytes = *common.max_message_bytes,
      .deadline_cap_ms = *common.deadline_cap_ms,
  });
  runner.AddService(&echo);
  if (absl::Status status = runner.Start(); !status.ok()) {
    spdlog::critical("cannot start: {}", status.ToString());
    return 1;
  }
  echo.set_self_address(runner.address());
  runner.WaitForShutdownSignal();
  return 0;
}
