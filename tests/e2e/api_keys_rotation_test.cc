// API keys rotated while the three services run: each follows the keys file (--api_keys_reload_ms),
// so a key added to the file works through every service, a key removed from it is refused by
// every service, and a malformed file changes nothing; no process is restarted.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "contacts/v1/audience_query.grpc.pb.h"
#include "contacts/v1/contact_store.grpc.pb.h"
#include "contacts/v1/import_processor.grpc.pb.h"

#include "tests/e2e/suite_fixture.h"
#include "tests/testing/service_process.h"

namespace contacts {
namespace {

using test::ServiceProcess;

constexpr auto kReloadWait = std::chrono::seconds(20);

class ApiKeysRotationTest : public test::SuiteFixture {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    keys_path_ = dir_.path() + "/api_keys";
    WriteKeys("old-key acme admin\n");
    ASSERT_NO_FATAL_FAILURE(StartServices({"--api_keys_file=" + keys_path_, "--api_keys_reload_ms=100"}));
  }

  // As the kubelet updates a mounted Secret: the new file replaces the old one whole.
  void WriteKeys(const std::string& text) {
    const std::string next = keys_path_ + ".next";
    std::ofstream(next, std::ios::trunc) << text;
    std::filesystem::rename(next, keys_path_);
  }

  static std::unique_ptr<grpc::ClientContext> Ctx(const std::string& key) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ctx->AddMetadata("x-api-key", key);
    return ctx;
  }

  // A call to each service that needs a reader's key; audience-query's Count also makes
  // contact-store check the key it forwards.
  grpc::StatusCode StoreCall(const std::string& key) {
    v1::Tenant response;
    return store_stub_->GetTenant(Ctx(key).get(), v1::GetTenantRequest(), &response).error_code();
  }
  grpc::StatusCode AudienceCall(const std::string& key) {
    v1::CountRequest request;
    request.mutable_filter()->set_text("email = \"nobody@example.com\"");
    v1::CountResponse response;
    return audience_stub_->Count(Ctx(key).get(), request, &response).error_code();
  }
  grpc::StatusCode ImportCall(const std::string& key) {
    v1::ListJobsResponse response;
    return import_stub_->ListJobs(Ctx(key).get(), v1::ListJobsRequest(), &response).error_code();
  }

  // Success once every service answers `key` with `code` (the services reload independently);
  // else the codes they last gave.
  testing::AssertionResult AllAnswer(const std::string& key, grpc::StatusCode code) {
    grpc::StatusCode store, audience, import;
    if (test::WaitFor(
            [&] {
              store = StoreCall(key);
              audience = AudienceCall(key);
              import = ImportCall(key);
              return store == code && audience == code && import == code;
            },
            kReloadWait)) {
      return testing::AssertionSuccess();
    }
    return testing::AssertionFailure() << "key " << key << ": contact-store " << store << ", audience-query "
                                       << audience << ", import-processor " << import << "; expected " << code;
  }

  test::TempDir dir_{"api_keys_rotation"};
  std::string keys_path_;
};

TEST_F(ApiKeysRotationTest, KeysAddedAndRevokedInTheFileApplyToEveryServiceWithoutRestart) {
  v1::SetupTenantRequest setup;
  setup.set_primary_key_attribute("customer_id");
  v1::Tenant tenant;
  ASSERT_TRUE(store_stub_->SetupTenant(Ctx("old-key").get(), setup, &tenant).ok());
  ASSERT_TRUE(AllAnswer("old-key", grpc::StatusCode::OK));
  ASSERT_EQ(StoreCall("new-key"), grpc::StatusCode::UNAUTHENTICATED);

  // Rotation, step 1: the new key beside the old one.
  WriteKeys("old-key acme admin\nnew-key acme reader\n");
  EXPECT_TRUE(AllAnswer("new-key", grpc::StatusCode::OK));
  EXPECT_EQ(StoreCall("old-key"), grpc::StatusCode::OK);

  // Step 2: the old key revoked.
  WriteKeys("new-key acme reader\n");
  EXPECT_TRUE(AllAnswer("old-key", grpc::StatusCode::UNAUTHENTICATED));
  EXPECT_TRUE(AllAnswer("new-key", grpc::StatusCode::OK));

  // A malformed file is refused: the keys in use stay, and /metrics says the file is not in use.
  WriteKeys("new-key acme reader\nbroken-line acme\n");
  for (ServiceProcess* process : {store_.get(), importer_.get(), audience_.get()}) {
    EXPECT_TRUE(test::WaitFor(
        [&] {
          absl::StatusOr<std::string> body = test::HttpGet(process->metrics_address(), "/metrics");
          return body.ok() && test::MetricValue(*body, "api_keys_file_in_use") == 0.0;
        },
        kReloadWait))
        << process->log();
    EXPECT_THAT(process->log(), testing::HasSubstr("line 2: expected \"<api key> <tenant> <role>\", found 2 fields"));
    EXPECT_THAT(process->log(), testing::Not(testing::HasSubstr("broken-line")));
  }
  EXPECT_TRUE(AllAnswer("new-key", grpc::StatusCode::OK));
  EXPECT_EQ(StoreCall("old-key"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(store_->log().find("old-key"), std::string::npos) << "keys are never logged";
}

}  // namespace
}  // namespace contacts
