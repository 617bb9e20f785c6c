// contactsctl's command line and connections, shared by its commands: the parsed arguments, usage
// errors (exit 2), the channels to the three services with the global flags' TLS and credentials,
// and how a failed call is reported (exit 1).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/status.h>

#include "contacts/v1/audience_query.grpc.pb.h"
#include "contacts/v1/contact_store.grpc.pb.h"
#include "contacts/v1/import_processor.grpc.pb.h"

namespace contacts::ctl {

struct Options {
  std::string command;
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> values;  // --name value
  std::map<std::string, bool> switches;            // --name
  std::string import_address = "127.0.0.1:50052";
  std::string query_address = "127.0.0.1:50053";
  std::string store_address = "127.0.0.1:50051";
  std::string api_key;
  std::string tenant;
  std::string tls_ca_file;    // empty: plaintext
  std::string tls_cert_file;  // empty: no client certificate
  std::string tls_key_file;
  std::string tls_server_name;             // empty: the host of the service's address
  std::set<std::string> from_environment;  // global flags whose value came from their variable
  // From the TLS flags, their files read and checked by Parse: plaintext without --tls-ca.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// Parses argv: global flags anywhere (their environment variables first), then the command, its
// flags and its positional arguments, then reads the TLS files. Any mistake, a TLS flag that does
// not go with the others or a TLS file that is not what its flag needs included, is a usage error
// (exits 2) before anything is printed or sent. --help prints the usage to stdout and exits 0.
Options Parse(int argc, char** argv);

// Prints "contactsctl: <message>" (when not empty) and the usage to stderr, and exits 2.
[[noreturn]] void Usage(const std::string& message);

// Every value of the command flag `name`, in order; the last one.
std::vector<std::string> All(const Options& options, const std::string& name);
std::optional<std::string> One(const Options& options, const std::string& name);

// `text` as a number (digits only); a usage error naming `what` otherwise.
uint64_t ParseId(const std::string& text, const std::string& what);

// The service a call goes to: which one, and the global flag that holds its address.
enum class Service { kImport, kQuery, kStore };

// Stubs of the three services, each connected on first use with the credentials Parse made, and
// call contexts carrying the API key and tenant.
class Client {
 public:
  explicit Client(const Options& options) : options_(options) {}

  v1::ImportProcessor::Stub& import();
  v1::AudienceQuery::Stub& query();
  v1::ContactStore::Stub& store();

  std::unique_ptr<grpc::ClientContext> Context() const;

  // Reports a failed call to `service` on stderr, with what to check when it was UNAVAILABLE
  // although something listens (a failed TLS handshake reads the same as a server that is down)
  // and nothing had come back yet (`replied`: a stream that had delivered messages broke later, so
  // the connection and its TLS worked); returns 1, the exit status for it.
  int Fail(Service service, const grpc::Status& status, bool replied = false) const;

 private:
  std::shared_ptr<grpc::Channel> Connect(const std::string& address);
  std::string UnavailableHint(Service service) const;

  const Options& options_;
  std::unique_ptr<v1::ImportProcessor::Stub> import_;
  std::unique_ptr<v1::AudienceQuery::Stub> query_;
  std::unique_ptr<v1::ContactStore::Stub> store_;
};

}  // namespace contacts::ctl
