#include "services/import_processor/distinct_keys.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace contacts {

DistinctKeyCheck::DistinctKeyCheck(PrimaryKeySpec spec, std::vector<AttributeInfo> attributes)
    : spec_(std::move(spec)), attributes_(std::move(attributes)) {}

void DistinctKeyCheck::OnHeader(const std::vector<std::string>& columns) {
  header_fields_ = columns.size();
  const std::vector<std::string> suggested = SuggestAttributes(columns, attributes_);
  for (size_t i = 0; i < suggested.size(); ++i) {
    if (suggested[i] == spec_.attribute) column_ = i;
  }
}

void DistinctKeyCheck::OnRecord(const std::vector<std::string_view>& fields) {
  if (!column_) return;
  // A ragged row, or one whose key is invalid or empty, is rejected by the import and supersedes
  // nothing.
  if (fields.size() != header_fields_) return;
  if (hashes_.size() == spec_.max_rows) {
    column_.reset();
    hashes_ = {};
    return;
  }
  absl::StatusOr<std::string> key = NormalizeValue(spec_.type, fields[*column_], spec_.value_options);
  if (!key.ok() || key->empty()) return;
  if (spec_.type == AttributeType::kEmail && spec_.email_fixer != nullptr) {
    if (std::optional<std::string> fixed = spec_.email_fixer(*key)) *key = std::move(*fixed);
  }
  hashes_.push_back(absl::HashOf(std::string_view(*key)));
}

std::optional<internal::DistinctKeys> DistinctKeyCheck::Finish() {
  if (!column_ || AnyRepeated(hashes_)) return std::nullopt;
  hashes_ = {};
  internal::DistinctKeys keys;
  keys.set_column_index(static_cast<uint32_t>(*column_));
  keys.set_type(static_cast<v1::AttributeType>(static_cast<int>(spec_.type)));
  keys.set_default_country_code(spec_.value_options.default_country_code);
  return keys;
}

bool KeysDistinctFor(const internal::StoredUpload& upload, size_t plan_column, AttributeType type,
                     const std::string& default_country_code) {
  if (!upload.has_distinct_keys()) return false;
  const internal::DistinctKeys& keys = upload.distinct_keys();
  return keys.column_index() == plan_column && static_cast<int>(keys.type()) == static_cast<int>(type) &&
         keys.default_country_code() == default_country_code;
}

bool AnyRepeated(const std::vector<uint64_t>& hashes) {
  // Sorting every hash (~70 ms for a million, at the end of the upload) mostly confirms what a
  // bitmap says first: a hash whose bit was set already may repeat one (or share the bit with
  // another hash: ~6% of them at 16 bits per hash); only the hashes of such bits are sorted.
  int bits_log2 = 16;
  while ((uint64_t{1} << bits_log2) < 16 * static_cast<uint64_t>(hashes.size())) ++bits_log2;
  const uint64_t mask = (uint64_t{1} << bits_log2) - 1;
  std::vector<uint64_t> seen((mask + 1) / 64);
  std::vector<uint64_t> shared((mask + 1) / 64);
  bool any_shared = false;
  for (uint64_t hash : hashes) {
    const uint64_t bit = (hash >> 7) & mask;  // absl's low bits are its hash tables' probe start
    uint64_t& word = seen[bit / 64];
    const uint64_t flag = uint64_t{1} << (bit % 64);
    if (word & flag) {
      shared[bit / 64] |= flag;
      any_shared = true;
    }
    word |= flag;
  }
  if (!any_shared) return false;
  std::vector<uint64_t> candidates;
  for (uint64_t hash : hashes) {
    const uint64_t bit = (hash >> 7) & mask;
    if (shared[bit / 64] & (uint64_t{1} << (bit % 64))) candidates.push_back(hash);
  }
  std::sort(candidates.begin(), candidates.end());
  return std::adjacent_find(candidates.begin(), candidates.end()) != candidates.end();
}

}  // namespace contacts
