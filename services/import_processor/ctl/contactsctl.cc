// contactsctl: a command-line client of the suite for people and scripts (`contactsctl --help`
// prints the usage).
//
//   imports (import-processor, --import):
//   contactsctl upload FILE [--map COLUMN=ATTRIBUTE ...] [--create NAME:TYPE[:indexed] ...] [--list ID ...]
//                      [--fix-typos] [--mode upsert|add|update] [--dry-run] [--delimiter D] [--wait]
//   contactsctl job ID | watch ID | cancel ID
//   contactsctl jobs [--state STATE] [--limit N]
//   contactsctl errors ID            (CSV on stdout: row_number,column,value,reason)
//   contactsctl fixes ID             (email typo fixes, the same CSV: value = the address before,
//                                    reason = "email typo fixed to <address>")
//   contactsctl delete (--file F | --keys a,b,...) [--by email] [--list ID ...] [--wait]
//   the tenant (contact-store, --store):
//   contactsctl tenant | attributes | lists | create-list NAME
//   contactsctl setup --primary-key NAME [--type TYPE] [--country-code CC]
//   audiences (audience-query, --query):
//   contactsctl count [FILTER]
//   contactsctl export [FILTER] [--attributes a,b,...]   (CSV on stdout)
//   contactsctl search KEY [--prefix] [--limit N]
//   contactsctl segments | save-segment NAME FILTER [--replace] | delete-segment NAME
//
// Global flags (anywhere): --import HOST:PORT (default 127.0.0.1:50052, env CONTACTS_IMPORT),
// --query HOST:PORT (127.0.0.1:50053, CONTACTS_QUERY), --store HOST:PORT (127.0.0.1:50051,
// CONTACTS_STORE), --api-key KEY (env CONTACTS_API_KEY), --tenant NAME (env CONTACTS_TENANT), and
// TLS: --tls-ca FILE (env CONTACTS_TLS_CA; PEM CA certificates: set, the call uses TLS and verifies
// the service's certificate against them), --tls-cert FILE and --tls-key FILE (env
// CONTACTS_TLS_CERT, CONTACTS_TLS_KEY; a client certificate for mutual TLS), --tls-server-name NAME
// (env CONTACTS_TLS_SERVER_NAME; the name the certificate must carry when the service's host is
// not in it, e.g. an IP address).
// Exit status: 0 success (a job that ended COMPLETED or COMPLETED_WITH_ERRORS), 1 error (and a
// search that found nothing), 2 usage, 3 the job ended FAILED or CANCELLED.
#include <string>

#include "services/import_processor/ctl/audience_commands.h"
#include "services/import_processor/ctl/cli.h"
#include "services/import_processor/ctl/import_commands.h"
#include "services/import_processor/ctl/tenant_commands.h"

int main(int argc, char** argv) {
  using namespace contacts::ctl;
  const Options options = Parse(argc, argv);
  Client client(options);
  const std::string& command = options.command;
  if (command == "upload") return Upload(client, options);
  if (command == "delete") return Delete(client, options);
  if (command == "jobs") return Jobs(client, options);
  if (command == "errors") return Errors(client, options, /*fixes=*/false);
  if (command == "fixes") return Errors(client, options, /*fixes=*/true);
  if (command == "job" || command == "watch" || command == "cancel") return JobCommand(client, options);
  if (command == "tenant") return ShowTenant(client, options);
  if (command == "setup") return SetupTenant(client, options);
  if (command == "attributes") return ListAttributes(client, options);
  if (command == "count") return Count(client, options);
  if (command == "export") return Export(client, options);
  if (command == "search") return Search(client, options);
  if (command == "lists") return ListLists(client, options);
  if (command == "create-list") return CreateList(client, options);
  if (command == "segments") return ListSegments(client, options);
  if (command == "save-segment") return SaveSegment(client, options);
  if (command == "delete-segment") return DeleteSegment(client, options);
  Usage("unknown command " + command);
}
