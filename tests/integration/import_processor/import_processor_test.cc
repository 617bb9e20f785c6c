// import-processor and contact-store as real processes on loopback ports: a generated 10k-row
// file (quoted fields, embedded newlines, CRLF, BOM, non-ASCII names, bad types, email typos,
// repeated keys) imported as .csv, .zip and tab-separated .txt with the outcome checked against
// counts computed independently; refused uploads (bad UTF-8, Latin-1, hostile zips); mapping
// errors; delete jobs; tenancy; metrics; and SIGKILLs during an import (crash_test.sh runs the
// long version of that test through the same binary).
#include <signal.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "contacts/v1/contact_store.grpc.pb.h"
#include "contacts/v1/import_processor.grpc.pb.h"

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "common/digest/sha256.h"
#include "services/import_processor/job_store.h"
#include "tests/integration/import_processor/import_dataset.h"
#include "tests/testing/role_check.h"
#include "tests/testing/service_process.h"

namespace contacts::test {
namespace {

using ::testing::HasSubstr;
using v1::ContactStore;
using v1::ImportProcessor;

constexpr int kDatasetRows = 10000;

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& tenant, int seconds = 60) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  ctx->AddMetadata("x-tenant", tenant);
  return ctx;
}

// Maps the file's `column` to `attribute` in `request`.
void AddMapping(v1::StartImportRequest* request, const std::string& column, const std::string& attribute) {
  v1::ColumnMapping* mapping = request->add_mapping();
  mapping->set_column(column);
  mapping->set_attribute(attribute);
}

// Bytes of a zip holding `entries` (name -> content), built with libzip in a temp folder.
std::string MakeZip(const std::vector<std::pair<std::string, std::string>>& entries) {
  TempDir dir("import_zip");
  const std::string path = dir.path() + "/x.zip";
  int error = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  if (archive == nullptr) return "";
  for (const auto& [name, content] : entries) {
    if (name.back() == '/') {
      zip_dir_add(archive, name.substr(0, name.size() - 1).c_str(), ZIP_FL_ENC_UTF_8);
      continue;
    }
    zip_source_t* source = zip_source_buffer(archive, content.data(), content.size(), 0);
    zip_file_add(archive, name.c_str(), source, ZIP_FL_OVERWRITE | ZIP_FL_ENC_UTF_8);
  }
  if (zip_close(archive) != 0) return "";
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Talks to one contact-store and one import-processor.
class Services {
 public:
  absl::Status Start(std::vector<std::string> importer_flags = {}, std::vector<std::string> store_flags = {}) {
    auto store = ServiceProcess::Start({.binary = "contact-store", .flags = store_flags});
    if (!store.ok()) return store.status();
    store_ = *std::move(store);
    importer_flags.push_back("--store=" + store_->address());
    auto importer = ServiceProcess::Start({.binary = "import-processor", .flags = importer_flags});
    if (!importer.ok()) return importer.status();
    importer_ = *std::move(importer);
    Reconnect();
    return absl::OkStatus();
  }

  void Reconnect() {
    store_stub_ = ContactStore::NewStub(store_->Channel());
    stub_ = ImportProcessor::NewStub(importer_->Channel());
  }

  std::string Logs() const {
    return (store_ ? "--- contact-store ---\n" + store_->log() : "") +
           (importer_ ? "--- import-processor ---\n" + importer_->log() : "");
  }

  absl::Status SetupTenant(const std::string& tenant) {
    v1::SetupTenantRequest request;
    request.set_primary_key_attribute("customer_id");
    request.set_primary_key_type(v1::TEXT);
    request.set_default_country_code("91");
    v1::Tenant response;
    auto ctx = Ctx(tenant);
    grpc::Status s = store_stub_->SetupTenant(ctx.get(), request, &response);
    return s.ok() ? absl::OkStatus() : absl::InternalError(s.error_message());
  }

  uint64_t CreateList(const std::string& tenant, const std::string& name) {
    v1::CreateListRequest request;
    request.set_name(name);
    v1::ContactList list;
    auto ctx = Ctx(tenant);
    grpc::Status s = store_stub_->CreateList(ctx.get(), request, &list);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return list.id();
  }

  // `declared` gives UploadStart's size_bytes and sha256 (file_name and import are taken from the
  // other arguments).
  grpc::Status Upload(const std::string& tenant, const std::string& bytes, const std::string& file_name,
                      v1::UploadResponse* response, const v1::StartImportRequest* import = nullptr,
                      size_t chunk = 256 << 10, const v1::UploadStart& declared = v1::UploadStart()) {
    auto ctx = Ctx(tenant);
    auto writer = stub_->Upload(ctx.get(), response);
    v1::UploadRequest first;
    *first.mutable_start() = declared;
    first.mutable_start()->set_file_name(file_name);
    if (import != nullptr) *first.mutable_start()->mutable_import() = *import;
    bool ok = writer->Write(first);
    for (size_t i = 0; ok && i < bytes.size(); i += chunk) {
      v1::UploadRequest part;
      part.set_chunk(bytes.substr(i, chunk));
      ok = writer->Write(part);
    }
    writer->WritesDone();
    return writer->Finish();
  }

  v1::Job Wait(const std::string& tenant, const std::string& job_id) {
    v1::Job last;
    for (int attempt = 0; attempt < 10; ++attempt) {
      auto ctx = Ctx(tenant, 120);
      v1::GetJobRequest request;
      request.set_job_id(job_id);
      auto reader = stub_->WatchJob(ctx.get(), request);
      v1::Job job;
      while (reader->Read(&job)) last = job;
      grpc::Status s = reader->Finish();
      if (last.state() >= v1::COMPLETED) return last;
      if (!s.ok() && s.error_code() != grpc::StatusCode::UNAVAILABLE) {
        ADD_FAILURE() << "WatchJob: " << s.error_message();
        return last;
      }
    }
    return last;
  }

  // The rejected rows of a job, or with `fixes` its email typo fixes.
  std::vector<v1::JobError> Errors(const std::string& tenant, const std::string& job_id, std::string* csv = nullptr,
                                   bool fixes = false) {
    auto ctx = Ctx(tenant);
    v1::GetJobErrorsRequest request;
    request.set_job_id(job_id);
    request.set_as_csv(csv != nullptr);
    request.set_fixes(fixes);
    auto reader = stub_->GetJobErrors(ctx.get(), request);
    std::vector<v1::JobError> out;
    v1::JobErrorChunk chunk;
    while (reader->Read(&chunk)) {
      for (const v1::JobError& e : chunk.errors()) out.push_back(e);
      if (csv != nullptr) *csv += chunk.csv();
    }
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  absl::StatusOr<v1::Contact> GetContact(const std::string& tenant, const std::string& pk, bool by_email = false) {
    v1::GetContactRequest request;
    if (by_email) {
      request.set_email(pk);
    } else {
      request.set_primary_key(pk);
    }
    v1::Contact contact;
    auto ctx = Ctx(tenant);
    grpc::Status s = store_stub_->GetContact(ctx.get(), request, &contact);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) return absl::NotFoundError(s.error_message());
    if (!s.ok()) return absl::InternalError(s.error_message());
    return contact;
  }

  // Every exported line of the tenant, sorted.
  std::vector<std::string> ExportLines(const std::string& tenant) {
    auto ctx = Ctx(tenant);
    auto reader = store_stub_->Export(ctx.get(), v1::StoreExportRequest());
    std::string csv;
    v1::StoreExportChunk chunk;
    while (reader->Read(&chunk)) csv += chunk.csv();
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> lines;
    std::stringstream in(csv);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    std::sort(lines.begin(), lines.end());
    return lines;
  }

  std::unique_ptr<ServiceProcess> store_;
  std::unique_ptr<ServiceProcess> importer_;
  std::unique_ptr<ContactStore::Stub> store_stub_;
  std::unique_ptr<ImportProcessor::Stub> stub_;
};

// The import request for Dataset files: every column mapped, new attributes created.
v1::StartImportRequest DatasetImport(const std::string& upload_id, uint64_t list_id) {
  v1::StartImportRequest request;
  request.set_upload_id(upload_id);
  for (size_t i = 0; i < Dataset::kHeader.size(); ++i)
    AddMapping(&request, Dataset::kHeader[i], Dataset::kAttributes[i]);
  const std::vector<std::pair<std::string, v1::AttributeType>> created = {
      {"first_name", v1::TEXT}, {"age", v1::INTEGER}, {"joined", v1::DATE},
      {"score", v1::DECIMAL},   {"vip", v1::BOOLEAN}, {"notes", v1::TEXT}};
  for (const auto& [name, type] : created) {
    v1::NewAttribute* a = request.add_create_attributes();
    a->set_name(name);
    a->set_type(type);
    a->set_indexed(name == "age");
  }
  if (list_id != 0) request.add_list_ids(list_id);
  request.set_fix_email_typos(true);
  return request;
}

class ImportProcessorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    services_ = new Services();
    start_status_ = new absl::Status(services_->Start({"--batch_rows=500"}));
  }
  static void TearDownTestSuite() {
    delete services_;
    delete start_status_;
    services_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(start_status_->ok()) << *start_status_;
    static int counter = 0;
    tenant_ = fmt::format("t{}-{}", ++counter, getpid());
    ASSERT_TRUE(services_->SetupTenant(tenant_).ok());
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << services_->Logs();
  }

  Services& s() { return *services_; }

  // Imports `bytes` as `file_name` with the Dataset mapping and waits for the end.
  v1::Job ImportDataset(const std::string& bytes, const std::string& file_name, uint64_t list_id) {
    v1::UploadResponse upload;
    grpc::Status status = s().Upload(tenant_, bytes, file_name, &upload);
    EXPECT_TRUE(status.ok()) << status.error_message();
    auto ctx = Ctx(tenant_);
    v1::Job job;
    status = s().stub_->StartImport(ctx.get(), DatasetImport(upload.upload_id(), list_id), &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return s().Wait(tenant_, job.id());
  }

  void ExpectCounts(const v1::Job& job, const DatasetExpectation& e) {
    const v1::JobCounts& c = job.counts();
    EXPECT_EQ(job.state(), v1::COMPLETED_WITH_ERRORS) << job.error();
    EXPECT_EQ(c.received(), e.received);
    EXPECT_EQ(c.inserted(), e.inserted);
    EXPECT_EQ(c.updated(), 0u);
    EXPECT_EQ(c.unchanged(), 0u);
    EXPECT_EQ(c.duplicate(), e.duplicate);
    EXPECT_EQ(c.skipped(), 0u);
    EXPECT_EQ(c.rejected(), e.rejected);
    EXPECT_EQ(c.emails_fixed(), e.emails_fixed);
    EXPECT_EQ(c.inserted() + c.updated() + c.unchanged() + c.duplicate() + c.skipped() + c.rejected(), c.received());
    std::map<std::string, uint64_t> by_reason(c.rejected_by_reason().begin(), c.rejected_by_reason().end());
    EXPECT_EQ(by_reason, e.rejected_by_reason);
  }

  void ExpectRejectedRows(const std::string& job_id, const DatasetExpectation& e) {
    std::map<uint64_t, std::string> got;
    for (const v1::JobError& error : s().Errors(tenant_, job_id)) {
      const std::string reason = error.reason();
      got[error.row_number()] = reason.substr(0, reason.find(": "));
    }
    EXPECT_EQ(got, e.rejected_rows);
  }

  // Every `step`-th expected contact is read back from the store and compared attribute by attribute.
  void ExpectContacts(const DatasetExpectation& e, size_t step, uint64_t list_id) {
    size_t i = 0;
    size_t checked = 0;
    for (const auto& [pk, attributes] : e.contacts) {
      if (i++ % step != 0) continue;
      absl::StatusOr<v1::Contact> contact = s().GetContact(tenant_, pk);
      ASSERT_TRUE(contact.ok()) << pk << ": " << contact.status();
      std::map<std::string, std::string> stored(contact->attributes().begin(), contact->attributes().end());
      ASSERT_EQ(stored, attributes) << "contact " << pk;
      if (list_id != 0) {
        EXPECT_THAT(contact->list_ids(), ::testing::Contains(list_id)) << pk;
      }
      ++checked;
    }
    EXPECT_GT(checked, 0u);
  }

  static Services* services_;
  static absl::Status* start_status_;
  std::string tenant_;
};

Services* ImportProcessorTest::services_ = nullptr;
absl::Status* ImportProcessorTest::start_status_ = nullptr;

TEST_F(ImportProcessorTest, GeneratedCsvImportsExactlyAsComputedIndependently) {
  const Dataset data(kDatasetRows, 42);
  const DatasetExpectation expected = data.Expect();
  ASSERT_GT(expected.duplicate, 100u);
  ASSERT_GT(expected.emails_fixed, 50u);
  ASSERT_GT(expected.rejected, 50u);
  const uint64_t list = s().CreateList(tenant_, "imported");

  v1::Job job = ImportDataset(data.Render(',', /*bom=*/true, /*crlf=*/true), "contacts.csv", list);
  ExpectCounts(job, expected);
  ExpectRejectedRows(job.id(), expected);
  ExpectContacts(expected, 1, list);
  EXPECT_EQ(job.bytes_done(), job.bytes_total());

  // A fixed email is stored fixed, and findable by it.
  for (const DatasetRow& row : data.rows()) {
    if (row.typo && row.reject_key.empty() && expected.contacts.contains(row.pk)) {
      auto by_email = s().GetContact(tenant_, row.canonical.at("email"), /*by_email=*/true);
      ASSERT_TRUE(by_email.ok()) << by_email.status();
      EXPECT_EQ(by_email->primary_key(), row.pk);
      break;
    }
  }

  std::string csv;
  s().Errors(tenant_, job.id(), &csv);
  EXPECT_TRUE(csv.starts_with("row_number,column,value,reason\r\n")) << csv.substr(0, 80);
  EXPECT_THAT(csv, HasSubstr("invalid_value:age: \"\"forty\"\" is not an INTEGER"));

  // Every fix is reported once, on its row, with the address as written in the file.
  std::map<uint64_t, std::pair<std::string, std::string>> fixed;
  for (const v1::JobError& fix : s().Errors(tenant_, job.id(), nullptr, /*fixes=*/true)) {
    EXPECT_EQ(fix.column(), "E-mail") << fix.row_number();
    EXPECT_TRUE(fix.reason().starts_with("email typo fixed to ")) << fix.reason();
    EXPECT_TRUE(fixed.emplace(fix.row_number(), std::make_pair(fix.value(), fix.reason().substr(20))).second)
        << "row " << fix.row_number() << " reported twice";
  }
  EXPECT_EQ(fixed, expected.fixed_rows);
  std::string fixes_csv;
  s().Errors(tenant_, job.id(), &fixes_csv, /*fixes=*/true);
  const auto& [first_row, first_fix] = *expected.fixed_rows.begin();
  EXPECT_THAT(fixes_csv, HasSubstr(fmt::format("{},E-mail,{},email typo fixed to {}", first_row, first_fix.first,
                                               first_fix.second)));
}

TEST_F(ImportProcessorTest, SameDataAsZipAndAsTabSeparatedTxtGivesTheSameResult) {
  const Dataset data(kDatasetRows, 7);
  const DatasetExpectation expected = data.Expect();

  v1::Job zipped = ImportDataset(MakeZip({{"export/contacts.csv", data.Render(',', true, false)}}), "contacts.zip", 0);
  ExpectCounts(zipped, expected);
  ExpectRejectedRows(zipped.id(), expected);
  ExpectContacts(expected, 97, 0);

  ASSERT_TRUE(s().SetupTenant(tenant_ + "-txt").ok());
  const std::string first_tenant = tenant_;
  tenant_ += "-txt";
  v1::UploadResponse upload;
  ASSERT_TRUE(s().Upload(tenant_, data.Render('\t', false, true), "contacts.txt", &upload).ok());
  EXPECT_EQ(upload.delimiter(), "\t");
  ASSERT_EQ(upload.columns_size(), 9);
  EXPECT_EQ(upload.columns(2).suggested_attribute(), "email");
  EXPECT_EQ(upload.columns(3).suggested_attribute(), "mobile");
  EXPECT_EQ(upload.sample_rows_size(), 10);
  auto ctx = Ctx(tenant_);
  v1::Job job;
  ASSERT_TRUE(s().stub_->StartImport(ctx.get(), DatasetImport(upload.upload_id(), 0), &job).ok());
  v1::Job txt = s().Wait(tenant_, job.id());
  ExpectCounts(txt, expected);
  ExpectRejectedRows(txt.id(), expected);
  ExpectContacts(expected, 89, 0);
  EXPECT_EQ(s().ExportLines(tenant_), s().ExportLines(first_tenant));
}

// A preview sample row with more or fewer values than the header says so, in the words of the
// error the import then logs for it, and where the row starts in the file.
TEST_F(ImportProcessorTest, PreviewFlagsTheSampleRowsTheImportRejectsAsRagged) {
  v1::StartImportRequest import;
  AddMapping(&import, "customer_id", "customer_id");
  AddMapping(&import, "Email Address", "email");
  v1::UploadResponse upload;
  ASSERT_TRUE(s().Upload(tenant_,
                         "customer_id,Email Address,City\n"
                         "k1,a@b.co,Pune\n"
                         "k2,c@d.co\n"                   // a value short
                         "k3,e@f.co,\"Navi\nMumbai\"\n"  // two lines
                         "k4,g@h.co,Delhi,India\n"       // a value too many
                         "k5,i@j.co,Mumbai\n",
                         "ragged.csv", &upload, &import)
                  .ok());
  ASSERT_EQ(upload.sample_rows_size(), 5);
  std::vector<uint64_t> lines;
  std::vector<std::string> problems;
  for (const v1::PreviewRow& row : upload.sample_rows()) {
    lines.push_back(row.line());
    problems.push_back(row.problem());
  }
  EXPECT_EQ(lines, (std::vector<uint64_t>{2, 3, 4, 6, 7}));
  EXPECT_EQ(problems, (std::vector<std::string>{"", "ragged_row: row has 2 fields, the header has 3", "",
                                                "ragged_row: row has 4 fields, the header has 3", ""}));

  // The import rejects those rows, and only those, for the reason the preview gave.
  v1::Job job = s().Wait(tenant_, upload.job().id());
  EXPECT_EQ(job.counts().inserted(), 3u);
  std::map<uint64_t, std::string> rejected;
  for (const v1::JobError& error : s().Errors(tenant_, job.id())) rejected[error.row_number()] = error.reason();
  EXPECT_EQ(rejected, (std::map<uint64_t, std::string>{{2, problems[1]}, {4, problems[3]}}));
}

TEST_F(ImportProcessorTest, InvalidUtf8AndLatin1AreRefusedWithByteOffsetAndLine) {
  v1::UploadResponse response;
  grpc::Status bad = s().Upload(tenant_, "id,name\n1,ok\n2,Jos\xE9\n", "latin1.csv", &response, nullptr, 3);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("invalid UTF-8 at byte 18 (line 3)"));

  grpc::Status stray = s().Upload(tenant_, "id\n\x80\n", "stray.txt", &response);
  EXPECT_THAT(stray.error_message(), HasSubstr("invalid UTF-8 at byte 3 (line 2)"));

  grpc::Status zipped = s().Upload(tenant_, MakeZip({{"a.csv", "id\n\xFF\n"}}), "a.zip", &response);
  EXPECT_EQ(zipped.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(zipped.error_message(), HasSubstr("invalid UTF-8 at byte 3 (line 2)"));

  // Nothing was kept: the spool folder holds no file of these uploads.
  const std::string spool = s().importer_->data_dir() + "/spool";
  for (const auto& entry : std::filesystem::directory_iterator(spool)) {
    EXPECT_FALSE(entry.path().filename().string().ends_with(".zip")) << entry.path();
  }
  auto list_ctx = Ctx(tenant_);
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(s().stub_->ListJobs(list_ctx.get(), v1::ListJobsRequest(), &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0);
}

// A client that declares the file's size and SHA-256 gets a cut-off or changed stream refused, and
// nothing of it stored or imported; a whole one is stored with its digest, which its job shows.
TEST_F(ImportProcessorTest, UploadsThatAreNotTheDeclaredFileAreRefusedAndNothingIsImported) {
  const std::string csv = "customer_id,city\nk1,Pune\nk2,Goa\nk3,Jos\xC3\xA9\n";
  Sha256 hash;
  hash.Update(csv);
  const std::string sha256 = hash.FinishHex();
  v1::StartImportRequest import;
  v1::ColumnMapping* mapping = import.add_mapping();
  mapping->set_column("customer_id");
  mapping->set_attribute("customer_id");
  v1::UploadStart declared;
  declared.set_size_bytes(csv.size());
  declared.set_sha256(sha256);
  const std::string spool = s().importer_->data_dir() + "/spool";
  const auto spooled_files = [&] {
    const auto entries = std::filesystem::directory_iterator(spool);
    return std::distance(std::filesystem::begin(entries), std::filesystem::end(entries));
  };
  const auto files_before = spooled_files();

  v1::UploadResponse response;
  // The client stops after the second row: to the service the stream looks whole.
  const std::string cut = csv.substr(0, csv.find("k3"));
  grpc::Status status = s().Upload(tenant_, cut, "cut.csv", &response, &import, 8, declared);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), fmt::format("upload was cut short: start.size_bytes declares {} bytes, {} arrived; "
                                                "nothing was stored",
                                                csv.size(), cut.size()));
  std::string changed = csv;
  changed[changed.find("Goa")] = 'X';
  status = s().Upload(tenant_, changed, "changed.csv", &response, &import, 8, declared);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("start.sha256 declares " + sha256));
  status = s().Upload(tenant_, csv + "k4,Agra\n", "longer.csv", &response, &import, 8, declared);
  EXPECT_THAT(status.error_message(), HasSubstr("upload is longer than start.size_bytes declares"));
  v1::UploadStart malformed;
  malformed.set_sha256("sha256:" + sha256);
  status = s().Upload(tenant_, csv, "malformed.csv", &response, &import, 8, malformed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("start.sha256: a SHA-256 is 64 hex digits"));
  auto list_ctx = Ctx(tenant_);
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(s().stub_->ListJobs(list_ctx.get(), v1::ListJobsRequest(), &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0);
  EXPECT_TRUE(absl::IsNotFound(s().GetContact(tenant_, "k1").status()));
  EXPECT_EQ(spooled_files(), files_before);  // the refused uploads' files are gone

  // Declared in upper case, as some tools print it.
  declared.set_sha256(absl::AsciiStrToUpper(sha256));
  status = s().Upload(tenant_, csv, "whole.csv", &response, &import, 8, declared);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.sha256(), sha256);
  EXPECT_EQ(response.job().file_sha256(), sha256);
  const v1::Job job = s().Wait(tenant_, response.job().id());
  EXPECT_EQ(job.state(), v1::COMPLETED) << job.error();
  EXPECT_EQ(job.counts().inserted(), 3u);
  EXPECT_EQ(job.file_sha256(), sha256);
}

TEST_F(ImportProcessorTest, HostileZipsAreRefusedAndTheServiceKeepsServing) {
  std::string zeros;
  for (int i = 0; i < 200000; ++i)
    zeros += "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";
  std::vector<std::pair<std::string, std::string>> many;
  for (int i = 0; i < 40; ++i) many.push_back({fmt::format("f{}.bin", i), "x"});
  const std::string good = MakeZip({{"a.csv", "id\n1\n"}});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bomb", MakeZip({{"bomb.csv", "id\n" + zeros}})},
      {"too many entries", MakeZip(many)},
      {"nested", MakeZip({{"inner.zip", good}})},
      {"no data file", MakeZip({{"folder/", ""}})},
      {"two data files", MakeZip({{"a.csv", "id\n1\n"}, {"b.csv", "id\n2\n"}})},
      {"truncated", good.substr(0, good.size() / 2)},
      {"path trick", MakeZip({{"../../etc/evil.csv", "id\n1\n"}})},
  };
  for (const auto& [name, bytes] : cases) {
    ASSERT_FALSE(bytes.empty()) << name;
    v1::UploadResponse response;
    grpc::Status status = s().Upload(tenant_, bytes, "upload.zip", &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << name << ": " << status.error_message();
  }
  auto health = HealthServing(s().importer_->Channel());
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_TRUE(*health);
  v1::UploadResponse response;
  grpc::Status fine = s().Upload(tenant_, good, "fine.zip", &response);
  ASSERT_TRUE(fine.ok()) << fine.error_message();
  EXPECT_EQ(response.columns(0).name(), "id");
}

TEST_F(ImportProcessorTest, MappingErrorsAreInvalidArgumentAndCreateNothing) {
  v1::UploadResponse upload;
  ASSERT_TRUE(s().Upload(tenant_, "customer_id,email,Age\nk1,a@b.co,3\n", "m.csv", &upload).ok());
  auto start = [&](const std::vector<std::pair<std::string, std::string>>& mapping, bool create_age) {
    v1::StartImportRequest request;
    request.set_upload_id(upload.upload_id());
    for (const auto& [column, attribute] : mapping) AddMapping(&request, column, attribute);
    if (create_age) {
      v1::NewAttribute* a = request.add_create_attributes();
      a->set_name("age");
      a->set_type(v1::INTEGER);
    }
    v1::Job job;
    auto ctx = Ctx(tenant_);
    return s().stub_->StartImport(ctx.get(), request, &job);
  };
  EXPECT_EQ(start({{"email", "email"}}, false).error_code(), grpc::StatusCode::INVALID_ARGUMENT);  // no pk
  EXPECT_EQ(start({{"customer_id", "customer_id"}, {"nope", "email"}}, false).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(start({{"customer_id", "customer_id"}, {"Age", "age"}}, false).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // age does not exist and is not created
  EXPECT_EQ(start({{"customer_id", "customer_id"}, {"email", "email"}, {"Age", "email"}}, true).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // attribute twice
  v1::StartImportRequest unknown;
  unknown.set_upload_id("0000000000000000deadbeef");
  v1::Job job;
  auto ctx = Ctx(tenant_);
  EXPECT_EQ(s().stub_->StartImport(ctx.get(), unknown, &job).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::GetAttributeRequest get;
  get.set_name("age");
  v1::Attribute attribute;
  auto get_ctx = Ctx(tenant_);
  EXPECT_EQ(s().store_stub_->GetAttribute(get_ctx.get(), get, &attribute).error_code(), grpc::StatusCode::NOT_FOUND);
}

// contact-store answers GetTenant for a tenant it never set up with a blank record (no primary
// key), not NOT_FOUND: import-processor still refuses imports and deletes for it as
// FAILED_PRECONDITION, rather than as a mapping error or with a delete job sure to fail.
TEST_F(ImportProcessorTest, ImportsAndDeletesOfATenantNotSetUpAreAFailedPrecondition) {
  const std::string not_set_up = tenant_ + "-not-set-up";
  v1::UploadResponse upload;
  ASSERT_TRUE(s().Upload(not_set_up, "customer_id,email\nk1,a@b.co\n", "n.csv", &upload).ok());
  v1::StartImportRequest import;
  import.set_upload_id(upload.upload_id());
  AddMapping(&import, "customer_id", "customer_id");
  AddMapping(&import, "email", "email");
  v1::Job job;
  auto import_ctx = Ctx(not_set_up);
  grpc::Status status = s().stub_->StartImport(import_ctx.get(), import, &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_NE(status.error_message().find("SetupTenant first"), std::string::npos) << status.error_message();

  v1::StartDeleteRequest del;
  del.mutable_keys()->add_keys("a@b.co");
  del.set_key_kind(v1::BatchDeleteRequest::EMAIL);
  auto delete_ctx = Ctx(not_set_up);
  status = s().stub_->StartDelete(delete_ctx.get(), del, &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();

  auto list_ctx = Ctx(not_set_up);
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(s().stub_->ListJobs(list_ctx.get(), v1::ListJobsRequest(), &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0);
}

TEST_F(ImportProcessorTest, UploadAndImportInOneCallThenJobsAreTheTenantsOnly) {
  v1::StartImportRequest import;
  AddMapping(&import, "customer_id", "customer_id");
  AddMapping(&import, "Email Address", "email");
  v1::UploadResponse upload;
  ASSERT_TRUE(
      s().Upload(tenant_, "customer_id,Email Address\nk1,A@B.co\nk2,c@d.co\n", "one.csv", &upload, &import).ok());
  ASSERT_FALSE(upload.job().id().empty());
  EXPECT_EQ(upload.columns(1).suggested_attribute(), "email");
  v1::Job job = s().Wait(tenant_, upload.job().id());
  EXPECT_EQ(job.state(), v1::COMPLETED);
  EXPECT_EQ(job.counts().inserted(), 2u);
  EXPECT_EQ(s().GetContact(tenant_, "k1")->attributes().at("email"), "a@b.co");

  // A second import of the same rows: unchanged.
  v1::UploadResponse again;
  ASSERT_TRUE(
      s().Upload(tenant_, "customer_id,Email Address\nk1,A@B.co\nk2,c@d.co\n", "one.csv", &again, &import).ok());
  EXPECT_EQ(s().Wait(tenant_, again.job().id()).counts().unchanged(), 2u);

  auto list_ctx = Ctx(tenant_);
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(s().stub_->ListJobs(list_ctx.get(), v1::ListJobsRequest(), &jobs).ok());
  ASSERT_EQ(jobs.jobs_size(), 2);
  EXPECT_EQ(jobs.jobs(0).id(), again.job().id());  // newest first

  auto other = Ctx("someone-else");
  v1::GetJobRequest get;
  get.set_job_id(job.id());
  v1::Job seen;
  EXPECT_EQ(s().stub_->GetJob(other.get(), get, &seen).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ImportProcessorTest, DeleteJobsByPrimaryKeyAndByEmailFromTheStoreOrFromAList) {
  const uint64_t list = s().CreateList(tenant_, "members");
  std::string content = "customer_id,email\n";
  for (int i = 0; i < 10; ++i) content += fmt::format("k{},u{}@example.com\n", i, i);
  v1::UploadResponse upload;
  ASSERT_TRUE(s().Upload(tenant_, content, "d.csv", &upload).ok());
  v1::StartImportRequest import;
  import.set_upload_id(upload.upload_id());
  for (const char* c : {"customer_id", "email"}) AddMapping(&import, c, c);
  import.add_list_ids(list);
  v1::Job job;
  auto ctx = Ctx(tenant_);
  ASSERT_TRUE(s().stub_->StartImport(ctx.get(), import, &job).ok());
  ASSERT_EQ(s().Wait(tenant_, job.id()).counts().inserted(), 10u);

  auto run = [&](const v1::StartDeleteRequest& request) {
    auto c = Ctx(tenant_);
    v1::Job started;
    grpc::Status status = s().stub_->StartDelete(c.get(), request, &started);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return s().Wait(tenant_, started.id());
  };

  v1::StartDeleteRequest by_pk;  // inline keys, delete from the store
  for (const char* k : {"k0", "k1", "missing"}) by_pk.mutable_keys()->add_keys(k);
  v1::Job deleted = run(by_pk);
  EXPECT_EQ(deleted.counts().deleted(), 2u);
  EXPECT_EQ(deleted.counts().not_found(), 1u);
  EXPECT_TRUE(absl::IsNotFound(s().GetContact(tenant_, "k0").status()));

  v1::UploadResponse keys;  // a file of emails, removed from the list only
  ASSERT_TRUE(
      s().Upload(tenant_, "email\nU2@Example.com\nu3@example.com\nbad-email\nnobody@example.com\n", "e.csv", &keys)
          .ok());
  v1::StartDeleteRequest by_email;
  by_email.set_upload_id(keys.upload_id());
  by_email.set_key_kind(v1::BatchDeleteRequest::EMAIL);
  by_email.add_list_ids(list);
  v1::Job removed = run(by_email);
  EXPECT_EQ(removed.counts().received(), 4u);
  EXPECT_EQ(removed.counts().deleted(), 2u);
  EXPECT_EQ(removed.counts().not_found(), 1u);
  EXPECT_EQ(removed.counts().rejected(), 1u);
  EXPECT_EQ(removed.state(), v1::COMPLETED_WITH_ERRORS);
  auto k2 = s().GetContact(tenant_, "k2");
  ASSERT_TRUE(k2.ok());
  EXPECT_THAT(k2->list_ids(), ::testing::Not(::testing::Contains(list)));
  EXPECT_THAT(s().GetContact(tenant_, "k4")->list_ids(), ::testing::Contains(list));

  v1::StartDeleteRequest email_store;  // inline emails, delete from the store
  email_store.set_key_kind(v1::BatchDeleteRequest::EMAIL);
  email_store.mutable_keys()->add_keys("u5@example.com");
  EXPECT_EQ(run(email_store).counts().deleted(), 1u);
  EXPECT_TRUE(absl::IsNotFound(s().GetContact(tenant_, "k5").status()));
}

TEST_F(ImportProcessorTest, MetricsCountRowsAndJobsByState) {
  v1::StartImportRequest import;
  AddMapping(&import, "customer_id", "customer_id");
  v1::UploadResponse upload;
  ASSERT_TRUE(s().Upload(tenant_, "customer_id\na\nb\nc\n", "x.csv", &upload, &import).ok());
  s().Wait(tenant_, upload.job().id());
  auto body = HttpGet(s().importer_->metrics_address(), "/metrics");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_GE(MetricValue(*body, "import_rows_processed_total").value_or(0), 3.0);
  EXPECT_GE(MetricValue(*body, "import_jobs", {{"state", "COMPLETED"}}).value_or(0), 1.0);
}

// Runs contactsctl with `args` against the suite's importer as `tenant`; returns its exit code and
// fills *out with its stdout, and *err (when given) with its stderr.
int RunCtl(const std::string& importer, const std::string& tenant, const std::string& args, std::string* out,
           std::string* err = nullptr) {
  TempDir err_dir("contactsctl_stderr");
  const std::string err_path = err_dir.path() + "/stderr";
  const int status = RunShell(fmt::format("CONTACTS_IMPORT={} CONTACTS_TENANT={} {} {} 2>{}", importer, tenant,
                                          BinaryPath("contactsctl"), args, err == nullptr ? "/dev/null" : err_path),
                              out);
  if (err != nullptr) {
    std::ifstream err_file(err_path, std::ios::binary);
    err->assign(std::istreambuf_iterator<char>(err_file), std::istreambuf_iterator<char>());
  }
  return status;
}

TEST_F(ImportProcessorTest, ContactsctlUploadsFollowsListsPrintsErrorsAndDeletes) {
  TempDir dir("contactsctl");
  const std::string file = dir.path() + "/people.csv";
  {
    std::ofstream out(file, std::ios::binary);
    out << "customer_id,E-mail,Age\nk1,Ann@GMIAL.com,30\nk2,b@example.com,forty\nk3,c@example.com,41\n";
  }
  std::string out;
  ASSERT_EQ(RunCtl(s().importer_->address(), tenant_, "upload " + file, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("-> email"));  // preview only
  Sha256 hash;
  hash.Update("customer_id,E-mail,Age\nk1,Ann@GMIAL.com,30\nk2,b@example.com,forty\nk3,c@example.com,41\n");
  const std::string sha256 = hash.FinishHex();
  EXPECT_THAT(out, HasSubstr("sha256 " + sha256));

  ASSERT_EQ(RunCtl(s().importer_->address(), tenant_,
                   "upload " + file +
                       " --map customer_id=customer_id --map E-mail=email --map Age=age --create age:integer "
                       "--fix-typos --wait",
                   &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("COMPLETED_WITH_ERRORS"));
  EXPECT_THAT(out, HasSubstr("inserted=2"));
  EXPECT_THAT(out, HasSubstr("emails_fixed=1"));
  const size_t at = out.find("job ");
  ASSERT_NE(at, std::string::npos);
  const std::string job_id = out.substr(at + 4, 24);
  EXPECT_EQ(s().GetContact(tenant_, "k1")->attributes().at("email"), "ann@gmail.com");

  ASSERT_EQ(RunCtl(s().importer_->address(), tenant_, "errors " + job_id, &out), 0);
  EXPECT_THAT(out, HasSubstr("row_number,column,value,reason\r\n2,Age,forty,\"invalid_value:age: "));
  ASSERT_EQ(RunCtl(s().importer_->address(), tenant_, "jobs", &out), 0);
  EXPECT_THAT(out, HasSubstr(job_id));
  ASSERT_EQ(RunCtl(s().importer_->address(), tenant_, "job " + job_id, &out), 0);
  EXPECT_THAT(out, HasSubstr("rejected invalid_value:age: 1"));
  EXPECT_THAT(out, HasSubstr("file: people.csv (sha256 " + sha256 + ")"));

  ASSERT_EQ(RunCtl(s().importer_->address(), tenant_, "delete --keys k1,nope --wait", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("deleted=1 not_found=1"));
  const std::string emails = dir.path() + "/emails.csv";
  {
    std::ofstream out_file(emails, std::ios::binary);
    out_file << "email\nc@example.com\n";
  }
  ASSERT_EQ(RunCtl(s().importer_->address(), tenant_, "delete --file " + emails + " --by email --wait", &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("deleted=1"));
  EXPECT_TRUE(absl::IsNotFound(s().GetContact(tenant_, "k3").status()));

  EXPECT_EQ(RunCtl(s().importer_->address(), tenant_, "job 0000000000000000ffffffff", &out), 1);
  EXPECT_EQ(RunCtl(s().importer_->address(), tenant_, "frobnicate", &out), 2);
  // A folder where a file should be is refused before anything is sent.
  std::string err;
  EXPECT_EQ(RunCtl(s().importer_->address(), tenant_, "upload " + dir.path(), &out, &err), 1);
  EXPECT_THAT(err, HasSubstr(dir.path() + " is a directory, not a file"));
  EXPECT_EQ(RunCtl(s().importer_->address(), tenant_, "delete --file " + dir.path(), &out, &err), 1);
  EXPECT_THAT(err, HasSubstr(dir.path() + " is a directory, not a file"));
  // A pipe cannot be read twice (once for its SHA-256): refused rather than sent empty.
  const std::string fifo = dir.path() + "/pipe.csv";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(RunCtl(s().importer_->address(), tenant_, "upload " + fifo, &out, &err), 1);
  EXPECT_THAT(err, HasSubstr(fifo + " is not a regular file (a pipe?)"));
}

// contactsctl splits --map at the last '=': attribute names never hold one, column names may.
TEST_F(ImportProcessorTest, ContactsctlMapsAColumnWhoseNameHoldsEquals) {
  TempDir dir("contactsctl_map");
  const std::string file = dir.path() + "/people.csv";
  {
    std::ofstream out(file, std::ios::binary);
    out << "customer_id,mail=work\nk1,ann@example.com\n";
  }
  std::string out;
  std::string err;
  ASSERT_EQ(RunCtl(s().importer_->address(), tenant_,
                   "upload " + file + " --map customer_id=customer_id --map mail=work=email --wait", &out, &err),
            0)
      << out << err;
  auto contact = s().GetContact(tenant_, "k1");
  ASSERT_TRUE(contact.ok()) << contact.status();
  EXPECT_EQ(contact->attributes().at("email"), "ann@example.com");
}

// Without --map, `upload` only previews: an import option given anyway is a usage error, not
// dropped with exit status 0 as if the import it asked for had run.
TEST_F(ImportProcessorTest, ContactsctlRefusesImportOptionsWithoutMap) {
  TempDir dir("contactsctl_nomap");
  const std::string file = dir.path() + "/people.csv";
  {
    std::ofstream out(file, std::ios::binary);
    out << "customer_id,email\nk1,ann@example.com\n";
  }
  std::string out;
  std::string err;
  for (const char* option : {"--dry-run", "--fix-typos", "--wait", "--mode add", "--list 1", "--create age:integer"}) {
    EXPECT_EQ(RunCtl(s().importer_->address(), tenant_, "upload " + file + " " + option, &out, &err), 2) << option;
    EXPECT_THAT(err, HasSubstr("needs --map")) << option;
  }
  EXPECT_TRUE(absl::IsNotFound(s().GetContact(tenant_, "k1").status()));
  // An id with a sign is no id (strtoull read "-1" as 2^64 - 1).
  EXPECT_EQ(RunCtl(s().importer_->address(), tenant_, "upload " + file + " --map customer_id=customer_id --list -1",
                   &out, &err),
            2);
  EXPECT_THAT(err, HasSubstr("--list: \"-1\" is not a number"));
}

// A flag the command does not take is a usage error, not ignored: `delete --dry-run` deleted for
// real (deletes have no dry run). A switch given a value takes true or false (`--dry-run=false`
// ran a dry run), a flag's separate value is not the next flag (`--keys --wait` deleted the key
// "--wait"), --create's third part is "indexed" or nothing, and no command takes stray words.
TEST_F(ImportProcessorTest, ContactsctlRefusesFlagsAndValuesItsCommandDoesNotTake) {
  TempDir dir("contactsctl_flags");
  const std::string file = dir.path() + "/people.csv";
  {
    std::ofstream out(file, std::ios::binary);
    out << "customer_id,email\nk1,ann@example.com\n";
  }
  std::string out;
  std::string err;
  ASSERT_EQ(RunCtl(s().importer_->address(), tenant_,
                   "upload " + file + " --map customer_id=customer_id --dry-run=false --wait", &out, &err),
            0)
      << out << err;
  EXPECT_THAT(out, ::testing::Not(HasSubstr("dry run")));
  EXPECT_TRUE(s().GetContact(tenant_, "k1").ok()) << "--dry-run=false ran a dry run";

  const std::vector<std::pair<std::string, std::string>> refused = {
      {"delete --keys k1 --dry-run --wait", "--dry-run"},
      {"delete --keys k1 --mode add --wait", "--mode"},
      {"delete --keys k1 --map a=b --wait", "--map"},
      {"delete --keys --wait", "--keys needs a value"},
      {"upload " + file + " --map customer_id=customer_id --keys k1", "--keys"},
      {"upload " + file + " --map customer_id=customer_id --dry-run=maybe", "--dry-run"},
      {"upload " + file + " --map customer_id=customer_id --create age:integer:index", "indexed"},
      {"jobs running", "running"},
      {"jobs --wait", "--wait"},
      {"job 0000000000000000ffffffff --wait", "--wait"},
  };
  for (const auto& [args, says] : refused) {
    EXPECT_EQ(RunCtl(s().importer_->address(), tenant_, args, &out, &err), 2) << args << "\n" << out << err;
    EXPECT_THAT(err, HasSubstr(says)) << args;
  }
  EXPECT_TRUE(s().GetContact(tenant_, "k1").ok()) << "a refused delete deleted";
}

// A finished job older than --job_retention_hours is deleted with its error log when
// import-processor starts (and hourly after): GetJob, GetJobErrors and ListJobs no longer know it,
// younger ones stay, the metric counts it and the log says so. The binary cannot be made to see
// time pass, so while it is down the test writes two copies of a job it ran into its jobs db, as
// if they had finished 25 and 23 hours ago (their ids begin with their creation time, NewId()).
TEST(ImportRetentionTest, FinishedJobsPastTheRetentionArePurgedAtStart) {
  Services services;
  ASSERT_TRUE(services.Start({"--job_retention_hours=24"}).ok());
  ASSERT_TRUE(services.SetupTenant("t").ok());
  v1::StartImportRequest import;
  AddMapping(&import, "customer_id", "customer_id");
  v1::UploadResponse upload;
  grpc::Status uploaded = services.Upload("t", "customer_id,x\na,1\nb\nc,3\n", "x.csv", &upload, &import);
  ASSERT_TRUE(uploaded.ok()) << uploaded.error_message();
  const std::string ran = services.Wait("t", upload.job().id()).id();
  ASSERT_EQ(services.Errors("t", ran).size(), 1u);
  ASSERT_TRUE(services.importer_->Terminate().ok());

  std::map<int, std::string> copies;  // hours since it finished -> id
  {
    auto jobs = JobStore::Open(services.importer_->data_dir() + "/jobs");
    ASSERT_TRUE(jobs.ok()) << jobs.status();
    absl::StatusOr<internal::StoredJob> job = (*jobs)->GetJob(ran);
    ASSERT_TRUE(job.ok()) << job.status();
    std::vector<v1::JobError> errors;
    ASSERT_TRUE((*jobs)
                    ->ScanLog(ran, JobLogKind::kRejected,
                              [&](v1::JobError&& e) {
                                errors.push_back(std::move(e));
                                return true;
                              })
                    .ok());
    const int64_t now =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    for (int hours : {25, 23}) {
      const int64_t finished = now - int64_t{hours} * 3600 * 1000000;
      const int64_t created = finished - 1000000;
      v1::Job& info = *job->mutable_job();
      info.set_id(fmt::format("{:016x}{}", static_cast<uint64_t>(created), ran.substr(16)));
      info.set_created_at_micros(created);
      info.set_finished_at_micros(finished);
      ASSERT_TRUE((*jobs)->Checkpoint(*job, errors, {}).ok());
      copies[hours] = info.id();
    }
  }
  ASSERT_TRUE(services.importer_->Restart().ok());
  services.Reconnect();

  auto get = [&](const std::string& id) {
    auto ctx = Ctx("t");
    v1::GetJobRequest request;
    request.set_job_id(id);
    v1::Job job;
    return services.stub_->GetJob(ctx.get(), request, &job).error_code();
  };
  // The purge runs on the janitor's thread, which may still be at it when the server answers.
  EXPECT_TRUE(WaitFor([&] { return get(copies[25]) == grpc::StatusCode::NOT_FOUND; }, std::chrono::seconds(20)))
      << services.Logs();
  {
    auto ctx = Ctx("t");
    v1::GetJobErrorsRequest request;
    request.set_job_id(copies[25]);
    auto reader = services.stub_->GetJobErrors(ctx.get(), request);
    v1::JobErrorChunk chunk;
    while (reader->Read(&chunk)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  EXPECT_EQ(get(copies[23]), grpc::StatusCode::OK);
  EXPECT_EQ(services.Errors("t", copies[23]).size(), 1u);
  EXPECT_EQ(get(ran), grpc::StatusCode::OK);
  auto ctx = Ctx("t");
  v1::ListJobsResponse listed;
  ASSERT_TRUE(services.stub_->ListJobs(ctx.get(), v1::ListJobsRequest(), &listed).ok());
  std::vector<std::string> ids;
  for (const v1::Job& job : listed.jobs()) ids.push_back(job.id());
  EXPECT_EQ(ids, (std::vector<std::string>{ran, copies[23]}));

  auto body = HttpGet(services.importer_->metrics_address(), "/metrics");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(MetricValue(*body, "import_jobs_purged_total").value_or(-1), 1.0);
  EXPECT_EQ(MetricValue(*body, "import_jobs", {{"state", "COMPLETED_WITH_ERRORS"}}).value_or(-1), 2.0);
  EXPECT_THAT(services.importer_->log(), HasSubstr("purged 1 finished job"));
}

// A client that goes away mid-upload (cancelled, without WritesDone) leaves nothing behind: its
// cut-off file is never stored as a whole one, and the spool file is removed.
TEST(ImportUploadTest, UploadsCancelledMidStreamLeaveNoFileAndNoUpload) {
  Services services;
  ASSERT_TRUE(services.Start().ok());
  ASSERT_TRUE(services.SetupTenant("t").ok());
  const std::string row = "k1,ann@example.com\n";
  std::string chunk = "customer_id,email\n";
  while (chunk.size() < (64 << 10)) chunk += row;
  for (int attempt = 0; attempt < 40; ++attempt) {
    auto ctx = Ctx("t");
    v1::UploadResponse response;
    auto writer = services.stub_->Upload(ctx.get(), &response);
    v1::UploadRequest first;
    first.mutable_start()->set_file_name("cut.csv");
    ASSERT_TRUE(writer->Write(first));
    for (int i = 0; i < 1 + attempt % 4; ++i) {
      v1::UploadRequest part;
      part.set_chunk(i == 0 ? chunk : std::string(chunk.size() / row.size(), '\n'));
      writer->Write(part);
    }
    ctx->TryCancel();
    grpc::Status status = writer->Finish();
    EXPECT_FALSE(status.ok()) << attempt;
    EXPECT_TRUE(response.upload_id().empty()) << attempt;
  }
  const std::string spool = services.importer_->data_dir() + "/spool";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto files = [&] {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(spool)) names.push_back(entry.path().string());
    return names;
  };
  while (!files().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_THAT(files(), ::testing::IsEmpty()) << services.Logs();
  EXPECT_THAT(services.importer_->log(), ::testing::Not(HasSubstr("stored:")));
}

// With API keys on, both services check them, and the job's worker reaches the store with the
// caller's key, also after a restart of import-processor.
TEST(ImportAuthTest, WorkerUsesTheCallersKeyAndRolesAreEnforced) {
  TempDir dir("import_auth");
  const std::string keys = dir.path() + "/keys";
  {
    std::ofstream out(keys);
    out << "admin-key acme admin\nwriter-key acme writer\nreader-key acme reader\nother-key globex writer\n";
  }
  Services s;
  auto store = ServiceProcess::Start({.binary = "contact-store", .flags = {"--api_keys_file=" + keys}});
  ASSERT_TRUE(store.ok()) << store.status();
  s.store_ = *std::move(store);
  // A call to the store must be able to finish its 20,000-row batch: one cut off by its deadline
  // is retried and cut off again for as long as the batch takes longer than that (300 ms here
  // once failed every retry in an unoptimised coverage build).
  auto importer = ServiceProcess::Start(
      {.binary = "import-processor",
       .flags = {"--api_keys_file=" + keys, "--store=" + s.store_->address(), "--store_timeout_ms=10000"}});
  ASSERT_TRUE(importer.ok()) << importer.status();
  s.importer_ = *std::move(importer);
  s.Reconnect();
  auto keyed = [](const std::string& key) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    ctx->AddMetadata("x-api-key", key);
    return ctx;
  };
  {
    v1::SetupTenantRequest setup;
    setup.set_primary_key_attribute("customer_id");
    v1::Tenant tenant;
    auto ctx = keyed("admin-key");
    ASSERT_TRUE(s.store_stub_->SetupTenant(ctx.get(), setup, &tenant).ok());
  }
  auto upload = [&](const std::string& key, v1::UploadResponse* response) {
    auto ctx = keyed(key);
    auto writer = s.stub_->Upload(ctx.get(), response);
    v1::UploadRequest first;
    first.mutable_start()->set_file_name("a.csv");
    AddMapping(first.mutable_start()->mutable_import(), "customer_id", "customer_id");
    writer->Write(first);
    v1::UploadRequest chunk;
    std::string content = "customer_id\n";
    for (int i = 0; i < 20000; ++i) content += fmt::format("k{}\n", i);
    chunk.set_chunk(content);
    writer->Write(chunk);
    writer->WritesDone();
    return writer->Finish();
  };
  v1::UploadResponse response;
  EXPECT_EQ(upload("", &response).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(upload("reader-key", &response).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  grpc::Status ok = upload("writer-key", &response);
  ASSERT_TRUE(ok.ok()) << ok.error_message() << s.Logs();
  // Freeze the store so the job cannot finish, then kill import-processor mid-job.
  ASSERT_TRUE(s.store_->Signal(SIGSTOP).ok());

  v1::GetJobRequest get;
  get.set_job_id(response.job().id());
  v1::Job job;
  auto other = keyed("other-key");
  EXPECT_EQ(s.stub_->GetJob(other.get(), get, &job).error_code(), grpc::StatusCode::NOT_FOUND);
  auto reader = keyed("reader-key");
  ASSERT_TRUE(s.stub_->GetJob(reader.get(), get, &job).ok());
  EXPECT_LT(job.state(), v1::COMPLETED);
  ASSERT_TRUE(s.importer_->Kill().ok());
  ASSERT_TRUE(s.store_->Signal(SIGCONT).ok());
  // The job resumes after the restart with the key it stored.
  ASSERT_TRUE(s.importer_->Restart().ok());
  s.Reconnect();
  WaitFor(
      [&] {
        auto ctx = keyed("reader-key");
        return s.stub_->GetJob(ctx.get(), get, &job).ok() && job.state() >= v1::COMPLETED;
      },
      std::chrono::seconds(30));
  EXPECT_EQ(job.state(), v1::COMPLETED) << job.error() << s.Logs();
  EXPECT_EQ(job.counts().inserted(), 20000u);
  v1::GetContactRequest contact_request;
  contact_request.set_primary_key("k2");
  v1::Contact contact;
  auto ctx = keyed("reader-key");
  EXPECT_TRUE(s.store_stub_->GetContact(ctx.get(), contact_request, &contact).ok());

  // Every RPC, as README.md's table gives its lowest role.
  const std::map<std::string, std::string> lowest_role = {
      {"Upload", "writer"},   {"StartImport", "writer"}, {"StartDelete", "writer"}, {"GetJob", "reader"},
      {"ListJobs", "reader"}, {"WatchJob", "reader"},    {"CancelJob", "writer"},   {"GetJobErrors", "reader"},
  };
  EXPECT_THAT(RoleMismatches(s.importer_->Channel(), "contacts.v1.ImportProcessor", lowest_role, kAcmeRoleKeys),
              testing::IsEmpty())
      << s.Logs();
}

// ----- Store calls end with the RPC they serve -----

// With contact-store frozen (SIGSTOP), a StartImport or Upload whose caller gives up after 1 s
// must not leave import-processor waiting on the store for --store_timeout_ms (60 s): the store
// call carries the caller's deadline and cancellation, so the handler ends with the call, and a
// SIGTERM with such a call in flight ends the process within the grace period.
TEST(ImportStoreDeadlineTest, StoreCallsEndWithTheIncomingCall) {
  Services s;
  absl::Status started = s.Start({"--store_timeout_ms=60000", "--grace_period_ms=2000"});
  ASSERT_TRUE(started.ok()) << started;
  const std::string tenant = "deadline";
  ASSERT_TRUE(s.SetupTenant(tenant).ok());
  const std::string csv = "customer_id\nk1\nk2\n";
  v1::StartImportRequest import;
  AddMapping(&import, "customer_id", "customer_id");
  auto upload_file = [&] {
    v1::UploadResponse upload;
    grpc::Status status = s.Upload(tenant, csv, "a.csv", &upload);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return upload.upload_id();
  };
  const std::string first_upload = upload_file();
  const std::string second_upload = upload_file();
  ASSERT_TRUE(s.store_->Signal(SIGSTOP).ok());
  // However the test ends: a stopped store would not see the SIGTERM of a coverage build's teardown.
  absl::Cleanup thaw = [&] { (void)s.store_->Signal(SIGCONT); };

  auto start_import = [&](const std::string& upload_id, int seconds, v1::Job* job) {
    import.set_upload_id(upload_id);
    auto ctx = Ctx(tenant, seconds);
    return s.stub_->StartImport(ctx.get(), import, job);
  };
  using Clock = std::chrono::steady_clock;
  {
    const auto begin = Clock::now();
    v1::Job job;
    EXPECT_EQ(start_import(first_upload, 1, &job).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
    EXPECT_LT(Clock::now() - begin, std::chrono::seconds(3));
  }
  {
    const auto begin = Clock::now();
    auto ctx = Ctx(tenant, 1);
    v1::UploadResponse response;
    auto writer = s.stub_->Upload(ctx.get(), &response);
    v1::UploadRequest first;
    first.mutable_start()->set_file_name("b.csv");
    writer->Write(first);
    writer->WritesDone();
    EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
    EXPECT_LT(Clock::now() - begin, std::chrono::seconds(3));
  }

  // Once the store is back, the same upload imports normally, and is the tenant's only job: the
  // StartImport its caller gave up on did not go on to start one.
  ASSERT_TRUE(s.store_->Signal(SIGCONT).ok());
  {
    v1::Job job;
    grpc::Status status = start_import(first_upload, 30, &job);
    ASSERT_TRUE(status.ok()) << status.error_message() << s.Logs();
    EXPECT_EQ(s.Wait(tenant, job.id()).state(), v1::COMPLETED) << s.Logs();
    v1::ListJobsResponse jobs;
    auto ctx = Ctx(tenant);
    ASSERT_TRUE(s.stub_->ListJobs(ctx.get(), v1::ListJobsRequest(), &jobs).ok());
    ASSERT_GE(jobs.jobs_size(), 1);
    EXPECT_EQ(jobs.jobs_size(), 1);
    EXPECT_EQ(jobs.jobs(0).id(), job.id());  // newest first
  }

  // A SIGTERM while a StartImport waits on the frozen store: the drain cancels the call after the
  // grace period (2 s), and with it the store call, so the process exits long before 60 s.
  ASSERT_TRUE(s.store_->Signal(SIGSTOP).ok());
  grpc::Status hung_status;
  std::thread hung([&] {
    v1::Job job;
    hung_status = start_import(second_upload, 30, &job);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the call reaches the store
  absl::StatusOr<ExitInfo> exit = s.importer_->Terminate(std::chrono::seconds(15));
  hung.join();
  ASSERT_TRUE(exit.ok()) << exit.status() << s.Logs();
  EXPECT_LT(exit->elapsed, std::chrono::seconds(7)) << s.Logs();
  EXPECT_FALSE(hung_status.ok());
}

// ----- Batch order -----

// Pairs of consecutive rows claim one unique email each, one row per batch, so the two batches of
// a pair are in flight together (--batches_in_flight defaults to 2): contact-store must still
// apply them in file order, and the first row of every pair keeps its email, every time.
TEST(ImportOrderTest, BatchesInFlightTogetherAreAppliedInFileOrder) {
  Services s;
  absl::Status started = s.Start({"--batch_rows=1", "--workers=1"});
  ASSERT_TRUE(started.ok()) << started;
  const std::string tenant = "order";
  ASSERT_TRUE(s.SetupTenant(tenant).ok());
  constexpr int kPairs = 40;
  std::string csv = "customer_id,email\n";
  for (int i = 0; i < 2 * kPairs; ++i) csv += fmt::format("p{},pair{}@x.io\n", i, i / 2);
  v1::StartImportRequest import;
  for (const char* column : {"customer_id", "email"}) AddMapping(&import, column, column);
  v1::UploadResponse upload;
  grpc::Status status = s.Upload(tenant, csv, "pairs.csv", &upload, &import);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const v1::Job job = s.Wait(tenant, upload.job().id());
  EXPECT_EQ(job.state(), v1::COMPLETED_WITH_ERRORS) << s.Logs();
  EXPECT_EQ(job.counts().inserted(), static_cast<uint64_t>(kPairs));
  EXPECT_EQ(job.counts().rejected(), static_cast<uint64_t>(kPairs));
  for (int pair = 0; pair < kPairs; ++pair) {
    absl::StatusOr<v1::Contact> owner = s.GetContact(tenant, fmt::format("pair{}@x.io", pair), /*by_email=*/true);
    ASSERT_TRUE(owner.ok()) << owner.status();
    EXPECT_EQ(owner->primary_key(), fmt::format("p{}", 2 * pair)) << "pair " << pair;
  }
  std::set<uint64_t> rejected_rows;
  for (const v1::JobError& error : s.Errors(tenant, job.id())) rejected_rows.insert(error.row_number());
  std::set<uint64_t> odd_rows;
  for (int pair = 0; pair < kPairs; ++pair) odd_rows.insert(2 * pair + 2);  // 1-based data rows
  EXPECT_EQ(rejected_rows, odd_rows);
}

// ----- Crash safety -----

int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value == nullptr ? fallback : std::atoi(value);
}

// Imports one generated file into tenant "clean", then into tenant "crashed" while SIGKILLing
// the service `victim` names at random moments (restarting it on the same data folder, and for
// contact-store on the same port); the crashed job must end exactly like the clean one.
enum class Victim { kImporter, kStore };

// `crashed_job_id`, when given, receives the crashed job's id.
void ExpectCrashedImportEndsLikeACleanRun(Services& s, Victim victim, int repeat_per_mille = 30,
                                          std::string* crashed_job_id = nullptr) {
  const int rows = EnvInt("CRASH_ROWS", 20000);
  const int kills = EnvInt("CRASH_KILLS", 3);
  const uint32_t seed = static_cast<uint32_t>(EnvInt("CRASH_SEED", 1234));
  const Dataset data(rows, seed, repeat_per_mille);
  const std::string bytes = data.Render(',', true, true);

  auto import = [&](const std::string& tenant) {
    EXPECT_TRUE(s.SetupTenant(tenant).ok());
    v1::UploadResponse upload;
    grpc::Status status = s.Upload(tenant, bytes, "crash.csv", &upload);
    EXPECT_TRUE(status.ok()) << status.error_message();
    auto ctx = Ctx(tenant);
    v1::Job job;
    status = s.stub_->StartImport(ctx.get(), DatasetImport(upload.upload_id(), 0), &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return job.id();
  };
  const v1::Job clean = s.Wait("clean", import("clean"));
  ASSERT_EQ(clean.state(), v1::COMPLETED_WITH_ERRORS);

  const std::string job_id = import("crashed");
  if (crashed_job_id != nullptr) *crashed_job_id = job_id;
  std::mt19937 rng(seed);
  std::vector<uint64_t> targets;
  for (int i = 0; i < kills; ++i) targets.push_back(rng() % static_cast<uint64_t>(rows));
  std::sort(targets.begin(), targets.end());
  int killed_while_running = 0;
  for (uint64_t target : targets) {
    v1::Job job;
    WaitFor(
        [&] {
          auto ctx = Ctx("crashed");
          v1::GetJobRequest request;
          request.set_job_id(job_id);
          if (!s.stub_->GetJob(ctx.get(), request, &job).ok()) return false;
          return job.counts().received() >= target || job.state() >= v1::COMPLETED;
        },
        std::chrono::seconds(60));
    if (job.state() < v1::COMPLETED) ++killed_while_running;
    ServiceProcess& process = victim == Victim::kImporter ? *s.importer_ : *s.store_;
    auto exit = process.Kill();
    ASSERT_TRUE(exit.ok()) << exit.status();
    ASSERT_TRUE(process.Restart(/*same_port=*/victim == Victim::kStore).ok()) << s.Logs();
    s.Reconnect();
  }
  const v1::Job crashed = s.Wait("crashed", job_id);
  std::cerr << "killed " << kills << " times, " << killed_while_running << " while the job ran\n";
  EXPECT_GT(killed_while_running, 0);

  EXPECT_EQ(crashed.state(), clean.state());
  v1::JobCounts a = crashed.counts();
  v1::JobCounts b = clean.counts();
  EXPECT_EQ(a.SerializeAsString().size(), b.SerializeAsString().size());
  EXPECT_EQ(a.received(), b.received());
  EXPECT_EQ(a.inserted(), b.inserted());
  EXPECT_EQ(a.updated(), b.updated());
  EXPECT_EQ(a.unchanged(), b.unchanged());
  EXPECT_EQ(a.duplicate(), b.duplicate());
  EXPECT_EQ(a.rejected(), b.rejected());
  EXPECT_EQ(a.emails_fixed(), b.emails_fixed());
  std::map<std::string, uint64_t> ra(a.rejected_by_reason().begin(), a.rejected_by_reason().end());
  std::map<std::string, uint64_t> rb(b.rejected_by_reason().begin(), b.rejected_by_reason().end());
  EXPECT_EQ(ra, rb);
  EXPECT_EQ(s.Errors("crashed", job_id).size(), s.Errors("clean", clean.id()).size());
  EXPECT_EQ(s.ExportLines("crashed"), s.ExportLines("clean"));
  const DatasetExpectation expected = data.Expect();
  EXPECT_EQ(a.inserted(), expected.inserted);
  EXPECT_EQ(a.duplicate(), expected.duplicate);
  if (::testing::Test::HasFailure()) std::cerr << s.Logs();
}

TEST(ImportCrashTest, SigkillAtRandomMomentsEndsLikeACleanRun) {
  Services s;
  absl::Status started = s.Start({"--batch_rows=100", "--workers=1"});
  ASSERT_TRUE(started.ok()) << started;
  std::string job_id;
  ExpectCrashedImportEndsLikeACleanRun(s, Victim::kImporter, /*repeat_per_mille=*/30, &job_id);
  // ~3% of its rows repeat a key: the dedup pass runs.
  EXPECT_EQ(s.Logs().find(fmt::format("job {}: every primary key", job_id)), std::string::npos);
}

// A file that repeats no primary key: the upload finds them distinct and the job skips its dedup
// pass, also each time it resumes after a kill (services/import_processor/distinct_keys.h).
TEST(ImportCrashTest, SigkillOfAnImportWhoseKeysAreAllDistinctEndsLikeACleanRun) {
  Services s;
  absl::Status started = s.Start({"--batch_rows=100", "--workers=1"});
  ASSERT_TRUE(started.ok()) << started;
  std::string job_id;
  ExpectCrashedImportEndsLikeACleanRun(s, Victim::kImporter, /*repeat_per_mille=*/0, &job_id);
  const std::string logs = s.Logs();
  EXPECT_NE(logs.find(fmt::format("job {}: every primary key was distinct at upload: no dedup pass", job_id)),
            std::string::npos)
      << logs;
}

// contact-store killed mid-import with every batch ingested as SST files: an ingestion is all or
// nothing across its column families (records, ordinals, applied marker, tenant record), so the
// replayed batches after each restart end like a clean run.
TEST(ImportCrashTest, SigkillOfTheStoreWhileBatchesAreIngestedEndsLikeACleanRun) {
  Services s;
  absl::Status started = s.Start({"--batch_rows=100", "--workers=1", "--store_retry_ms=60000"},
                                 {"--ingest_min_entries=1", "--idle_compaction_ms=0"});
  ASSERT_TRUE(started.ok()) << started;
  ExpectCrashedImportEndsLikeACleanRun(s, Victim::kStore);
}

// Throughput and memory on a big file; runs only when IMPORT_BENCH_ROWS is set (e.g. 1000000).
// Prints rows/s and the importer's peak RSS (VmHWM).
TEST(ImportBenchTest, BigFileThroughputAndPeakMemory) {
  const int rows = EnvInt("IMPORT_BENCH_ROWS", 0);
  if (rows <= 0) GTEST_SKIP() << "set IMPORT_BENCH_ROWS to run";
  Services s;
  absl::Status started = s.Start({"--log_level=debug"});
  ASSERT_TRUE(started.ok()) << started;
  ASSERT_TRUE(s.SetupTenant("bench").ok());
  std::string bytes = "customer_id,first_name,last_name,email,mobile,age,city,joined,score,vip\n";
  bytes.reserve(static_cast<size_t>(rows) * 110);
  static const char* const kCities[] = {"Pune", "Delhi", "Mumbai", "Chennai", "Kolkata", "Jaipur"};
  for (int i = 0; i < rows; ++i) {
    bytes += fmt::format("C{:08d},Name{},Surname{},user{}@example.com,9{:09d},{},{},2023-{:02d}-{:02d},{}.{:02d},{}\n",
                         i, i % 1000, i % 777, i, i, 18 + i % 60, kCities[i % 6], 1 + i % 12, 1 + i % 28, i % 1000,
                         i % 100, i % 2 ? "yes" : "no");
  }
  v1::StartImportRequest import;
  const std::vector<std::pair<std::string, v1::AttributeType>> columns = {
      {"customer_id", v1::TEXT}, {"first_name", v1::TEXT}, {"last_name", v1::TEXT}, {"email", v1::EMAIL},
      {"mobile", v1::MOBILE},    {"age", v1::INTEGER},     {"city", v1::TEXT},      {"joined", v1::DATE},
      {"score", v1::DECIMAL},    {"vip", v1::BOOLEAN}};
  for (const auto& [name, type] : columns) {
    AddMapping(&import, name, name);
    if (name != "customer_id" && name != "email" && name != "mobile") {
      v1::NewAttribute* a = import.add_create_attributes();
      a->set_name(name);
      a->set_type(type);
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  v1::UploadResponse upload;
  grpc::Status status = s.Upload("bench", bytes, "big.csv", &upload, &import, 1 << 20);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const auto t1 = std::chrono::steady_clock::now();
  const v1::Job job = s.Wait("bench", upload.job().id());
  const auto t2 = std::chrono::steady_clock::now();
  std::ifstream proc(fmt::format("/proc/{}/status", s.importer_->pid()));
  std::string line, hwm;
  while (std::getline(proc, line)) {
    if (line.starts_with("VmHWM")) hwm = line;
  }
  auto cpu = [](pid_t pid) {
    std::ifstream stat(fmt::format("/proc/{}/stat", pid));
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::vector<std::string> f;
    for (std::string x; fields >> x;) f.push_back(x);
    return f.size() > 12 ? (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK)) : 0.0;
  };
  std::cerr << fmt::format("cpu seconds: import-processor {:.2f}, contact-store {:.2f}\n", cpu(s.importer_->pid()),
                           cpu(s.store_->pid()));
  auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
  std::cerr << fmt::format(
      "{} rows, {:.1f} MB: upload {:.2f} s, job {:.2f} s ({:.0f} rows/s), end to end {:.2f} s; importer {}\n", rows,
      static_cast<double>(bytes.size()) / 1e6, secs(t1 - t0), secs(t2 - t1), rows / secs(t2 - t1), secs(t2 - t0), hwm);
  const std::string log = s.importer_->log();
  if (size_t at = log.find("dedup pass"); at != std::string::npos)
    std::cerr << log.substr(at, log.find('\n', at) - at) << "\n";
  EXPECT_EQ(job.state(), v1::COMPLETED) << job.error();
  EXPECT_EQ(job.counts().inserted(), static_cast<uint64_t>(rows));
}

// A cancel answered while the job cannot reach its batch boundary (contact-store frozen) holds
// after import-processor is killed and restarted: the job ends CANCELLED, not COMPLETED, and its
// counts match what the store holds.
TEST(ImportCancelCrashTest, ACancelAnsweredBeforeASigkillEndsTheJobAfterTheRestart) {
  Services s;
  ASSERT_TRUE(s.Start({"--batch_rows=500"}).ok()) << s.Logs();
  ASSERT_TRUE(s.SetupTenant("t").ok()) << s.Logs();
  std::string content = "customer_id\n";
  constexpr int kRows = 100000;
  for (int i = 0; i < kRows; ++i) content += fmt::format("k{}\n", i);
  v1::StartImportRequest import;
  AddMapping(&import, "customer_id", "customer_id");
  v1::UploadResponse response;
  grpc::Status uploaded = s.Upload("t", content, "cancel.csv", &response, &import, 1 << 20);
  ASSERT_TRUE(uploaded.ok()) << uploaded.error_message() << s.Logs();
  v1::GetJobRequest get;
  get.set_job_id(response.job().id());
  v1::Job job;
  // Running before the store freezes: a cancel that reaches the job while a worker is only picking
  // it up answers QUEUED and ends it before it sends anything, which is not the case under test.
  WaitFor(
      [&] {
        auto ctx = Ctx("t");
        return s.stub_->GetJob(ctx.get(), get, &job).ok() && job.state() != v1::QUEUED;
      },
      std::chrono::seconds(30));
  ASSERT_TRUE(s.store_->Signal(SIGSTOP).ok());
  absl::Cleanup thaw = [&] { (void)s.store_->Signal(SIGCONT); };
  {
    auto ctx = Ctx("t");
    grpc::Status cancelled = s.stub_->CancelJob(ctx.get(), get, &job);
    ASSERT_TRUE(cancelled.ok()) << cancelled.error_message() << s.Logs();
  }
  ASSERT_EQ(job.state(), v1::RUNNING) << "the job ended before the store froze: too few rows";
  ASSERT_TRUE(s.importer_->Kill().ok());
  ASSERT_TRUE(s.store_->Signal(SIGCONT).ok());
  ASSERT_TRUE(s.importer_->Restart().ok()) << s.Logs();
  s.Reconnect();
  WaitFor(
      [&] {
        auto ctx = Ctx("t");
        return s.stub_->GetJob(ctx.get(), get, &job).ok() && job.state() >= v1::COMPLETED;
      },
      std::chrono::seconds(60));
  EXPECT_EQ(job.state(), v1::CANCELLED) << job.error() << s.Logs();
  EXPECT_LT(job.counts().received(), static_cast<uint64_t>(kRows));
  EXPECT_EQ(job.counts().inserted(), job.counts().received());
  v1::StoreCountResponse count;
  auto ctx = Ctx("t");
  ASSERT_TRUE(s.store_stub_->Count(ctx.get(), v1::StoreCountRequest(), &count).ok());
  EXPECT_EQ(count.count(), job.counts().inserted());
}

}  // namespace
}  // namespace contacts::test
