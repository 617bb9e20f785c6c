#include "services/audience_query/audience_query_service.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/auth/grpc_auth.h"
#include "common/paging/page_token.h"
#include "common/server/handle_call.h"
#include "common/server/server_runner.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"
#include "services/audience_query/filter_spec.h"
#include "services/audience_query/filter_text.h"
#include "services/audience_query/filter_tree.h"
#include "services/audience_query/segment_expansion.h"

namespace contacts {
namespace {

// Most segments named in the message of a refused delete; the rest are counted.
constexpr size_t kMaxNamedUsers = 10;

// FAILED_PRECONDITION naming (some of) the saved segments `users` that use the segment or control
// group `name` (`what`), which a delete would break; OK when there are none.
absl::Status RefuseIfUsed(std::string_view what, const std::string& name, std::vector<std::string> users) {
  if (users.empty()) return absl::OkStatus();
  const size_t total = users.size();
  if (total > kMaxNamedUsers) users.resize(kMaxNamedUsers);  // the message must stay short (ToGrpcStatus)
  for (std::string& user : users) user = QuoteFilterString(user);
  const std::string more = total > users.size() ? fmt::format(" and {} more", total - users.size()) : "";
  return absl::FailedPreconditionError(fmt::format("{} {} is used by segment{} {}{}; change or delete {} first", what,
                                                   QuoteFilterString(name), total == 1 ? "" : "s",
                                                   fmt::join(users, ", "), more, total == 1 ? "it" : "them"));
}

// HandleCall for a handler that forwards the caller's credentials rather than reading them.
template <typename Fn>
grpc::Status Handle(const Authenticator& auth, grpc::ServerContext* ctx, const char* method, Role role, Fn&& fn) {
  return HandleCall(auth, *ctx, "audience-query", method, role, [&](const CallIdentity&) { return fn(); });
}

}  // namespace

AudienceQueryService::AudienceQueryService(std::unique_ptr<v1::ContactStore::StubInterface> store,
                                           const Authenticator* auth, AudienceQueryOptions options)
    : store_(std::move(store)), auth_(auth), options_(options) {}

std::unique_ptr<grpc::ClientContext> AudienceQueryService::StoreContext(
    const grpc::ServerContext& incoming, std::chrono::system_clock::time_point deadline) const {
  // Propagates the caller's deadline and cancellation: when the caller goes away, so does our call.
  std::unique_ptr<grpc::ClientContext> outgoing = grpc::ClientContext::FromServerContext(incoming);
  ForwardCredentials(incoming, outgoing.get());
  outgoing->set_deadline(deadline);
  return outgoing;
}

std::chrono::system_clock::time_point AudienceQueryService::UnaryDeadline(const grpc::ServerContext& incoming) const {
  // Saturating: a timeout too large for the clock (an operator's "unlimited") means no limit.
  const auto per_call = AddMillisSaturated(std::chrono::system_clock::now(), options_.store_call_timeout_ms);
  return std::min(EffectiveDeadline(incoming, options_.deadline_cap_ms), per_call);
}

SegmentLookup AudienceQueryService::StoreSegmentLookup(const grpc::ServerContext& incoming) const {
  return [this, &incoming](const std::string& name) -> absl::StatusOr<v1::Filter> {
    auto outgoing = StoreContext(incoming, UnaryDeadline(incoming));
    v1::GetSegmentRequest request;
    request.set_name(name);
    v1::Segment segment;
    RETURN_IF_ERROR(FromGrpcStatus(store_->GetSegment(outgoing.get(), request, &segment)));
    return std::move(*segment.mutable_filter());
  };
}

absl::Status AudienceQueryService::CheckSegmentAgainstStore(const grpc::ServerContext& incoming,
                                                            const v1::Segment& segment,
                                                            const SegmentLookup& lookup) const {
  ASSIGN_OR_RETURN(v1::Filter expanded, ExpandSegments(segment.filter(), lookup));
  // check_only: the store resolves every term against the catalog (attributes, literals against
  // their types, lists, control groups) as a count would, but reads no record.
  v1::StoreCountRequest probe;
  *probe.mutable_filter() = std::move(expanded);
  probe.set_check_only(true);
  v1::StoreCountResponse ignored;
  auto outgoing = StoreContext(incoming, UnaryDeadline(incoming));
  absl::Status checked = FromGrpcStatus(store_->Count(outgoing.get(), probe, &ignored));
  if (absl::IsInvalidArgument(checked)) {
    return absl::InvalidArgumentError(
        fmt::format("segment {}: {}", QuoteFilterString(segment.name()), std::string(checked.message())));
  }
  return checked;
}

absl::StatusOr<v1::ListSegmentsResponse> AudienceQueryService::ListAllSegments(const grpc::ServerContext& incoming,
                                                                               std::string_view purpose) const {
  v1::ListSegmentsResponse all;
  auto outgoing = StoreContext(incoming, UnaryDeadline(incoming));
  absl::Status listed = FromGrpcStatus(store_->ListSegments(outgoing.get(), v1::ListSegmentsRequest(), &all));
  if (absl::IsResourceExhausted(listed)) {
    // Segments saved before the size limits can make the catalog too large for one message, and
    // the store cannot page it. Deleting segments works without the list (see DeleteSegment).
    return absl::ResourceExhaustedError(
        fmt::format("cannot {}: the tenant's segments do not fit in one message ({}); delete large segments "
                    "(DeleteSegment does not need the list) until they do",
                    purpose, std::string(listed.message())));
  }
  RETURN_IF_ERROR(listed);
  return all;
}

size_t AudienceQueryService::MaxCatalogBytes() const {
  return static_cast<size_t>(std::max<int64_t>(options_.max_message_bytes, 0) / 2);
}

grpc::Status AudienceQueryService::Search(grpc::ServerContext* ctx, const v1::SearchRequest* request,
                                          v1::SearchResponse* response) {
  return Handle(*auth_, ctx, "Search", Role::kReader, [&]() -> absl::Status {
    v1::SearchByPrimaryKeyRequest store_request;
    store_request.set_query(request->query());
    store_request.set_prefix(request->prefix());
    store_request.set_limit(request->limit());
    v1::SearchByPrimaryKeyResponse store_response;
    auto outgoing = StoreContext(*ctx, UnaryDeadline(*ctx));
    RETURN_IF_ERROR(FromGrpcStatus(store_->SearchByPrimaryKey(outgoing.get(), store_request, &store_response)));
    response->mutable_contacts()->Swap(store_response.mutable_contacts());
    return absl::OkStatus();
  });
}

grpc::Status AudienceQueryService::Query(grpc::ServerContext* ctx, const v1::QueryRequest* request,
                                         v1::QueryResponse* response) {
  return Handle(*auth_, ctx, "Query", Role::kReader, [&]() -> absl::Status {
    v1::StoreQueryRequest store_request;
    bool uses_segments = false;
    SegmentLookup lookup = [&uses_segments, store_lookup = StoreSegmentLookup(*ctx)](const std::string& name) {
      uses_segments = true;
      return store_lookup(name);
    };
    ASSIGN_OR_RETURN(*store_request.mutable_filter(), ResolveFilterSpec(request->filter(), lookup));
    *store_request.mutable_attributes() = request->attributes();
    store_request.set_page_size(request->page_size());
    store_request.set_page_token(request->page_token());
    store_request.set_with_total(request->with_total());
    v1::StoreQueryResponse store_response;
    auto outgoing = StoreContext(*ctx, UnaryDeadline(*ctx));
    absl::Status queried = FromGrpcStatus(store_->Query(outgoing.get(), store_request, &store_response));
    // The store compares the expanded filter with the first page's: with the caller's filter
    // unchanged, a segment saved in between is the likelier cause, and the store cannot know it.
    if (uses_segments && IsPageTokenOfAnotherRequest(queried)) {
      return absl::InvalidArgumentError(absl::StrCat(
          queried.message(), " (the filter uses saved segments: one may have changed since the first page)"));
    }
    RETURN_IF_ERROR(queried);
    response->mutable_contacts()->Swap(store_response.mutable_contacts());
    response->set_next_page_token(std::move(*store_response.mutable_next_page_token()));
    response->set_total(store_response.total());
    return absl::OkStatus();
  });
}

grpc::Status AudienceQueryService::Count(grpc::ServerContext* ctx, const v1::CountRequest* request,
                                         v1::CountResponse* response) {
  return Handle(*auth_, ctx, "Count", Role::kReader, [&]() -> absl::Status {
    v1::StoreCountRequest store_request;
    ASSIGN_OR_RETURN(*store_request.mutable_filter(), ResolveFilterSpec(request->filter(), StoreSegmentLookup(*ctx)));
    v1::StoreCountResponse store_response;
    auto outgoing = StoreContext(*ctx, UnaryDeadline(*ctx));
    RETURN_IF_ERROR(FromGrpcStatus(store_->Count(outgoing.get(), store_request, &store_response)));
    response->set_count(store_response.count());
    return absl::OkStatus();
  });
}

grpc::Status AudienceQueryService::Export(grpc::ServerContext* ctx, const v1::ExportRequest* request,
                                          grpc::ServerWriter<v1::ExportChunk>* writer) {
  return Handle(*auth_, ctx, "Export", Role::kReader, [&]() -> absl::Status {
    v1::StoreExportRequest store_request;
    ASSIGN_OR_RETURN(*store_request.mutable_filter(), ResolveFilterSpec(request->filter(), StoreSegmentLookup(*ctx)));
    *store_request.mutable_attributes() = request->attributes();
    store_request.set_cells_as_stored(request->cells_as_stored());
    // An export may run long: only the caller's deadline and the cap bound it, not the unary timeout.
    auto outgoing = StoreContext(*ctx, EffectiveDeadline(*ctx, options_.deadline_cap_ms));
    std::unique_ptr<grpc::ClientReaderInterface<v1::StoreExportChunk>> reader =
        store_->Export(outgoing.get(), store_request);
    v1::StoreExportChunk in;
    v1::ExportChunk out;
    bool caller_gone = false;
    // One chunk at a time: Write blocks while the caller's flow-control window is full, and we do
    // not read the next chunk until then, so the store is held back too.
    while (reader->Read(&in)) {
      if (ctx->IsCancelled()) {
        caller_gone = true;
        break;
      }
      // Swap, not move: each message keeps a ~1 MiB buffer that the next Read and Write reuse,
      // instead of allocating (and faulting in) a fresh one per chunk.
      out.mutable_csv()->swap(*in.mutable_csv());
      out.set_rows(in.rows());
      if (!writer->Write(out)) {
        caller_gone = true;
        break;
      }
    }
    if (caller_gone) {
      outgoing->TryCancel();
      reader->Finish().ok();  // drains the call; its status (CANCELLED) is not news
      return absl::CancelledError("the caller cancelled the export");
    }
    return FromGrpcStatus(reader->Finish());
  });
}

grpc::Status AudienceQueryService::ParseFilter(grpc::ServerContext* ctx, const v1::ParseFilterRequest* request,
                                               v1::Filter* response) {
  return Handle(*auth_, ctx, "ParseFilter", Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(*response, ParseFilterText(request->text()));
    return absl::OkStatus();
  });
}

grpc::Status AudienceQueryService::CreateSegment(grpc::ServerContext* ctx, const v1::CreateSegmentRequest* request,
                                                 v1::Segment* response) {
  return Handle(*auth_, ctx, "CreateSegment", Role::kWriter, [&]() -> absl::Status {
    v1::PutSegmentRequest store_request;
    const SegmentLookup lookup = MemoisedLookup(StoreSegmentLookup(*ctx));
    ASSIGN_OR_RETURN(*store_request.mutable_segment(), BuildSegment(request->name(), request->filter(), lookup));
    RETURN_IF_ERROR(CheckSegmentAgainstStore(*ctx, store_request.segment(), lookup));
    {
      // Within the tenant's segment count and catalog size. (A concurrent save can slip past, by at
      // most one segment each: MaxCatalogBytes leaves room for that.)
      ASSIGN_OR_RETURN(const v1::ListSegmentsResponse all,
                       ListAllSegments(*ctx, fmt::format("save segment {}", QuoteFilterString(request->name()))));
      RETURN_IF_ERROR(CheckSegmentCatalogRoom(store_request.segment(), all.segments(), MaxCatalogBytes()));
    }
    store_request.set_create_only(true);
    auto outgoing = StoreContext(*ctx, UnaryDeadline(*ctx));
    return FromGrpcStatus(store_->PutSegment(outgoing.get(), store_request, response));
  });
}

grpc::Status AudienceQueryService::UpdateSegment(grpc::ServerContext* ctx, const v1::CreateSegmentRequest* request,
                                                 v1::Segment* response) {
  return Handle(*auth_, ctx, "UpdateSegment", Role::kWriter, [&]() -> absl::Status {
    RETURN_IF_ERROR(ValidateCatalogName(request->name(), "segment name"));
    v1::Segment existing;
    {
      // Update, not create: the segment must exist (NOT_FOUND from the store otherwise).
      v1::GetSegmentRequest get;
      get.set_name(request->name());
      auto outgoing = StoreContext(*ctx, UnaryDeadline(*ctx));
      RETURN_IF_ERROR(FromGrpcStatus(store_->GetSegment(outgoing.get(), get, &existing)));
    }
    v1::PutSegmentRequest store_request;
    // Saved under its name as created: the request may spell it in another case, which names the
    // same segment and must not rename it.
    const SegmentLookup lookup = MemoisedLookup(StoreSegmentLookup(*ctx));
    ASSIGN_OR_RETURN(*store_request.mutable_segment(), BuildSegment(existing.name(), request->filter(), lookup));
    RETURN_IF_ERROR(CheckSegmentAgainstStore(*ctx, store_request.segment(), lookup));
    {
      // Segments built on this one expand it too: the update must not push one of them past the
      // bounds, or past what the store evaluates (its 16 record scans, say). (As for delete, a
      // concurrent save can slip through; expansion or the store then says why.)
      ASSIGN_OR_RETURN(const v1::ListSegmentsResponse all,
                       ListAllSegments(*ctx, fmt::format("update segment {}", QuoteFilterString(existing.name()))));
      RETURN_IF_ERROR(CheckSegmentUsersStillWork(request->name(), store_request.segment().filter(), all.segments(),
                                                 [&](const v1::Segment& user, const SegmentLookup& user_lookup) {
                                                   return CheckSegmentAgainstStore(*ctx, user, user_lookup);
                                                 }));
      RETURN_IF_ERROR(CheckSegmentCatalogRoom(store_request.segment(), all.segments(), MaxCatalogBytes()));
    }
    store_request.set_create_only(false);
    auto outgoing = StoreContext(*ctx, UnaryDeadline(*ctx));
    return FromGrpcStatus(store_->PutSegment(outgoing.get(), store_request, response));
  });
}

grpc::Status AudienceQueryService::GetSegment(grpc::ServerContext* ctx, const v1::GetSegmentByNameRequest* request,
                                              v1::Segment* response) {
  return Handle(*auth_, ctx, "GetSegment", Role::kReader, [&]() -> absl::Status {
    v1::GetSegmentRequest store_request;
    store_request.set_name(request->name());
    auto outgoing = StoreContext(*ctx, UnaryDeadline(*ctx));
    return FromGrpcStatus(store_->GetSegment(outgoing.get(), store_request, response));
  });
}

grpc::Status AudienceQueryService::ListSegments(grpc::ServerContext* ctx, const v1::ListSegmentsQueryRequest* request,
                                                v1::ListSegmentsQueryResponse* response) {
  return Handle(*auth_, ctx, "ListSegments", Role::kReader, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(v1::ListSegmentsResponse store_response, ListAllSegments(*ctx, "list the segments"));
    response->mutable_segments()->Swap(store_response.mutable_segments());
    return absl::OkStatus();
  });
}

grpc::Status AudienceQueryService::DeleteSegment(grpc::ServerContext* ctx, const v1::GetSegmentByNameRequest* request,
                                                 v1::DeleteSegmentQueryResponse* response) {
  return Handle(*auth_, ctx, "DeleteSegment", Role::kWriter, [&]() -> absl::Status {
    // Refuse to break other segments: one that names this one would no longer expand. (Checked
    // here rather than in the store, so a concurrent save can slip through; expansion then
    // reports the unknown segment, which is safe.)
    v1::ListSegmentsResponse all;
    absl::Status listed;
    {
      auto outgoing = StoreContext(*ctx, UnaryDeadline(*ctx));
      listed = FromGrpcStatus(store_->ListSegments(outgoing.get(), v1::ListSegmentsRequest(), &all));
    }
    if (absl::IsResourceExhausted(listed)) {
      // The catalog is too large for one message (segments saved before the size limits), and the
      // store cannot page it. Deleting is the only way back under the limit, so it goes ahead
      // unchecked, as when a concurrent save slips through: a segment that used this one then
      // fails with `unknown segment`, which says what to fix.
      spdlog::warn("DeleteSegment {}: deleting without checking which segments use it: {}",
                   QuoteFilterString(request->name().substr(0, kMaxCatalogNameBytes)), listed.ToString());
    } else {
      RETURN_IF_ERROR(listed);
      RETURN_IF_ERROR(RefuseIfUsed("segment", request->name(), SegmentUsers(request->name(), all.segments())));
    }
    v1::DeleteSegmentRequest store_request;
    store_request.set_name(request->name());
    v1::DeleteSegmentResponse store_response;
    auto outgoing = StoreContext(*ctx, UnaryDeadline(*ctx));
    return FromGrpcStatus(store_->DeleteSegment(outgoing.get(), store_request, &store_response));
  });
}

grpc::Status AudienceQueryService::CountSegment(grpc::ServerContext* ctx, const v1::GetSegmentByNameRequest* request,
                                                v1::CountResponse* response) {
  return Handle(*auth_, ctx, "CountSegment", Role::kReader, [&]() -> absl::Status {
    // The segment itself must exist (NOT_FOUND); the segments inside it are expanded as usual.
    v1::GetSegmentRequest get;
    get.set_name(request->name());
    v1::Segment segment;
    {
      auto outgoing = StoreContext(*ctx, UnaryDeadline(*ctx));
      RETURN_IF_ERROR(FromGrpcStatus(store_->GetSegment(outgoing.get(), get, &segment)));
    }
    v1::FilterSpec spec;
    *spec.mutable_filter() = segment.filter();
    v1::StoreCountRequest store_request;
    ASSIGN_OR_RETURN(*store_request.mutable_filter(), ResolveFilterSpec(spec, StoreSegmentLookup(*ctx)));
    v1::StoreCountResponse store_response;
    auto outgoing = StoreContext(*ctx, UnaryDeadline(*ctx));
    RETURN_IF_ERROR(FromGrpcStatus(store_->Count(outgoing.get(), store_request, &store_response)));
    response->set_count(store_response.count());
    return absl::OkStatus();
  });
}

grpc::Status AudienceQueryService::CreateControlGroup(grpc::ServerContext* ctx,
                                                      const v1::CreateControlGroupQueryRequest* request,
                                                      v1::ControlGroup* response) {
  return Handle(*auth_, ctx, "CreateControlGroup", Role::kWriter, [&]() -> absl::Status {
    RETURN_IF_ERROR(ValidateCatalogName(request->name(), "control group name"));
    v1::CreateControlGroupRequest store_request;
    store_request.set_name(request->name());
    store_request.set_percent(request->percent());
    auto outgoing = StoreContext(*ctx, UnaryDeadline(*ctx));
    return FromGrpcStatus(store_->CreateControlGroup(outgoing.get(), store_request, response));
  });
}

grpc::Status AudienceQueryService::ListControlGroups(grpc::ServerContext* ctx,
                                                     const v1::ListControlGroupsQueryRequest* request,
                                                     v1::ListControlGroupsQueryResponse* response) {
  return Handle(*auth_, ctx, "ListControlGroups", Role::kReader, [&]() -> absl::Status {
    v1::ListControlGroupsResponse store_response;
    auto outgoing = StoreContext(*ctx, UnaryDeadline(*ctx));
    RETURN_IF_ERROR(
        FromGrpcStatus(store_->ListControlGroups(outgoing.get(), v1::ListControlGroupsRequest(), &store_response)));
    response->mutable_control_groups()->Swap(store_response.mutable_control_groups());
    return absl::OkStatus();
  });
}

grpc::Status AudienceQueryService::DeleteControlGroup(grpc::ServerContext* ctx,
                                                      const v1::DeleteControlGroupQueryRequest* request,
                                                      v1::DeleteControlGroupQueryResponse* response) {
  return Handle(*auth_, ctx, "DeleteControlGroup", Role::kWriter, [&]() -> absl::Status {
    // As DeleteSegment: a saved segment naming the group would fail every count ("unknown control
    // group"), and a group created again under the name draws another seed, another holdout.
    // Unlike DeleteSegment, not unchecked when the catalog is too large to list: the tenant can
    // delete segments first, and a control group deleted by mistake cannot be had back.
    ASSIGN_OR_RETURN(const v1::ListSegmentsResponse all,
                     ListAllSegments(*ctx, fmt::format("check which segments use control group {}",
                                                       QuoteFilterString(request->name()))));
    RETURN_IF_ERROR(RefuseIfUsed("control group", request->name(),
                                 SegmentsNaming(request->name(), all.segments(), v1::Term::kInControlGroup)));
    v1::DeleteControlGroupRequest store_request;
    store_request.set_name(request->name());
    v1::DeleteControlGroupResponse store_response;
    auto outgoing = StoreContext(*ctx, UnaryDeadline(*ctx));
    return FromGrpcStatus(store_->DeleteControlGroup(outgoing.get(), store_request, &store_response));
  });
}

grpc::Status AudienceQueryService::ListAnonymous(grpc::ServerContext* ctx, const v1::ListAnonymousQueryRequest* request,
                                                 v1::ListAnonymousQueryResponse* response) {
  return Handle(*auth_, ctx, "ListAnonymous", Role::kReader, [&]() -> absl::Status {
    v1::ListAnonymousRequest store_request;
    store_request.set_page_size(request->page_size());
    store_request.set_page_token(request->page_token());
    v1::ListAnonymousResponse store_response;
    auto outgoing = StoreContext(*ctx, UnaryDeadline(*ctx));
    RETURN_IF_ERROR(FromGrpcStatus(store_->ListAnonymous(outgoing.get(), store_request, &store_response)));
    response->mutable_users()->Swap(store_response.mutable_users());
    response->set_next_page_token(std::move(*store_response.mutable_next_page_token()));
    return absl::OkStatus();
  });
}

}  // namespace contacts
