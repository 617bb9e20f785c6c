#include "services/contact_store/query_columns.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace contacts::store {
namespace {

using contacts::internal::StoredContact;

// Visits every ordinal of `bitmap` in ascending order.
template <typename Fn>
void ForEach(const Roaring& bitmap, Fn&& fn) {
  for (auto it = bitmap.begin(); it != bitmap.end(); ++it) fn(*it);
}

// Collects matching ordinals into a bitmap in one bulk insert. The universe is expanded to an
// array first (a bulk copy, much faster than stepping an iterator), then filtered in place.
template <typename Pred>
Roaring Select(const Roaring& universe, Pred&& pred) {
  std::vector<uint32_t> ordinals(universe.cardinality());
  if (ordinals.empty()) return Roaring();
  universe.toUint32Array(ordinals.data());
  size_t kept = 0;
  for (uint32_t ordinal : ordinals) {
    if (pred(ordinal)) ordinals[kept++] = ordinal;
  }
  Roaring out;
  if (kept > 0) out.addMany(kept, ordinals.data());
  return out;
}

// splitmix64 finaliser: a fixed, well-mixed hash that never changes across releases (control-group
// membership must be stable across restarts and versions, which std::hash and absl::Hash are not).
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

void AttributeColumn::Set(uint32_t ordinal, std::string_view canonical) {
  if (canonical.empty()) {
    present_.remove(ordinal);
    return;
  }
  if (TypedPredicate::IsIntegerLike(type_)) {
    if (ints_.size() <= ordinal) ints_.resize(ordinal + 1 + ordinal / 4);
    ints_[ordinal] = TypedPredicate::IntegerKey(type_, canonical);
  } else if (type_ == AttributeType::kDecimal) {
    if (decimals_.size() <= ordinal) decimals_.resize(ordinal + 1 + ordinal / 4);
    decimals_[ordinal] = DecimalScaledOf(canonical).value_or(0);
  } else {
    if (codes_.size() <= ordinal) codes_.resize(ordinal + 1 + ordinal / 4);
    auto found = code_of_.find(absl::string_view(canonical.data(), canonical.size()));
    if (found == code_of_.end()) {
      found = code_of_.emplace(std::string(canonical), static_cast<uint32_t>(dictionary_.size())).first;
      dictionary_.emplace_back(canonical);
    }
    codes_[ordinal] = found->second;
  }
  present_.add(ordinal);
}

Roaring AttributeColumn::Evaluate(const TypedPredicate& predicate, const Roaring& universe) const {
  using contacts::v1::Operator;
  if (predicate.op() == Operator::IS_NOT_SET) return universe - present_;
  Roaring candidates = universe & present_;
  if (predicate.op() == Operator::IS_SET) return candidates;
  if (TypedPredicate::IsIntegerLike(type_)) {
    return Select(candidates, [&](uint32_t o) { return predicate.MatchesInt(ints_[o]); });
  }
  if (type_ == AttributeType::kDecimal) {
    return Select(candidates, [&](uint32_t o) { return predicate.MatchesDecimal(decimals_[o]); });
  }
  // Decide once per dictionary entry, then test codes.
  std::vector<uint8_t> code_matches(dictionary_.size());
  for (size_t code = 0; code < dictionary_.size(); ++code) {
    code_matches[code] = predicate.MatchesText(dictionary_[code]) ? 1 : 0;
  }
  return Select(candidates, [&](uint32_t o) { return code_matches[codes_[o]] != 0; });
}

uint64_t TenantColumns::PrimaryKeyHash(std::string_view primary_key) {
  // FNV-1a, then mixed: stable forever, unlike absl::Hash.
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : primary_key) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return Mix(h);
}

bool TenantColumns::InControlGroup(uint64_t pk_hash, uint64_t group_seed, uint32_t percent_basis_points) {
  return Mix(pk_hash ^ group_seed) % 10000 < percent_basis_points;
}

uint64_t TenantColumns::LookupValueHash(uint32_t attribute_id, std::string_view value) {
  return Mix(PrimaryKeyHash(value) ^ (uint64_t{attribute_id} << 32));
}

void TenantColumns::Count(absl::flat_hash_map<uint64_t, uint32_t>& filter, uint64_t hash, bool add) {
  if (add) {
    ++filter[hash];
    return;
  }
  auto it = filter.find(hash);
  if (it != filter.end() && --it->second == 0) filter.erase(it);
}

void TenantColumns::CountLookupValues(const StoredContact& contact, bool add) {
  for (uint32_t id : {layout_.email_attribute_id, layout_.mobile_attribute_id}) {
    auto it = contact.values().find(id);
    if (it != contact.values().end() && !it->second.empty()) Count(value_filter_, LookupValueHash(id, it->second), add);
  }
}

void TenantColumns::Grow(uint32_t ordinal) {
  if (created_.size() > ordinal) return;
  size_t size = static_cast<size_t>(ordinal) + 1 + ordinal / 4;
  created_.resize(size);
  modified_.resize(size);
  pk_hash_.resize(size);
}

void TenantColumns::Apply(const StoredContact* before, const StoredContact* after) {
  if (before != nullptr) {
    Count(pk_filter_, PrimaryKeyHash(before->primary_key()), false);
    CountLookupValues(*before, false);
    const uint32_t o = before->ordinal();
    for (uint64_t list_id : before->list_ids()) {
      auto it = lists_.find(list_id);
      if (it != lists_.end()) it->second.remove(o);
    }
    for (auto& channel : blacklisted_) channel.remove(o);
    if (after == nullptr) {
      alive_.remove(o);
      has_email_.remove(o);
      has_mobile_.remove(o);
      for (auto& [id, column] : attributes_) column->Set(o, "");
      return;
    }
  }
  if (after == nullptr) return;
  const uint32_t o = after->ordinal();
  Grow(o);
  alive_.add(o);
  created_[o] = after->created_at_micros();
  modified_[o] = after->modified_at_micros();
  pk_hash_[o] = PrimaryKeyHash(after->primary_key());
  Count(pk_filter_, pk_hash_[o], true);
  CountLookupValues(*after, true);
  for (uint64_t list_id : after->list_ids()) lists_[list_id].add(o);
  for (const auto& entry : after->blacklist()) {
    int channel = entry.channel();
    if (channel > 0 && channel < static_cast<int>(blacklisted_.size())) blacklisted_[channel].add(o);
  }
  const auto& values = after->values();
  auto email = values.find(layout_.email_attribute_id);
  if (email != values.end() && !email->second.empty()) {
    has_email_.add(o);
  } else {
    has_email_.remove(o);
  }
  auto mobile = values.find(layout_.mobile_attribute_id);
  if (mobile != values.end() && !mobile->second.empty()) {
    has_mobile_.add(o);
  } else {
    has_mobile_.remove(o);
  }
  for (auto& [id, column] : attributes_) {
    auto it = values.find(id);
    column->Set(o, it == values.end() ? std::string_view() : std::string_view(it->second));
  }
}

void TenantColumns::AddAttributeColumn(uint32_t attribute_id, AttributeType type) {
  attributes_[attribute_id] = std::make_unique<AttributeColumn>(type);
}

void TenantColumns::DropAttributeColumn(uint32_t attribute_id) { attributes_.erase(attribute_id); }

const AttributeColumn* TenantColumns::attribute_column(uint32_t attribute_id) const {
  auto it = attributes_.find(attribute_id);
  return it == attributes_.end() ? nullptr : it->second.get();
}

void TenantColumns::SetAttribute(uint32_t attribute_id, uint32_t ordinal, std::string_view canonical) {
  auto it = attributes_.find(attribute_id);
  if (it != attributes_.end()) it->second->Set(ordinal, canonical);
}

const Roaring& TenantColumns::list(uint64_t list_id) const {
  auto it = lists_.find(list_id);
  return it == lists_.end() ? empty_ : it->second;
}

const Roaring& TenantColumns::blacklisted(contacts::v1::Channel channel) const {
  int c = static_cast<int>(channel);
  if (c <= 0 || c >= static_cast<int>(blacklisted_.size())) return empty_;
  return blacklisted_[c];
}

Roaring TenantColumns::Between(const Roaring& universe, const std::vector<int64_t>& column, int64_t from, int64_t to) {
  return Select(universe, [&](uint32_t o) { return column[o] >= from && column[o] <= to; });
}

Roaring TenantColumns::CreatedBetween(const Roaring& universe, int64_t from_micros, int64_t to_micros) const {
  return Between(universe & alive_, created_, from_micros, to_micros);
}

Roaring TenantColumns::ModifiedBetween(const Roaring& universe, int64_t from_micros, int64_t to_micros) const {
  return Between(universe & alive_, modified_, from_micros, to_micros);
}

Roaring TenantColumns::ControlGroup(const Roaring& universe, uint64_t group_seed, uint32_t percent_basis_points) const {
  return Select(universe & alive_,
                [&](uint32_t o) { return InControlGroup(pk_hash_[o], group_seed, percent_basis_points); });
}

}  // namespace contacts::store
