// contactsctl through all three services as real processes, as a developer without grpcurl uses
// it: set up a tenant on contact-store, import a file through import-processor, list the
// attributes the import created, then count, export and search through audience-query.
#include <fstream>
#include <iterator>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

  TempDir dir_{"contactsctl_e2e"};
  std::string out_, err_;
};

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

}  // namespace
}  // namespace contacts
