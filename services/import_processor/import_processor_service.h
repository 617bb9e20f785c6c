// ImportProcessorService: the gRPC adapter of import-processor (sync API: uploads write to disk,
// jobs read RocksDB, and WatchJob blocks on a condition variable, so handlers run on gRPC's sync
// thread pool rather than in callback reactors). It authenticates each call (writer for uploads
// and job control, reader for reads), turns requests into JobManager calls, and maps
// absl::Status to grpc::Status once.
#pragma once

#include <cstdint>

#include "contacts/v1/import_processor.grpc.pb.h"

#include "common/auth/auth.h"
#include "services/import_processor/job_manager.h"

namespace contacts {

struct ImportProcessorServiceOptions {
  // Upper bound of every call's deadline, in milliseconds. Default: 5 minutes.
  int64_t deadline_cap_ms = 300000;
  // Rejected rows per GetJobErrors message. Default: 500.
  int errors_per_chunk = 500;
};

class ImportProcessorService final : public v1::ImportProcessor::Service {
 public:
  // `manager` and `auth` must outlive the service.
  ImportProcessorService(JobManager* manager, const Authenticator* auth, ImportProcessorServiceOptions options);

  grpc::Status Upload(grpc::ServerContext* ctx, grpc::ServerReader<v1::UploadRequest>* reader,
                      v1::UploadResponse* response) override;
  grpc::Status StartImport(grpc::ServerContext* ctx, const v1::StartImportRequest* request, v1::Job* response) override;
  grpc::Status StartDelete(grpc::ServerContext* ctx, const v1::StartDeleteRequest* request, v1::Job* response) override;
  grpc::Status GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* request, v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status WatchJob(grpc::ServerContext* ctx, const v1::GetJobRequest* request,
                        grpc::ServerWriter<v1::Job>* writer) override;
  grpc::Status CancelJob(grpc::ServerContext* ctx, const v1::GetJobRequest* request, v1::Job* response) override;
  grpc::Status GetJobErrors(grpc::ServerContext* ctx, const v1::GetJobErrorsRequest* request,
                            grpc::ServerWriter<v1::JobErrorChunk>* writer) override;

 private:
  JobManager* manager_;
  const Authenticator* auth_;
  ImportProcessorServiceOptions options_;
};

// The headers a job forwards to contact-store for `identity`: the caller's x-api-key or
// authorization when present, and x-tenant naming the tenant.
StoreCredentials CredentialsFor(const grpc::ServerContextBase& ctx, const CallIdentity& identity);

}  // namespace contacts
