// DistinctKeyCheck: while an upload streams, works out whether every row holds a different primary
// key, so that an import of the file can skip its first pass (job_runner.cc, FirstPass), which
// reads and validates the whole file to find the rows a later row with the same key supersedes.
// With no key repeated, no row is superseded and that pass finds nothing; it was ~10% of a 1M-row
// import, with contact-store idle meanwhile.
//
// The upload does not know the mapping yet, so it checks the column the preview suggests for the
// tenant's primary-key attribute, normalising each value as the import will (NormalizeValue with
// the tenant's options; emails also through the typo fixer, which can only merge values, so keys
// distinct with fixing are distinct without it). StartImport uses the result only when the plan
// reads its primary key from that column, as that type, with those options (KeysDistinctFor).
//
// Keys are told apart by a 64-bit hash: two keys sharing one count as repeated, which only costs
// the first pass. The answer is never "distinct" for a file that repeats a key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "contacts/internal/jobs.pb.h"

#include "common/values/typed_value.h"
#include "services/import_processor/column_mapping.h"

namespace contacts {

// What an upload knows of the tenant's primary key when it starts.
struct PrimaryKeySpec {
  std::string attribute;  // the tenant's primary-key attribute
  AttributeType type = AttributeType::kText;
  ValueOptions value_options;
  // For EMAIL keys: the import's typo fixer (null for none), applied whether or not the import
  // will fix typos (see above).
  std::optional<std::string> (*email_fixer)(std::string_view) = nullptr;
  // Rows checked at most; a longer file is left to the first pass (8 bytes per row while the
  // upload lasts). Default: 16M rows, 128 MiB.
  size_t max_rows = size_t{16} << 20;
};

class DistinctKeyCheck {
 public:
  // `attributes`: the tenant's schema, to find the column the preview will suggest for the key.
  DistinctKeyCheck(PrimaryKeySpec spec, std::vector<AttributeInfo> attributes);

  // The header record, then every data record in order.
  void OnHeader(const std::vector<std::string>& columns);
  void OnRecord(const std::vector<std::string_view>& fields);

  // After the last record: what StartImport compares its plan with, when no key repeats; nullopt
  // when one may (or the check could not be made: no column suggested, too many rows).
  std::optional<internal::DistinctKeys> Finish();

 private:
  PrimaryKeySpec spec_;
  std::vector<AttributeInfo> attributes_;
  std::optional<size_t> column_;  // the suggested key column, while the check goes on
  size_t header_fields_ = 0;
  std::vector<uint64_t> hashes_;  // of the rows' keys, in row order
};

// True when every row's key in the upload is distinct when read as `plan_column` (header index)
// of `type` with `default_country_code`.
bool KeysDistinctFor(const internal::StoredUpload& upload, size_t plan_column, AttributeType type,
                     const std::string& default_country_code);

// Whether any two of `hashes` are equal. Reorders nothing; takes ~4 bytes per hash meanwhile.
bool AnyRepeated(const std::vector<uint64_t>& hashes);

}  // namespace contacts
