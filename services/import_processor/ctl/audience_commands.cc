#include "services/import_processor/ctl/audience_commands.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace contacts::ctl {
namespace {

// The filter text given (none: every contact).
v1::FilterSpec FilterOf(const Options& options) {
  v1::FilterSpec filter;
  if (!options.positional.empty()) filter.set_text(options.positional[0]);
  return filter;
}

void PrintContact(const v1::Contact& contact) {
  std::printf("%s\n", contact.primary_key().c_str());
  // Sorted by name: a protobuf map's order is unspecified.
  const std::map<std::string, std::string> attributes(contact.attributes().begin(), contact.attributes().end());
  for (const auto& [name, value] : attributes) std::printf("  %s: %s\n", name.c_str(), value.c_str());
  if (!contact.list_ids().empty()) std::printf("  lists: %s\n", absl::StrJoin(contact.list_ids(), ", ").c_str());
  for (const v1::BlacklistEntry& entry : contact.blacklist()) {
    std::printf("  blacklisted: %s (%s)\n", v1::Channel_Name(entry.channel()).c_str(),
                v1::BlacklistReason_Name(entry.reason()).c_str());
  }
}

}  // namespace

int Count(Client& client, const Options& options) {
  v1::CountRequest request;
  *request.mutable_filter() = FilterOf(options);
  auto ctx = client.Context();
  v1::CountResponse response;
  grpc::Status status = client.query().Count(ctx.get(), request, &response);
  if (!status.ok()) return client.Fail(Service::kQuery, status);
  std::printf("%llu\n", static_cast<unsigned long long>(response.count()));
  return 0;
}

int Export(Client& client, const Options& options) {
  v1::ExportRequest request;
  *request.mutable_filter() = FilterOf(options);
  request.set_cells_as_stored(options.switches.contains("as-stored"));  // no ' before =, +, -, @
  for (const std::string& list : All(options, "attributes")) {
    for (absl::string_view name : absl::StrSplit(list, ',', absl::SkipEmpty())) {
      request.add_attributes(std::string(name));
    }
  }
  auto ctx = client.Context();
  auto reader = client.query().Export(ctx.get(), request);
  v1::ExportChunk chunk;
  uint64_t rows = 0;
  bool written = true;
  bool replied = false;
  while (written && reader->Read(&chunk)) {
    replied = true;
    written = std::fwrite(chunk.csv().data(), 1, chunk.csv().size(), stdout) == chunk.csv().size();
    rows += chunk.rows();
  }
  if (!written || std::fflush(stdout) != 0) {
    ctx->TryCancel();
    reader->Finish();
    std::fprintf(stderr, "contactsctl: writing the export failed after %llu rows: the output is incomplete\n",
                 static_cast<unsigned long long>(rows));
    return 1;
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) {
    if (rows > 0) {
      std::fprintf(stderr, "contactsctl: the export stopped after %llu rows: the output is incomplete\n",
                   static_cast<unsigned long long>(rows));
    }
    return client.Fail(Service::kQuery, status, replied);
  }
  std::fprintf(stderr, "exported %llu row%s\n", static_cast<unsigned long long>(rows), rows == 1 ? "" : "s");
  return 0;
}

int Search(Client& client, const Options& options) {
  if (options.positional.size() != 1) Usage("search needs a KEY (a primary key, or its start with --prefix)");
  v1::SearchRequest request;
  request.set_query(options.positional[0]);
  request.set_prefix(options.switches.contains("prefix"));
  if (const std::optional<std::string> limit = One(options, "limit")) {
    request.set_limit(static_cast<uint32_t>(std::min<uint64_t>(ParseId(*limit, "--limit"), UINT32_MAX)));
  }
  auto ctx = client.Context();
  v1::SearchResponse response;
  grpc::Status status = client.query().Search(ctx.get(), request, &response);
  if (!status.ok()) return client.Fail(Service::kQuery, status);
  for (const v1::Contact& contact : response.contacts()) PrintContact(contact);
  if (response.contacts().empty()) {
    std::fprintf(stderr, "no contact %s \"%s\"\n", request.prefix() ? "starts with" : "has the primary key",
                 request.query().c_str());
    return 1;
  }
  return 0;
}

int ListSegments(Client& client, const Options& /*options*/) {
  auto ctx = client.Context();
  v1::ListSegmentsQueryResponse response;
  grpc::Status status = client.query().ListSegments(ctx.get(), v1::ListSegmentsQueryRequest(), &response);
  if (!status.ok()) return client.Fail(Service::kQuery, status);
  std::printf("%-32s %s\n", "NAME", "FILTER");
  for (const v1::Segment& segment : response.segments()) {
    // A segment saved as a tree (through the API) has no text form to show.
    std::printf("%-32s %s\n", segment.name().c_str(),
                segment.filter_text().empty() ? "(saved as a filter tree)" : segment.filter_text().c_str());
  }
  return 0;
}

int SaveSegment(Client& client, const Options& options) {
  if (options.positional.size() != 2) Usage("save-segment needs a NAME and a FILTER");
  v1::CreateSegmentRequest request;
  request.set_name(options.positional[0]);
  request.mutable_filter()->set_text(options.positional[1]);
  auto ctx = client.Context();
  v1::Segment segment;
  const bool replace = options.switches.contains("replace");
  grpc::Status status = replace ? client.query().UpdateSegment(ctx.get(), request, &segment)
                                : client.query().CreateSegment(ctx.get(), request, &segment);
  if (!status.ok()) return client.Fail(Service::kQuery, status);
  std::printf("segment %s %s\n", segment.name().c_str(), replace ? "replaced" : "saved");
  return 0;
}

int DeleteSegment(Client& client, const Options& options) {
  if (options.positional.size() != 1) Usage("delete-segment needs a NAME");
  v1::GetSegmentByNameRequest request;
  request.set_name(options.positional[0]);
  auto ctx = client.Context();
  v1::DeleteSegmentQueryResponse response;
  grpc::Status status = client.query().DeleteSegment(ctx.get(), request, &response);
  if (!status.ok()) return client.Fail(Service::kQuery, status);
  std::printf("segment %s deleted\n", request.name().c_str());
  return 0;
}

}  // namespace contacts::ctl
