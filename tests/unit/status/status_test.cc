#include <string>

#include <gtest/gtest.h>

#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"

namespace contacts {
namespace {

absl::StatusOr<int> Half(int n) {
  if (n % 2 != 0) return absl::InvalidArgumentError("odd: " + std::to_string(n));
  return n / 2;
}

absl::StatusOr<int> Quarter(int n) {
  ASSIGN_OR_RETURN(int half, Half(n));
  ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

absl::Status CheckQuarter(int n) {
  RETURN_IF_ERROR(Quarter(n).status());
  return absl::OkStatus();
}

TEST(StatusMacrosTest, AssignOrReturnPassesValuesAndErrors) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "odd: 3");
  EXPECT_TRUE(CheckQuarter(4).ok());
  EXPECT_EQ(CheckQuarter(2).code(), absl::StatusCode::kInvalidArgument);
}

TEST(GrpcStatusTest, CodesAndMessagesSurviveBothWays) {
  for (auto code :
       {absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound, absl::StatusCode::kAlreadyExists,
        absl::StatusCode::kFailedPrecondition, absl::StatusCode::kResourceExhausted, absl::StatusCode::kUnavailable}) {
    absl::Status in(code, "row 3: bad");
    grpc::Status wire = ToGrpcStatus(in);
    EXPECT_EQ(static_cast<int>(wire.error_code()), static_cast<int>(code));
    EXPECT_EQ(wire.error_message(), "row 3: bad");
    EXPECT_EQ(FromGrpcStatus(wire), in);
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

// A long message (one echoing a long value the caller sent) is cut at a character boundary, so
// that it fits the header gRPC carries it in and stays valid UTF-8; the code is kept.
TEST(GrpcStatusTest, LongMessagesAreCutAtACharacterBoundary) {
  const std::string exact(kMaxStatusMessageBytes, 'a');
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError(exact)).error_message(), exact);

  std::string long_message = std::string(kMaxStatusMessageBytes - 1, 'a') + "\xC3\xA9" + std::string(20000, 'b');
  grpc::Status wire = ToGrpcStatus(absl::InvalidArgumentError(long_message));
  EXPECT_EQ(wire.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(wire.error_message(),
            std::string(kMaxStatusMessageBytes - 1, 'a') + "... (" + std::to_string(20002) + " more bytes cut)");
}

}  // namespace
}  // namespace contacts
