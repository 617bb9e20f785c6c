// StoreClient: the calls import-processor makes to contact-store, behind an interface so that the
// job logic can be tested against a fake store. Requests and responses are the contact-store
// protobuf messages; no gRPC types appear here. The gRPC implementation lives in
// grpc_store_client.h.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "contacts/v1/contact_store.pb.h"

#include "absl/status/statusor.h"

namespace contacts {

// Metadata sent with every call on behalf of a tenant: x-api-key / authorization / x-tenant.
using StoreCredentials = std::vector<std::pair<std::string, std::string>>;

class StoreClient {
 public:
  virtual ~StoreClient() = default;

  // Each returns the store's status unchanged (UNAVAILABLE when it cannot be reached).
  virtual absl::StatusOr<v1::Tenant> GetTenant(const StoreCredentials& credentials) = 0;
  virtual absl::StatusOr<v1::ListAttributesResponse> ListAttributes(const StoreCredentials& credentials) = 0;
  virtual absl::StatusOr<v1::Attribute> CreateAttribute(const StoreCredentials& credentials,
                                                        const v1::CreateAttributeRequest& request) = 0;
  virtual absl::StatusOr<v1::ListListsResponse> ListLists(const StoreCredentials& credentials) = 0;
  virtual absl::StatusOr<v1::BatchUpsertResponse> BatchUpsert(const StoreCredentials& credentials,
                                                              const v1::BatchUpsertRequest& request) = 0;
  virtual absl::StatusOr<v1::BatchDeleteResponse> BatchDelete(const StoreCredentials& credentials,
                                                              const v1::BatchDeleteRequest& request) = 0;
};

}  // namespace contacts
