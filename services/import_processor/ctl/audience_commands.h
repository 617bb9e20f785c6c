// contactsctl's commands on audience-query: count and export the contacts a filter picks (filter
// text as audience-query's README describes it; none picks every contact), and search by primary
// key; saved segments.
#pragma once

#include "services/import_processor/ctl/cli.h"

namespace contacts::ctl {

// Each returns the exit status: 0 success, 1 a failed call; usage errors exit 2.
// count [FILTER]: prints the number.
int Count(Client& client, const Options& options);
// export [FILTER] [--attributes a,b,...]: the CSV on stdout, the row count on stderr. A stream cut
// short exits 1 and says so: what stdout holds then is not the whole audience.
int Export(Client& client, const Options& options);
// search KEY [--prefix] [--limit N]: each contact found with its attributes, lists and blacklist.
int Search(Client& client, const Options& options);
// segments: each saved segment's name and filter.
int ListSegments(Client& client, const Options& options);
// save-segment NAME FILTER [--replace]: saves the filter text under NAME (usable as
// in_segment("NAME")); --replace changes an existing segment instead (NOT_FOUND without one).
int SaveSegment(Client& client, const Options& options);
// delete-segment NAME.
int DeleteSegment(Client& client, const Options& options);

}  // namespace contacts::ctl
