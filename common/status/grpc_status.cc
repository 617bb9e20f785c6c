#include "common/status/grpc_status.h"

#include <string>
#include <string_view>

#include <fmt/format.h>

namespace contacts {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl::StatusCode and grpc::StatusCode share their numbering (both follow google.rpc.Code).
  const auto code = static_cast<grpc::StatusCode>(status.code());
  const std::string_view message(status.message().data(), status.message().size());
  if (message.size() <= kMaxStatusMessageBytes) return grpc::Status(code, std::string(message));
  size_t cut = kMaxStatusMessageBytes;  // back to a character's first byte
  while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) --cut;
  return grpc::Status(code, fmt::format("{}... ({} more bytes cut)", message.substr(0, cut), message.size() - cut));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace contacts
