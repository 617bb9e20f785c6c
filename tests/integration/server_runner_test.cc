// End-to-end checks of the shared server bootstrap (FlagSet + ServerRunner) through the test-only
// binary test-echo-server: health, reflection, metrics, graceful SIGTERM, port conflicts.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include <grpcpp/client_context.h>

#include "grpc/health/v1/health.grpc.pb.h"

#include "gtest/gtest.h"
#include "tests/testing/service_process.h"

namespace contacts::test {
namespace {

constexpr char kBinary[] = "test-echo-server";

std::unique_ptr<ServiceProcess> StartEcho(std::vector<std::string> flags = {}) {
  absl::StatusOr<std::unique_ptr<ServiceProcess>> process =
      ServiceProcess::Start({.binary = kBinary, .flags = std::move(flags)});
  EXPECT_TRUE(process.ok()) << process.status();
  return process.ok() ? *std::move(process) : nullptr;
}

TEST(ServerRunnerIntegrationTest, ReportsServingForOverallAndHealthService) {
  auto echo = StartEcho();
  ASSERT_NE(echo, nullptr);
  EXPECT_NE(echo->port(), 0);
  absl::StatusOr<bool> overall = HealthServing(echo->Channel(), "");
  ASSERT_TRUE(overall.ok()) << overall.status() << echo->log();
  EXPECT_TRUE(*overall);
  absl::StatusOr<bool> health = HealthServing(echo->Channel(), "grpc.health.v1.Health");
  ASSERT_TRUE(health.ok()) << health.status() << echo->log();
  EXPECT_TRUE(*health);
  EXPECT_EQ(HealthServing(echo->Channel(), "no.such.Service").status().code(), absl::StatusCode::kNotFound);
}

TEST(ServerRunnerIntegrationTest, LogsTheRealPortOnceAndTheFlags) {
  auto echo = StartEcho();
  ASSERT_NE(echo, nullptr);
  std::string log = echo->log();
  std::string line = "test-echo-server listening on " + echo->address();
  size_t first = log.find(line);
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find(" listening on ", first + line.size()), std::string::npos) << log;
  EXPECT_NE(log.find("listen=127.0.0.1:0 (flag)"), std::string::npos) << log;
  EXPECT_NE(log.find("test-echo-server metrics on " + echo->metrics_address()), std::string::npos) << log;
}

TEST(ServerRunnerIntegrationTest, ReflectionListsAndResolvesTheHealthService) {
  auto echo = StartEcho();
  ASSERT_NE(echo, nullptr);
  std::vector<std::string> services = ReflectionListServices(echo->Channel());
  EXPECT_NE(std::find(services.begin(), services.end(), "grpc.health.v1.Health"), services.end())
      << "services: " << ::testing::PrintToString(services);
  EXPECT_NE(std::find(services.begin(), services.end(), "grpc.reflection.v1alpha.ServerReflection"), services.end());

  absl::StatusOr<std::string> file = ReflectionFileContainingSymbol(echo->Channel(), "grpc.health.v1.Health");
  ASSERT_TRUE(file.ok()) << file.status() << echo->log();
  EXPECT_EQ(*file, "grpc/health/v1/health.proto");

  absl::StatusOr<std::string> missing = ReflectionFileContainingSymbol(echo->Channel(), "no.such.Symbol");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
}

TEST(ServerRunnerIntegrationTest, MetricsCountHandledCalls) {
  auto echo = StartEcho();
  ASSERT_NE(echo, nullptr);
  ASSERT_FALSE(echo->metrics_address().empty()) << echo->log();
  const std::map<std::string, std::string> check_ok = {
      {"grpc_service", "grpc.health.v1.Health"}, {"grpc_method", "Check"}, {"grpc_code", "OK"}};

  absl::StatusOr<std::string> before = HttpGet(echo->metrics_address(), "/metrics");
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(MetricValue(*before, "contacts_build_info", {{"service", "test-echo-server"}}), 1.0) << *before;
  double handled_before = MetricValue(*before, "grpc_server_handled_total", check_ok).value_or(0);

  constexpr int kCalls = 5;
  for (int i = 0; i < kCalls; ++i) ASSERT_TRUE(HealthServing(echo->Channel()).ok());
  ASSERT_EQ(HealthServing(echo->Channel(), "no.such.Service").status().code(), absl::StatusCode::kNotFound);

  // The interceptor records a call as its status is sent; the client may see it a moment earlier.
  std::string after;
  bool moved = WaitFor(
      [&] {
        absl::StatusOr<std::string> text = HttpGet(echo->metrics_address(), "/metrics");
        if (!text.ok()) return false;
        after = *text;
        return MetricValue(after, "grpc_server_handled_total", check_ok).value_or(0) >= handled_before + kCalls &&
               MetricValue(after, "grpc_server_handled_total", {{"grpc_method", "Check"}, {"grpc_code", "NotFound"}})
                       .value_or(0) >= 1;
      },
      std::chrono::seconds(10));
  EXPECT_TRUE(moved) << after;
  EXPECT_GE(MetricValue(after, "grpc_server_handling_seconds_count",
                        {{"grpc_service", "grpc.health.v1.Health"}, {"grpc_method", "Check"}})
                .value_or(0),
            kCalls)
      << after;
  EXPECT_GE(MetricValue(after, "grpc_server_started_total", {{"grpc_method", "Check"}}).value_or(0), kCalls);
}

TEST(ServerRunnerIntegrationTest, MetricsOffMeansNoMetricsLine) {
  auto echo = StartEcho({"--metrics_listen=off"});
  ASSERT_NE(echo, nullptr);
  EXPECT_EQ(echo->metrics_address(), "") << echo->log();
  EXPECT_EQ(echo->log().find("metrics on"), std::string::npos) << echo->log();
}

TEST(ServerRunnerIntegrationTest, SigtermExitsZeroWithinGracePeriod) {
  auto echo = StartEcho({"--grace_period_ms=5000"});
  ASSERT_NE(echo, nullptr);
  absl::StatusOr<ExitInfo> exit = echo->Terminate(std::chrono::seconds(20));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->signal, 0) << echo->log();
  EXPECT_EQ(exit->exit_code, 0) << echo->log();
  EXPECT_LT(exit->elapsed, std::chrono::milliseconds(5000)) << echo->log();
  EXPECT_NE(echo->log().find("shutting down"), std::string::npos) << echo->log();
}

TEST(ServerRunnerIntegrationTest, SigintAlsoShutsDownCleanly) {
  auto echo = StartEcho();
  ASSERT_NE(echo, nullptr);
  ASSERT_TRUE(echo->Signal(SIGINT).ok());
  absl::StatusOr<ExitInfo> exit = echo->WaitForExit(std::chrono::seconds(20));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->exited_cleanly()) << echo->log();
}

TEST(ServerRunnerIntegrationTest, HealthWatchSeesNotServingWhenDraining) {
  auto echo = StartEcho({"--grace_period_ms=5000"});
  ASSERT_NE(echo, nullptr);
  auto stub = grpc::health::v1::Health::NewStub(echo->Channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::health::v1::HealthCheckRequest request;
  auto watch = stub->Watch(&ctx, request);
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  ASSERT_TRUE(echo->Signal(SIGTERM).ok());
  bool saw_not_serving = false;
  while (watch->Read(&response)) {
    if (response.status() == grpc::health::v1::HealthCheckResponse::NOT_SERVING) saw_not_serving = true;
  }
  watch->Finish().ok();
  EXPECT_TRUE(saw_not_serving) << echo->log();
  // An open Watch stream must not hold the process for the whole grace period.
  absl::StatusOr<ExitInfo> exit = echo->WaitForExit(std::chrono::seconds(20));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->exited_cleanly()) << echo->log();
  EXPECT_LT(exit->elapsed, std::chrono::milliseconds(5000)) << echo->log();
}

TEST(ServerRunnerIntegrationTest, SecondInstanceOnSamePortFailsClearly) {
  auto first = StartEcho();
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<ServiceProcess>> second =
      ServiceProcess::Start({.binary = kBinary, .flags = {"--listen=" + first->address()}});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  EXPECT_NE(second.status().message().find("exit code 1"), absl::string_view::npos) << second.status();
  EXPECT_NE(second.status().message().find("cannot listen on " + first->address()), absl::string_view::npos)
      << second.status();
  // The first one is unaffected.
  absl::StatusOr<bool> serving = HealthServing(first->Channel());
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_TRUE(*serving);
}

TEST(ServerRunnerIntegrationTest, UnknownFlagExitsWithUsageError) {
  absl::StatusOr<std::unique_ptr<ServiceProcess>> process =
      ServiceProcess::Start({.binary = kBinary, .flags = {"--no_such_flag=1"}});
  ASSERT_FALSE(process.ok());
  EXPECT_NE(process.status().message().find("exit code 2"), absl::string_view::npos) << process.status();
  EXPECT_NE(process.status().message().find("no_such_flag"), absl::string_view::npos) << process.status();
}

TEST(ServerRunnerIntegrationTest, RestartKeepsDataDirAndCanReuseThePort) {
  auto echo = StartEcho();
  ASSERT_NE(echo, nullptr);
  std::string data_dir = echo->data_dir();
  int port = echo->port();
  ASSERT_TRUE(echo->Restart(/*same_port=*/true).ok()) << echo->log();
  EXPECT_EQ(echo->data_dir(), data_dir);
  EXPECT_EQ(echo->port(), port);
  absl::StatusOr<bool> serving = HealthServing(echo->Channel());
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_TRUE(*serving);
}

TEST(TempDirTest, RemovesItselfUnlessKept) {
  std::string path;
  {
    TempDir dir("tempdir_test");
    ASSERT_TRUE(dir.ok());
    path = dir.path();
    ASSERT_TRUE(std::filesystem::create_directories(path + "/a/b"));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace contacts::test
