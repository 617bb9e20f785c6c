// The one place where absl::Status becomes grpc::Status (and back, for clients of our services).
#pragma once

#include <cstddef>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace contacts {

// Longest message ToGrpcStatus sends. gRPC carries it in a header (percent-encoded: up to three
// bytes per byte outside printable ASCII) and clients refuse headers over 8 KiB by default: a
// longer message (one echoing a long value or name the caller sent) would reach the caller as
// RESOURCE_EXHAUSTED "received initial metadata size exceeds limit" instead of the real error.
inline constexpr size_t kMaxStatusMessageBytes = 2000;

// Same code, same message, cut to kMaxStatusMessageBytes at a UTF-8 character boundary with
// "... (N more bytes cut)" after it. OK maps to OK.
grpc::Status ToGrpcStatus(const absl::Status& status);

// For our own gRPC clients (import-processor and audience-query calling contact-store).
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace contacts
