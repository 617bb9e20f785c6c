// End to end through all three services as real processes: a CSV uploaded to import-processor
// lands in contact-store, audience-query counts, pages and exports it, a delete job removes
// contacts everywhere.
#include <map>
#include <random>
#include <set>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "contacts/v1/audience_query.grpc.pb.h"
#include "contacts/v1/contact_store.grpc.pb.h"
#include "contacts/v1/import_processor.grpc.pb.h"

#include "common/csv/byte_source.h"
#include "common/csv/csv_reader.h"
#include "tests/e2e/suite_fixture.h"
#include "tests/testing/service_process.h"

namespace contacts {
namespace {

using test::ServiceProcess;

std::unique_ptr<grpc::ClientContext> Ctx(int seconds = 60) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

struct Row {
  std::string id, email, city, age;
  bool valid = true;
};

class SuiteE2eTest : public test::SuiteFixture {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartServices()); }

  v1::Job UploadAndImport(const std::string& name, const std::string& content, const v1::StartImportRequest& import) {
    auto ctx = Ctx();
    v1::UploadResponse response;
    auto writer = import_stub_->Upload(ctx.get(), &response);
    v1::UploadRequest first;
    first.mutable_start()->set_file_name(name);
    *first.mutable_start()->mutable_import() = import;
    EXPECT_TRUE(writer->Write(first));
    for (size_t at = 0; at < content.size(); at += 64 * 1024) {
      v1::UploadRequest chunk;
      chunk.set_chunk(content.substr(at, 64 * 1024));
      EXPECT_TRUE(writer->Write(chunk));
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return WaitForEnd(response.job().id());
  }

  v1::Job WaitForEnd(const std::string& job_id) {
    auto ctx = Ctx(120);
    v1::GetJobRequest request;
    request.set_job_id(job_id);
    auto reader = import_stub_->WatchJob(ctx.get(), request);
    v1::Job job;
    v1::Job last;
    while (reader->Read(&job)) last = job;
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return last;
  }

  uint64_t Count(const std::string& text) {
    v1::CountRequest request;
    request.mutable_filter()->set_text(text);
    v1::CountResponse response;
    grpc::Status status = audience_stub_->Count(Ctx().get(), request, &response);
    EXPECT_TRUE(status.ok()) << text << ": " << status.error_message();
    return response.count();
  }
};

TEST_F(SuiteE2eTest, ImportedFileIsCountedPagedExportedAndDeletedAcrossServices) {
  v1::SetupTenantRequest setup;
  setup.set_primary_key_attribute("customer_id");
  v1::Tenant tenant;
  ASSERT_TRUE(store_stub_->SetupTenant(Ctx().get(), setup, &tenant).ok());
  v1::CreateListRequest create_list;
  create_list.set_name("vip");
  v1::ContactList vip;
  ASSERT_TRUE(store_stub_->CreateList(Ctx().get(), create_list, &vip).ok());

  // 3000 rows: cities, ages, some bad ages, a few repeated keys (the later row wins).
  std::mt19937 rng(7);
  const std::vector<std::string> cities = {"Pune", "Delhi", "Goa", "Zürich"};
  std::vector<Row> rows;
  std::string csv = "customer_id,email,city,age\r\n";
  for (int i = 0; i < 3000; ++i) {
    Row row;
    row.id = fmt::format("K{:05}", i % 100 == 99 ? i - 1 : i);  // every 100th row repeats the previous key
    row.email = fmt::format("user{}@example.com", i);
    row.city = cities[rng() % cities.size()];
    row.age = i % 150 == 0 ? "old" : std::to_string(18 + rng() % 60);
    row.valid = row.age != "old";
    rows.push_back(row);
    csv += fmt::format("{},{},\"{}\",{}\r\n", row.id, row.email, row.city, row.age);
  }
  // Expected final state, independently: later rows win per key; a rejected later row leaves the
  // earlier one in place only if the importer counts it as rejected before dedup (documented:
  // validation runs first, so the last *valid* row of a key is the one stored).
  std::map<std::string, Row> expected;
  for (const Row& row : rows) {
    if (row.valid) expected[row.id] = row;
  }

  v1::StartImportRequest import;
  for (auto [column, attribute] : {std::pair{"customer_id", "customer_id"}, std::pair{"email", "email"},
                                   std::pair{"city", "city"}, std::pair{"age", "age"}}) {
    auto* mapping = import.add_mapping();
    mapping->set_column(column);
    mapping->set_attribute(attribute);
  }
  auto* city = import.add_create_attributes();
  city->set_name("city");
  city->set_type(v1::TEXT);
  city->set_indexed(true);
  auto* age = import.add_create_attributes();
  age->set_name("age");
  age->set_type(v1::INTEGER);
  age->set_indexed(true);
  import.add_list_ids(vip.id());
  v1::Job job = UploadAndImport("contacts.csv", csv, import);
  ASSERT_EQ(job.state(), v1::COMPLETED_WITH_ERRORS) << job.DebugString();
  const auto& counts = job.counts();
  EXPECT_EQ(counts.received(), 3000u);
  EXPECT_EQ(counts.rejected(), 20u);  // rows 0, 150, ..., 2850
  EXPECT_EQ(counts.received(), counts.inserted() + counts.updated() + counts.unchanged() + counts.duplicate() +
                                   counts.skipped() + counts.rejected());
  EXPECT_EQ(counts.inserted(), expected.size());

  // Counts through audience-query equal the independent ones.
  uint64_t pune = 0, pune_30s = 0;
  for (const auto& [id, row] : expected) {
    if (row.city == "Pune") ++pune;
    int a = std::stoi(row.age);
    if (row.city == "Pune" && a >= 30 && a <= 39) ++pune_30s;
  }
  EXPECT_EQ(Count("in_list(\"vip\")"), expected.size());
  EXPECT_EQ(Count("city = \"Pune\" AND in_list(\"vip\")"), pune);
  EXPECT_EQ(Count("city = \"Pune\" AND age BETWEEN 30 AND 39"), pune_30s);
  EXPECT_EQ(Count("city = \"Zürich\""),
            static_cast<uint64_t>(std::count_if(expected.begin(), expected.end(),
                                                [](const auto& e) { return e.second.city == "Zürich"; })));

  // Export through audience-query parses back to exactly the expected rows.
  {
    v1::ExportRequest request;
    request.mutable_filter()->set_text("in_list(\"vip\")");
    request.add_attributes("email");
    request.add_attributes("city");
    request.add_attributes("age");
    auto ctx = Ctx();
    auto reader = audience_stub_->Export(ctx.get(), request);
    std::string exported;
    v1::ExportChunk chunk;
    while (reader->Read(&chunk)) exported += chunk.csv();
    ASSERT_TRUE(reader->Finish().ok());
    CsvReader csv_reader(MakeStringByteSource(exported), CsvDialect{','});
    CsvRecord record;
    ASSERT_TRUE(*csv_reader.Next(&record));
    EXPECT_THAT(std::vector<std::string>(record.fields.begin(), record.fields.end()),
                ::testing::ElementsAre("customer_id", "email", "city", "age"));
    size_t seen = 0;
    absl::StatusOr<bool> more;
    while ((more = csv_reader.Next(&record)).ok() && *more) {
      ASSERT_EQ(record.fields.size(), 4u);
      auto it = expected.find(std::string(record.fields[0]));
      ASSERT_NE(it, expected.end()) << record.fields[0];
      EXPECT_EQ(record.fields[1], it->second.email);
      EXPECT_EQ(record.fields[2], it->second.city);
      EXPECT_EQ(record.fields[3], it->second.age);
      ++seen;
    }
    EXPECT_TRUE(more.ok()) << more.status();
    EXPECT_EQ(seen, expected.size());
  }

  // A delete job by email removes contacts from every later count, page and export.
  v1::StartDeleteRequest del;
  del.set_key_kind(v1::BatchDeleteRequest::EMAIL);
  std::set<std::string> deleted_ids;
  for (const auto& [id, row] : expected) {
    if (row.city == "Pune" && deleted_ids.size() < 100) {
      del.mutable_keys()->add_keys(row.email);
      deleted_ids.insert(id);
    }
  }
  v1::Job delete_job;
  ASSERT_TRUE(import_stub_->StartDelete(Ctx().get(), del, &delete_job).ok());
  delete_job = WaitForEnd(delete_job.id());
  EXPECT_EQ(delete_job.state(), v1::COMPLETED) << delete_job.DebugString();
  EXPECT_EQ(delete_job.counts().deleted(), deleted_ids.size());
  EXPECT_EQ(Count("city = \"Pune\" AND in_list(\"vip\")"), pune - deleted_ids.size());
  v1::QueryRequest page;
  page.mutable_filter()->set_text("city = \"Pune\"");
  page.set_page_size(1000);
  std::string token;
  size_t paged = 0;
  do {
    page.set_page_token(token);
    v1::QueryResponse response;
    ASSERT_TRUE(audience_stub_->Query(Ctx().get(), page, &response).ok());
    for (const auto& contact : response.contacts()) {
      EXPECT_FALSE(deleted_ids.contains(contact.primary_key()));
      ++paged;
    }
    token = response.next_page_token();
  } while (!token.empty());
  EXPECT_EQ(paged, pune - deleted_ids.size());

  // Every service's /metrics counted the calls it served above.
  struct Served {
    ServiceProcess* process;
    std::string method;
  };
  for (const Served& served :
       {Served{store_.get(), "BatchUpsert"}, Served{importer_.get(), "Upload"}, Served{audience_.get(), "Count"}}) {
    auto body = test::HttpGet(served.process->metrics_address(), "/metrics");
    ASSERT_TRUE(body.ok()) << body.status();
    auto handled = test::MetricValue(*body, "grpc_server_handled_total", {{"grpc_method", served.method}});
    ASSERT_TRUE(handled.has_value()) << served.method;
    EXPECT_GE(*handled, 1.0) << served.method;
  }
  auto store_metrics = test::HttpGet(store_->metrics_address(), "/metrics");
  ASSERT_TRUE(store_metrics.ok());
  EXPECT_TRUE(test::WaitFor(
      [&] {
        auto body = test::HttpGet(store_->metrics_address(), "/metrics");
        auto stored = body.ok() ? test::MetricValue(*body, "contacts_stored") : std::nullopt;
        return stored && *stored == static_cast<double>(expected.size() - deleted_ids.size());
      },
      std::chrono::seconds(15)));
}

}  // namespace
}  // namespace contacts
