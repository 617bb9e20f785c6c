// The gRPC adapter of audience-query (sync API): authenticates each call, turns FilterSpecs into
// store filters with the domain code (filter_spec.h: parse, validate, expand segments), calls
// contact-store on the caller's behalf (credentials forwarded, deadline and cancellation
// propagated, a per-call deadline on top), and maps every error once with ToGrpcStatus.
//
// Stateless: segments and control groups live in the store's catalog. Page tokens are the store's,
// passed through untouched. Export streams the store's chunks through one at a time, so memory
// stays bounded by one chunk whatever the export size.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include <grpcpp/channel.h>

#include "contacts/v1/audience_query.grpc.pb.h"
#include "contacts/v1/contact_store.grpc.pb.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/auth/auth.h"
#include "services/audience_query/segment_expansion.h"

namespace contacts {

struct AudienceQueryOptions {
  // Deadline of each unary call to the store (on top of the caller's own deadline, whichever is
  // earlier). Default: 30 s.
  int64_t store_call_timeout_ms = 30000;
  // Cap on any call's server-side deadline, exports included. Default: 5 min.
  int64_t deadline_cap_ms = 300000;
  // Largest message to and from the store (--max_message_bytes, which the store should share).
  // contact-store's ListSegments returns a tenant's whole catalog in one message, so creates and
  // updates keep the catalog under half of this (the rest is margin for racing saves and for
  // segments saved before the limit). Default: 64 MiB.
  int64_t max_message_bytes = int64_t{64} << 20;
};

class AudienceQueryService final : public v1::AudienceQuery::Service {
 public:
  // `auth` is not owned and must outlive the service.
  AudienceQueryService(std::unique_ptr<v1::ContactStore::StubInterface> store, const Authenticator* auth,
                       AudienceQueryOptions options);

  grpc::Status Search(grpc::ServerContext* ctx, const v1::SearchRequest* request,
                      v1::SearchResponse* response) override;
  grpc::Status Query(grpc::ServerContext* ctx, const v1::QueryRequest* request, v1::QueryResponse* response) override;
  grpc::Status Count(grpc::ServerContext* ctx, const v1::CountRequest* request, v1::CountResponse* response) override;
  grpc::Status Export(grpc::ServerContext* ctx, const v1::ExportRequest* request,
                      grpc::ServerWriter<v1::ExportChunk>* writer) override;
  grpc::Status ParseFilter(grpc::ServerContext* ctx, const v1::ParseFilterRequest* request,
                           v1::Filter* response) override;

  grpc::Status CreateSegment(grpc::ServerContext* ctx, const v1::CreateSegmentRequest* request,
                             v1::Segment* response) override;
  grpc::Status GetSegment(grpc::ServerContext* ctx, const v1::GetSegmentByNameRequest* request,
                          v1::Segment* response) override;
  grpc::Status ListSegments(grpc::ServerContext* ctx, const v1::ListSegmentsQueryRequest* request,
                            v1::ListSegmentsQueryResponse* response) override;
  grpc::Status UpdateSegment(grpc::ServerContext* ctx, const v1::CreateSegmentRequest* request,
                             v1::Segment* response) override;
  grpc::Status DeleteSegment(grpc::ServerContext* ctx, const v1::GetSegmentByNameRequest* request,
                             v1::DeleteSegmentQueryResponse* response) override;
  grpc::Status CountSegment(grpc::ServerContext* ctx, const v1::GetSegmentByNameRequest* request,
                            v1::CountResponse* response) override;

  grpc::Status CreateControlGroup(grpc::ServerContext* ctx, const v1::CreateControlGroupQueryRequest* request,
                                  v1::ControlGroup* response) override;
  grpc::Status ListControlGroups(grpc::ServerContext* ctx, const v1::ListControlGroupsQueryRequest* request,
                                 v1::ListControlGroupsQueryResponse* response) override;
  grpc::Status DeleteControlGroup(grpc::ServerContext* ctx, const v1::DeleteControlGroupQueryRequest* request,
                                  v1::DeleteControlGroupQueryResponse* response) override;

  grpc::Status ListAnonymous(grpc::ServerContext* ctx, const v1::ListAnonymousQueryRequest* request,
                             v1::ListAnonymousQueryResponse* response) override;

 private:
  // A context for one call to the store on behalf of `incoming`: credentials forwarded, the
  // caller's cancellation and deadline propagated, and a deadline no later than `deadline`.
  std::unique_ptr<grpc::ClientContext> StoreContext(const grpc::ServerContext& incoming,
                                                    std::chrono::system_clock::time_point deadline) const;
  // The deadline of the next unary store call: the earlier of the capped call deadline and now +
  // store_call_timeout_ms.
  std::chrono::system_clock::time_point UnaryDeadline(const grpc::ServerContext& incoming) const;
  // Segments from the store's catalog, on behalf of `incoming`.
  SegmentLookup StoreSegmentLookup(const grpc::ServerContext& incoming) const;
  // Whether the store can evaluate `segment` as saved (its segments expanded through `lookup`):
  // every attribute, list and control group it names exists and every literal fits its attribute.
  // Errors: INVALID_ARGUMENT `segment "x": filter: unknown attribute "agee"` and the like; the
  // store's other errors as they are.
  absl::Status CheckSegmentAgainstStore(const grpc::ServerContext& incoming, const v1::Segment& segment,
                                        const SegmentLookup& lookup) const;
  // Every segment of the tenant (the store's ListSegments, unpaged), fetched to `purpose` ("check
  // which segments use \"x\""). Errors: the store's, with RESOURCE_EXHAUSTED (the catalog does
  // not fit in one message) explained: what cannot be done, and that deleting segments can.
  absl::StatusOr<v1::ListSegmentsResponse> ListAllSegments(const grpc::ServerContext& incoming,
                                                           std::string_view purpose) const;
  // The most the tenant's segments may take in one ListSegments answer: half of max_message_bytes.
  size_t MaxCatalogBytes() const;

  std::unique_ptr<v1::ContactStore::StubInterface> store_;
  const Authenticator* auth_;
  AudienceQueryOptions options_;
};

}  // namespace contacts
