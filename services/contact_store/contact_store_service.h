// gRPC adapter of contact-store: authenticates each call, converts protos to the repository's
// calls and absl::Status to grpc::Status. The logic lives in ContactRepository.
#pragma once

#include <cstdint>

#include "contacts/v1/contact_store.grpc.pb.h"

#include "common/auth/auth.h"
#include "services/contact_store/blocking_work_pool.h"
#include "services/contact_store/contact_repository.h"

namespace contacts::store {

// GetContact is served through gRPC's callback API: the handler runs on the thread that read the
// request instead of being handed to a sync-server worker, which saved ~40% of the CPU per call
// and most of the latency tail at 5k calls/s (tests/bench/store_bench.cc). It never waits there:
// when a writer holds the tenant's lock the call moves to a small pool of its own.
//
// Count and Query (what audience-query calls for counts and pages) are callback methods too, run
// on a pool of their own: in gRPC 1.51 with the epoll1 poller, once a process uses the callback
// API, its synchronous methods sometimes waited up to 100 ms (about once per 1.1 s; the callback
// completion queue's threads sleep 100 ms after each idle second), and the callback methods did
// not (docs/architecture.md, "Synchronous methods and the callback API"). The other methods stay
// synchronous: batches and admin calls, for which such a wait is small against their own time,
// and Export, whose callback form was measured and not kept (same section).
class ContactStoreService final
    : public contacts::v1::ContactStore::WithCallbackMethod_GetContact<
          contacts::v1::ContactStore::WithCallbackMethod_Count<
              contacts::v1::ContactStore::WithCallbackMethod_Query<contacts::v1::ContactStore::Service>>> {
 public:
  ContactStoreService(ContactRepository* repository, const Authenticator* auth, int64_t deadline_cap_ms)
      : repository_(repository), auth_(auth), deadline_cap_ms_(deadline_cap_ms) {}

#define CONTACTS_UNARY(Method, Request, Response)                                     \
  grpc::Status Method(grpc::ServerContext* ctx, const contacts::v1::Request* request, \
                      contacts::v1::Response* response) override;
  CONTACTS_UNARY(SetupTenant, SetupTenantRequest, Tenant)
  CONTACTS_UNARY(GetTenant, GetTenantRequest, Tenant)
  CONTACTS_UNARY(CreateAttribute, CreateAttributeRequest, Attribute)
  CONTACTS_UNARY(ListAttributes, ListAttributesRequest, ListAttributesResponse)
  CONTACTS_UNARY(GetAttribute, GetAttributeRequest, Attribute)
  CONTACTS_UNARY(UpdateAttribute, UpdateAttributeRequest, Attribute)
  CONTACTS_UNARY(DeleteAttribute, DeleteAttributeRequest, DeleteAttributeResponse)
  CONTACTS_UNARY(AddContact, AddContactRequest, Contact)
  CONTACTS_UNARY(UpsertContact, UpsertContactRequest, Contact)
  CONTACTS_UNARY(UpdateContact, UpdateContactRequest, Contact)
  grpc::ServerUnaryReactor* GetContact(grpc::CallbackServerContext* ctx, const contacts::v1::GetContactRequest* request,
                                       contacts::v1::Contact* response) override;
  CONTACTS_UNARY(DeleteContact, DeleteContactRequest, DeleteContactResponse)
  CONTACTS_UNARY(CreateList, CreateListRequest, ContactList)
  CONTACTS_UNARY(ListLists, ListListsRequest, ListListsResponse)
  CONTACTS_UNARY(RenameList, RenameListRequest, ContactList)
  CONTACTS_UNARY(DeleteList, DeleteListRequest, DeleteListResponse)
  CONTACTS_UNARY(AddToList, ListMembershipRequest, ListMembershipResponse)
  CONTACTS_UNARY(RemoveFromList, ListMembershipRequest, ListMembershipResponse)
  CONTACTS_UNARY(Blacklist, BlacklistRequest, Contact)
  CONTACTS_UNARY(Unblacklist, UnblacklistRequest, Contact)
  CONTACTS_UNARY(RecordAnonymous, RecordAnonymousRequest, AnonymousUser)
  CONTACTS_UNARY(ListAnonymous, ListAnonymousRequest, ListAnonymousResponse)
  CONTACTS_UNARY(IdentifyAnonymous, IdentifyAnonymousRequest, Contact)
  CONTACTS_UNARY(BatchUpsert, BatchUpsertRequest, BatchUpsertResponse)
  CONTACTS_UNARY(BatchDelete, BatchDeleteRequest, BatchDeleteResponse)
  grpc::ServerUnaryReactor* Query(grpc::CallbackServerContext* ctx, const contacts::v1::StoreQueryRequest* request,
                                  contacts::v1::StoreQueryResponse* response) override;
  grpc::ServerUnaryReactor* Count(grpc::CallbackServerContext* ctx, const contacts::v1::StoreCountRequest* request,
                                  contacts::v1::StoreCountResponse* response) override;
  CONTACTS_UNARY(SearchByPrimaryKey, SearchByPrimaryKeyRequest, SearchByPrimaryKeyResponse)
  CONTACTS_UNARY(PutSegment, PutSegmentRequest, Segment)
  CONTACTS_UNARY(GetSegment, GetSegmentRequest, Segment)
  CONTACTS_UNARY(ListSegments, ListSegmentsRequest, ListSegmentsResponse)
  CONTACTS_UNARY(DeleteSegment, DeleteSegmentRequest, DeleteSegmentResponse)
  CONTACTS_UNARY(CreateControlGroup, CreateControlGroupRequest, ControlGroup)
  CONTACTS_UNARY(ListControlGroups, ListControlGroupsRequest, ListControlGroupsResponse)
  CONTACTS_UNARY(DeleteControlGroup, DeleteControlGroupRequest, DeleteControlGroupResponse)
  CONTACTS_UNARY(Backup, BackupRequest, BackupResponse)
#undef CONTACTS_UNARY

  grpc::Status Export(grpc::ServerContext* ctx, const contacts::v1::StoreExportRequest* request,
                      grpc::ServerWriter<contacts::v1::StoreExportChunk>* writer) override;

 private:
  ContactRepository* repository_;
  const Authenticator* auth_;
  int64_t deadline_cap_ms_;
  BlockingWorkPool blocked_reads_{2};  // GetContact calls that found their tenant locked
  // Count and Query calls: they may take milliseconds or wait for a writer, so not on gRPC's
  // event threads. Up to 8 run at once; calls beyond that queue, also behind calls waiting for a
  // writer's lock (a batch commit: tens of milliseconds).
  BlockingWorkPool queries_{8};
};

}  // namespace contacts::store
