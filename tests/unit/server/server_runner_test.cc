#include "common/server/server_runner.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <grpcpp/server_context.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/server/metrics_interceptor.h"
#include "fmt/format.h"
#include "gtest/gtest.h"

namespace contacts {
namespace {

TEST(ParseHostPortTest, AcceptsHostAndPort) {
  std::string host;
  int port = -1;
  ASSERT_TRUE(ParseHostPort("127.0.0.1:50051", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 50051);
  ASSERT_TRUE(ParseHostPort("[::1]:0", &host, &port).ok());
  EXPECT_EQ(host, "[::1]");
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(ParseHostPort("localhost:9464", &host, &port).ok());
  EXPECT_EQ(host, "localhost");
}

TEST(ParseHostPortTest, RejectsMalformedAddresses) {
  std::string host;
  int port = 0;
  for (const char* bad : {"", "50051", ":50051", "host:", "host:port", "host:70000", "::1:5", "host:-1"}) {
    absl::Status status = ParseHostPort(bad, &host, &port);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ServerRunnerTest, StartRejectsMalformedListenAddressWithoutBinding) {
  ServerRunner runner(ServerOptions{.service_name = "unit", .listen = "nonsense", .metrics_listen = "off"});
  absl::Status status = runner.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("nonsense"), absl::string_view::npos) << status;
  EXPECT_EQ(runner.port(), 0);
}

TEST(ServerRunnerTest, StartRejectsNonPositiveMessageSize) {
  ServerRunner runner(
      ServerOptions{.service_name = "unit", .listen = "127.0.0.1:0", .metrics_listen = "off", .max_message_bytes = 0});
  EXPECT_EQ(runner.Start().code(), absl::StatusCode::kInvalidArgument);
}

// Each bad option is refused before anything binds, naming the flag.
TEST(ServerRunnerTest, StartRejectsANegativeGracePeriodAZeroDeadlineCapAndAMalformedMetricsAddress) {
  const ServerOptions base{.service_name = "unit", .listen = "127.0.0.1:0", .metrics_listen = "off"};
  struct Case {
    ServerOptions options;
    std::string flag;
  };
  std::vector<Case> cases;
  cases.push_back({base, "--grace_period_ms=-1"});
  cases.back().options.grace_period_ms = -1;
  cases.push_back({base, "--deadline_cap_ms=0"});
  cases.back().options.deadline_cap_ms = 0;
  cases.push_back({base, "--metrics_listen"});
  cases.back().options.metrics_listen = "127.0.0.1:notaport";
  for (const Case& c : cases) {
    ServerRunner runner(c.options);
    absl::Status status = runner.Start();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.flag << ": " << status;
    EXPECT_NE(status.message().find(c.flag), absl::string_view::npos) << status;
    EXPECT_EQ(runner.port(), 0) << c.flag;
  }
}

void TestSignalHandler(int /*signo*/) {}

void (*CurrentHandler(int signo))(int) {
  struct sigaction current;
  std::memset(&current, 0, sizeof(current));
  sigaction(signo, nullptr, &current);
  return current.sa_handler;
}

// A failed Start() must leave SIGTERM / SIGINT as they were: the caller exits, or carries on, with
// the signals doing what they did before. (This one binds a loopback port: the only way to make
// gRPC fail after the handlers are in place.)
TEST(ServerRunnerTest, FailedStartRestoresTheSignalHandlers) {
  int taken = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(taken, 0) << std::strerror(errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(taken, reinterpret_cast<sockaddr*>(&addr), len), 0) << std::strerror(errno);
  ASSERT_EQ(listen(taken, 1), 0) << std::strerror(errno);
  ASSERT_EQ(getsockname(taken, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);

  signal(SIGTERM, TestSignalHandler);
  signal(SIGINT, SIG_DFL);
  {
    ServerRunner runner(
        ServerOptions{.service_name = "unit", .listen = fmt::format("127.0.0.1:{}", port), .metrics_listen = "off"});
    absl::Status status = runner.Start();
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_EQ(CurrentHandler(SIGTERM), &TestSignalHandler);
    EXPECT_EQ(CurrentHandler(SIGINT), SIG_DFL);
  }
  signal(SIGTERM, SIG_DFL);
  close(taken);
}

TEST(EffectiveDeadlineTest, CapsACallWithoutClientDeadline) {
  grpc::ServerContext ctx;  // no client deadline: infinite
  auto before = std::chrono::system_clock::now();
  auto deadline = EffectiveDeadline(ctx, 1000);
  EXPECT_GE(deadline, before + std::chrono::milliseconds(1000));
  EXPECT_LE(deadline, std::chrono::system_clock::now() + std::chrono::milliseconds(1000));
}

// A cap too large for the clock (an operator's "no cap", e.g. INT64_MAX) means no cap: it must not
// overflow into a deadline in the past that fails every call at once.
TEST(EffectiveDeadlineTest, HugeCapLeavesTheClientDeadline) {
  grpc::ServerContext ctx;  // no client deadline: infinite
  const auto later = std::chrono::system_clock::now() + std::chrono::hours(24 * 365);
  for (int64_t cap : {int64_t{10'000'000'000'000}, std::numeric_limits<int64_t>::max()}) {
    const auto deadline = EffectiveDeadline(ctx, cap);
    EXPECT_GE(deadline, later) << "cap " << cap;
    EXPECT_FALSE(CallCancelledOrExpired(ctx, deadline)) << "cap " << cap;
  }
}

TEST(EffectiveDeadlineTest, ExpiredDeadlineIsReported) {
  grpc::ServerContext ctx;
  auto now = std::chrono::system_clock::now();
  EXPECT_TRUE(CallCancelledOrExpired(ctx, now - std::chrono::milliseconds(1)));
  EXPECT_FALSE(CallCancelledOrExpired(ctx, now + std::chrono::hours(1)));
}

TEST(GrpcCodeNameTest, UsesGoSpelling) {
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::OK), "OK");
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::CANCELLED), "Canceled");
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::INVALID_ARGUMENT), "InvalidArgument");
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::UNAUTHENTICATED), "Unauthenticated");
}

}  // namespace
}  // namespace contacts
