// GrpcStoreClient: StoreClient over a contact-store gRPC stub. Each call carries the given
// credentials as metadata and a deadline of `call_timeout`, or the incoming call's deadline when
// that is sooner; a call made for an incoming one is also cancelled with it.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include "contacts/v1/contact_store.grpc.pb.h"

#include "services/import_processor/store_client.h"

namespace contacts {

class GrpcStoreClient : public StoreClient {
 public:
  GrpcStoreClient(std::unique_ptr<v1::ContactStore::StubInterface> stub, std::chrono::milliseconds call_timeout);

  absl::StatusOr<v1::Tenant> GetTenant(const StoreCredentials& credentials,
                                       const grpc::ServerContextBase* incoming) override;
  absl::StatusOr<v1::ListAttributesResponse> ListAttributes(const StoreCredentials& credentials,
                                                            const grpc::ServerContextBase* incoming) override;
  absl::StatusOr<v1::Attribute> CreateAttribute(const StoreCredentials& credentials,
                                                const grpc::ServerContextBase* incoming,
                                                const v1::CreateAttributeRequest& request) override;
  absl::StatusOr<v1::ListListsResponse> ListLists(const StoreCredentials& credentials,
                                                  const grpc::ServerContextBase* incoming) override;
  absl::StatusOr<v1::BatchUpsertResponse> BatchUpsert(const StoreCredentials& credentials,
                                                      const v1::BatchUpsertRequest& request) override;
  absl::StatusOr<v1::BatchDeleteResponse> BatchDelete(const StoreCredentials& credentials,
                                                      const v1::BatchDeleteRequest& request) override;

 private:
  std::unique_ptr<v1::ContactStore::StubInterface> stub_;
  std::chrono::milliseconds call_timeout_;
};

}  // namespace contacts
