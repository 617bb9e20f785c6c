// contactsctl through all three services as real processes, as a developer without grpcurl uses
// it: set up a tenant on contact-store, import a file through import-processor, list the
// attributes the import created, then count, export and search through audience-query. Also what
// it prints when a call fails, against the services and against a stand-in audience-query.
#include <zip.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/e2e/suite_fixture.h"
#include "tests/testing/service_process.h"

namespace contacts {
namespace {

using test::BinaryPath;
using test::RunShell;
using test::ServiceProcess;
using test::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

class ContactsctlE2eTest : public test::SuiteFixture {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    ASSERT_NO_FATAL_FAILURE(StartServices());
  }

  // Runs contactsctl with `args` (shell words) against the suite as tenant "acme"; returns its exit
  // status, with its stdout in out_ and its stderr in err_.
  int Ctl(const std::string& args) {
    const std::string err_path = dir_.path() + "/stderr";
    const int status =
        RunShell(fmt::format("CONTACTS_IMPORT={} CONTACTS_QUERY={} CONTACTS_STORE={} CONTACTS_TENANT=acme "
                             "{} {} 2>{}",
                             importer_->address(), audience_->address(), store_->address(), BinaryPath("contactsctl"),
                             args, err_path),
                 &out_);
    std::ifstream err(err_path, std::ios::binary);
    err_.assign(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
    return status;
  }

  // Writes `content` to `name` in dir_ and returns its path.
  std::string WriteFile(const std::string& name, const std::string& content) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  // The id of the job `upload ... --map ...` printed ("job <id> QUEUED"), or "".
  std::string JobIdIn(const std::string& out) const {
    const size_t at = out.find("\njob ");
    return at == std::string::npos ? "" : out.substr(at + 5, 24);
  }

  TempDir dir_{"contactsctl_e2e"};
  std::string out_, err_;
};

// A .zip at `path` holding `entries` (name -> content), made with libzip; false if that failed.
bool WriteZip(const std::string& path, const std::vector<std::pair<std::string, std::string>>& entries) {
  int error = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  if (archive == nullptr) return false;
  for (const auto& [name, content] : entries) {
    zip_source_t* source = zip_source_buffer(archive, content.data(), content.size(), 0);
    if (zip_file_add(archive, name.c_str(), source, ZIP_FL_ENC_UTF_8) < 0) {
      zip_source_free(source);
      zip_discard(archive);
      return false;
    }
  }
  return zip_close(archive) == 0;
}

// export neutralises cells a spreadsheet would run as formulas; --as-stored writes them as stored,
// for a file that goes back into another system ("+promo@example.com" is an address).
TEST_F(ContactsctlE2eTest, ExportAsStoredKeepsCellsThatLookLikeFormulas) {
  ASSERT_EQ(Ctl("setup --primary-key email"), 0) << err_;
  const std::string file = WriteFile("promo.csv", "email,city\n+promo@example.com,=Pune\n");
  ASSERT_EQ(Ctl("upload " + file + " --map email=email --map city=city --create city:text --wait"), 0) << out_ << err_;
  ASSERT_EQ(Ctl("export --attributes city"), 0) << err_;
  EXPECT_EQ(out_, "email,city\r\n'+promo@example.com,'=Pune\r\n");
  ASSERT_EQ(Ctl("export --attributes city --as-stored"), 0) << err_;
  EXPECT_EQ(out_, "email,city\r\n+promo@example.com,=Pune\r\n");
}

TEST_F(ContactsctlE2eTest, SetsUpImportsCountsExportsAndSearches) {
  ASSERT_EQ(Ctl("setup --primary-key customer_id --country-code +44"), 0) << err_;
  EXPECT_THAT(out_, HasSubstr("primary key: customer_id"));
  EXPECT_THAT(out_, HasSubstr("default country code: 44"));

  ASSERT_EQ(Ctl("create-list vip"), 0) << err_;
  EXPECT_EQ(out_, "list 1 vip\n");

  const std::string file = dir_.path() + "/people.csv";
  std::ofstream(file, std::ios::binary) << "customer_id,email,city,age,mobile\n"
                                           "C-1,ann@example.com,Pune,31,07700 900123\n"
                                           "C-2,bo@example.com,\"Pune, West\",40,\n"
                                           "C-3,cy@example.com,Mumbai,25,\n"
                                           "D-1,di@example.com,Pune,52,\n";
  ASSERT_EQ(Ctl("upload " + file +
                " --map customer_id=customer_id --map email=email --map city=city --map age=age --map mobile=mobile"
                " --create city:text:indexed --create age:integer:indexed --list 1 --wait"),
            0)
      << out_ << err_;
  EXPECT_THAT(out_, HasSubstr("inserted=4"));

  ASSERT_EQ(Ctl("tenant"), 0) << err_;
  EXPECT_THAT(out_, HasSubstr("contacts: 4"));
  ASSERT_EQ(Ctl("attributes"), 0) << err_;
  EXPECT_THAT(out_, ::testing::ContainsRegex("customer_id +TEXT +no +primary key"));
  EXPECT_THAT(out_, ::testing::ContainsRegex("age +INTEGER +yes"));
  EXPECT_THAT(out_, ::testing::ContainsRegex("email +EMAIL +[a-z]+ +system"));

  ASSERT_EQ(Ctl("count"), 0) << err_;
  EXPECT_EQ(out_, "4\n");
  ASSERT_EQ(Ctl("count 'city = \"Pune\" AND age >= 30'"), 0) << err_;
  EXPECT_EQ(out_, "2\n");
  // A bad filter is the service's INVALID_ARGUMENT, saying where.
  EXPECT_EQ(Ctl("count 'age >='"), 1);
  EXPECT_THAT(err_, HasSubstr("contactsctl: INVALID_ARGUMENT: filter.text: position"));

  // The mobile was read with the tenant's country code (+44, set up above).
  ASSERT_EQ(Ctl("export 'age >= 30' --attributes city,age,mobile"), 0) << err_;
  EXPECT_EQ(out_,
            "customer_id,city,age,mobile\r\n"
            "C-1,Pune,31,+447700900123\r\n"
            "C-2,\"Pune, West\",40,\r\n"
            "D-1,Pune,52,\r\n");
  EXPECT_THAT(err_, HasSubstr("exported 3 rows"));

  ASSERT_EQ(Ctl("search C- --prefix --limit 2"), 0) << err_;
  EXPECT_THAT(out_, HasSubstr("C-1\n  age: 31\n  city: Pune\n  customer_id: C-1\n  email: ann@example.com\n"));
  EXPECT_THAT(out_, HasSubstr("C-2\n"));
  EXPECT_THAT(out_, Not(HasSubstr("C-3")));
  EXPECT_EQ(Ctl("search C-9"), 1);
  EXPECT_THAT(err_, HasSubstr("no contact has the primary key \"C-9\""));

  ASSERT_EQ(Ctl("lists"), 0) << err_;
  EXPECT_THAT(out_, ::testing::ContainsRegex("1 +vip +4\n"));
  ASSERT_EQ(Ctl("save-segment 'pune adults' 'city = \"Pune\" AND age >= 18'"), 0) << err_;
  ASSERT_EQ(Ctl("count 'in_segment(\"pune adults\") AND in_list(\"vip\")'"), 0) << err_;
  EXPECT_EQ(out_, "2\n");
  EXPECT_EQ(Ctl("save-segment 'pune adults' 'age >= 18'"), 1);  // taken: --replace changes it
  EXPECT_THAT(err_, HasSubstr("ALREADY_EXISTS"));
  ASSERT_EQ(Ctl("save-segment 'pune adults' 'age >= 50' --replace"), 0) << err_;
  ASSERT_EQ(Ctl("segments"), 0) << err_;
  EXPECT_THAT(out_, ::testing::ContainsRegex("pune adults +age >= 50\n"));
  ASSERT_EQ(Ctl("count 'in_segment(\"pune adults\")'"), 0) << err_;
  EXPECT_EQ(out_, "1\n");
  ASSERT_EQ(Ctl("delete-segment 'pune adults'"), 0) << err_;
  EXPECT_EQ(Ctl("count 'in_segment(\"pune adults\")'"), 1);
  EXPECT_THAT(err_, HasSubstr("unknown segment"));
}

// The new commands check their flags as the import ones do: a flag another command takes is refused,
// a value must be what the flag needs, and nothing is sent.
TEST_F(ContactsctlE2eTest, RefusesWhatTheCommandsDoNotTake) {
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"count --prefix", "count does not take --prefix"},
      {"export --limit 3", "export does not take --limit"},
      {"search", "search needs a KEY"},
      {"search a b", "search: unexpected argument \"b\""},
      {"search a --limit x", "--limit: \"x\" is not a number"},
      {"setup", "setup needs --primary-key"},
      {"setup --primary-key id --type bogus", "--type takes text, integer"},
      {"setup --primary-key id --country-code 4x", "--country-code takes digits"},
      {"attributes extra", "attributes: unexpected argument \"extra\""},
      {"create-list", "create-list needs a NAME"},
      {"save-segment only-a-name", "save-segment needs a NAME and a FILTER"},
      {"delete-segment a --replace", "delete-segment does not take --replace"},
  };
  for (const auto& [args, says] : refused) {
    EXPECT_EQ(Ctl(args), 2) << args << "\n" << out_ << err_;
    EXPECT_THAT(err_, HasSubstr(says)) << args;
  }
  // Nothing was set up by the refused setups.
  EXPECT_NE(Ctl("count"), 0);
  EXPECT_THAT(err_, HasSubstr("FAILED_PRECONDITION"));
}

// --help is asked for, not a mistake: the usage on stdout and exit 0, as the services' --help.
// A real usage error stays exit 2 with the usage on stderr.
TEST_F(ContactsctlE2eTest, HelpPrintsTheUsageToStdoutAndExitsZero) {
  EXPECT_EQ(Ctl("--help"), 0) << err_;
  EXPECT_THAT(out_, HasSubstr("usage:\n"));
  EXPECT_THAT(out_, HasSubstr("contactsctl upload FILE"));
  EXPECT_EQ(err_, "");
  EXPECT_EQ(Ctl("jobs --help"), 0) << err_;
  EXPECT_THAT(out_, HasSubstr("usage:\n"));

  EXPECT_EQ(Ctl(""), 2);
  EXPECT_EQ(out_, "");
  EXPECT_THAT(err_, HasSubstr("contactsctl: no command\nusage:\n"));
  EXPECT_EQ(Ctl("--bogus jobs"), 2);
  EXPECT_EQ(out_, "");
  EXPECT_THAT(err_, HasSubstr("contactsctl: unknown flag --bogus\nusage:\n"));
}

// `jobs` prints its table header only once import-processor has answered: a TLS flag that does not
// go with the others, a TLS file that cannot be read (usage errors, exit 2) or a failed call (exit
// 1) leave stdout empty, as they do for every other command.
TEST_F(ContactsctlE2eTest, JobsPrintsNothingOnStdoutWhenItFails) {
  const std::string missing = dir_.path() + "/missing.pem";
  for (const std::string& args :
       {"--tls-cert " + missing + " jobs", std::string("--tls-server-name import-processor jobs"),
        "--tls-ca " + missing + " jobs", "--tls-ca " + missing + " errors 1"}) {
    EXPECT_EQ(Ctl(args), 2) << args << "\n" << err_;
    EXPECT_EQ(out_, "") << args;
    EXPECT_THAT(err_, HasSubstr("contactsctl: --tls-")) << args;
  }
  // Nothing listens on port 1: UNAVAILABLE.
  EXPECT_EQ(Ctl("--import 127.0.0.1:1 jobs"), 1);
  EXPECT_EQ(out_, "");
  EXPECT_THAT(err_, HasSubstr("contactsctl: UNAVAILABLE"));

  ASSERT_EQ(Ctl("jobs"), 0) << err_;
  EXPECT_THAT(out_, ::testing::StartsWith("ID "));
}

// `upload` shows 100% once the service has accepted the file, not when the service refused it at
// `start` (a file over --max_upload_bytes, a kind of file it does not read) after the few chunks of
// a small file had already gone out.
TEST_F(ContactsctlE2eTest, UploadShowsHundredPercentOnlyWhenTheServiceAcceptedIt) {
  const std::string csv = WriteFile("people.csv", "customer_id,email\nC-1,ann@example.com\n");
  ASSERT_EQ(Ctl("upload " + csv), 0) << err_;
  EXPECT_THAT(err_, HasSubstr("uploaded 100%\n"));

  const std::string xlsx = WriteFile("people.xlsx", "customer_id,email\nC-1,ann@example.com\n");
  EXPECT_EQ(Ctl("upload " + xlsx), 1);
  EXPECT_THAT(err_, HasSubstr("contactsctl: INVALID_ARGUMENT: file_name"));
  EXPECT_THAT(err_, Not(HasSubstr("100%")));

  auto limited = ServiceProcess::Start(
      {.binary = "import-processor", .flags = {"--store=" + store_->address(), "--max_upload_bytes=100"}});
  ASSERT_TRUE(limited.ok()) << limited.status();
  const std::string big = WriteFile("big.csv", "customer_id\n" + std::string(200, 'x') + "\n");
  EXPECT_EQ(Ctl(fmt::format("--import {} upload {}", (*limited)->address(), big)), 1);
  EXPECT_THAT(err_, HasSubstr("contactsctl: RESOURCE_EXHAUSTED"));
  EXPECT_THAT(err_, Not(HasSubstr("100%")));
}

// For a .zip the service answers the size of the file it extracted but the SHA-256 of what it
// received, the .zip: contactsctl says so, with the .zip's size beside the extracted one.
TEST_F(ContactsctlE2eTest, ZipUploadSaysWhichBytesTheSizeAndTheDigestDescribe) {
  const std::string data = "customer_id\nC-1\nC-2\n";  // 20 bytes
  const std::string zip = dir_.path() + "/people.zip";
  ASSERT_TRUE(WriteZip(zip, {{"people.csv", data}}));
  std::ifstream in(zip, std::ios::binary);
  const std::string zip_bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string sha256;
  ASSERT_EQ(RunShell("sha256sum " + zip + " | cut -c1-64", &sha256), 0);
  sha256.pop_back();  // the newline

  ASSERT_EQ(Ctl("upload " + zip), 0) << err_;
  EXPECT_THAT(out_, HasSubstr(fmt::format(": 20 bytes extracted from a {}-byte .zip, delimiter \",\", sha256 {} (of "
                                          "the .zip)\n",
                                          zip_bytes.size(), sha256)));
  // Not for another file: its size and digest are both of the bytes sent.
  const std::string csv = WriteFile("people.csv", data);
  ASSERT_EQ(Ctl("upload " + csv), 0) << err_;
  EXPECT_THAT(out_, ::testing::ContainsRegex(": 20 bytes, delimiter \",\", sha256 [0-9a-f]{64}\n"));
}

// `job`, `watch` and `cancel` print the rejected rows by reason sorted by the reason, the same on
// every call (a protobuf map's order is unspecified: three calls gave three orders).
TEST_F(ContactsctlE2eTest, JobPrintsTheRejectedReasonsSorted) {
  ASSERT_EQ(Ctl("setup --primary-key customer_id"), 0) << err_;
  const std::string file = WriteFile("people.csv",
                                     "customer_id,email,age,score,born\n"
                                     "C-1,not-an-address,1,1.5,2001-02-03\n"
                                     "C-2,b@example.com,forty,1.5,2001-02-03\n"
                                     "C-3,c@example.com,3,high,2001-02-03\n"
                                     "C-4,d@example.com,4,1.5,someday\n"
                                     "C-5,e@example.com\n"
                                     ",f@example.com,6,1.5,2001-02-03\n");
  ASSERT_EQ(Ctl("upload " + file +
                " --map customer_id=customer_id --map email=email --map age=age --map score=score --map born=born"
                " --create age:integer --create score:decimal --create born:date --wait"),
            0)
      << out_ << err_;
  const std::string job_id = JobIdIn(out_);
  ASSERT_EQ(job_id.size(), 24u) << out_;
  for (const std::string command : {"job", "watch", "cancel", "job", "job", "job"}) {
    Ctl(command + " " + job_id);
    std::vector<std::string> reasons;
    for (absl::string_view line : absl::StrSplit(out_, '\n')) {
      // "    rejected <reason>: N"; a reason may hold ':' ("invalid_value:age").
      if (absl::ConsumePrefix(&line, "    rejected ")) reasons.emplace_back(line.substr(0, line.rfind(": ")));
    }
    ASSERT_GE(reasons.size(), 4u) << command << "\n" << out_;
    EXPECT_TRUE(std::is_sorted(reasons.begin(), reasons.end())) << command << "\n" << out_;
  }
}

// A stand-in audience-query whose Export sends one chunk and then fails as a connection that broke
// does (UNAVAILABLE), and whose Count fails so at once.
class BrokenAudience final : public v1::AudienceQuery::Service {
  grpc::Status Export(grpc::ServerContext* /*context*/, const v1::ExportRequest* /*request*/,
                      grpc::ServerWriter<v1::ExportChunk>* writer) override {
    v1::ExportChunk chunk;
    chunk.set_csv("customer_id\r\nC-1\r\n");
    chunk.set_rows(1);
    writer->Write(chunk);
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "Socket closed");
  }
  grpc::Status Count(grpc::ServerContext* /*context*/, const v1::CountRequest* /*request*/,
                     v1::CountResponse* /*response*/) override {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "Socket closed");
  }
};

// The TLS hint after UNAVAILABLE ("plaintext to ...: if audience-query serves TLS, give its CA")
// is for a call that never got through; after rows came, the connection and its TLS had worked
// and the hint would send the user the wrong way.
TEST_F(ContactsctlE2eTest, AStreamThatBreaksAfterItsFirstRowsGetsNoTlsHint) {
  BrokenAudience service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  const std::string query = fmt::format("--query 127.0.0.1:{}", port);

  EXPECT_EQ(Ctl(query + " export"), 1);
  EXPECT_EQ(out_, "customer_id\r\nC-1\r\n");
  EXPECT_THAT(err_, HasSubstr("contactsctl: the export stopped after 1 rows: the output is incomplete\n"
                              "contactsctl: UNAVAILABLE: Socket closed\n"));
  EXPECT_THAT(err_, Not(HasSubstr("--tls-ca")));
  // Nothing came back: the hint stays.
  EXPECT_EQ(Ctl(query + " count"), 1);
  EXPECT_THAT(err_, HasSubstr("contactsctl: plaintext to 127.0.0.1:"));
  server->Shutdown();
}

}  // namespace
}  // namespace contacts
