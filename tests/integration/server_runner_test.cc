// End-to-end checks of the shared server bootstrap (FlagSet + ServerRunner) through the test-only
// binary test-echo-server: health, reflection, metrics, graceful SIGTERM, port conflicts.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/byte_buffer.h>

#include "grpc/health/v1/health.grpc.pb.h"

#include "gtest/gtest.h"
#include "tests/testing/service_process.h"

namespace contacts::test {
namespace {

constexpr char kBinary[] = "test-echo-server";

// Calls /contacts.test.Echo/<method> (raw bytes: the number of ms) with extra metadata.
grpc::Status CallEcho(const char* full_method, const std::shared_ptr<grpc::Channel>& channel, int64_t ms,
                      const std::map<std::string, std::string>& metadata = {}, std::string* answer = nullptr,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  grpc::ClientContext ctx;
  for (const auto& [key, value] : metadata) ctx.AddMetadata(key, value);
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::internal::RpcMethod method(full_method, grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::Slice slice(std::to_string(ms));
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::Status status = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(channel.get(), method,
                                                                                              &ctx, request, &response);
  if (status.ok() && answer != nullptr) {
    std::vector<grpc::Slice> slices;
    answer->clear();
    if (response.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices) answer->append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return status;
}

grpc::Status CallSleep(const std::shared_ptr<grpc::Channel>& channel, int64_t ms,
                       const std::map<std::string, std::string>& metadata = {}, std::string* answer = nullptr,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  return CallEcho("/contacts.test.Echo/Sleep", channel, ms, metadata, answer, timeout);
}

// Fetches /metrics into *text until `done` holds (it reads *text), at most 10 s. The interceptor
// records a call as its status is sent; the client may see the call end a moment earlier.
bool WaitForMetrics(const ServiceProcess& process, std::string* text, const std::function<bool()>& done) {
  return WaitFor(
      [&] {
        absl::StatusOr<std::string> fetched = HttpGet(process.metrics_address(), "/metrics");
        if (!fetched.ok()) return false;
        *text = *std::move(fetched);
        return done();
      },
      std::chrono::seconds(10));
}

bool LogContains(const ServiceProcess& process, const std::string& text) {
  return WaitFor([&] { return process.log().find(text) != std::string::npos; }, std::chrono::seconds(20));
}

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

  std::string after;
  bool moved = WaitForMetrics(*echo, &after, [&] {
    return MetricValue(after, "grpc_server_handled_total", check_ok).value_or(0) >= handled_before + kCalls &&
           MetricValue(after, "grpc_server_handled_total", {{"grpc_method", "Check"}, {"grpc_code", "NotFound"}})
                   .value_or(0) >= 1;
  });
  EXPECT_TRUE(moved) << after;
  EXPECT_GE(MetricValue(after, "grpc_server_handling_seconds_count",
                        {{"grpc_service", "grpc.health.v1.Health"}, {"grpc_method", "Check"}})
                .value_or(0),
            kCalls)
      << after;
  EXPECT_GE(MetricValue(after, "grpc_server_started_total", {{"grpc_method", "Check"}}).value_or(0), kCalls);
}

// A client can send any method name: the names the server does not have (an unknown service, or a
// method a registered service's descriptor lacks) share one series, so made-up names cannot grow
// /metrics without bound.
TEST(ServerRunnerIntegrationTest, MetricsFoldUnknownMethodsIntoOneSeries) {
  auto echo = StartEcho();
  ASSERT_NE(echo, nullptr);
  constexpr int kNames = 20;
  for (int i = 0; i < kNames; ++i) {
    std::string name = "/no.such.Service/Method" + std::to_string(i);
    EXPECT_EQ(CallEcho(name.c_str(), echo->Channel(), 0).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
  EXPECT_EQ(CallEcho("/grpc.health.v1.Health/NoSuchMethod", echo->Channel(), 0).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  ASSERT_TRUE(CallSleep(echo->Channel(), 0).ok());

  const std::map<std::string, std::string> unknown = {
      {"grpc_service", "unknown"}, {"grpc_method", "unknown"}, {"grpc_code", "Unimplemented"}};
  const std::map<std::string, std::string> sleep_ok = {
      {"grpc_service", "contacts.test.Echo"}, {"grpc_method", "Sleep"}, {"grpc_code", "OK"}};
  std::string after;
  bool counted = WaitForMetrics(*echo, &after, [&] {
    return MetricValue(after, "grpc_server_handled_total", unknown).value_or(0) >= kNames + 1 &&
           MetricValue(after, "grpc_server_handled_total", sleep_ok).value_or(0) >= 1;
  });
  EXPECT_TRUE(counted) << after;
  EXPECT_EQ(after.find("no.such.Service"), std::string::npos) << after;
  EXPECT_EQ(after.find("NoSuchMethod"), std::string::npos) << after;
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

  auto signalled = std::chrono::steady_clock::now();
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
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, std::chrono::milliseconds(5000)) << echo->log();
}

TEST(ServerRunnerIntegrationTest, SecondInstanceOnSamePortFailsClearly) {
  auto first = StartEcho();
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<ServiceProcess>> second =
      ServiceProcess::Start({.binary = kBinary, .flags = {"--listen=" + first->address()}});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  EXPECT_NE(second.status().message().find("exit code 1"), absl::string_view::npos) << second.status();
  EXPECT_NE(second.status().message().find("cannot listen on " + first->address() + ": Address already in use"),
            absl::string_view::npos)
      << second.status();
  // The first one is unaffected.
  absl::StatusOr<bool> serving = HealthServing(first->Channel());
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_TRUE(*serving);
}

TEST(ServerRunnerIntegrationTest, MetricsPortInUseFailsClearly) {
  auto first = StartEcho();
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<ServiceProcess>> second =
      ServiceProcess::Start({.binary = kBinary, .flags = {"--metrics_listen=" + first->metrics_address()}});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("exit code 1"), absl::string_view::npos) << second.status();
  EXPECT_NE(second.status().message().find("cannot serve metrics on " + first->metrics_address()),
            absl::string_view::npos)
      << second.status();
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

TEST(ServerRunnerIntegrationTest, InFlightCallFinishesDuringGracefulShutdown) {
  auto echo = StartEcho({"--grace_period_ms=20000"});
  ASSERT_NE(echo, nullptr);
  grpc::Status call_status;
  std::string answer;
  std::thread caller([&] { call_status = CallSleep(echo->Channel(), 1500, {}, &answer); });
  ASSERT_TRUE(LogContains(*echo, "sleep started: 1500 ms")) << echo->log();
  ASSERT_TRUE(echo->Signal(SIGTERM).ok());
  ASSERT_TRUE(LogContains(*echo, "shutting down")) << echo->log();
  // While it drains, new calls are refused (a fresh channel, so no connection is reused).
  bool refused = WaitFor(
      [&] {
        auto fresh = grpc::CreateChannel(echo->address(), grpc::InsecureChannelCredentials());
        return !HealthServing(fresh, "", std::chrono::milliseconds(500)).value_or(false);
      },
      std::chrono::seconds(5));
  EXPECT_TRUE(refused);
  absl::StatusOr<ExitInfo> exit = echo->WaitForExit(std::chrono::seconds(30));
  caller.join();
  EXPECT_TRUE(call_status.ok()) << call_status.error_code() << ": " << call_status.error_message() << echo->log();
  EXPECT_EQ(answer, "tenant=default role=admin slept_ms=1500");
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->exited_cleanly()) << echo->log();
  // It waited for the call, not for the whole grace period.
  EXPECT_LT(exit->elapsed, std::chrono::milliseconds(10000)) << echo->log();
  EXPECT_NE(echo->log().find("sleep finished: 1500 ms"), std::string::npos) << echo->log();
}

TEST(ServerRunnerIntegrationTest, CallOutlastingGracePeriodIsCancelled) {
  auto echo = StartEcho({"--grace_period_ms=300"});
  ASSERT_NE(echo, nullptr);
  grpc::Status call_status;
  std::thread caller([&] { call_status = CallSleep(echo->Channel(), 60000); });
  ASSERT_TRUE(LogContains(*echo, "sleep started: 60000 ms")) << echo->log();
  ASSERT_TRUE(echo->Signal(SIGTERM).ok());
  absl::StatusOr<ExitInfo> exit = echo->WaitForExit(std::chrono::seconds(30));
  caller.join();
  EXPECT_FALSE(call_status.ok());
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->exited_cleanly()) << echo->log();
  EXPECT_LT(exit->elapsed, std::chrono::milliseconds(10000)) << echo->log();
}

TEST(ServerRunnerIntegrationTest, DeadlineCapStopsALongCall) {
  auto echo = StartEcho({"--deadline_cap_ms=200"});
  ASSERT_NE(echo, nullptr);
  auto start = std::chrono::steady_clock::now();
  grpc::Status status = CallSleep(echo->Channel(), 60000, {}, nullptr, std::chrono::seconds(30));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(ServerRunnerIntegrationTest, ApiKeysGateCallsByRoleAndTenant) {
  TempDir dir("echo_keys");
  ASSERT_TRUE(dir.ok());
  std::string keys = dir.path() + "/keys.txt";
  {
    std::ofstream out(keys);
    out << "# test keys\nw-key-123 acme writer\nr-key-456 acme reader\n";
  }
  auto echo = StartEcho({"--api_keys_file=" + keys});
  ASSERT_NE(echo, nullptr);
  std::string answer;
  EXPECT_EQ(CallSleep(echo->Channel(), 0).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CallSleep(echo->Channel(), 0, {{"x-api-key", "nope"}}).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CallSleep(echo->Channel(), 0, {{"x-api-key", "r-key-456"}}).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(CallSleep(echo->Channel(), 0, {{"x-api-key", "w-key-123"}, {"x-tenant", "globex"}}).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  grpc::Status ok = CallSleep(echo->Channel(), 0, {{"x-api-key", "w-key-123"}}, &answer);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(answer, "tenant=acme role=writer slept_ms=0");
  ok = CallSleep(echo->Channel(), 0, {{"authorization", "Bearer w-key-123"}, {"x-tenant", "acme"}}, &answer);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(answer, "tenant=acme role=writer slept_ms=0");
  // A service calling another on the caller's behalf passes the caller's credentials along.
  ok = CallEcho("/contacts.test.Echo/Forward", echo->Channel(), 0, {{"authorization", "Bearer w-key-123"}}, &answer);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(answer, "tenant=acme role=writer slept_ms=0");
  EXPECT_EQ(CallEcho("/contacts.test.Echo/Forward", echo->Channel(), 0, {{"x-api-key", "r-key-456"}}).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // Health and reflection stay open without a key, for probes and grpcurl.
  EXPECT_TRUE(HealthServing(echo->Channel()).ok());
  // Keys never reach the log.
  EXPECT_EQ(echo->log().find("w-key-123"), std::string::npos) << echo->log();
}

TEST(ServerRunnerIntegrationTest, WithoutKeysTenantComesFromHeader) {
  auto echo = StartEcho();
  ASSERT_NE(echo, nullptr);
  std::string answer;
  grpc::Status ok = CallSleep(echo->Channel(), 0, {{"x-tenant", "shop-7"}}, &answer);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(answer, "tenant=shop-7 role=admin slept_ms=0");
  ok = CallEcho("/contacts.test.Echo/Forward", echo->Channel(), 0, {{"x-tenant", "shop-8"}}, &answer);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(answer, "tenant=shop-8 role=admin slept_ms=0");
  EXPECT_EQ(CallSleep(echo->Channel(), 0, {{"x-tenant", "Bad Tenant"}}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(ServerRunnerIntegrationTest, BadApiKeysFileStopsStartWithLineNumber) {
  TempDir dir("echo_keys");
  ASSERT_TRUE(dir.ok());
  std::string keys = dir.path() + "/keys.txt";
  {
    std::ofstream out(keys);
    out << "k1 acme writer\nk2 acme\n";
  }
  absl::StatusOr<std::unique_ptr<ServiceProcess>> process =
      ServiceProcess::Start({.binary = kBinary, .flags = {"--api_keys_file=" + keys}});
  ASSERT_FALSE(process.ok());
  EXPECT_NE(process.status().message().find("line 2"), absl::string_view::npos) << process.status();
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
