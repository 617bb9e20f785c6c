// contactsctl's commands on contact-store: the tenant's settings (show, set up), its attributes and
// its lists.
#pragma once

#include "services/import_processor/ctl/cli.h"

namespace contacts::ctl {

// Each returns the exit status: 0 success, 1 a failed call; usage errors exit 2.
// tenant: prints the tenant's settings and contact count.
int ShowTenant(Client& client, const Options& options);
// setup --primary-key NAME [--type TYPE] [--country-code CC]: SetupTenant, then prints the tenant.
int SetupTenant(Client& client, const Options& options);
// attributes: one line per attribute (name, type, indexed, primary key or system).
int ListAttributes(Client& client, const Options& options);
// lists: id, name and member count of each list.
int ListLists(Client& client, const Options& options);
// create-list NAME: prints the new list's id (what upload --list and in_list("NAME") take).
int CreateList(Client& client, const Options& options);

}  // namespace contacts::ctl
