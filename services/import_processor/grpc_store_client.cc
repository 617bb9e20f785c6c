#include "services/import_processor/grpc_store_client.h"

#include <algorithm>
#include <memory>

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>

#include "common/status/grpc_status.h"

namespace contacts {
namespace {

template <typename Response, typename Call>
absl::StatusOr<Response> Invoke(const StoreCredentials& credentials, const grpc::ServerContextBase* incoming,
                                std::chrono::milliseconds timeout, Call call) {
  // A child of the incoming call is cancelled with it (client gone, or the server draining at
  // shutdown), so no handler waits on a hung store longer than its caller does.
  std::unique_ptr<grpc::ClientContext> ctx =
      incoming != nullptr ? grpc::ClientContext::FromServerContext(*incoming) : std::make_unique<grpc::ClientContext>();
  for (const auto& [key, value] : credentials) ctx->AddMetadata(key, value);
  auto deadline = std::chrono::system_clock::now() + timeout;
  if (incoming != nullptr) deadline = std::min(deadline, incoming->deadline());
  ctx->set_deadline(deadline);
  Response response;
  grpc::Status status = call(ctx.get(), &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

}  // namespace

GrpcStoreClient::GrpcStoreClient(std::unique_ptr<v1::ContactStore::StubInterface> stub,
                                 std::chrono::milliseconds call_timeout)
    : stub_(std::move(stub)), call_timeout_(call_timeout) {}

absl::StatusOr<v1::Tenant> GrpcStoreClient::GetTenant(const StoreCredentials& credentials,
                                                      const grpc::ServerContextBase* incoming) {
  return Invoke<v1::Tenant>(credentials, incoming, call_timeout_, [&](grpc::ClientContext* ctx, v1::Tenant* out) {
    return stub_->GetTenant(ctx, v1::GetTenantRequest(), out);
  });
}

absl::StatusOr<v1::ListAttributesResponse> GrpcStoreClient::ListAttributes(const StoreCredentials& credentials,
                                                                           const grpc::ServerContextBase* incoming) {
  return Invoke<v1::ListAttributesResponse>(credentials, incoming, call_timeout_,
                                            [&](grpc::ClientContext* ctx, v1::ListAttributesResponse* out) {
                                              return stub_->ListAttributes(ctx, v1::ListAttributesRequest(), out);
                                            });
}

absl::StatusOr<v1::Attribute> GrpcStoreClient::CreateAttribute(const StoreCredentials& credentials,
                                                               const grpc::ServerContextBase* incoming,
                                                               const v1::CreateAttributeRequest& request) {
  return Invoke<v1::Attribute>(credentials, incoming, call_timeout_, [&](grpc::ClientContext* ctx, v1::Attribute* out) {
    return stub_->CreateAttribute(ctx, request, out);
  });
}

absl::StatusOr<v1::ListListsResponse> GrpcStoreClient::ListLists(const StoreCredentials& credentials,
                                                                 const grpc::ServerContextBase* incoming) {
  return Invoke<v1::ListListsResponse>(credentials, incoming, call_timeout_,
                                       [&](grpc::ClientContext* ctx, v1::ListListsResponse* out) {
                                         return stub_->ListLists(ctx, v1::ListListsRequest(), out);
                                       });
}

absl::StatusOr<v1::BatchUpsertResponse> GrpcStoreClient::BatchUpsert(const StoreCredentials& credentials,
                                                                     const v1::BatchUpsertRequest& request) {
  return Invoke<v1::BatchUpsertResponse>(
      credentials, nullptr, call_timeout_,
      [&](grpc::ClientContext* ctx, v1::BatchUpsertResponse* out) { return stub_->BatchUpsert(ctx, request, out); });
}

absl::StatusOr<v1::BatchDeleteResponse> GrpcStoreClient::BatchDelete(const StoreCredentials& credentials,
                                                                     const v1::BatchDeleteRequest& request) {
  return Invoke<v1::BatchDeleteResponse>(
      credentials, nullptr, call_timeout_,
      [&](grpc::ClientContext* ctx, v1::BatchDeleteResponse* out) { return stub_->BatchDelete(ctx, request, out); });
}

}  // namespace contacts
