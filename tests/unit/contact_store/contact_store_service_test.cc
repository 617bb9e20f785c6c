// ContactStoreService in process, behind a real gRPC server on a loopback port: GetContact (on
// gRPC's callback API) hands reads of a tenant locked by a writer to its own threads, and both
// paths answer the same; Count and Query (callback methods run on a pool) wait for a writer
// without holding up other tenants. (gRPC 1.51 here adds event threads when they block, so a
// blocking handler would not starve other tenants in this test; the hand-off keeps the event
// threads free on builds that do not.)
#include "services/contact_store/contact_store_service.h"

#include <atomic>
#include <future>
#include <memory>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "services/contact_store/blocking_work_pool.h"
#include "tests/testing/service_process.h"

namespace contacts::store {
namespace {

using contacts::v1::Contact;
using contacts::v1::GetContactRequest;

TEST(BlockingWorkPoolTest, RunsEveryTaskQueuedBeforeItIsDestroyed) {
  std::atomic<int> ran{0};
  {
    BlockingWorkPool pool(2);
    for (int i = 0; i < 100; ++i) pool.Run([&] { ++ran; });
  }
  EXPECT_EQ(ran.load(), 100);
}

class ContactStoreServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto repo = ContactRepository::Open(dir_.path() + "/store", StoreDbOptions());
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = *std::move(repo);
    for (const std::string tenant : {"locked", "other"}) {
      contacts::v1::SetupTenantRequest setup;
      setup.set_primary_key_attribute("customer_id");
      ASSERT_TRUE(repo_->SetupTenant(tenant, setup).ok());
      google::protobuf::Map<std::string, std::string> attributes;
      attributes["customer_id"] = "c1";
      attributes["email"] = tenant + "@example.com";
      ASSERT_TRUE(repo_->WriteContact(tenant, ContactWriteKind::kUpsert, attributes, {}, "api").ok());
    }
    service_ = std::make_unique<ContactStoreService>(repo_.get(), &auth_, 10000);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = contacts::v1::ContactStore::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  // A call on `tenant`, given 20 s.
  static void ForTenant(grpc::ClientContext* ctx, const std::string& tenant) {
    ctx->AddMetadata("x-tenant", tenant);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  }

  grpc::Status Get(const std::string& tenant, Contact* contact) {
    grpc::ClientContext ctx;
    ForTenant(&ctx, tenant);
    GetContactRequest request;
    request.set_primary_key("c1");
    return stub_->GetContact(&ctx, request, contact);
  }

  test::TempDir dir_{"contact_store_service_test"};
  Authenticator auth_ = Authenticator::Disabled();
  std::unique_ptr<ContactRepository> repo_;
  std::unique_ptr<ContactStoreService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<contacts::v1::ContactStore::Stub> stub_;
};

TEST_F(ContactStoreServiceTest, ReadsOfALockedTenantWaitAsideAndOtherTenantsAreServedMeanwhile) {
  auto lock = repo_->LockTenantForTesting("locked");
  ASSERT_TRUE(lock.ok()) << lock.status();
  // More blocked calls than the hand-off pool has threads.
  std::vector<std::future<std::pair<grpc::Status, Contact>>> blocked;
  for (int i = 0; i < 6; ++i) {
    blocked.push_back(std::async(std::launch::async, [this] {
      Contact contact;
      grpc::Status status = Get("locked", &contact);
      return std::make_pair(status, contact);
    }));
  }
  // Served while the writer still holds "locked".
  Contact other;
  grpc::Status status = Get("other", &other);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(other.attributes().at("email"), "other@example.com");
  for (auto& call : blocked) {
    EXPECT_NE(call.wait_for(std::chrono::seconds(0)), std::future_status::ready) << "read past the writer's lock";
  }
  lock->unlock();
  for (auto& call : blocked) {
    auto [call_status, contact] = call.get();
    ASSERT_TRUE(call_status.ok()) << call_status.error_message();
    EXPECT_EQ(contact.attributes().at("email"), "locked@example.com");
  }
}

// Count and Query run on the service's own pool (callback methods): a call on a tenant a writer
// holds waits there, while another tenant's calls are answered; both answer right afterwards.
TEST_F(ContactStoreServiceTest, CountsAndPagesOfALockedTenantWaitAndOtherTenantsAreServedMeanwhile) {
  auto count = [this](const std::string& tenant) {
    grpc::ClientContext ctx;
    ForTenant(&ctx, tenant);
    contacts::v1::StoreCountResponse response;
    grpc::Status status = stub_->Count(&ctx, contacts::v1::StoreCountRequest(), &response);
    return std::make_pair(status, response.count());
  };
  auto page = [this](const std::string& tenant) {
    grpc::ClientContext ctx;
    ForTenant(&ctx, tenant);
    contacts::v1::StoreQueryRequest request;
    request.set_page_size(10);
    contacts::v1::StoreQueryResponse response;
    grpc::Status status = stub_->Query(&ctx, request, &response);
    return std::make_pair(status, response);
  };

  auto lock = repo_->LockTenantForTesting("locked");
  ASSERT_TRUE(lock.ok()) << lock.status();
  std::vector<std::future<std::pair<grpc::Status, uint64_t>>> counts;
  for (int i = 0; i < 2; ++i) counts.push_back(std::async(std::launch::async, count, "locked"));
  auto locked_page = std::async(std::launch::async, page, "locked");

  auto [other_status, other_count] = count("other");
  ASSERT_TRUE(other_status.ok()) << other_status.error_message();
  EXPECT_EQ(other_count, 1u);
  auto [other_page_status, other_page] = page("other");
  ASSERT_TRUE(other_page_status.ok()) << other_page_status.error_message();
  ASSERT_EQ(other_page.contacts_size(), 1);
  EXPECT_EQ(other_page.contacts(0).attributes().at("email"), "other@example.com");
  for (auto& call : counts) {
    EXPECT_NE(call.wait_for(std::chrono::seconds(0)), std::future_status::ready) << "counted past the writer's lock";
  }
  EXPECT_NE(locked_page.wait_for(std::chrono::seconds(0)), std::future_status::ready) << "paged past the lock";

  lock->unlock();
  for (auto& call : counts) {
    auto [status, n] = call.get();
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(n, 1u);
  }
  auto [page_status, locked] = locked_page.get();
  ASSERT_TRUE(page_status.ok()) << page_status.error_message();
  ASSERT_EQ(locked.contacts_size(), 1);
  EXPECT_EQ(locked.contacts(0).attributes().at("email"), "locked@example.com");
}

TEST_F(ContactStoreServiceTest, UnknownContactIsNotFoundOnBothPaths) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-tenant", "other");
  GetContactRequest request;
  request.set_primary_key("missing");
  Contact contact;
  EXPECT_EQ(stub_->GetContact(&ctx, request, &contact).error_code(), grpc::StatusCode::NOT_FOUND);

  auto lock = repo_->LockTenantForTesting("other");
  ASSERT_TRUE(lock.ok());
  auto call = std::async(std::launch::async, [&] {
    grpc::ClientContext locked_ctx;
    locked_ctx.AddMetadata("x-tenant", "other");
    return stub_->GetContact(&locked_ctx, request, &contact);
  });
  lock->unlock();
  EXPECT_EQ(call.get().error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace contacts::store
