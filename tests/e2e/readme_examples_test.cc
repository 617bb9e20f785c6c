// The grpcurl examples in the READMEs, run as written against the three services: every call of
// the top-level README's walk-through and of audience-query's README must answer OK, in order, on
// one fresh suite (the later examples use what the earlier ones created). grpcurl itself is not
// packaged for Debian, so this test reads each `grpcurl` line, turns its `-d` JSON into the
// request with protobuf's JSON mapping (the one grpcurl uses), and makes the call itself. The
// top-level README's contactsctl walk-through runs as written too, with the real contactsctl.
#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <gtest/gtest.h>

#include "contacts/v1/audience_query.grpc.pb.h"
#include "contacts/v1/contact_store.grpc.pb.h"
#include "contacts/v1/import_processor.grpc.pb.h"
#include "grpc/health/v1/health.pb.h"

#include "tests/testing/service_process.h"

namespace contacts {
namespace {

using test::ServiceProcess;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The commands of `program` ("grpcurl", "contactsctl") in a markdown file's ```sh blocks,
// continuation lines joined, in order. `after`: only blocks below the first line that starts with
// it (a heading).
std::vector<std::string> ShellCommands(const std::string& markdown, const std::string& after,
                                       const std::string& program = "grpcurl") {
  std::vector<std::string> commands;
  std::istringstream in(markdown);
  std::string line;
  bool started = after.empty();
  bool in_sh = false;
  std::string pending;
  while (std::getline(in, line)) {
    if (!started) {
      started = line.rfind(after, 0) == 0;
      continue;
    }
    if (line.rfind("```", 0) == 0) {
      in_sh = !in_sh && line == "```sh";
      continue;
    }
    if (!in_sh) continue;
    if (!pending.empty()) {
      pending += " " + line;
    } else if (line.rfind(program + " ", 0) == 0) {
      pending = line;
    } else {
      continue;
    }
    if (!pending.empty() && pending.back() == '\\') {
      pending.pop_back();
      continue;
    }
    commands.push_back(pending);
    pending.clear();
  }
  return commands;
}

// Splits a command line as a POSIX shell would for these examples: '...' literally, "..." with
// backslash escapes, words otherwise; stops at a pipe.
std::vector<std::string> ShellWords(const std::string& command) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < command.size(); ++i) {
    const char c = command[i];
    if (c == '\'') {
      const size_t end = command.find('\'', i + 1);
      word += command.substr(i + 1, end - i - 1);
      i = end;
      in_word = true;
    } else if (c == '"') {
      for (++i; i < command.size() && command[i] != '"'; ++i) {
        if (command[i] == '\\' && i + 1 < command.size()) ++i;
        word += command[i];
      }
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '|' && !in_word) {
      break;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(word);
  return words;
}

struct GrpcurlCall {
  std::string address;
  std::string method;  // "service/method", or "list"
  std::string data = "{}";
  std::vector<std::pair<std::string, std::string>> headers;
};

std::optional<GrpcurlCall> ParseGrpcurl(const std::string& command) {
  std::vector<std::string> words = ShellWords(command);
  GrpcurlCall call;
  std::vector<std::string> positional;
  for (size_t i = 1; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (word == "-plaintext") continue;
    if ((word == "-d" || word == "-H" || word == "-max-time") && i + 1 < words.size()) {
      const std::string& value = words[++i];
      if (word == "-d") call.data = value;
      if (word == "-H") {
        const size_t colon = value.find(':');
        call.headers.emplace_back(value.substr(0, colon), value.substr(value.find_first_not_of(' ', colon + 1)));
      }
      continue;
    }
    if (word.rfind("-", 0) == 0) return std::nullopt;
    positional.push_back(word);
  }
  if (positional.size() != 2) return std::nullopt;
  call.address = positional[0];
  call.method = positional[1];
  return call;
}

class ReadmeExamplesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The descriptors of every service the examples call, linked in and in the generated pool.
    (void)v1::GetContactRequest::descriptor();
    (void)v1::CountRequest::descriptor();
    (void)v1::UploadRequest::descriptor();
    (void)grpc::health::v1::HealthCheckRequest::descriptor();
    auto suite = test::StartSuite();
    ASSERT_TRUE(suite.ok()) << suite.status();
    suite_ = *std::move(suite);
    // The READMEs' ports (scripts/run_local.sh's) -> this test's.
    by_readme_address_ = {{"127.0.0.1:50051", suite_.store.get()},
                          {"127.0.0.1:50052", suite_.importer.get()},
                          {"127.0.0.1:50053", suite_.audience.get()}};
  }

  // Runs one grpcurl command; returns the answer as JSON. Fails the test on a call that is not OK.
  std::string Run(const std::string& command) {
    SCOPED_TRACE(command);
    std::optional<GrpcurlCall> call = ParseGrpcurl(command);
    if (!call) {
      ADD_FAILURE() << "not a grpcurl command this test understands";
      return "";
    }
    auto service = by_readme_address_.find(call->address);
    if (service == by_readme_address_.end()) {
      ADD_FAILURE() << "unknown address " << call->address;
      return "";
    }
    std::shared_ptr<grpc::Channel> channel = service->second->Channel();
    if (call->method == "list") {
      std::vector<std::string> services = test::ReflectionListServices(channel);
      EXPECT_FALSE(services.empty());
      std::string listed;
      for (const std::string& name : services) listed += name + "\n";
      return listed;
    }
    std::string full_name = call->method;
    std::replace(full_name.begin(), full_name.end(), '/', '.');
    const google::protobuf::MethodDescriptor* method =
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full_name);
    if (method == nullptr) {
      ADD_FAILURE() << "no method " << full_name;
      return "";
    }
    if (method->client_streaming() || method->server_streaming()) return "(streaming: not run)";
    google::protobuf::MessageFactory* factory = google::protobuf::MessageFactory::generated_factory();
    std::unique_ptr<google::protobuf::Message> request(factory->GetPrototype(method->input_type())->New());
    std::unique_ptr<google::protobuf::Message> response(factory->GetPrototype(method->output_type())->New());
    auto parsed = google::protobuf::util::JsonStringToMessage(call->data, request.get());
    if (!parsed.ok()) {
      ADD_FAILURE() << "-d is not a " << method->input_type()->full_name() << ": " << parsed.ToString();
      return "";
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    for (const auto& [name, value] : call->headers) ctx.AddMetadata(name, value);
    const std::string path = "/" + call->method;
    grpc::Status status = grpc::internal::BlockingUnaryCall<google::protobuf::Message, google::protobuf::Message>(
        channel.get(), grpc::internal::RpcMethod(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC), &ctx, *request,
        response.get());
    EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(*response, &json);
    return json;
  }

  test::Suite suite_;
  std::map<std::string, ServiceProcess*> by_readme_address_;
};

TEST_F(ReadmeExamplesTest, EveryGrpcurlExampleAnswersOk) {
  const std::vector<std::string> walk_through =
      ShellCommands(ReadFile(CONTACTS_SOURCE_DIR "/README.md"), "## Trying it with grpcurl");
  ASSERT_GE(walk_through.size(), 10u);
  std::map<std::string, std::string> answers;  // by method, the last one
  for (const std::string& command : walk_through) {
    std::string answer = Run(command);
    answers[ParseGrpcurl(command).value_or(GrpcurlCall{}).method] = answer;
  }
  // The walk-through's contact is found by its email and counted by the filter that follows.
  EXPECT_NE(answers["contacts.v1.ContactStore/GetContact"].find("\"C-1\""), std::string::npos)
      << answers["contacts.v1.ContactStore/GetContact"];
  EXPECT_EQ(answers["contacts.v1.AudienceQuery/Count"], R"({"count":"1"})");
  EXPECT_NE(answers["list"].find("contacts.v1.ContactStore"), std::string::npos) << answers["list"];

  // audience-query's README goes on from the walk-through's data.
  const std::vector<std::string> audience =
      ShellCommands(ReadFile(CONTACTS_SOURCE_DIR "/services/audience_query/README.md"), "## grpcurl");
  ASSERT_GE(audience.size(), 10u);
  for (const std::string& command : audience) Run(command);
}

// The contactsctl walk-through, each line through a shell in a folder holding the contacts.csv it
// imports, as tenant "readme-ctl" (the grpcurl walk-through's tenant already has a list "vip").
TEST_F(ReadmeExamplesTest, EveryContactsctlExampleSucceeds) {
  const std::vector<std::string> walk_through =
      ShellCommands(ReadFile(CONTACTS_SOURCE_DIR "/README.md"), "## Trying it with contactsctl", "contactsctl");
  ASSERT_GE(walk_through.size(), 8u);
  test::TempDir dir("readme_contactsctl");
  std::ofstream(dir.path() + "/contacts.csv") << "customer_id,email,mobile,city\n"
                                                 "C-1,asha@example.com,98765 43210,Pune\n"
                                                 "C-2,ravi@example.com,,Mumbai\n";
  const std::string environment = "cd '" + dir.path() + "' && CONTACTS_STORE=" + suite_.store->address() +
                                  " CONTACTS_IMPORT=" + suite_.importer->address() +
                                  " CONTACTS_QUERY=" + suite_.audience->address() + " CONTACTS_TENANT=readme-ctl " +
                                  test::BinaryPath("contactsctl");
  for (const std::string& command : walk_through) {
    std::string output;
    // stderr to a file of its own: a line's "> file" takes stdout only. In a group ended on a line
    // of its own, so that a line ending in a "# comment" does not swallow the redirection.
    EXPECT_EQ(test::RunShell("{ " + environment + command.substr(std::string("contactsctl").size()) + "\n} 2>'" +
                                 dir.path() + "/stderr'",
                             &output),
              0)
        << command << "\n"
        << output << ReadFile(dir.path() + "/stderr");
  }
  EXPECT_EQ(ReadFile(dir.path() + "/pune.csv"), "customer_id,city,mobile\r\nC-1,Pune,+919876543210\r\n");
}

TEST(GrpcurlCommandsTest, JoinsContinuationsAndSplitsLikeAShell) {
  const std::string markdown =
      "# t\n## Try\n```sh\n# a comment\ngrpcurl -plaintext -d '{\"a\":\"x \\\"y\\\"\"}' \\\n  h:1 s.S/M\n"
      "grpcurl -plaintext -H 'x-tenant: acme' h:2 list\n```\n```\ngrpcurl not sh\n```\n";
  std::vector<std::string> commands = ShellCommands(markdown, "## Try");
  ASSERT_EQ(commands.size(), 2u);
  std::optional<GrpcurlCall> first = ParseGrpcurl(commands[0]);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->data, R"({"a":"x \"y\""})");
  EXPECT_EQ(first->address, "h:1");
  EXPECT_EQ(first->method, "s.S/M");
  std::optional<GrpcurlCall> second = ParseGrpcurl(commands[1]);
  ASSERT_TRUE(second);
  ASSERT_EQ(second->headers.size(), 1u);
  EXPECT_EQ(second->headers[0].first, "x-tenant");
  EXPECT_EQ(second->headers[0].second, "acme");
  EXPECT_EQ(second->method, "list");
  EXPECT_EQ(ShellWords("grpcurl -d @ h:1 s/M | jq ."), (std::vector<std::string>{"grpcurl", "-d", "@", "h:1", "s/M"}));
}

}  // namespace
}  // namespace contacts
