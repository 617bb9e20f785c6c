// StoreClient: the calls import-processor makes to contact-store, behind an interface so that the
// job logic can be tested against a fake store. Requests and responses are the contact-store
// protobuf messages; the only gRPC type here is the incoming call a schema lookup serves, passed
// through opaquely. The gRPC implementation lives in grpc_store_client.h.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "contacts/v1/contact_store.pb.h"

#include "absl/status/statusor.h"

namespace grpc {
class ServerContextBase;
}  // namespace grpc

namespace contacts {

// Metadata sent with every call on behalf of a tenant: x-api-key / authorization / x-tenant.
using StoreCredentials = std::vector<std::pair<std::string, std::string>>;

class StoreClient {
 public:
  virtual ~StoreClient() = default;

  // Each returns the store's status unchanged (UNAVAILABLE when it cannot be reached).
  //
  // The schema calls are made while serving an RPC: `incoming` is that call (null when there is
  // none), and the store call ends no later than it (its deadline, its cancellation). The batch
  // calls are job work, which outlives the RPC that started it.
  virtual absl::StatusOr<v1::Tenant> GetTenant(const StoreCredentials& credentials,
                                               const grpc::ServerContextBase* incoming) = 0;
  virtual absl::StatusOr<v1::ListAttributesResponse> ListAttributes(const StoreCredentials& credentials,
                                                                    const grpc::ServerContextBase* incoming) = 0;
  virtual absl::StatusOr<v1::Attribute> CreateAttribute(const StoreCredentials& credentials,
                                                        const grpc::ServerContextBase* incoming,
                                                        const v1::CreateAttributeRequest& request) = 0;
  virtual absl::StatusOr<v1::ListListsResponse> ListLists(const StoreCredentials& credentials,
                                                          const grpc::ServerContextBase* incoming) = 0;
  virtual absl::StatusOr<v1::BatchUpsertResponse> BatchUpsert(const StoreCredentials& credentials,
                                                              const v1::BatchUpsertRequest& request) = 0;
  virtual absl::StatusOr<v1::BatchDeleteResponse> BatchDelete(const StoreCredentials& credentials,
                                                              const v1::BatchDeleteRequest& request) = 0;
};

}  // namespace contacts
