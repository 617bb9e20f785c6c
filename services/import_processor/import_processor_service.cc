#include "services/import_processor/import_processor_service.h"

#include <string>
#include <utility>

#include <fmt/format.h>

#include "common/auth/grpc_auth.h"
#include "common/csv/csv_writer.h"
#include "common/server/handle_call.h"
#include "common/server/server_runner.h"
#include "common/status/status_macros.h"

namespace contacts {
namespace {

// HandleCall under this service's name; handlers read the caller's identity (tenant, credentials).
template <typename Fn>
grpc::Status Handle(const Authenticator& auth, grpc::ServerContext* ctx, const char* method, Role role, Fn&& fn) {
  return HandleCall(auth, *ctx, "import-processor", method, role, std::forward<Fn>(fn));
}

absl::Status Interrupted(const grpc::ServerContext& ctx) {
  if (ctx.IsCancelled()) return absl::CancelledError("the call was cancelled");
  return absl::DeadlineExceededError("the call's deadline passed");
}

}  // namespace

StoreCredentials CredentialsFor(const grpc::ServerContextBase& ctx, const CallIdentity& identity) {
  StoreCredentials credentials;
  const auto& metadata = ctx.client_metadata();
  for (const char* key : {kApiKeyHeader, kAuthorizationHeader}) {
    auto it = metadata.find(key);
    if (it != metadata.end()) credentials.emplace_back(key, std::string(it->second.data(), it->second.size()));
  }
  credentials.emplace_back(kTenantHeader, identity.tenant);
  return credentials;
}

ImportProcessorService::ImportProcessorService(JobManager* manager, const Authenticator* auth,
                                               ImportProcessorServiceOptions options)
    : manager_(manager), auth_(auth), options_(options) {}

grpc::Status ImportProcessorService::Upload(grpc::ServerContext* ctx, grpc::ServerReader<v1::UploadRequest>* reader,
                                            v1::UploadResponse* response) {
  return Handle(*auth_, ctx, "Upload", Role::kWriter, [&](const CallIdentity& identity) -> absl::Status {
    const auto deadline = EffectiveDeadline(*ctx, options_.deadline_cap_ms);
    v1::UploadRequest message;
    if (!reader->Read(&message) || !message.has_start()) {
      return absl::InvalidArgumentError("the first Upload message must hold `start`");
    }
    const v1::UploadStart start = message.start();
    std::string upload_id;
    const Caller caller{identity.tenant, CredentialsFor(*ctx, identity), ctx};
    ASSIGN_OR_RETURN(std::unique_ptr<UploadSession> session, manager_->BeginUpload(caller, start, &upload_id));
    while (reader->Read(&message)) {
      if (CallCancelledOrExpired(*ctx, deadline)) return Interrupted(*ctx);
      if (message.has_start()) return absl::InvalidArgumentError("`start` may only be the first Upload message");
      RETURN_IF_ERROR(session->Append(std::move(*message.mutable_chunk())));
    }
    // Read() also ends when the client goes away: never take a cut-off file for a whole one.
    if (CallCancelledOrExpired(*ctx, deadline)) return Interrupted(*ctx);
    ASSIGN_OR_RETURN(*response, manager_->FinishUpload(caller, start, upload_id, *session));
    return absl::OkStatus();
  });
}

grpc::Status ImportProcessorService::StartImport(grpc::ServerContext* ctx, const v1::StartImportRequest* request,
                                                 v1::Job* response) {
  return Handle(*auth_, ctx, "StartImport", Role::kWriter, [&](const CallIdentity& identity) -> absl::Status {
    ASSIGN_OR_RETURN(*response,
                     manager_->StartImport(Caller{identity.tenant, CredentialsFor(*ctx, identity), ctx}, *request));
    return absl::OkStatus();
  });
}

grpc::Status ImportProcessorService::StartDelete(grpc::ServerContext* ctx, const v1::StartDeleteRequest* request,
                                                 v1::Job* response) {
  return Handle(*auth_, ctx, "StartDelete", Role::kWriter, [&](const CallIdentity& identity) -> absl::Status {
    ASSIGN_OR_RETURN(*response,
                     manager_->StartDelete(Caller{identity.tenant, CredentialsFor(*ctx, identity), ctx}, *request));
    return absl::OkStatus();
  });
}

grpc::Status ImportProcessorService::GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* request,
                                            v1::Job* response) {
  return Handle(*auth_, ctx, "GetJob", Role::kReader, [&](const CallIdentity& identity) -> absl::Status {
    ASSIGN_OR_RETURN(*response, manager_->GetJob(identity.tenant, request->job_id()));
    return absl::OkStatus();
  });
}

grpc::Status ImportProcessorService::ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* request,
                                              v1::ListJobsResponse* response) {
  return Handle(*auth_, ctx, "ListJobs", Role::kReader, [&](const CallIdentity& identity) -> absl::Status {
    ASSIGN_OR_RETURN(*response, manager_->ListJobs(identity.tenant, *request));
    return absl::OkStatus();
  });
}

grpc::Status ImportProcessorService::WatchJob(grpc::ServerContext* ctx, const v1::GetJobRequest* request,
                                              grpc::ServerWriter<v1::Job>* writer) {
  return Handle(*auth_, ctx, "WatchJob", Role::kReader, [&](const CallIdentity& identity) -> absl::Status {
    const auto deadline = EffectiveDeadline(*ctx, options_.deadline_cap_ms);
    bool write_failed = false;
    RETURN_IF_ERROR(manager_->WatchJob(
        identity.tenant, request->job_id(),
        [&](const v1::Job& job) {
          write_failed = !writer->Write(job);
          return !write_failed;
        },
        [&] { return CallCancelledOrExpired(*ctx, deadline); }));
    if (write_failed || CallCancelledOrExpired(*ctx, deadline)) return Interrupted(*ctx);
    return absl::OkStatus();
  });
}

grpc::Status ImportProcessorService::CancelJob(grpc::ServerContext* ctx, const v1::GetJobRequest* request,
                                               v1::Job* response) {
  return Handle(*auth_, ctx, "CancelJob", Role::kWriter, [&](const CallIdentity& identity) -> absl::Status {
    ASSIGN_OR_RETURN(*response, manager_->CancelJob(identity.tenant, request->job_id()));
    return absl::OkStatus();
  });
}

grpc::Status ImportProcessorService::GetJobErrors(grpc::ServerContext* ctx, const v1::GetJobErrorsRequest* request,
                                                  grpc::ServerWriter<v1::JobErrorChunk>* writer) {
  return Handle(*auth_, ctx, "GetJobErrors", Role::kReader, [&](const CallIdentity& identity) -> absl::Status {
    const auto deadline = EffectiveDeadline(*ctx, options_.deadline_cap_ms);
    CsvWriteOptions csv_options;
    csv_options.neutralize_formulas = true;  // the report is meant for spreadsheets
    csv_options.numeric_columns = {true};
    v1::JobErrorChunk chunk;
    std::string csv;
    if (request->as_csv()) AppendCsvRow(&csv, {"row_number", "column", "value", "reason"}, csv_options);
    bool interrupted = false;
    bool write_failed = false;
    auto flush = [&] {
      if (request->as_csv()) chunk.set_csv(std::move(csv));
      csv.clear();
      write_failed = !writer->Write(chunk);
      chunk.Clear();
      return !write_failed;
    };
    int pending = 0;
    RETURN_IF_ERROR(
        manager_->ScanJobLog(identity.tenant, request->job_id(),
                             request->fixes() ? JobLogKind::kFixed : JobLogKind::kRejected, [&](v1::JobError&& error) {
                               if (CallCancelledOrExpired(*ctx, deadline)) {
                                 interrupted = true;
                                 return false;
                               }
                               if (request->as_csv()) {
                                 const std::string row = std::to_string(error.row_number());
                                 AppendCsvRow(&csv, {row, error.column(), error.value(), error.reason()}, csv_options);
                               } else {
                                 *chunk.add_errors() = std::move(error);
                               }
                               if (++pending < options_.errors_per_chunk) return true;
                               pending = 0;
                               return flush();
                             }));
    if (interrupted || write_failed) return Interrupted(*ctx);
    if (pending > 0 || !csv.empty()) flush();
    return absl::OkStatus();
  });
}

}  // namespace contacts
