// The one place where absl::Status becomes grpc::Status (and back, for clients of our services).
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace contacts {

// Same code, same message. OK maps to OK.
grpc::Status ToGrpcStatus(const absl::Status& status);

// For our own gRPC clients (import-processor and audience-query calling contact-store).
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace contacts
