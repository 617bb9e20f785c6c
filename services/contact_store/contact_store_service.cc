#include "services/contact_store/contact_store_service.h"

#include <fmt/format.h>

#include "common/server/handle_call.h"
#include "common/server/server_runner.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"
#include "common/values/text_case.h"

namespace contacts::store {
namespace {

using namespace contacts::v1;  // NOLINT: the adapter speaks only this package's types

// HandleCall for a handler that needs only the caller's tenant.
template <typename Fn>
grpc::Status Handle(const Authenticator& auth, grpc::ServerContextBase* ctx, const char* method, Role role, Fn&& fn) {
  return HandleCall(auth, *ctx, "contact-store", method, role,
                    [&](const CallIdentity& identity) { return fn(identity.tenant); });
}

std::vector<uint64_t> Ids(const google::protobuf::RepeatedField<uint64_t>& ids) { return {ids.begin(), ids.end()}; }

}  // namespace

#define CONTACTS_HANDLER(Method, Request, Response, Role)                                                          \
  grpc::Status ContactStoreService::Method(grpc::ServerContext* ctx, const Request* request, Response* response) { \
    return Handle(*auth_, ctx, #Method, Role, [&](const std::string& tenant) -> absl::Status {
#define CONTACTS_END \
  });                \
  }

// A callback method whose work runs on `pool` (it may block), answered from there.
#define CONTACTS_POOLED_HANDLER(Method, Request, Response, Role, pool)                                            \
  grpc::ServerUnaryReactor* ContactStoreService::Method(grpc::CallbackServerContext* ctx, const Request* request, \
                                                        Response* response) {                                     \
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();                                                    \
    pool.Run([this, ctx, reactor, request, response] {                                                          \
      reactor->Finish(Handle(*auth_, ctx, #Method, Role, [&](const std::string& tenant) -> absl::Status {
#define CONTACTS_POOLED_END \
  }));                      \
  });                       \
  return reactor;           \
  }

CONTACTS_HANDLER(SetupTenant, SetupTenantRequest, Tenant, Role::kAdmin)
ASSIGN_OR_RETURN(*response, repository_->SetupTenant(tenant, *request));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(GetTenant, GetTenantRequest, Tenant, Role::kReader)
ASSIGN_OR_RETURN(*response, repository_->GetTenant(tenant));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(CreateAttribute, CreateAttributeRequest, Attribute, Role::kWriter)
ASSIGN_OR_RETURN(*response, repository_->CreateAttribute(tenant, *request));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(ListAttributes, ListAttributesRequest, ListAttributesResponse, Role::kReader)
ASSIGN_OR_RETURN(auto attributes, repository_->ListAttributes(tenant));
for (auto& attribute : attributes) *response->add_attributes() = std::move(attribute);
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(GetAttribute, GetAttributeRequest, Attribute, Role::kReader)
ASSIGN_OR_RETURN(*response, repository_->GetAttribute(tenant, request->name()));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(UpdateAttribute, UpdateAttributeRequest, Attribute, Role::kWriter)
ASSIGN_OR_RETURN(*response, repository_->UpdateAttribute(tenant, *request));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(DeleteAttribute, DeleteAttributeRequest, DeleteAttributeResponse, Role::kAdmin)
return repository_->DeleteAttribute(tenant, request->name());
CONTACTS_END

CONTACTS_HANDLER(AddContact, AddContactRequest, Contact, Role::kWriter)
ASSIGN_OR_RETURN(*response, repository_->WriteContact(tenant, ContactWriteKind::kAdd, request->attributes(),
                                                      Ids(request->list_ids()),
                                                      request->source().empty() ? "single" : request->source()));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(UpsertContact, UpsertContactRequest, Contact, Role::kWriter)
ASSIGN_OR_RETURN(*response, repository_->WriteContact(tenant, ContactWriteKind::kUpsert, request->attributes(),
                                                      Ids(request->list_ids()),
                                                      request->source().empty() ? "api" : request->source()));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(UpdateContact, UpdateContactRequest, Contact, Role::kWriter)
// The key comes apart from the values; it cannot be changed through them.
ASSIGN_OR_RETURN(Tenant settings, repository_->GetTenant(tenant));
google::protobuf::Map<std::string, std::string> attributes = request->attributes();
for (const auto& [name, value] : attributes) {
  if (EqualsIgnoreCase(name, settings.primary_key_attribute())) {
    return absl::InvalidArgumentError(
        fmt::format("attributes: \"{}\" is the primary key; it cannot be changed by UpdateContact", name));
  }
}
if (settings.primary_key_attribute().empty()) {
  return absl::FailedPreconditionError("tenant is not set up: call SetupTenant first");
}
attributes[settings.primary_key_attribute()] = request->primary_key();
ASSIGN_OR_RETURN(*response, repository_->WriteContact(tenant, ContactWriteKind::kUpdate, attributes, {}, "api"));
return absl::OkStatus();
CONTACTS_END

grpc::ServerUnaryReactor* ContactStoreService::GetContact(grpc::CallbackServerContext* ctx,
                                                          const GetContactRequest* request, Contact* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::string blocked_tenant;
  grpc::Status status =
      Handle(*auth_, ctx, "GetContact", Role::kReader, [&](const std::string& tenant) -> absl::Status {
        ASSIGN_OR_RETURN(std::optional<Contact> contact, repository_->TryGetContact(tenant, *request));
        if (contact) {
          *response = *std::move(contact);
        } else {
          blocked_tenant = tenant;
        }
        return absl::OkStatus();
      });
  if (!status.ok() || blocked_tenant.empty()) {
    reactor->Finish(status);
    return reactor;
  }
  // A writer holds the tenant: wait for it on our own threads, not on gRPC's event threads. The
  // call (request, response, reactor) stays alive until Finish.
  blocked_reads_.Run([this, reactor, request, response, tenant = std::move(blocked_tenant)] {
    absl::StatusOr<Contact> contact = repository_->GetContact(tenant, *request);
    if (contact.ok()) *response = *std::move(contact);
    reactor->Finish(ToGrpcStatus(contact.status()));
  });
  return reactor;
}

CONTACTS_HANDLER(DeleteContact, DeleteContactRequest, DeleteContactResponse, Role::kWriter)
return repository_->DeleteContact(tenant, request->primary_key());
CONTACTS_END

CONTACTS_HANDLER(CreateList, CreateListRequest, ContactList, Role::kWriter)
ASSIGN_OR_RETURN(*response, repository_->CreateList(tenant, request->name()));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(ListLists, ListListsRequest, ListListsResponse, Role::kReader)
ASSIGN_OR_RETURN(auto lists, repository_->ListLists(tenant));
for (auto& list : lists) *response->add_lists() = std::move(list);
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(RenameList, RenameListRequest, ContactList, Role::kWriter)
ASSIGN_OR_RETURN(*response, repository_->RenameList(tenant, request->id(), request->name()));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(DeleteList, DeleteListRequest, DeleteListResponse, Role::kWriter)
return repository_->DeleteList(tenant, request->id());
CONTACTS_END

CONTACTS_HANDLER(AddToList, ListMembershipRequest, ListMembershipResponse, Role::kWriter)
ASSIGN_OR_RETURN(*response,
                 repository_->ChangeListMembership(tenant, request->list_id(),
                                                   {request->primary_keys().begin(), request->primary_keys().end()},
                                                   true));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(RemoveFromList, ListMembershipRequest, ListMembershipResponse, Role::kWriter)
ASSIGN_OR_RETURN(*response,
                 repository_->ChangeListMembership(tenant, request->list_id(),
                                                   {request->primary_keys().begin(), request->primary_keys().end()},
                                                   false));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(Blacklist, BlacklistRequest, Contact, Role::kWriter)
ASSIGN_OR_RETURN(*response, repository_->SetBlacklist(tenant, request->primary_key(), request->channel(),
                                                      request->reason(), true));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(Unblacklist, UnblacklistRequest, Contact, Role::kWriter)
ASSIGN_OR_RETURN(*response, repository_->SetBlacklist(tenant, request->primary_key(), request->channel(),
                                                      BLACKLIST_REASON_UNSPECIFIED, false));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(RecordAnonymous, RecordAnonymousRequest, AnonymousUser, Role::kWriter)
ASSIGN_OR_RETURN(*response, repository_->RecordAnonymous(tenant, *request));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(ListAnonymous, ListAnonymousRequest, ListAnonymousResponse, Role::kReader)
ASSIGN_OR_RETURN(*response, repository_->ListAnonymous(tenant, *request));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(IdentifyAnonymous, IdentifyAnonymousRequest, Contact, Role::kWriter)
ASSIGN_OR_RETURN(*response, repository_->IdentifyAnonymous(tenant, *request));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(BatchUpsert, BatchUpsertRequest, BatchUpsertResponse, Role::kWriter)
const auto deadline = EffectiveDeadline(*ctx, deadline_cap_ms_);
auto upserted = repository_->BatchUpsert(tenant, *request, [&] { return CallCancelledOrExpired(*ctx, deadline); });
if (!upserted.ok()) return StatusOfStoppedCall(upserted.status(), *ctx, deadline);
*response = *std::move(upserted);
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(BatchDelete, BatchDeleteRequest, BatchDeleteResponse, Role::kWriter)
ASSIGN_OR_RETURN(*response, repository_->BatchDelete(tenant, *request));
return absl::OkStatus();
CONTACTS_END

CONTACTS_POOLED_HANDLER(Query, StoreQueryRequest, StoreQueryResponse, Role::kReader, queries_)
const auto deadline = EffectiveDeadline(*ctx, deadline_cap_ms_);
auto page = repository_->Query(tenant, *request, [&] { return CallCancelledOrExpired(*ctx, deadline); });
if (!page.ok()) return StatusOfStoppedCall(page.status(), *ctx, deadline);
*response = *std::move(page);
return absl::OkStatus();
CONTACTS_POOLED_END

CONTACTS_POOLED_HANDLER(Count, StoreCountRequest, StoreCountResponse, Role::kReader, queries_)
if (request->check_only()) {
  RETURN_IF_ERROR(repository_->CheckFilter(tenant, request->filter()));
  response->set_count(0);
  return absl::OkStatus();
}
const auto deadline = EffectiveDeadline(*ctx, deadline_cap_ms_);
absl::StatusOr<uint64_t> count =
    repository_->Count(tenant, request->filter(), [&] { return CallCancelledOrExpired(*ctx, deadline); });
if (!count.ok()) return StatusOfStoppedCall(count.status(), *ctx, deadline);
response->set_count(*count);
return absl::OkStatus();
CONTACTS_POOLED_END

CONTACTS_HANDLER(SearchByPrimaryKey, SearchByPrimaryKeyRequest, SearchByPrimaryKeyResponse, Role::kReader)
ASSIGN_OR_RETURN(auto contacts, repository_->SearchByPrimaryKey(tenant, *request));
for (auto& contact : contacts) *response->add_contacts() = std::move(contact);
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(PutSegment, PutSegmentRequest, Segment, Role::kWriter)
ASSIGN_OR_RETURN(*response, repository_->PutSegment(tenant, request->segment(), request->create_only()));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(GetSegment, GetSegmentRequest, Segment, Role::kReader)
ASSIGN_OR_RETURN(*response, repository_->GetSegment(tenant, request->name()));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(ListSegments, ListSegmentsRequest, ListSegmentsResponse, Role::kReader)
ASSIGN_OR_RETURN(auto segments, repository_->ListSegments(tenant));
for (auto& segment : segments) *response->add_segments() = std::move(segment);
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(DeleteSegment, DeleteSegmentRequest, DeleteSegmentResponse, Role::kWriter)
return repository_->DeleteSegment(tenant, request->name());
CONTACTS_END

CONTACTS_HANDLER(CreateControlGroup, CreateControlGroupRequest, ControlGroup, Role::kWriter)
ASSIGN_OR_RETURN(*response, repository_->CreateControlGroup(tenant, request->name(), request->percent()));
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(ListControlGroups, ListControlGroupsRequest, ListControlGroupsResponse, Role::kReader)
ASSIGN_OR_RETURN(auto groups, repository_->ListControlGroups(tenant));
for (auto& group : groups) *response->add_control_groups() = std::move(group);
return absl::OkStatus();
CONTACTS_END

CONTACTS_HANDLER(DeleteControlGroup, DeleteControlGroupRequest, DeleteControlGroupResponse, Role::kWriter)
return repository_->DeleteControlGroup(tenant, request->name());
CONTACTS_END

CONTACTS_HANDLER(Backup, BackupRequest, BackupResponse, Role::kAdmin)
ASSIGN_OR_RETURN(*response, repository_->Backup(request->path()));
return absl::OkStatus();
CONTACTS_END

#undef CONTACTS_HANDLER
#undef CONTACTS_END

grpc::Status ContactStoreService::Export(grpc::ServerContext* ctx, const StoreExportRequest* request,
                                         grpc::ServerWriter<StoreExportChunk>* writer) {
  const auto deadline = EffectiveDeadline(*ctx, deadline_cap_ms_);
  return Handle(*auth_, ctx, "Export", Role::kReader, [&](const std::string& tenant) -> absl::Status {
    StoreExportChunk chunk;
    absl::Status exported = repository_->Export(
        tenant, *request,
        [&](std::string* csv, uint64_t rows) {
          // Swap, not copy: the repository gets the previous chunk's string back to refill.
          chunk.mutable_csv()->swap(*csv);
          chunk.set_rows(rows);
          // Write blocks while the client's window is full: flow control bounds our memory.
          return writer->Write(chunk);
        },
        [&] { return CallCancelledOrExpired(*ctx, deadline); });
    return StatusOfStoppedCall(std::move(exported), *ctx, deadline);
  });
}

}  // namespace contacts::store
