// Issue acceptance: an export of 1M contacts streams through audience-query with the peak RSS of
// audience-query and of contact-store each under 256 MiB, and parses back to exactly the stored
// data. The store is loaded, then restarted, so its peak covers opening 1M contacts and the export.
#include <chrono>
#include <fstream>
#include <string>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "contacts/v1/audience_query.grpc.pb.h"
#include "contacts/v1/contact_store.grpc.pb.h"

#include "common/csv/byte_source.h"
#include "common/csv/csv_reader.h"
#include "tests/testing/service_process.h"

namespace contacts {
namespace {

constexpr int kContacts = 1000000;
constexpr uint64_t kRssLimitKib = 256 * 1024;

// Peak resident set (VmHWM) of a process, in KiB.
uint64_t PeakRssKib(pid_t pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

// The generated contact i: primary key, email, city, age, a note that needs quoting or
// neutralising now and then.
std::vector<std::string> Row(int i) {
  static const char* kCities[] = {"Pune", "Delhi", "Goa", "São Paulo", "Zürich"};
  std::string note = i % 97 == 0   ? "=SUM(A1:A2)"
                     : i % 31 == 0 ? "line one\nline \"two\""
                                   : "n" + std::to_string(i % 1000);
  return {fmt::format("C{:07}", i), fmt::format("user{}@example.com", i), kCities[i % 5], std::to_string(18 + i % 60),
          note};
}

std::unique_ptr<grpc::ClientContext> Ctx(int seconds) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

TEST(ExportMillionTest, StreamsAMillionContactsInBoundedMemoryAndParsesBackExactly) {
  // The restart below rebuilds the query columns from a million records: ~1 s in a Release build,
  // more than the default 30 s in an -O0 coverage build.
  auto store = test::ServiceProcess::Start({.binary = "contact-store", .start_timeout = std::chrono::minutes(5)});
  ASSERT_TRUE(store.ok()) << store.status();
  auto stub = v1::ContactStore::NewStub((*store)->Channel());
  v1::SetupTenantRequest setup;
  setup.set_primary_key_attribute("customer_id");
  v1::Tenant tenant;
  ASSERT_TRUE(stub->SetupTenant(Ctx(10).get(), setup, &tenant).ok());
  for (auto [name, type] : {std::pair{"city", v1::TEXT}, std::pair{"age", v1::INTEGER}, std::pair{"note", v1::TEXT}}) {
    v1::CreateAttributeRequest attribute;
    attribute.set_name(name);
    attribute.set_type(type);
    attribute.set_indexed(std::string(name) != "note");
    v1::Attribute created;
    ASSERT_TRUE(stub->CreateAttribute(Ctx(10).get(), attribute, &created).ok());
  }
  constexpr int kBatch = 10000;
  for (int start = 0; start < kContacts; start += kBatch) {
    v1::BatchUpsertRequest batch;
    batch.set_job_id("load");
    batch.set_batch_sequence(start / kBatch);
    for (const char* column : {"customer_id", "email", "city", "age", "note"}) batch.add_columns(column);
    for (int i = start; i < start + kBatch; ++i) {
      auto* row = batch.add_rows();
      row->set_row_number(i);
      for (auto& value : Row(i)) *row->add_values() = std::move(value);
    }
    v1::BatchUpsertResponse response;
    grpc::Status status = stub->BatchUpsert(Ctx(120).get(), batch, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  const absl::Status restarted = (*store)->Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  auto audience =
      test::ServiceProcess::Start({.binary = "audience-query", .flags = {"--store=" + (*store)->address()}});
  ASSERT_TRUE(audience.ok()) << audience.status();

  v1::ExportRequest request;
  for (const char* attribute : {"email", "city", "age", "note"}) request.add_attributes(attribute);
  auto ctx = Ctx(600);
  auto reader = v1::AudienceQuery::NewStub((*audience)->Channel())->Export(ctx.get(), request);
  // Parse chunk by chunk with the push parser: the test holds one chunk, not the export.
  CsvPushParser parser(CsvDialect{','}, CsvLimits{});
  int64_t rows = -1;  // the header comes first
  uint64_t bytes = 0;
  std::string mismatch;
  auto check = [&](const CsvRecord& record) -> absl::Status {
    if (rows++ < 0 || !mismatch.empty()) return absl::OkStatus();
    const std::string pk(record.fields[0]);
    const int i = std::stoi(pk.substr(1));
    std::vector<std::string> want = Row(i);
    if (want[4][0] == '=') want[4] = "'" + want[4];  // neutralised formula
    for (size_t f = 0; f < want.size(); ++f) {
      if (record.fields.size() != want.size() || record.fields[f] != want[f]) {
        mismatch = fmt::format("row for {}: field {} is \"{}\", want \"{}\"", pk, f,
                               f < record.fields.size() ? std::string(record.fields[f]) : "", want[f]);
        break;
      }
    }
    return absl::OkStatus();
  };
  v1::ExportChunk chunk;
  while (reader->Read(&chunk)) {
    bytes += chunk.csv().size();
    ASSERT_TRUE(parser.Feed(chunk.csv(), check).ok());
  }
  ASSERT_TRUE(parser.Finish(check).ok());
  grpc::Status finished = reader->Finish();
  ASSERT_TRUE(finished.ok()) << finished.error_message();
  EXPECT_EQ(mismatch, "");
  EXPECT_EQ(rows, kContacts);
  const uint64_t store_rss = PeakRssKib((*store)->pid());
  const uint64_t audience_rss = PeakRssKib((*audience)->pid());
  std::cout << fmt::format("exported {} rows, {} MB; peak RSS contact-store {} MiB, audience-query {} MiB\n", rows,
                           bytes / 1000000, store_rss / 1024, audience_rss / 1024);
  EXPECT_LT(store_rss, kRssLimitKib);
  EXPECT_LT(audience_rss, kRssLimitKib);
}

}  // namespace
}  // namespace contacts
