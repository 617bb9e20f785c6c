// contact-store as a real process on a loopback port: reflection and health, the contact
// lifecycle over gRPC, restart durability, tenant isolation through metadata, graceful shutdown.
#include <signal.h>

#include <filesystem>
#include <map>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "contacts/v1/contact_store.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

#include "tests/testing/role_check.h"
#include "tests/testing/service_process.h"

namespace contacts {
namespace {

using contacts::v1::ContactStore;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The same contact asked for by primary key, email and mobile.
std::vector<v1::GetContactRequest> AshaLookups() {
  std::vector<v1::GetContactRequest> out(3);
  out[0].set_primary_key("C-1");
  out[1].set_email("asha@example.com");
  out[2].set_mobile("+919876543210");
  return out;
}

class ContactStoreProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto process = test::ServiceProcess::Start({.binary = "contact-store"});
    ASSERT_TRUE(process.ok()) << process.status();
    process_ = *std::move(process);
    stub_ = ContactStore::NewStub(process_->Channel());
  }

  void TearDown() override {
    if (HasFailure() && process_) std::cerr << process_->log();
  }

  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& tenant = "") {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!tenant.empty()) ctx->AddMetadata("x-tenant", tenant);
    return ctx;
  }

  std::unique_ptr<test::ServiceProcess> process_;
  std::unique_ptr<ContactStore::Stub> stub_;
};

TEST_F(ContactStoreProcessTest, ReflectionListsTheServiceAndHealthAndHealthSaysServing) {
  std::vector<std::string> services = test::ReflectionListServices(process_->Channel());
  EXPECT_THAT(services, Contains("contacts.v1.ContactStore"));
  EXPECT_THAT(services, Contains("grpc.health.v1.Health"));
  EXPECT_TRUE(test::ReflectionFileContainingSymbol(process_->Channel(), "grpc.health.v1.Health").ok());
  EXPECT_TRUE(test::ReflectionFileContainingSymbol(process_->Channel(), "contacts.v1.ContactStore").ok());
  auto health = grpc::health::v1::Health::NewStub(process_->Channel());
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  auto ctx = Ctx();
  ASSERT_TRUE(health->Check(ctx.get(), request, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  auto exit = process_->Terminate(std::chrono::seconds(15));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->exited_cleanly()) << "code " << exit->exit_code << " signal " << exit->signal;
  EXPECT_LT(exit->elapsed, std::chrono::seconds(11));
}

TEST_F(ContactStoreProcessTest, ContactLifecycleSurvivesRestart) {
  v1::SetupTenantRequest setup;
  setup.set_primary_key_attribute("customer_id");
  v1::Tenant tenant;
  ASSERT_TRUE(stub_->SetupTenant(Ctx().get(), setup, &tenant).ok());
  for (auto [name, type] : {std::pair{"city", v1::TEXT}, std::pair{"age", v1::INTEGER}}) {
    v1::CreateAttributeRequest attribute;
    attribute.set_name(name);
    attribute.set_type(type);
    attribute.set_indexed(true);
    v1::Attribute created;
    ASSERT_TRUE(stub_->CreateAttribute(Ctx().get(), attribute, &created).ok());
  }
  v1::ContactList vip, news;
  v1::CreateListRequest list;
  list.set_name("vip");
  ASSERT_TRUE(stub_->CreateList(Ctx().get(), list, &vip).ok());
  list.set_name("newsletter");
  ASSERT_TRUE(stub_->CreateList(Ctx().get(), list, &news).ok());

  v1::AddContactRequest add;
  (*add.mutable_attributes())["customer_id"] = "C-1";
  (*add.mutable_attributes())["email"] = "Asha@Example.com";
  (*add.mutable_attributes())["mobile"] = "98765 43210";
  (*add.mutable_attributes())["city"] = "Pune";
  (*add.mutable_attributes())["age"] = "31";
  add.add_list_ids(vip.id());
  add.add_list_ids(news.id());
  v1::Contact contact;
  ASSERT_TRUE(stub_->AddContact(Ctx().get(), add, &contact).ok());
  EXPECT_EQ(contact.source(), "single");
  // A second add of the same key is refused.
  EXPECT_EQ(stub_->AddContact(Ctx().get(), add, &contact).error_code(), grpc::StatusCode::ALREADY_EXISTS);

  for (const auto& request : AshaLookups()) {
    v1::Contact got;
    grpc::Status status = stub_->GetContact(Ctx().get(), request, &got);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(got.primary_key(), "C-1");
  }

  // A bad value is refused naming the attribute; the contact is unchanged.
  v1::UpdateContactRequest bad;
  bad.set_primary_key("C-1");
  (*bad.mutable_attributes())["age"] = "thirty";
  grpc::Status refused = stub_->UpdateContact(Ctx().get(), bad, &contact);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(), HasSubstr("\"age\""));

  v1::UpdateContactRequest update;
  update.set_primary_key("C-1");
  (*update.mutable_attributes())["city"] = "Goa";
  ASSERT_TRUE(stub_->UpdateContact(Ctx().get(), update, &contact).ok());
  EXPECT_EQ(contact.attributes().at("city"), "Goa");
  EXPECT_EQ(contact.attributes().at("age"), "31");

  v1::BlacklistRequest blacklist;
  blacklist.set_primary_key("C-1");
  blacklist.set_channel(v1::EMAIL_CHANNEL);
  blacklist.set_reason(v1::HARD_BOUNCE);
  ASSERT_TRUE(stub_->Blacklist(Ctx().get(), blacklist, &contact).ok());
  ASSERT_EQ(contact.blacklist_size(), 1);

  v1::ListMembershipRequest leave;
  leave.set_list_id(news.id());
  leave.add_primary_keys("C-1");
  v1::ListMembershipResponse left;
  ASSERT_TRUE(stub_->RemoveFromList(Ctx().get(), leave, &left).ok());
  EXPECT_EQ(left.changed(), 1u);
  v1::GetContactRequest by_pk;
  by_pk.set_primary_key("C-1");
  ASSERT_TRUE(stub_->GetContact(Ctx().get(), by_pk, &contact).ok());
  EXPECT_THAT(contact.list_ids(), ::testing::ElementsAre(vip.id()));

  // A second contact that survives the restart.
  v1::UpsertContactRequest keep;
  (*keep.mutable_attributes())["customer_id"] = "C-2";
  (*keep.mutable_attributes())["email"] = "ravi@example.com";
  (*keep.mutable_attributes())["city"] = "Delhi";
  keep.add_list_ids(vip.id());
  v1::Contact kept;
  ASSERT_TRUE(stub_->UpsertContact(Ctx().get(), keep, &kept).ok());

  v1::DeleteContactRequest del;
  del.set_primary_key("C-1");
  v1::DeleteContactResponse deleted;
  ASSERT_TRUE(stub_->DeleteContact(Ctx().get(), del, &deleted).ok());
  for (const auto& request : AshaLookups()) {
    v1::Contact got;
    EXPECT_EQ(stub_->GetContact(Ctx().get(), request, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // No index or list entry is left: counts over every index agree.
  v1::StoreCountRequest count_city;
  auto* term = count_city.mutable_filter()->mutable_term()->mutable_attribute();
  term->set_attribute("city");
  term->set_op(v1::IS_SET);
  v1::StoreCountResponse counted;
  ASSERT_TRUE(stub_->Count(Ctx().get(), count_city, &counted).ok());
  EXPECT_EQ(counted.count(), 1u);
  v1::ListListsResponse lists;
  ASSERT_TRUE(stub_->ListLists(Ctx().get(), {}, &lists).ok());
  for (const auto& l : lists.lists()) EXPECT_EQ(l.member_count(), l.id() == vip.id() ? 1u : 0u) << l.name();

  ASSERT_TRUE(process_->Restart().ok());
  stub_ = ContactStore::NewStub(process_->Channel());
  v1::GetContactRequest by_email;
  by_email.set_email("RAVI@example.com");
  v1::Contact after;
  ASSERT_TRUE(stub_->GetContact(Ctx().get(), by_email, &after).ok());
  EXPECT_EQ(after.primary_key(), "C-2");
  EXPECT_EQ(after.attributes().at("city"), "Delhi");
  EXPECT_THAT(after.list_ids(), ::testing::ElementsAre(vip.id()));
  EXPECT_EQ(stub_->GetContact(Ctx().get(), by_pk, &after).error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(stub_->Count(Ctx().get(), count_city, &counted).ok());
  EXPECT_EQ(counted.count(), 1u);
}

TEST_F(ContactStoreProcessTest, TenantsFromMetadataNeverSeeEachOther) {
  for (const std::string tenant : {"acme", "globex"}) {
    v1::SetupTenantRequest setup;
    setup.set_primary_key_attribute("email");
    v1::Tenant out;
    ASSERT_TRUE(stub_->SetupTenant(Ctx(tenant).get(), setup, &out).ok());
    v1::UpsertContactRequest upsert;
    (*upsert.mutable_attributes())["email"] = "same@x.io";
    (*upsert.mutable_attributes())["mobile"] = tenant == "acme" ? "9000000001" : "9000000002";
    v1::Contact contact;
    ASSERT_TRUE(stub_->UpsertContact(Ctx(tenant).get(), upsert, &contact).ok());
  }
  v1::GetContactRequest get;
  get.set_primary_key("same@x.io");
  v1::Contact acme, globex;
  ASSERT_TRUE(stub_->GetContact(Ctx("acme").get(), get, &acme).ok());
  ASSERT_TRUE(stub_->GetContact(Ctx("globex").get(), get, &globex).ok());
  EXPECT_EQ(acme.attributes().at("mobile"), "+919000000001");
  EXPECT_EQ(globex.attributes().at("mobile"), "+919000000002");
  v1::GetContactRequest by_mobile;
  by_mobile.set_mobile("9000000002");
  EXPECT_EQ(stub_->GetContact(Ctx("acme").get(), by_mobile, &acme).error_code(), grpc::StatusCode::NOT_FOUND);
  // An unconfigured tenant sees nothing and must be set up first.
  EXPECT_EQ(stub_->GetContact(Ctx("initech").get(), get, &acme).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // A malformed tenant header is refused.
  EXPECT_NE(stub_->GetContact(Ctx("../etc").get(), get, &acme).error_code(), grpc::StatusCode::OK);
}

// AIP-158 over gRPC: a page token goes on with the request that returned it, also after a restart
// of the store; with another filter (or projection, or tenant) it is INVALID_ARGUMENT, as is a token
// the store did not issue.
TEST_F(ContactStoreProcessTest, QueryPageTokenContinuesItsOwnFilterOnlyEvenAfterRestart) {
  for (const std::string tenant : {"acme", "globex"}) {
    v1::SetupTenantRequest setup;
    setup.set_primary_key_attribute("customer_id");
    v1::Tenant out;
    ASSERT_TRUE(stub_->SetupTenant(Ctx(tenant).get(), setup, &out).ok());
    v1::CreateAttributeRequest attribute;
    attribute.set_name("city");
    attribute.set_type(v1::TEXT);
    attribute.set_indexed(true);
    v1::Attribute created;
    ASSERT_TRUE(stub_->CreateAttribute(Ctx(tenant).get(), attribute, &created).ok());
    for (int i = 0; i < 9; ++i) {
      v1::UpsertContactRequest upsert;
      (*upsert.mutable_attributes())["customer_id"] = "C-" + std::to_string(i);
      (*upsert.mutable_attributes())["city"] = i % 3 == 0 ? "Pune" : "Goa";
      v1::Contact contact;
      ASSERT_TRUE(stub_->UpsertContact(Ctx(tenant).get(), upsert, &contact).ok());
    }
  }
  auto city_is = [](const std::string& city) {
    v1::Filter filter;
    auto* predicate = filter.mutable_term()->mutable_attribute();
    predicate->set_attribute("city");
    predicate->set_op(v1::EQ);
    predicate->add_values(city);
    return filter;
  };
  v1::StoreQueryRequest pune;
  *pune.mutable_filter() = city_is("Pune");
  pune.set_page_size(1);
  v1::StoreQueryResponse page;
  ASSERT_TRUE(stub_->Query(Ctx("acme").get(), pune, &page).ok());
  ASSERT_EQ(page.contacts_size(), 1);
  std::vector<std::string> keys = {page.contacts(0).primary_key()};
  const std::string token = page.next_page_token();
  ASSERT_FALSE(token.empty());

  v1::StoreQueryRequest goa = pune;
  *goa.mutable_filter() = city_is("Goa");
  goa.set_page_token(token);
  grpc::Status refused = stub_->Query(Ctx("acme").get(), goa, &page);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(), HasSubstr("page_token: issued for a different request"));
  v1::StoreQueryRequest next = pune;
  next.set_page_token(token);
  EXPECT_EQ(stub_->Query(Ctx("globex").get(), next, &page).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  next.set_page_token("garbage");
  refused = stub_->Query(Ctx("acme").get(), next, &page);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(refused.error_message(), "page_token: not a token this service issued");

  ASSERT_TRUE(process_->Restart().ok());
  stub_ = ContactStore::NewStub(process_->Channel());
  next.set_page_token(token);
  while (!next.page_token().empty()) {
    grpc::Status status = stub_->Query(Ctx("acme").get(), next, &page);
    ASSERT_TRUE(status.ok()) << status.error_message();
    for (const auto& contact : page.contacts()) keys.push_back(contact.primary_key());
    next.set_page_token(page.next_page_token());
    ASSERT_LE(keys.size(), 3u);
  }
  EXPECT_THAT(keys, ::testing::ElementsAre("C-0", "C-3", "C-6"));
}

// docs/operations.md: with --log_level=debug each call logs a line (method, tenant, outcome); at
// the default level, info, none does.
TEST_F(ContactStoreProcessTest, DebugLogLevelLogsOneLinePerCall) {
  auto debug = test::ServiceProcess::Start({.binary = "contact-store", .flags = {"--log_level=debug"}});
  ASSERT_TRUE(debug.ok()) << debug.status();
  for (test::ServiceProcess* process : {process_.get(), debug->get()}) {
    auto stub = ContactStore::NewStub(process->Channel());
    v1::SetupTenantRequest setup;
    setup.set_primary_key_attribute("customer_id");
    v1::Tenant tenant;
    ASSERT_TRUE(stub->SetupTenant(Ctx().get(), setup, &tenant).ok());
    v1::GetContactRequest get;
    get.set_primary_key("nobody");
    v1::Contact contact;
    ASSERT_EQ(stub->GetContact(Ctx().get(), get, &contact).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  EXPECT_THAT((*debug)->log(), testing::HasSubstr("contact-store SetupTenant tenant=default ok"));
  EXPECT_THAT((*debug)->log(), testing::HasSubstr("contact-store GetContact tenant=default failed: NOT_FOUND"));
  EXPECT_THAT(process_->log(), testing::Not(testing::HasSubstr("SetupTenant tenant=")));
}

// A long read stopped by the store's own deadline cap (--deadline_cap_ms, earlier than the
// caller's deadline) says DEADLINE_EXCEEDED, not CANCELLED: the caller did not cancel anything.
TEST_F(ContactStoreProcessTest, AReadStoppedByTheDeadlineCapIsDeadlineExceeded) {
  auto store = test::ServiceProcess::Start({.binary = "contact-store", .flags = {"--deadline_cap_ms=20"}});
  ASSERT_TRUE(store.ok()) << store.status();
  auto stub = ContactStore::NewStub((*store)->Channel());
  v1::SetupTenantRequest setup;
  setup.set_primary_key_attribute("customer_id");
  v1::Tenant tenant;
  ASSERT_TRUE(stub->SetupTenant(Ctx().get(), setup, &tenant).ok());
  v1::CreateAttributeRequest note;
  note.set_name("note");
  note.set_type(v1::TEXT);
  v1::Attribute created;
  ASSERT_TRUE(stub->CreateAttribute(Ctx().get(), note, &created).ok());
  // 100,000 contacts: each condition on the unindexed note reads all of them, far past 20 ms.
  for (int batch = 0; batch < 4; ++batch) {
    v1::BatchUpsertRequest upsert;
    upsert.set_job_id("fill");
    upsert.set_batch_sequence(batch + 1);
    upsert.add_columns("customer_id");
    upsert.add_columns("note");
    for (int i = 0; i < 25000; ++i) {
      v1::BatchRow* row = upsert.add_rows();
      row->set_row_number(i + 1);
      row->add_values(fmt::format("C-{}-{}", batch, i));
      row->add_values(fmt::format("a note of row {}", i));
    }
    v1::BatchUpsertResponse upserted;
    grpc::Status status = stub->BatchUpsert(Ctx().get(), upsert, &upserted);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  v1::StoreCountRequest count;
  for (int i = 0; i < 16; ++i) {
    v1::AttributePredicate* predicate =
        count.mutable_filter()->mutable_or_()->add_filters()->mutable_term()->mutable_attribute();
    predicate->set_attribute("note");
    predicate->set_op(v1::CONTAINS);
    predicate->add_values(fmt::format("row {}9", i));
  }
  v1::StoreCountResponse counted;
  grpc::Status status = stub->Count(Ctx().get(), count, &counted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("stopped"));
}

// Below --min_free_disk_mb free, writes are refused with a reason and reads go on: RocksDB never
// meets a full disk (where Debian's build aborts, and aborts again at every start).
TEST_F(ContactStoreProcessTest, WritesAreRefusedBelowTheFreeSpaceReserveAndReadsGoOn) {
  auto store = test::ServiceProcess::Start({.binary = "contact-store", .flags = {"--min_free_disk_mb=1073741824"}});
  ASSERT_TRUE(store.ok()) << store.status();
  auto stub = ContactStore::NewStub((*store)->Channel());
  v1::SetupTenantRequest setup;
  setup.set_primary_key_attribute("customer_id");
  v1::Tenant tenant;
  grpc::Status status = stub->SetupTenant(Ctx().get(), setup, &tenant);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("--min_free_disk_mb"));
  v1::Tenant read;
  status = stub->GetTenant(Ctx().get(), v1::GetTenantRequest(), &read);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE((*store)->running());
}

TEST_F(ContactStoreProcessTest, BackupRestoresIntoAFreshStoreWithTheSameContacts) {
  v1::SetupTenantRequest setup;
  setup.set_primary_key_attribute("customer_id");
  v1::Tenant tenant;
  ASSERT_TRUE(stub_->SetupTenant(Ctx().get(), setup, &tenant).ok());
  v1::BatchUpsertRequest batch;
  batch.set_job_id("seed");
  for (int i = 0; i < 500; ++i) {
    auto* row = batch.add_rows();
    (*row->mutable_attributes())["customer_id"] = "K" + std::to_string(i);
    (*row->mutable_attributes())["email"] = "k" + std::to_string(i) + "@x.io";
  }
  v1::BatchUpsertResponse applied;
  ASSERT_TRUE(stub_->BatchUpsert(Ctx().get(), batch, &applied).ok());
  test::TempDir backups;
  v1::BackupRequest backup;
  backup.set_path(backups.path() + "/b1");
  v1::BackupResponse backed;
  grpc::Status status = stub_->Backup(Ctx().get(), backup, &backed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(backed.contacts(), 500u);
  // Restore: the checkpoint becomes <data_dir>/db of a new store.
  test::TempDir restored;
  std::filesystem::create_directories(restored.path() + "/data");
  std::filesystem::rename(backup.path(), restored.path() + "/data/db");
  auto second =
      test::ServiceProcess::Start({.binary = "contact-store", .flags = {"--data_dir=" + restored.path() + "/data"}});
  ASSERT_TRUE(second.ok()) << second.status();
  auto restored_stub = ContactStore::NewStub((*second)->Channel());
  v1::StoreExportRequest all;
  std::string original_csv, restored_csv;
  for (auto* pair : {&original_csv, &restored_csv}) {
    auto* stub = pair == &original_csv ? stub_.get() : restored_stub.get();
    auto ctx = Ctx();
    auto reader = stub->Export(ctx.get(), all);
    v1::StoreExportChunk chunk;
    while (reader->Read(&chunk)) pair->append(chunk.csv());
    ASSERT_TRUE(reader->Finish().ok());
  }
  EXPECT_EQ(original_csv, restored_csv);
  EXPECT_EQ(std::count(restored_csv.begin(), restored_csv.end(), '\n'), 501);
}

// The calls the lifecycle test does not make, through the binary: an attribute read, changed and
// deleted; a list filled, renamed and deleted (its member stays); a channel blacklisted and
// cleared; an anonymous user identified as a new contact.
TEST_F(ContactStoreProcessTest, AttributeListBlacklistAndAnonymousCallsOverGrpc) {
  v1::SetupTenantRequest setup;
  setup.set_primary_key_attribute("customer_id");
  v1::Tenant tenant;
  ASSERT_TRUE(stub_->SetupTenant(Ctx().get(), setup, &tenant).ok());
  v1::CreateAttributeRequest create;
  create.set_name("tier");
  create.set_type(v1::TEXT);
  v1::Attribute attribute;
  ASSERT_TRUE(stub_->CreateAttribute(Ctx().get(), create, &attribute).ok());

  v1::GetAttributeRequest get_attribute;
  get_attribute.set_name("tier");
  ASSERT_TRUE(stub_->GetAttribute(Ctx().get(), get_attribute, &attribute).ok());
  EXPECT_EQ(attribute.type(), v1::TEXT);
  EXPECT_FALSE(attribute.indexed());
  v1::UpdateAttributeRequest update_attribute;
  update_attribute.set_name("tier");
  update_attribute.set_display_name("Tier");
  update_attribute.set_indexed(true);
  ASSERT_TRUE(stub_->UpdateAttribute(Ctx().get(), update_attribute, &attribute).ok());
  ASSERT_TRUE(stub_->GetAttribute(Ctx().get(), get_attribute, &attribute).ok());
  EXPECT_EQ(attribute.display_name(), "Tier");
  EXPECT_TRUE(attribute.indexed());

  v1::UpsertContactRequest upsert;
  (*upsert.mutable_attributes())["customer_id"] = "C-1";
  (*upsert.mutable_attributes())["tier"] = "gold";
  v1::Contact contact;
  ASSERT_TRUE(stub_->UpsertContact(Ctx().get(), upsert, &contact).ok());
  v1::GetContactRequest get_c1;
  get_c1.set_primary_key("C-1");

  v1::CreateListRequest create_list;
  create_list.set_name("vip");
  v1::ContactList list;
  ASSERT_TRUE(stub_->CreateList(Ctx().get(), create_list, &list).ok());
  v1::ListMembershipRequest add;
  add.set_list_id(list.id());
  add.add_primary_keys("C-1");
  add.add_primary_keys("C-404");
  v1::ListMembershipResponse added;
  ASSERT_TRUE(stub_->AddToList(Ctx().get(), add, &added).ok());
  EXPECT_EQ(added.changed(), 1u);
  EXPECT_EQ(added.not_found(), 1u);
  v1::RenameListRequest rename;
  rename.set_id(list.id());
  rename.set_name("VIP");
  ASSERT_TRUE(stub_->RenameList(Ctx().get(), rename, &list).ok());
  v1::ListListsResponse lists;
  ASSERT_TRUE(stub_->ListLists(Ctx().get(), v1::ListListsRequest(), &lists).ok());
  ASSERT_EQ(lists.lists_size(), 1);
  EXPECT_EQ(lists.lists(0).name(), "VIP");
  EXPECT_EQ(lists.lists(0).member_count(), 1u);
  v1::DeleteListRequest delete_list;
  delete_list.set_id(list.id());
  v1::DeleteListResponse list_deleted;
  ASSERT_TRUE(stub_->DeleteList(Ctx().get(), delete_list, &list_deleted).ok());
  ASSERT_TRUE(stub_->ListLists(Ctx().get(), v1::ListListsRequest(), &lists).ok());
  EXPECT_EQ(lists.lists_size(), 0);
  ASSERT_TRUE(stub_->GetContact(Ctx().get(), get_c1, &contact).ok());
  EXPECT_EQ(contact.list_ids_size(), 0);

  v1::BlacklistRequest blacklist;
  blacklist.set_primary_key("C-1");
  blacklist.set_channel(v1::SMS);
  blacklist.set_reason(v1::UNSUBSCRIBE);
  ASSERT_TRUE(stub_->Blacklist(Ctx().get(), blacklist, &contact).ok());
  ASSERT_EQ(contact.blacklist_size(), 1);
  v1::UnblacklistRequest unblacklist;
  unblacklist.set_primary_key("C-1");
  unblacklist.set_channel(v1::SMS);
  ASSERT_TRUE(stub_->Unblacklist(Ctx().get(), unblacklist, &contact).ok());
  EXPECT_EQ(contact.blacklist_size(), 0);
  ASSERT_TRUE(stub_->GetContact(Ctx().get(), get_c1, &contact).ok());
  EXPECT_EQ(contact.blacklist_size(), 0);

  // UpdateContact takes the key apart from the values: a new key among them is refused.
  v1::UpdateContactRequest rekey;
  rekey.set_primary_key("C-1");
  (*rekey.mutable_attributes())["Customer_ID"] = "C-9";
  grpc::Status refused = stub_->UpdateContact(Ctx().get(), rekey, &contact);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(), HasSubstr("\"Customer_ID\" is the primary key"));
  ASSERT_TRUE(stub_->GetContact(Ctx().get(), get_c1, &contact).ok());
  EXPECT_EQ(contact.attributes().at("tier"), "gold");

  v1::RecordAnonymousRequest record;
  record.set_guid("9b2f6c1e-0d4a-4e4b-8f43-2a9a5d1c7e11");
  record.set_source("web");
  (*record.mutable_attributes())["tier"] = "silver";
  v1::AnonymousUser anonymous;
  ASSERT_TRUE(stub_->RecordAnonymous(Ctx().get(), record, &anonymous).ok());
  v1::IdentifyAnonymousRequest identify;
  identify.set_guid(record.guid());
  (*identify.mutable_attributes())["customer_id"] = "C-2";
  ASSERT_TRUE(stub_->IdentifyAnonymous(Ctx().get(), identify, &contact).ok());
  EXPECT_EQ(contact.primary_key(), "C-2");
  EXPECT_EQ(contact.attributes().at("tier"), "silver");
  v1::ListAnonymousResponse anonymous_left;
  ASSERT_TRUE(stub_->ListAnonymous(Ctx().get(), v1::ListAnonymousRequest(), &anonymous_left).ok());
  EXPECT_EQ(anonymous_left.users_size(), 0);

  v1::DeleteAttributeRequest delete_attribute;
  delete_attribute.set_name("tier");
  v1::DeleteAttributeResponse attribute_deleted;
  ASSERT_TRUE(stub_->DeleteAttribute(Ctx().get(), delete_attribute, &attribute_deleted).ok());
  EXPECT_EQ(stub_->GetAttribute(Ctx().get(), get_attribute, &attribute).error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(stub_->GetContact(Ctx().get(), get_c1, &contact).ok());
  EXPECT_FALSE(contact.attributes().contains("tier"));
}

// With API keys on, every RPC lets through the lowest role README.md's table gives it, and the
// roles above it, and refuses the roles below and a call without a key.
TEST(ContactStoreAuthTest, EveryRpcTakesItsLowestRoleAndAbove) {
  test::TempDir dir("contact_store_auth");
  ASSERT_TRUE(dir.ok());
  const std::string keys = test::WriteRoleKeyFile(dir.path());
  auto store = test::ServiceProcess::Start({.binary = "contact-store", .flags = {"--api_keys_file=" + keys}});
  ASSERT_TRUE(store.ok()) << store.status();
  const std::map<std::string, std::string> lowest_role = {
      {"SetupTenant", "admin"},
      {"GetTenant", "reader"},
      {"CreateAttribute", "writer"},
      {"ListAttributes", "reader"},
      {"GetAttribute", "reader"},
      {"UpdateAttribute", "writer"},
      {"DeleteAttribute", "admin"},
      {"AddContact", "writer"},
      {"UpsertContact", "writer"},
      {"UpdateContact", "writer"},
      {"GetContact", "reader"},
      {"DeleteContact", "writer"},
      {"CreateList", "writer"},
      {"ListLists", "reader"},
      {"RenameList", "writer"},
      {"DeleteList", "writer"},
      {"AddToList", "writer"},
      {"RemoveFromList", "writer"},
      {"Blacklist", "writer"},
      {"Unblacklist", "writer"},
      {"RecordAnonymous", "writer"},
      {"ListAnonymous", "reader"},
      {"IdentifyAnonymous", "writer"},
      {"BatchUpsert", "writer"},
      {"BatchDelete", "writer"},
      {"Query", "reader"},
      {"Count", "reader"},
      {"Export", "reader"},
      {"SearchByPrimaryKey", "reader"},
      {"PutSegment", "writer"},
      {"GetSegment", "reader"},
      {"ListSegments", "reader"},
      {"DeleteSegment", "writer"},
      {"CreateControlGroup", "writer"},
      {"ListControlGroups", "reader"},
      {"DeleteControlGroup", "writer"},
      {"Backup", "admin"},
  };
  EXPECT_THAT(test::RoleMismatches((*store)->Channel(), "contacts.v1.ContactStore", lowest_role, test::kAcmeRoleKeys),
              IsEmpty())
      << (*store)->log();
}

TEST(ContactStoreFlagsTest, ExportThreadsOutOfRangeIsAUsageError) {
  for (const char* value : {"0", "17"}) {
    auto process =
        test::ServiceProcess::Start({.binary = "contact-store", .flags = {std::string("--export_threads=") + value}});
    ASSERT_FALSE(process.ok()) << value;
    EXPECT_NE(process.status().message().find("exit code 2"), absl::string_view::npos) << process.status();
    EXPECT_NE(process.status().message().find("--export_threads must be 1 to 16"), absl::string_view::npos)
        << process.status();
  }
}

}  // namespace
}  // namespace contacts
