// audience-query in front of a real contact-store, both as processes on loopback ports: text and
// tree filters agree, bad filters are refused with a position, pages follow the store's tokens,
// segments expand (nested; cycles refused; each fetched once, at most 100), a catalog too large to
// list can still be deleted from, control groups, CSV export, credentials forwarded and roles checked.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "contacts/v1/audience_query.grpc.pb.h"
#include "contacts/v1/contact_store.grpc.pb.h"

#include "absl/strings/str_join.h"
#include "services/audience_query/filter_text.h"
#include "tests/testing/role_check.h"
#include "tests/testing/service_process.h"

namespace contacts {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& tenant = "", const std::string& api_key = "") {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  if (!tenant.empty()) ctx->AddMetadata("x-tenant", tenant);
  if (!api_key.empty()) ctx->AddMetadata("x-api-key", api_key);
  return ctx;
}

v1::FilterSpec Text(const std::string& text) {
  v1::FilterSpec spec;
  spec.set_text(text);
  return spec;
}

v1::FilterSpec Tree(const std::string& text) {
  auto parsed = ParseFilterText(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  v1::FilterSpec spec;
  if (parsed.ok()) *spec.mutable_filter() = *parsed;
  return spec;
}

// Starts contact-store and audience-query (pointed at it) with the same extra flags.
struct Services {
  std::unique_ptr<test::ServiceProcess> store;
  std::unique_ptr<test::ServiceProcess> audience;
  std::unique_ptr<v1::ContactStore::Stub> store_stub;
  std::unique_ptr<v1::AudienceQuery::Stub> stub;

  // `flags` go to both services, `audience_only` to audience-query alone.
  absl::Status Start(const std::vector<std::string>& flags = {}, const std::vector<std::string>& audience_only = {}) {
    auto started_store = test::ServiceProcess::Start({.binary = "contact-store", .flags = flags});
    if (!started_store.ok()) return started_store.status();
    store = *std::move(started_store);
    std::vector<std::string> audience_flags = flags;
    audience_flags.insert(audience_flags.end(), audience_only.begin(), audience_only.end());
    audience_flags.push_back("--store=" + store->address());
    auto started_audience = test::ServiceProcess::Start({.binary = "audience-query", .flags = audience_flags});
    if (!started_audience.ok()) return started_audience.status();
    audience = *std::move(started_audience);
    store_stub = v1::ContactStore::NewStub(store->Channel());
    stub = v1::AudienceQuery::NewStub(audience->Channel());
    return absl::OkStatus();
  }

  std::string Logs() const {
    std::string out;
    if (store) out += "--- contact-store ---\n" + store->log();
    if (audience) out += "--- audience-query ---\n" + audience->log();
    return out;
  }
};

class AudienceQueryProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status started = services_.Start();
    ASSERT_TRUE(started.ok()) << started << "\n" << services_.Logs();
    stub_ = services_.stub.get();
    store_ = services_.store_stub.get();
    SeedContacts();
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << services_.Logs();
  }

  // How many GetSegment calls contact-store has started (its metrics), or -1 when unreadable.
  double StoreGetSegmentCalls() {
    auto body = test::HttpGet(services_.store->metrics_address(), "/metrics");
    EXPECT_TRUE(body.ok()) << body.status();
    if (!body.ok()) return -1;
    return test::MetricValue(*body, "grpc_server_started_total",
                             {{"grpc_service", "contacts.v1.ContactStore"}, {"grpc_method", "GetSegment"}})
        .value_or(0);
  }

  // Five contacts: pk, city, age, email, lists, blacklisted email.
  void SeedContacts() {
    v1::SetupTenantRequest setup;
    setup.set_primary_key_attribute("customer_id");
    v1::Tenant tenant;
    grpc::Status status = store_->SetupTenant(Ctx().get(), setup, &tenant);
    ASSERT_TRUE(status.ok()) << status.error_message();
    for (auto [name, type] : {std::pair{"city", v1::TEXT}, std::pair{"age", v1::INTEGER}}) {
      v1::CreateAttributeRequest attribute;
      attribute.set_name(name);
      attribute.set_type(type);
      attribute.set_indexed(true);
      v1::Attribute created;
      status = store_->CreateAttribute(Ctx().get(), attribute, &created);
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
    v1::CreateListRequest list;
    list.set_name("vip");
    status = store_->CreateList(Ctx().get(), list, &vip_);
    ASSERT_TRUE(status.ok()) << status.error_message();

    struct Row {
      const char* pk;
      const char* city;
      const char* age;
      const char* email;
      bool vip;
    };
    const Row rows[] = {{"C-1", "Pune", "31", "asha@example.com", true},
                        {"C-2", "Pune", "25", "", false},
                        {"C-3", "Mumbai", "40", "ravi@example.com", true},
                        {"C-4", "Delhi", "35", "", false},
                        {"C-5", "Pune", "45", "meera@example.com", false}};
    for (const Row& row : rows) {
      v1::AddContactRequest add;
      (*add.mutable_attributes())["customer_id"] = row.pk;
      (*add.mutable_attributes())["city"] = row.city;
      (*add.mutable_attributes())["age"] = row.age;
      if (*row.email) (*add.mutable_attributes())["email"] = row.email;
      if (row.vip) add.add_list_ids(vip_.id());
      v1::Contact contact;
      status = store_->AddContact(Ctx().get(), add, &contact);
      ASSERT_TRUE(status.ok()) << row.pk << ": " << status.error_message();
    }
    v1::BlacklistRequest blacklist;
    blacklist.set_primary_key("C-5");
    blacklist.set_channel(v1::EMAIL_CHANNEL);
    blacklist.set_reason(v1::UNSUBSCRIBE);
    v1::Contact contact;
    status = store_->Blacklist(Ctx().get(), blacklist, &contact);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  uint64_t Count(const v1::FilterSpec& spec, const std::string& tenant = "") {
    v1::CountRequest request;
    *request.mutable_filter() = spec;
    v1::CountResponse response;
    grpc::Status status = stub_->Count(Ctx(tenant).get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.count();
  }

  grpc::Status CountStatus(const v1::FilterSpec& spec, uint64_t* count = nullptr) {
    v1::CountRequest request;
    *request.mutable_filter() = spec;
    v1::CountResponse response;
    grpc::Status status = stub_->Count(Ctx().get(), request, &response);
    if (count != nullptr) *count = response.count();
    return status;
  }

  // Every primary key matching `spec`, following page tokens `page_size` at a time.
  std::vector<std::string> QueryAll(const v1::FilterSpec& spec, uint32_t page_size = 2, int* pages = nullptr) {
    std::vector<std::string> keys;
    v1::QueryRequest request;
    *request.mutable_filter() = spec;
    request.set_page_size(page_size);
    int count = 0;
    while (true) {
      v1::QueryResponse response;
      grpc::Status status = stub_->Query(Ctx().get(), request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      ++count;
      EXPECT_LE(response.contacts_size(), static_cast<int>(page_size));
      for (const auto& contact : response.contacts()) keys.push_back(contact.primary_key());
      if (response.next_page_token().empty() || count > 20) break;
      request.set_page_token(response.next_page_token());
    }
    if (pages != nullptr) *pages = count;
    return keys;
  }

  v1::Segment CreateSegment(const std::string& name, const v1::FilterSpec& spec, grpc::Status* status_out = nullptr) {
    v1::CreateSegmentRequest request;
    request.set_name(name);
    *request.mutable_filter() = spec;
    v1::Segment segment;
    grpc::Status status = stub_->CreateSegment(Ctx().get(), request, &segment);
    if (status_out != nullptr) {
      *status_out = status;
    } else {
      EXPECT_TRUE(status.ok()) << name << ": " << status.error_message();
    }
    return segment;
  }

  // A TEXT attribute "note" without an index: filters on it read every record.
  void CreateUnindexedNote() {
    v1::CreateAttributeRequest note;
    note.set_name("note");
    note.set_type(v1::TEXT);
    v1::Attribute created;
    grpc::Status status = store_->CreateAttribute(Ctx().get(), note, &created);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  grpc::Status UpdateSegment(const std::string& name, const v1::FilterSpec& spec) {
    v1::CreateSegmentRequest request;
    request.set_name(name);
    *request.mutable_filter() = spec;
    v1::Segment updated;
    return stub_->UpdateSegment(Ctx().get(), request, &updated);
  }

  Services services_;
  v1::AudienceQuery::Stub* stub_ = nullptr;
  v1::ContactStore::Stub* store_ = nullptr;
  v1::ContactList vip_;
};

TEST_F(AudienceQueryProcessTest, ServesReflectionAndHealth) {
  auto services = test::ReflectionListServices(services_.audience->Channel());
  EXPECT_THAT(services, Contains("contacts.v1.AudienceQuery"));
  auto serving = test::HealthServing(services_.audience->Channel());
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_TRUE(*serving);
}

TEST_F(AudienceQueryProcessTest, TextAndTreeGiveTheSameCountsAndPages) {
  const std::vector<std::pair<std::string, std::set<std::string>>> cases = {
      {"city = \"Pune\" AND age >= 30", {"C-1", "C-5"}},
      {"city = \"Pune\" OR city = \"Mumbai\" AND age > 35", {"C-1", "C-2", "C-3", "C-5"}},
      {"(city = \"Pune\" OR city = \"Mumbai\") AND age > 35", {"C-3", "C-5"}},
      {"NOT city = \"Pune\"", {"C-3", "C-4"}},
      {"age BETWEEN 30 AND 40", {"C-1", "C-3", "C-4"}},
      {"city IN (\"Delhi\", \"Mumbai\")", {"C-3", "C-4"}},
      {"in_list(\"vip\")", {"C-1", "C-3"}},
      {"has_email() AND NOT blacklisted(\"email\")", {"C-1", "C-3"}},
      {"email IS NOT SET", {"C-2", "C-4"}},
      {"city STARTS WITH \"pu\"", {"C-1", "C-2", "C-5"}},
  };
  for (const auto& [text, expected] : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(Count(Text(text)), expected.size());
    EXPECT_EQ(Count(Tree(text)), expected.size());
    const std::vector<std::string> from_text = QueryAll(Text(text));
    const std::vector<std::string> from_tree = QueryAll(Tree(text));
    EXPECT_THAT(from_text, UnorderedElementsAreArray(expected));
    EXPECT_EQ(from_text, from_tree);
  }
}

TEST_F(AudienceQueryProcessTest, EmptyFilterMeansEveryContactAndPagesFollowTheStoresTokens) {
  EXPECT_EQ(Count(v1::FilterSpec()), 5u);
  int pages = 0;
  const std::vector<std::string> keys = QueryAll(v1::FilterSpec(), 2, &pages);
  EXPECT_THAT(keys, UnorderedElementsAre("C-1", "C-2", "C-3", "C-4", "C-5"));
  EXPECT_EQ(pages, 3);

  v1::QueryRequest request;
  request.set_page_size(2);
  request.set_with_total(true);
  request.add_attributes("city");
  v1::QueryResponse response;
  grpc::Status status = stub_->Query(Ctx().get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.total(), 5u);
  ASSERT_EQ(response.contacts_size(), 2);
  EXPECT_TRUE(response.contacts(0).attributes().contains("city"));
  EXPECT_FALSE(response.next_page_token().empty());
}

TEST_F(AudienceQueryProcessTest, BadFiltersAreInvalidArgumentWithAPosition) {
  grpc::Status status = CountStatus(Text("city = \"Pune\" AND age >="));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "filter.text: position 25: expected a value after \">=\", found end of input");

  status = CountStatus(Text("in_lst(\"vip\")"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("position 1: unknown function \"in_lst\""));

  v1::FilterSpec both = Tree("age > 1");
  both.set_text("age > 1");
  status = CountStatus(both);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("not both"));

  v1::FilterSpec broken;
  broken.mutable_filter()->mutable_term()->mutable_attribute()->set_attribute("age");
  status = CountStatus(broken);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "filter.filter.term.attribute: operator is not set");

  // Unknown attributes are the store's to judge; the error passes through.
  status = CountStatus(Text("shoe_size = 9"));
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.error_message(), HasSubstr("shoe_size"));

  v1::ParseFilterRequest parse;
  parse.set_text("NOT (a = 1");
  v1::Filter tree;
  status = stub_->ParseFilter(Ctx().get(), parse, &tree);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("position 11"));
}

// gRPC carries the status message in a header, and clients refuse headers over 8 KiB: a message
// that echoes a long name (or lists many segments) must be cut, or the caller gets
// RESOURCE_EXHAUSTED "received initial metadata size exceeds limit" instead of the real error.
TEST_F(AudienceQueryProcessTest, LongErrorMessagesArriveWithTheirCode) {
  // Names longer than the store allows are refused up front, by length.
  v1::FilterSpec long_attribute;
  auto* predicate = long_attribute.mutable_filter()->mutable_term()->mutable_attribute();
  predicate->set_attribute(std::string(20000, '-'));
  predicate->set_op(v1::EQ);
  predicate->add_values("1");
  grpc::Status status = CountStatus(long_attribute);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message().substr(0, 200);
  EXPECT_EQ(status.error_message(),
            "filter.filter.term.attribute: attribute name is 20000 bytes long, at most 64 are allowed");
  std::string accents;
  for (int i = 0; i < 4000; ++i) accents += "\u00e9";
  status = CountStatus(Text("in_segment(\"" + accents + "\")"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message().substr(0, 200);
  EXPECT_EQ(status.error_message(),
            "filter.text: position 12: in_segment() name is 8000 bytes long, at most 128 are allowed");
  status = CountStatus(Text("in_list(\"" + std::string(20000, 'x') + "\")"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message().substr(0, 200);

  // A segment chain of long non-ASCII names: the message is cut, the code kept.
  std::string long_name;
  for (int i = 0; i < 60; ++i) long_name += "\u00e9";
  CreateSegment(fmt::format("16{}", long_name), Text("city = \"Pune\""));
  for (int i = 15; i >= 0; --i) {
    CreateSegment(fmt::format("{:02}{}", i, long_name), Text(fmt::format("in_segment(\"{:02}{}\")", i + 1, long_name)),
                  &status);
    if (i > 0) {
      EXPECT_TRUE(status.ok()) << status.error_message();
    }
  }
  // Saving 00 is refused already: nested too deep.
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message().substr(0, 200);
  EXPECT_THAT(status.error_message(), testing::StartsWith("segments nest deeper than 16: 00\u00e9"));
  EXPECT_THAT(status.error_message(), testing::EndsWith(" more bytes cut)"));
  EXPECT_LE(status.error_message().size(), 2100u);
  CreateSegment(fmt::format("00{}", long_name), Text("city = \"Pune\""));
  v1::CreateSegmentRequest update;
  update.set_name(fmt::format("00{}", long_name));
  *update.mutable_filter() = Text(fmt::format("in_segment(\"01{}\")", long_name));
  v1::Segment updated;
  status = stub_->UpdateSegment(Ctx().get(), update, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message().substr(0, 200);
  EXPECT_THAT(status.error_message(), testing::EndsWith(" more bytes cut)"));

  // Deleting a segment that many others use names a few of them and counts the rest.
  CreateSegment("base", Text("city = \"Pune\""));
  const std::string padding(100, 'p');
  for (int i = 0; i < 80; ++i) CreateSegment(fmt::format("user {:02} {}", i, padding), Text("in_segment(\"base\")"));
  v1::GetSegmentByNameRequest by_name;
  by_name.set_name("base");
  v1::DeleteSegmentQueryResponse deleted;
  status = stub_->DeleteSegment(Ctx().get(), by_name, &deleted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message().substr(0, 200);
  EXPECT_THAT(status.error_message(), testing::StartsWith(fmt::format(
                                          "segment \"base\" is used by segments \"user 00 {}\", \"user 01 ", padding)));
  EXPECT_THAT(status.error_message(), HasSubstr(" and 70 more; change or delete them first"));
}

TEST_F(AudienceQueryProcessTest, ParseFilterReturnsTheTree) {
  v1::ParseFilterRequest request;
  request.set_text("city = \"Pune\" AND age >= 30 AND in_list(\"vip\")");
  v1::Filter tree;
  grpc::Status status = stub_->ParseFilter(Ctx().get(), request, &tree);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(tree, Tree(request.text()).filter()));
}

TEST_F(AudienceQueryProcessTest, SegmentsExpandNestedAndRefuseCycles) {
  v1::Segment pune = CreateSegment("pune", Text("city = \"Pune\""));
  EXPECT_EQ(pune.name(), "pune");
  EXPECT_EQ(pune.filter_text(), "city = \"Pune\"");
  CreateSegment("pune adults", Text("in_segment(\"pune\") AND age >= 30"));
  CreateSegment("vip or pune adults", Tree("in_list(\"vip\") OR in_segment(\"pune adults\")"));

  EXPECT_EQ(Count(Text("in_segment(\"pune adults\")")), 2u);
  EXPECT_THAT(QueryAll(Text("in_segment(\"vip or pune adults\")")), UnorderedElementsAre("C-1", "C-3", "C-5"));
  v1::GetSegmentByNameRequest by_name;
  by_name.set_name("vip or pune adults");
  v1::CountResponse counted;
  grpc::Status status = stub_->CountSegment(Ctx().get(), by_name, &counted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(counted.count(), 3u);

  // Updating an inner segment changes every segment built on it.
  v1::CreateSegmentRequest update;
  update.set_name("pune");
  *update.mutable_filter() = Text("city IN (\"Pune\", \"Mumbai\")");
  v1::Segment updated;
  status = stub_->UpdateSegment(Ctx().get(), update, &updated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Count(Text("in_segment(\"pune adults\")")), 3u);

  // A cycle is refused at save time.
  *update.mutable_filter() = Text("in_segment(\"vip or pune adults\")");
  status = stub_->UpdateSegment(Ctx().get(), update, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "segment cycle: pune -> vip or pune adults -> pune adults -> pune");
  CreateSegment("self", Text("in_segment(\"self\")"), &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "segment cycle: self -> self");

  // Create twice, update or count a missing one, use an unknown one.
  CreateSegment("pune", Text("age > 1"), &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS) << status.error_message();
  update.set_name("missing");
  *update.mutable_filter() = Text("age > 1");
  EXPECT_EQ(stub_->UpdateSegment(Ctx().get(), update, &updated).error_code(), grpc::StatusCode::NOT_FOUND);
  by_name.set_name("missing");
  EXPECT_EQ(stub_->CountSegment(Ctx().get(), by_name, &counted).error_code(), grpc::StatusCode::NOT_FOUND);
  status = CountStatus(Text("in_segment(\"missing\")"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "unknown segment \"missing\"");
  CreateSegment("dangling", Text("in_segment(\"missing\")"), &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // Get and list.
  by_name.set_name("pune adults");
  v1::Segment got;
  status = stub_->GetSegment(Ctx().get(), by_name, &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(got.filter_text(), "in_segment(\"pune\") AND age >= 30");
  EXPECT_EQ(PrintFilterText(got.filter()), "in_segment(\"pune\") AND age >= 30");
  v1::ListSegmentsQueryResponse listed;
  status = stub_->ListSegments(Ctx().get(), v1::ListSegmentsQueryRequest(), &listed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<std::string> names;
  for (const auto& segment : listed.segments()) names.push_back(segment.name());
  EXPECT_THAT(names, UnorderedElementsAre("pune", "pune adults", "vip or pune adults"));

  // A segment in use cannot be deleted; from the outside in, they can.
  by_name.set_name("pune");
  v1::DeleteSegmentQueryResponse deleted;
  status = stub_->DeleteSegment(Ctx().get(), by_name, &deleted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("used by segment \"pune adults\""));
  for (const char* name : {"vip or pune adults", "pune adults", "pune"}) {
    by_name.set_name(name);
    status = stub_->DeleteSegment(Ctx().get(), by_name, &deleted);
    EXPECT_TRUE(status.ok()) << name << ": " << status.error_message();
  }
  status = stub_->ListSegments(Ctx().get(), v1::ListSegmentsQueryRequest(), &listed);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(listed.segments_size(), 0);
}

// A segment is checked against the store's catalog when saved: a misspelt attribute, an unknown
// list or a literal of the wrong type was saved without a word, and failed (or, after a type
// change, counted 0) only when used. The lists and attributes a saved segment names cannot then go
// (contact-store refuses, naming the segment).
TEST_F(AudienceQueryProcessTest, SegmentsAreCheckedAgainstTheCatalogWhenSavedAndKeepWhatTheyName) {
  grpc::Status status;
  CreateSegment("typo", Text("in_list(\"vip\") AND agee >= 30"), &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(status.error_message(), "segment \"typo\": filter: unknown attribute \"agee\"");
  CreateSegment("no list", Text("in_list(\"gold\")"), &status);
  EXPECT_EQ(status.error_message(), "segment \"no list\": filter: unknown list \"gold\"");
  CreateSegment("bad literal", Text("age >= \"thirty\""), &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("segment \"bad literal\": "));
  // Through another segment too, which is fetched once for both checks.
  CreateSegment("older", Text("age >= 30"));
  const double before = StoreGetSegmentCalls();
  v1::Segment older_vips = CreateSegment("older vips", Text("in_segment(\"older\") AND in_list(\"vip\")"));
  EXPECT_EQ(StoreGetSegmentCalls() - before, 1);
  v1::GetSegmentByNameRequest by_name;
  by_name.set_name("older vips");
  v1::CountResponse counted;
  status = stub_->CountSegment(Ctx().get(), by_name, &counted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(counted.count(), 2u);
  v1::CreateSegmentRequest update;
  update.set_name("older");
  *update.mutable_filter() = Text("agee >= 30");
  v1::Segment updated;
  status = stub_->UpdateSegment(Ctx().get(), update, &updated);
  EXPECT_EQ(status.error_message(), "segment \"older\": filter: unknown attribute \"agee\"");

  v1::DeleteListRequest delete_list;
  delete_list.set_id(vip_.id());
  v1::DeleteListResponse list_deleted;
  status = store_->DeleteList(Ctx().get(), delete_list, &list_deleted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_EQ(status.error_message(), "list \"vip\" is used by saved segment \"older vips\": update or delete it first");
  v1::DeleteAttributeRequest delete_age;
  delete_age.set_name("age");
  v1::DeleteAttributeResponse age_deleted;
  status = store_->DeleteAttribute(Ctx().get(), delete_age, &age_deleted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("used by saved segment \"older\""));
  ASSERT_TRUE(stub_->CountSegment(Ctx().get(), by_name, &counted).ok());
  EXPECT_EQ(counted.count(), 2u);
}

// An update is checked against the store for the segments built on it too: each unindexed
// condition is a record scan, the store evaluates at most 16 different ones in a filter, and an
// update that took a segment using this one past that was saved, and that segment then failed.
TEST_F(AudienceQueryProcessTest, AnUpdateCannotPushASegmentUsingItPastWhatTheStoreEvaluates) {
  ASSERT_NO_FATAL_FAILURE(CreateUnindexedNote());
  grpc::Status status;
  // `count` different conditions on the unindexed note, ORed.
  const auto notes = [](std::string_view prefix, int count) {
    std::vector<std::string> terms;
    for (int i = 0; i < count; ++i) terms.push_back(fmt::format("note = \"{}{}\"", prefix, i));
    return absl::StrJoin(terms, " OR ");
  };
  CreateSegment("notes a", Text(notes("a", 10)));
  CreateSegment("notes b", Text("in_segment(\"notes a\") OR " + notes("b", 5)));  // 15 scans
  EXPECT_EQ(Count(Text("in_segment(\"notes b\")")), 0u);

  status = UpdateSegment("notes a", Text(notes("a", 12)));  // fine alone, 17 scans in notes b
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_THAT(status.error_message(),
              HasSubstr("segment \"notes a\" is used by segment \"notes b\", which would then fail: segment "
                        "\"notes b\": filter: more than 16 different conditions on attributes without an index"));
  EXPECT_EQ(Count(Text("in_segment(\"notes b\")")), 0u);  // still counts

  status = UpdateSegment("notes a", Text(notes("a", 11)));  // 16 scans in notes b: the most there may be
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Count(Text("in_segment(\"notes b\")")), 0u);
}

// contact-store matches segment names case-insensitively, so "inner", "Inner" and "INNER" are one
// segment: the checks on delete and save must see them as one too.
TEST_F(AudienceQueryProcessTest, SegmentNamesInAnotherCaseAreTheSameSegment) {
  CreateSegment("Inner", Text("city = \"Pune\""));
  CreateSegment("outer", Text("in_segment(\"inner\") AND age >= 30"));
  EXPECT_EQ(Count(Text("in_segment(\"OUTER\")")), 2u);

  // Deleting Inner under another spelling would leave outer naming a segment that is gone.
  v1::GetSegmentByNameRequest by_name;
  by_name.set_name("INNER");
  v1::DeleteSegmentQueryResponse deleted;
  grpc::Status status = stub_->DeleteSegment(Ctx().get(), by_name, &deleted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("used by segment \"outer\""));
  EXPECT_EQ(Count(Text("in_segment(\"outer\")")), 2u);

  // Updating Inner under another spelling to use outer would close inner -> outer -> inner.
  status = UpdateSegment("INNER", Text("in_segment(\"outer\")"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(status.error_message(), "segment cycle: Inner -> outer -> inner");
  EXPECT_EQ(Count(Text("in_segment(\"outer\")")), 2u);
}

// Each segment a filter uses costs audience-query one GetSegment on the store: a segment named
// many times is fetched once per request, and a filter using more than 100 distinct segments is
// refused before any of them is fetched.
TEST_F(AudienceQueryProcessTest, SegmentFetchesPerRequestAreBounded) {
  auto segments_or = [](const std::string& prefix, int count) {
    std::string text;
    for (int i = 0; i < count; ++i) text += fmt::format("{}in_segment(\"{}{}\")", i == 0 ? "" : " OR ", prefix, i);
    return text;
  };
  CreateSegment("Pune", Text("city = \"Pune\""));

  std::string thousand;
  for (int i = 0; i < 1000; ++i)
    thousand += fmt::format("{}in_segment(\"{}\")", i == 0 ? "" : " OR ", i % 2 ? "PUNE" : "pune");
  double before = StoreGetSegmentCalls();
  EXPECT_EQ(Count(Text(thousand)), 3u);
  EXPECT_EQ(StoreGetSegmentCalls() - before, 1);

  before = StoreGetSegmentCalls();
  grpc::Status status = CountStatus(Text(segments_or("s", 101)));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(status.error_message(),
            "the filter uses more than 100 distinct segments, counting those inside other segments; the first one "
            "over is \"s100\"");
  EXPECT_EQ(StoreGetSegmentCalls() - before, 0);

  // A segment counts itself, so that any segment saved can be used: 100 more is one too many.
  CreateSegment("wide", Text(segments_or("s", 100)), &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(status.error_message(),
            "the filter uses more than 100 distinct segments, counting those inside other segments; the first one "
            "over is \"s99\" (used by wide)");
  v1::ListSegmentsQueryResponse listed;
  status = stub_->ListSegments(Ctx().get(), v1::ListSegmentsQueryRequest(), &listed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(listed.segments_size(), 1);
  EXPECT_EQ(listed.segments(0).name(), "Pune");
}

// An update that is fine for the segment itself may still push a segment built on it past the
// bounds; it is refused rather than leaving that segment unusable.
// A page token continues its own listing only (the store fingerprints the expanded filter): a
// segment saved between two pages refuses the next page, and the message says why.
TEST_F(AudienceQueryProcessTest, PageTokenOfAFilterWhoseSegmentChangedIsRefusedNamingSegments) {
  CreateSegment("pune", Text("city = \"Pune\""));
  v1::QueryRequest request;
  *request.mutable_filter() = Text("in_segment(\"pune\")");
  request.set_page_size(1);
  v1::QueryResponse first;
  grpc::Status status = stub_->Query(Ctx().get(), request, &first);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_FALSE(first.next_page_token().empty());
  request.set_page_token(first.next_page_token());

  v1::QueryRequest other = request;  // the same token with another filter
  *other.mutable_filter() = Text("city = \"Goa\"");
  v1::QueryResponse response;
  status = stub_->Query(Ctx().get(), other, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("page_token: issued for a different request"));
  EXPECT_THAT(status.error_message(), Not(HasSubstr("saved segments")));

  v1::CreateSegmentRequest update;
  update.set_name("pune");
  *update.mutable_filter() = Text("city IN (\"Pune\", \"Mumbai\")");
  v1::Segment updated;
  ASSERT_TRUE(stub_->UpdateSegment(Ctx().get(), update, &updated).ok());
  status = stub_->Query(Ctx().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("(the filter uses saved segments: one may have changed since the first page)"));
}

TEST_F(AudienceQueryProcessTest, UpdateThatWouldBreakASegmentUsingItIsRefused) {
  std::string nots;
  for (int i = 0; i < 20; ++i) nots += "NOT ";
  CreateSegment("inner", Text("city = \"Pune\""));
  CreateSegment("outer", Text(nots + "in_segment(\"inner\")"));
  EXPECT_EQ(Count(Text("in_segment(\"outer\")")), 3u);

  v1::CreateSegmentRequest update;
  update.set_name("inner");
  *update.mutable_filter() = Text(nots + "city = \"Pune\"");
  v1::Segment updated;
  grpc::Status status = stub_->UpdateSegment(Ctx().get(), update, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_EQ(status.error_message(),
            "segment \"inner\" is used by segment \"outer\", which would then fail: segment \"outer\" nests 41 "
            "levels deep once segments are expanded, at most 32 are allowed");
  EXPECT_EQ(Count(Text("in_segment(\"outer\")")), 3u);

  // An update that keeps outer within bounds goes through, and names the segment in any case
  // without renaming it.
  update.set_name("INNER");
  *update.mutable_filter() = Text("city = \"Mumbai\"");
  status = stub_->UpdateSegment(Ctx().get(), update, &updated);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(updated.name(), "inner");
  EXPECT_EQ(Count(Text("in_segment(\"outer\")")), 1u);
}

TEST_F(AudienceQueryProcessTest, ControlGroupsSplitTheAudience) {
  v1::CreateControlGroupQueryRequest create;
  create.set_name("q4-holdout");
  create.set_percent(50);
  v1::ControlGroup group;
  grpc::Status status = stub_->CreateControlGroup(Ctx().get(), create, &group);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(group.name(), "q4-holdout");

  v1::ListControlGroupsQueryResponse listed;
  status = stub_->ListControlGroups(Ctx().get(), v1::ListControlGroupsQueryRequest(), &listed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(listed.control_groups_size(), 1);
  EXPECT_DOUBLE_EQ(listed.control_groups(0).percent(), 50);

  const uint64_t held = Count(Text("in_control_group(\"q4-holdout\")"));
  const uint64_t rest = Count(Text("NOT in_control_group(\"q4-holdout\")"));
  EXPECT_EQ(held + rest, 5u);
  // Deterministic: the same question gives the same answer.
  EXPECT_EQ(Count(Tree("in_control_group(\"q4-holdout\")")), held);

  // A saved segment naming the group keeps it (any case of its name): deleting it would break the
  // segment's counts.
  CreateSegment("holdout pune", Text("city = \"Pune\" AND in_control_group(\"Q4-Holdout\")"));
  v1::DeleteControlGroupQueryRequest remove;
  remove.set_name("q4-holdout");
  v1::DeleteControlGroupQueryResponse removed;
  status = stub_->DeleteControlGroup(Ctx().get(), remove, &removed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("control group \"q4-holdout\" is used by segment \"holdout pune\""));
  v1::GetSegmentByNameRequest segment;
  segment.set_name("holdout pune");
  v1::DeleteSegmentQueryResponse segment_deleted;
  ASSERT_TRUE(stub_->DeleteSegment(Ctx().get(), segment, &segment_deleted).ok());
  status = stub_->DeleteControlGroup(Ctx().get(), remove, &removed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  status = stub_->ListControlGroups(Ctx().get(), v1::ListControlGroupsQueryRequest(), &listed);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(listed.control_groups_size(), 0);

  create.set_name("");
  EXPECT_EQ(stub_->CreateControlGroup(Ctx().get(), create, &group).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// cells_as_stored reaches the store: the cells come as stored, without the ' that keeps a
// spreadsheet from running them.
TEST_F(AudienceQueryProcessTest, ExportCellsAsStoredSkipsFormulaNeutralisation) {
  v1::UpsertContactRequest upsert;
  (*upsert.mutable_attributes())["customer_id"] = "+C-formula";
  (*upsert.mutable_attributes())["city"] = "=Sheet";
  v1::Contact contact;
  grpc::Status status = store_->UpsertContact(Ctx().get(), upsert, &contact);
  ASSERT_TRUE(status.ok()) << status.error_message();
  for (bool as_stored : {false, true}) {
    v1::ExportRequest request;
    *request.mutable_filter() = Text("city = \"=Sheet\"");
    request.add_attributes("city");
    request.set_cells_as_stored(as_stored);
    auto ctx = Ctx();
    auto reader = stub_->Export(ctx.get(), request);
    v1::ExportChunk chunk;
    std::string csv;
    while (reader->Read(&chunk)) csv += chunk.csv();
    status = reader->Finish();
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(csv,
              as_stored ? "customer_id,city\r\n+C-formula,=Sheet\r\n" : "customer_id,city\r\n'+C-formula,'=Sheet\r\n");
  }
}

TEST_F(AudienceQueryProcessTest, ExportStreamsCsvOfTheFilteredContacts) {
  v1::ExportRequest request;
  *request.mutable_filter() = Text("city = \"Pune\"");
  request.add_attributes("city");
  request.add_attributes("age");
  auto ctx = Ctx();
  auto reader = stub_->Export(ctx.get(), request);
  v1::ExportChunk chunk;
  std::string csv;
  uint64_t rows = 0;
  while (reader->Read(&chunk)) {
    csv += chunk.csv();
    rows += chunk.rows();
  }
  grpc::Status status = reader->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(rows, 3u);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < csv.size()) {
    size_t end = csv.find('\n', start);
    if (end == std::string::npos) end = csv.size();
    std::string line = csv.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
    start = end + 1;
  }
  ASSERT_EQ(lines.size(), 4u) << csv;
  EXPECT_EQ(lines[0].rfind("customer_id", 0), 0u) << lines[0];
  EXPECT_THAT(lines[0], HasSubstr("city"));
  EXPECT_THAT(lines[0], HasSubstr("age"));
  std::vector<std::string> data(lines.begin() + 1, lines.end());
  std::sort(data.begin(), data.end());
  EXPECT_THAT(data[0], HasSubstr("C-1"));
  EXPECT_THAT(data[0], HasSubstr("Pune"));
  EXPECT_THAT(data[0], HasSubstr("31"));
  EXPECT_THAT(data[1], HasSubstr("C-2"));
  EXPECT_THAT(data[2], HasSubstr("C-5"));

  // A bad filter fails the stream before any chunk.
  *request.mutable_filter() = Text("city =");
  auto bad_ctx = Ctx();
  auto bad = stub_->Export(bad_ctx.get(), request);
  EXPECT_FALSE(bad->Read(&chunk));
  EXPECT_EQ(bad->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(AudienceQueryProcessTest, LargeExportStreamsManyChunksAndStopsWhenTheCallerCancels) {
  ASSERT_NO_FATAL_FAILURE(CreateUnindexedNote());
  grpc::Status status;
  const std::string filler(100, 'n');
  for (uint64_t batch = 0; batch < 3; ++batch) {
    v1::BatchUpsertRequest request;
    request.set_job_id("bulk");
    request.set_batch_sequence(batch);
    for (int i = 0; i < 10000; ++i) {
      v1::BatchRow* row = request.add_rows();
      row->set_row_number(batch * 10000 + i);
      (*row->mutable_attributes())["customer_id"] = fmt::format("B-{:06}", batch * 10000 + i);
      (*row->mutable_attributes())["city"] = "Bulk";
      (*row->mutable_attributes())["note"] = filler;
    }
    v1::BatchUpsertResponse response;
    auto ctx = Ctx();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    status = store_->BatchUpsert(ctx.get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  ASSERT_EQ(Count(Text("city = \"Bulk\"")), 30000u);

  // The whole export: several chunks, rows adding up.
  v1::ExportRequest request;
  *request.mutable_filter() = Text("city = \"Bulk\"");
  request.add_attributes("note");
  {
    auto ctx = Ctx();
    auto reader = stub_->Export(ctx.get(), request);
    v1::ExportChunk chunk;
    uint64_t rows = 0, chunks = 0, newlines = 0;
    while (reader->Read(&chunk)) {
      ++chunks;
      rows += chunk.rows();
      newlines += std::count(chunk.csv().begin(), chunk.csv().end(), '\n');
    }
    status = reader->Finish();
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(rows, 30000u);
    EXPECT_EQ(newlines, 30001u);  // the header row too
    EXPECT_GT(chunks, 2u);
  }

  // Cancelled after the first chunk: the call ends CANCELLED and both services carry on.
  {
    auto ctx = Ctx();
    auto reader = stub_->Export(ctx.get(), request);
    v1::ExportChunk chunk;
    ASSERT_TRUE(reader->Read(&chunk));
    ctx->TryCancel();
    while (reader->Read(&chunk)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  EXPECT_EQ(Count(Text("city = \"Bulk\" OR city = \"Pune\"")), 30003u);
  EXPECT_TRUE(services_.audience->running());
}

TEST_F(AudienceQueryProcessTest, SearchAndListAnonymousPassThrough) {
  v1::SearchRequest search;
  search.set_query("C-");
  search.set_prefix(true);
  search.set_limit(3);
  v1::SearchResponse found;
  grpc::Status status = stub_->Search(Ctx().get(), search, &found);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(found.contacts_size(), 3);
  search.set_query("C-4");
  search.set_prefix(false);
  status = stub_->Search(Ctx().get(), search, &found);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(found.contacts_size(), 1);
  EXPECT_EQ(found.contacts(0).primary_key(), "C-4");

  for (const char* guid : {"6f1c2a1e-0000-4000-8000-000000000001", "6f1c2a1e-0000-4000-8000-000000000002"}) {
    v1::RecordAnonymousRequest record;
    record.set_guid(guid);
    v1::AnonymousUser user;
    status = store_->RecordAnonymous(Ctx().get(), record, &user);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  v1::ListAnonymousQueryRequest list;
  list.set_page_size(1);
  v1::ListAnonymousQueryResponse page;
  status = stub_->ListAnonymous(Ctx().get(), list, &page);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(page.users_size(), 1);
  ASSERT_FALSE(page.next_page_token().empty());
  const std::string first = page.users(0).guid();
  list.set_page_token(page.next_page_token());
  status = stub_->ListAnonymous(Ctx().get(), list, &page);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(page.users_size(), 1);
  EXPECT_NE(page.users(0).guid(), first);
}

TEST_F(AudienceQueryProcessTest, ForwardsTheCallersTenantToTheStore) {
  // Another tenant sees none of the default tenant's contacts (it is not even set up).
  v1::CountRequest request;
  v1::CountResponse response;
  grpc::Status status = stub_->Count(Ctx("other").get(), request, &response);
  EXPECT_TRUE(!status.ok() || response.count() == 0) << response.count();
  if (!status.ok()) {
    EXPECT_THAT(status.error_message(), HasSubstr("other"));
  }
  EXPECT_EQ(Count(v1::FilterSpec(), "default"), 5u);
}

// An operator's "no limit" for the per-call store timeout saturates: before, now + INT64_MAX ms
// overflowed into the past and every call to the store failed at once with DEADLINE_EXCEEDED.
TEST(AudienceQueryFlagsTest, HugeStoreTimeoutMeansNoPerCallLimit) {
  Services services;
  absl::Status started = services.Start({}, {"--store_timeout_ms=9223372036854775807"});
  ASSERT_TRUE(started.ok()) << started << "\n" << services.Logs();
  v1::SetupTenantRequest setup;
  setup.set_primary_key_attribute("email");
  v1::Tenant tenant;
  grpc::Status status = services.store_stub->SetupTenant(Ctx().get(), setup, &tenant);
  ASSERT_TRUE(status.ok()) << status.error_message();
  v1::CountRequest count;
  v1::CountResponse counted;
  status = services.stub->Count(Ctx().get(), count, &counted);
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  v1::ListSegmentsQueryResponse segments;
  status = services.stub->ListSegments(Ctx().get(), v1::ListSegmentsQueryRequest(), &segments);
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
}

// contact-store's ListSegments returns a tenant's whole catalog in one message, unpaged. Creates
// keep the catalog under half of --max_message_bytes; a catalog that grew past the limit anyway
// (segments saved before these checks: put straight into the store here) cannot be listed, and
// then a delete still goes through, so that the tenant can get back under the limit.
TEST(AudienceQueryCatalogTest, ACatalogTooLargeToListCanBeDeletedBackUnderTheLimit) {
  Services services;
  absl::Status started = services.Start({"--max_message_bytes=1048576"});
  ASSERT_TRUE(started.ok()) << started << "\n" << services.Logs();
  v1::SetupTenantRequest setup;
  setup.set_primary_key_attribute("customer_id");
  v1::Tenant tenant;
  grpc::Status status = services.store_stub->SetupTenant(Ctx().get(), setup, &tenant);
  ASSERT_TRUE(status.ok()) << status.error_message();
  v1::CreateAttributeRequest city;
  city.set_name("city");
  city.set_type(v1::TEXT);
  v1::Attribute created_city;
  status = services.store_stub->CreateAttribute(Ctx().get(), city, &created_city);
  ASSERT_TRUE(status.ok()) << status.error_message();

  // ~400 KB each: within the IN limit (4,000 values) and the per-segment limit (1 MiB).
  auto large = [](const std::string& name) {
    v1::Segment segment;
    segment.set_name(name);
    auto* predicate = segment.mutable_filter()->mutable_term()->mutable_attribute();
    predicate->set_attribute("city");
    predicate->set_op(v1::IN);
    for (int i = 0; i < 4000; ++i) predicate->add_values(fmt::format("{:0100}", i));
    return segment;
  };
  auto create = [&](const v1::Segment& segment) {
    v1::CreateSegmentRequest request;
    request.set_name(segment.name());
    *request.mutable_filter()->mutable_filter() = segment.filter();
    v1::Segment created;
    return services.stub->CreateSegment(Ctx().get(), request, &created);
  };
  auto put_in_store = [&](const v1::Segment& segment) {
    v1::PutSegmentRequest request;
    *request.mutable_segment() = segment;
    v1::Segment saved;
    grpc::Status put = services.store_stub->PutSegment(Ctx().get(), request, &saved);
    EXPECT_TRUE(put.ok()) << segment.name() << ": " << put.error_message();
  };
  auto delete_segment = [&](const std::string& name) {
    v1::GetSegmentByNameRequest request;
    request.set_name(name);
    v1::DeleteSegmentQueryResponse deleted;
    return services.stub->DeleteSegment(Ctx().get(), request, &deleted);
  };

  status = create(large("a"));
  ASSERT_TRUE(status.ok()) << status.error_message();
  status = create(large("b"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_THAT(status.error_message(),
              HasSubstr("at most 524288 are allowed (so that they can be listed in one message)"));

  put_in_store(large("b"));
  v1::Segment user;
  user.set_name("user");
  user.mutable_filter()->mutable_term()->set_in_segment("b");
  put_in_store(user);
  put_in_store(large("c"));  // ~1.2 MB of segments: more than the store sends in one message

  v1::ListSegmentsQueryResponse listed;
  status = services.stub->ListSegments(Ctx().get(), v1::ListSegmentsQueryRequest(), &listed);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  v1::CreateSegmentRequest update;
  update.set_name("a");
  *update.mutable_filter() = Text("city = \"Pune\"");
  v1::Segment updated;
  status = services.stub->UpdateSegment(Ctx().get(), update, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_THAT(status.error_message(),
              HasSubstr("cannot update segment \"a\": the tenant's segments do not fit in one message ("));
  EXPECT_THAT(status.error_message(), HasSubstr("delete large segments (DeleteSegment does not need the list)"));
  v1::DeleteControlGroupQueryRequest delete_group;
  delete_group.set_name("g");
  v1::DeleteControlGroupQueryResponse group_deleted;
  status = services.stub->DeleteControlGroup(Ctx().get(), delete_group, &group_deleted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("cannot check which segments use control group \"g\""));

  // The way out: delete, which does not need the list.
  status = delete_segment("c");
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  // Back under the limit, the usual checks are back too.
  status = delete_segment("b");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  status = services.stub->ListSegments(Ctx().get(), v1::ListSegmentsQueryRequest(), &listed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<std::string> names;
  for (const auto& segment : listed.segments()) names.push_back(segment.name());
  EXPECT_THAT(names, UnorderedElementsAre("a", "b", "user"));
  status = services.stub->UpdateSegment(Ctx().get(), update, &updated);
  EXPECT_TRUE(status.ok()) << status.error_message();
  if (::testing::Test::HasFailure()) std::cerr << services.Logs();
}

TEST(AudienceQueryAuthTest, ChecksRolesAndForwardsTheKey) {
  test::TempDir dir("audience_query_auth");
  ASSERT_TRUE(dir.ok());
  const std::string keys = test::WriteRoleKeyFile(dir.path());
  Services services;
  absl::Status started = services.Start({"--api_keys_file=" + keys});
  ASSERT_TRUE(started.ok()) << started << "\n" << services.Logs();

  v1::SetupTenantRequest setup;
  setup.set_primary_key_attribute("email");
  v1::Tenant tenant;
  grpc::Status status = services.store_stub->SetupTenant(Ctx("", "admin-key").get(), setup, &tenant);
  ASSERT_TRUE(status.ok()) << status.error_message();

  v1::CountRequest count;
  v1::CountResponse counted;
  EXPECT_EQ(services.stub->Count(Ctx().get(), count, &counted).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  status = services.stub->Count(Ctx("", "reader-key").get(), count, &counted);
  EXPECT_TRUE(status.ok()) << status.error_message() << "\n" << services.Logs();

  v1::CreateSegmentRequest create;
  create.set_name("everyone with email");
  *create.mutable_filter() = Text("has_email()");
  v1::Segment segment;
  EXPECT_EQ(services.stub->CreateSegment(Ctx("", "reader-key").get(), create, &segment).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  status = services.stub->CreateSegment(Ctx("", "writer-key").get(), create, &segment);
  EXPECT_TRUE(status.ok()) << status.error_message() << "\n" << services.Logs();

  // Every RPC, as README.md's table gives its lowest role.
  const std::map<std::string, std::string> lowest_role = {
      {"Search", "reader"},
      {"Query", "reader"},
      {"Count", "reader"},
      {"Export", "reader"},
      {"ParseFilter", "reader"},
      {"CreateSegment", "writer"},
      {"GetSegment", "reader"},
      {"ListSegments", "reader"},
      {"UpdateSegment", "writer"},
      {"DeleteSegment", "writer"},
      {"CountSegment", "reader"},
      {"CreateControlGroup", "writer"},
      {"ListControlGroups", "reader"},
      {"DeleteControlGroup", "writer"},
      {"ListAnonymous", "reader"},
  };
  EXPECT_THAT(
      test::RoleMismatches(services.audience->Channel(), "contacts.v1.AudienceQuery", lowest_role, test::kAcmeRoleKeys),
      testing::IsEmpty())
      << services.Logs();
}

}  // namespace
}  // namespace contacts
