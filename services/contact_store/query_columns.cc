#include "services/contact_store/query_columns.h"

#include <algorithm>

#include "absl/hash/hash.h"
#include "services/contact_store/stored_values.h"

namespace contacts::store {
namespace {

using contacts::internal::StoredContact;

// Visits every ordinal of `bitmap` in ascending order.
template <typename Fn>
void ForEach(const Roaring& bitmap, Fn&& fn) {
  for (auto it = bitmap.begin(); it != bitmap.end(); ++it) fn(*it);
}

// Collects the ordinals of `universe` that satisfy `pred`. The universe is read a few thousand
// ordinals at a time (bulk reads, much faster than stepping an iterator, without expanding a 10M
// universe into a 40 MB array), filtered in place and added in sorted runs.
template <typename Pred>
Roaring Select(const Roaring& universe, Pred&& pred) {
  constexpr uint32_t kChunk = 4096;
  uint32_t buffer[kChunk];
  roaring_uint32_iterator_t it;
  roaring_init_iterator(&universe.roaring, &it);
  Roaring out;
  while (true) {
    const uint32_t n = roaring_read_uint32_iterator(&it, buffer, kChunk);
    if (n == 0) break;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t ordinal = buffer[i];
      buffer[kept] = ordinal;
      kept += pred(ordinal) ? 1 : 0;
    }
    if (kept > 0) out.addMany(kept, buffer);
    if (n < kChunk) break;
  }
  return out;
}

size_t value_bitmap_limit_ = AttributeColumn::kDefaultValueBitmapLimit;

// Heap bytes of a bitmap: container payloads plus, per container, its key, type, pointer and the
// malloc'd container struct.
size_t HeapBytes(const Roaring& bitmap) {
  roaring_statistics_t stats;
  roaring_bitmap_statistics(&bitmap.roaring, &stats);
  return size_t{stats.n_bytes_array_containers} + stats.n_bytes_run_containers + stats.n_bytes_bitset_containers +
         size_t{stats.n_containers} * 48;
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

size_t AttributeColumn::value_bitmap_limit() { return value_bitmap_limit_; }

void AttributeColumn::set_value_bitmap_limit_for_testing(size_t limit) { value_bitmap_limit_ = limit; }

absl::int128 AttributeColumn::KeyAt(uint32_t ordinal) const {
  if (TypedPredicate::IsIntegerLike(type_)) return ints_[ordinal];
  if (type_ == AttributeType::kDecimal) return decimals_[ordinal];
  return codes_[ordinal];
}

bool AttributeColumn::KeyMatches(const TypedPredicate& predicate, absl::int128 key) const {
  if (TypedPredicate::IsIntegerLike(type_)) return predicate.MatchesInt(static_cast<int64_t>(key));
  if (type_ == AttributeType::kDecimal) return predicate.MatchesDecimal(key);
  return predicate.MatchesText(dictionary_[static_cast<uint32_t>(key)]);
}

void AttributeColumn::AddToValue(absl::int128 key, uint32_t ordinal) {
  ValueBitmap& value = by_value_[key];
  value.ordinals.add(ordinal);
  ++value.size;
  if (by_value_.size() > value_bitmap_limit_) {
    high_cardinality_ = true;
    by_value_ = {};  // releases the table's memory too, unlike clear()
  }
}

void AttributeColumn::RemoveFromValue(absl::int128 key, uint32_t ordinal) {
  auto it = by_value_.find(key);
  if (it == by_value_.end()) return;
  it->second.ordinals.remove(ordinal);
  if (--it->second.size == 0) by_value_.erase(it);
}

void AttributeColumn::Set(uint32_t ordinal, std::string_view canonical) {
  const bool had = present_.contains(ordinal);
  const bool bitmaps = !high_cardinality_;
  const absl::int128 old_key = had && bitmaps ? KeyAt(ordinal) : 0;
  if (canonical.empty()) {
    if (!had) return;
    present_.remove(ordinal);
    if (bitmaps) RemoveFromValue(old_key, ordinal);
    return;
  }
  StoreValue(ordinal, canonical);
  if (!had) present_.add(ordinal);
  if (!bitmaps) return;
  const absl::int128 new_key = KeyAt(ordinal);
  if (had && new_key == old_key) return;
  if (had) RemoveFromValue(old_key, ordinal);
  AddToValue(new_key, ordinal);
}

void AttributeColumn::SetNew(uint32_t ordinal, std::string_view canonical) {
  StoreValue(ordinal, canonical);
  if (!high_cardinality_) AddToValue(KeyAt(ordinal), ordinal);
}

void AttributeColumn::AddPresent(std::vector<uint32_t>& ordinals) {
  if (!std::is_sorted(ordinals.begin(), ordinals.end())) std::sort(ordinals.begin(), ordinals.end());
  present_.addMany(ordinals.size(), ordinals.data());
}

void AttributeColumn::StoreValue(uint32_t ordinal, std::string_view canonical) {
  if (TypedPredicate::IsIntegerLike(type_)) {
    ints_.EnsureSize(size_t{ordinal} + 1);
    ints_[ordinal] = TypedPredicate::IntegerKey(type_, canonical);
  } else if (type_ == AttributeType::kDecimal) {
    decimals_.EnsureSize(size_t{ordinal} + 1);
    decimals_[ordinal] = DecimalScaledOf(canonical).value_or(0);
  } else {
    codes_.EnsureSize(size_t{ordinal} + 1);
    auto found = code_of_.find(absl::string_view(canonical.data(), canonical.size()));
    if (found == code_of_.end()) {
      found = code_of_.emplace(std::string(canonical), static_cast<uint32_t>(dictionary_.size())).first;
      dictionary_.emplace_back(canonical);
    }
    codes_[ordinal] = found->second;
  }
}

Roaring AttributeColumn::Evaluate(const TypedPredicate& predicate, const Roaring& universe,
                                  bool universe_is_alive) const {
  using contacts::v1::Operator;
  if (predicate.op() == Operator::IS_NOT_SET) return universe - present_;
  if (predicate.op() == Operator::IS_SET) return universe_is_alive ? present_ : universe & present_;
  return high_cardinality_ ? EvaluateByScan(predicate, universe)
                           : EvaluateByValues(predicate, universe, universe_is_alive);
}

std::optional<uint64_t> AttributeColumn::CountMatches(const TypedPredicate& predicate) const {
  using contacts::v1::Operator;
  if (predicate.op() == Operator::IS_SET) return present_.cardinality();
  if (predicate.op() == Operator::IS_NOT_SET || high_cardinality_) return std::nullopt;
  uint64_t count = 0;
  for (const auto& [key, value] : by_value_) {
    if (KeyMatches(predicate, key)) count += value.size;
  }
  return count;
}

Roaring AttributeColumn::EvaluateByValues(const TypedPredicate& predicate, const Roaring& universe,
                                          bool universe_is_alive) const {
  std::vector<const Roaring*> matching, others;
  uint64_t matching_size = 0, others_size = 0;
  for (const auto& [key, value] : by_value_) {
    if (KeyMatches(predicate, key)) {
      matching.push_back(&value.ordinals);
      matching_size += value.size;
    } else {
      others.push_back(&value.ordinals);
      others_size += value.size;
    }
  }
  if (matching.empty()) return Roaring();
  if (others_size < matching_size) {
    // Cheaper as present minus the values that do not match (e.g. NE, or a wide range).
    Roaring out = universe_is_alive ? present_ : universe & present_;
    if (others.size() == 1) {
      out -= *others[0];
    } else if (!others.empty()) {
      out -= Roaring::fastunion(others.size(), others.data());
    }
    return out;
  }
  if (matching.size() == 1) return universe_is_alive ? *matching[0] : *matching[0] & universe;
  Roaring out = Roaring::fastunion(matching.size(), matching.data());
  if (!universe_is_alive) out &= universe;
  return out;
}

Roaring AttributeColumn::EvaluateByScan(const TypedPredicate& predicate, const Roaring& universe) const {
  Roaring candidates = universe & present_;
  if (TypedPredicate::IsIntegerLike(type_)) {
    int64_t low = 0, high = 0;
    if (predicate.IntInterval(&low, &high)) {
      if (high < low) return Roaring();
      // low <= v <= high as one unsigned compare of the distance from low (wraps below low).
      const uint64_t base = static_cast<uint64_t>(low);
      const uint64_t width = static_cast<uint64_t>(high) - base;
      return Select(candidates, [&](uint32_t o) { return static_cast<uint64_t>(ints_[o]) - base <= width; });
    }
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

size_t AttributeColumn::MemoryBytes() const {
  size_t bytes = HeapBytes(present_) + ints_.MemoryBytes() + decimals_.MemoryBytes() + codes_.MemoryBytes();
  for (const std::string& entry : dictionary_) bytes += 2 * (sizeof(std::string) + entry.capacity());
  for (const auto& [key, value] : by_value_) bytes += sizeof(key) + sizeof(value) + HeapBytes(value.ordinals);
  return bytes;
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

// As absl::string_view: Debian's Abseil has a string_view type of its own, and hashes a
// std::string_view through std::hash instead.
uint64_t TenantColumns::FilterKeyHash(std::string_view primary_key) {
  return absl::HashOf(absl::string_view(primary_key.data(), primary_key.size()));
}

uint64_t TenantColumns::LookupValueHash(uint32_t attribute_id, std::string_view value) {
  return absl::HashOf(attribute_id, absl::string_view(value.data(), value.size()));
}

void TenantColumns::Count(StaggeredHashMap<uint32_t>& filter, uint64_t hash, bool add) {
  if (add) {
    ++filter[hash];
    return;
  }
  uint32_t* count = filter.Find(hash);
  if (count != nullptr && --*count == 0) filter.Erase(hash);
}

void TenantColumns::AddValueOwner(uint64_t hash, uint32_t ordinal) {
  if (!value_owners_.TryEmplace(hash, ordinal).second) value_owners_more_[hash].add(ordinal);
}

void TenantColumns::RemoveValueOwner(uint64_t hash, uint32_t ordinal) {
  uint32_t* owner = value_owners_.Find(hash);
  if (owner == nullptr) return;
  auto more = value_owners_more_.find(hash);
  if (*owner == ordinal) {
    if (more == value_owners_more_.end()) {
      value_owners_.Erase(hash);
      return;
    }
    *owner = more->second.maximum();
    more->second.remove(*owner);
  } else if (more != value_owners_more_.end()) {
    more->second.remove(ordinal);
  }
  if (more != value_owners_more_.end() && more->second.isEmpty()) value_owners_more_.erase(more);
}

size_t TenantColumns::ValueOwnerCount() const {
  size_t count = value_owners_.size();
  for (const auto& [hash, more] : value_owners_more_) count += more.cardinality();
  return count;
}

void TenantColumns::ForEachSharedLookupHash(absl::FunctionRef<bool(const std::vector<uint32_t>&)> visit) const {
  std::vector<uint32_t> ordinals;
  for (const auto& [hash, more] : value_owners_more_) {
    const uint32_t* owner = value_owners_.Find(hash);
    if (owner == nullptr || more.cardinality() == 0) continue;
    ordinals.assign(1 + more.cardinality(), *owner);
    more.toUint32Array(ordinals.data() + 1);
    std::sort(ordinals.begin(), ordinals.end());
    if (!visit(ordinals)) return;
  }
}

std::vector<uint32_t> TenantColumns::LookupValueOrdinals(uint32_t attribute_id, std::string_view value) const {
  const uint64_t hash = LookupValueHash(attribute_id, value);
  std::vector<uint32_t> ordinals;
  const uint32_t* owner = value_owners_.Find(hash);
  if (owner == nullptr) return ordinals;
  ordinals.push_back(*owner);
  if (auto more = value_owners_more_.find(hash); more != value_owners_more_.end()) {
    ordinals.resize(1 + more->second.cardinality());
    more->second.toUint32Array(ordinals.data() + 1);
    std::sort(ordinals.begin(), ordinals.end());
  }
  return ordinals;
}

void TenantColumns::CollectKeyEntryOps(const StoredContact* before, const StoredContact* after, KeyEntryOps* pk_ops,
                                       KeyEntryOps* owner_ops) const {
  // An update keeps its primary key and mostly its email and mobile: their entries would only go
  // out and in again (an erase and an insert in a large hash map each), so only changed keys move.
  if (before == nullptr || after == nullptr || before->primary_key() != after->primary_key()) {
    if (before != nullptr) pk_ops->push_back({FilterKeyHash(before->primary_key()), 0, false});
    if (after != nullptr) pk_ops->push_back({FilterKeyHash(after->primary_key()), 0, true});
  }
  auto value_of = [](const StoredContact* contact, uint32_t id) {
    return contact == nullptr ? std::string_view() : StoredValueOf(*contact, id);
  };
  const bool same_ordinal = before != nullptr && after != nullptr;
  for (uint32_t id : {layout_.email_attribute_id, layout_.mobile_attribute_id}) {
    const std::string_view old_value = value_of(before, id);
    const std::string_view new_value = value_of(after, id);
    if (old_value == new_value && same_ordinal) continue;
    if (!old_value.empty()) owner_ops->push_back({LookupValueHash(id, old_value), before->ordinal(), false});
    if (!new_value.empty()) owner_ops->push_back({LookupValueHash(id, new_value), after->ordinal(), true});
  }
}

void TenantColumns::Apply(const StoredContact* before, const StoredContact* after) {
  const ContactChange change(before, after);
  ApplyChanges(absl::MakeConstSpan(&change, 1));
}

void TenantColumns::ApplyChanges(absl::Span<const ContactChange> changes) {
  // A contact whose ordinal changed is two changes: out of the old ordinal, into the new one.
  auto for_each_ordinal_change = [&changes](auto&& fn) {
    for (const auto& [before, after] : changes) {
      if (before != nullptr && after != nullptr && before->ordinal() != after->ordinal()) {
        fn(before, nullptr);
        fn(nullptr, after);
      } else {
        fn(before, after);
      }
    }
  };
  // The primary-key filter and the value owners are hash tables far larger than the caches, so
  // each probe is a miss. Done contact by contact among the bitmap and vector updates, the misses
  // were taken one at a time (two thirds of applying a batch); gathered and run in tight loops of
  // their own, the processor overlaps them.
  KeyEntryOps pk_ops;
  KeyEntryOps owner_ops;
  pk_ops.reserve(changes.size());
  owner_ops.reserve(2 * changes.size());
  for_each_ordinal_change([&](const StoredContact* before, const StoredContact* after) {
    CollectKeyEntryOps(before, after, &pk_ops, &owner_ops);
  });
  for (size_t i = 0; i < pk_ops.size(); ++i) {
    if (i + kPrefetchAhead < pk_ops.size()) pk_filter_.Prefetch(pk_ops[i + kPrefetchAhead].hash);
    Count(pk_filter_, pk_ops[i].hash, pk_ops[i].add);
  }
  for (size_t i = 0; i < owner_ops.size(); ++i) {
    if (i + kPrefetchAhead < owner_ops.size()) value_owners_.Prefetch(owner_ops[i + kPrefetchAhead].hash);
    const KeyEntryOp& op = owner_ops[i];
    if (op.add) {
      AddValueOwner(op.hash, op.ordinal);
    } else {
      RemoveValueOwner(op.hash, op.ordinal);
    }
  }
  // Contacts taking a new ordinal (most of an import's batch) go column by column below. Every
  // other change is to an ordinal no new contact has (ordinals are never handed out twice), so
  // the order between the two groups does not matter.
  std::vector<const StoredContact*> fresh;
  for_each_ordinal_change([&](const StoredContact* before, const StoredContact* after) {
    if (before == nullptr && after != nullptr && changes.size() >= kFreshColumnWiseMin) {
      fresh.push_back(after);
    } else {
      ApplyOrdinalState(before, after);
    }
  });
  if (!fresh.empty()) ApplyFreshOrdinalStates(fresh);
}

void TenantColumns::ApplyFreshOrdinalStates(const std::vector<const StoredContact*>& contacts) {
  uint32_t highest = 0;
  for (const StoredContact* contact : contacts) highest = std::max(highest, contact->ordinal());
  Grow(highest);
  // Ordinals for each bitmap and each indexed column's present bitmap, added at once (one sorted
  // addMany each) after the contacts are walked.
  std::vector<uint32_t> alive;
  std::vector<uint32_t> with_email;
  std::vector<uint32_t> with_mobile;
  absl::flat_hash_map<uint64_t, std::vector<uint32_t>> listed;
  std::vector<std::vector<uint32_t>> present(column_list_.size());
  alive.reserve(contacts.size());
  with_email.reserve(contacts.size());
  with_mobile.reserve(contacts.size());
  for (const StoredContact* contact : contacts) {
    const uint32_t o = contact->ordinal();
    alive.push_back(o);
    SetTimesHashAndBlacklist(*contact);
    for (uint64_t list_id : contact->list_ids()) listed[list_id].push_back(o);
    // A new ordinal holds nothing yet (a deleted contact's state was cleared when it went), so
    // only the values the record has are set, in one pass over them.
    ForEachStoredValue(*contact, [&](uint32_t id, std::string_view value) {
      if (value.empty()) return;
      if (id == layout_.email_attribute_id) with_email.push_back(o);
      if (id == layout_.mobile_attribute_id) with_mobile.push_back(o);
      for (size_t c = 0; c < column_list_.size(); ++c) {
        if (column_list_[c].first != id) continue;
        column_list_[c].second->SetNew(o, value);
        present[c].push_back(o);
      }
    });
  }
  auto add_all = [](Roaring& bitmap, std::vector<uint32_t>& ordinals) {
    if (!std::is_sorted(ordinals.begin(), ordinals.end())) std::sort(ordinals.begin(), ordinals.end());
    bitmap.addMany(ordinals.size(), ordinals.data());
  };
  add_all(alive_, alive);
  add_all(has_email_, with_email);
  add_all(has_mobile_, with_mobile);
  for (auto& [list_id, ordinals] : listed) add_all(lists_[list_id], ordinals);
  for (size_t c = 0; c < column_list_.size(); ++c) column_list_[c].second->AddPresent(present[c]);
}

void TenantColumns::Grow(uint32_t ordinal) {
  const size_t size = size_t{ordinal} + 1;
  created_.EnsureSize(size);
  modified_.EnsureSize(size);
  pk_hash_.EnsureSize(size);
}

void TenantColumns::SetTimesHashAndBlacklist(const StoredContact& contact) {
  const uint32_t o = contact.ordinal();
  created_[o] = contact.created_at_micros();
  modified_[o] = contact.modified_at_micros();
  pk_hash_[o] = PrimaryKeyHash(contact.primary_key());
  for (const auto& entry : contact.blacklist()) {
    int channel = entry.channel();
    if (channel > 0 && channel < static_cast<int>(blacklisted_.size())) blacklisted_[channel].add(o);
  }
}

void TenantColumns::ApplyOrdinalState(const StoredContact* before, const StoredContact* after) {
  if (before != nullptr) {
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
  SetTimesHashAndBlacklist(*after);
  for (uint64_t list_id : after->list_ids()) lists_[list_id].add(o);
  if (before == nullptr) {
    // A new ordinal holds nothing yet (a deleted contact's state was cleared when it went), so
    // only the values the record has are set, in one pass over them: looking each column's value
    // up in the record walked its values once per column (six walks with the email and mobile).
    ForEachStoredValue(*after, [&](uint32_t id, std::string_view value) {
      if (value.empty()) return;
      if (id == layout_.email_attribute_id) has_email_.add(o);
      if (id == layout_.mobile_attribute_id) has_mobile_.add(o);
      for (const auto& [column_id, column] : column_list_) {
        if (column_id == id) column->Set(o, value);
      }
    });
    return;
  }
  if (!StoredValueOf(*after, layout_.email_attribute_id).empty()) {
    has_email_.add(o);
  } else {
    has_email_.remove(o);
  }
  if (!StoredValueOf(*after, layout_.mobile_attribute_id).empty()) {
    has_mobile_.add(o);
  } else {
    has_mobile_.remove(o);
  }
  for (auto& [id, column] : attributes_) column->Set(o, StoredValueOf(*after, id));
}

void TenantColumns::AddAttributeColumn(uint32_t attribute_id, AttributeType type) {
  attributes_[attribute_id] = std::make_unique<AttributeColumn>(type);
  ListColumns();
}

void TenantColumns::DropAttributeColumn(uint32_t attribute_id) {
  attributes_.erase(attribute_id);
  ListColumns();
}

void TenantColumns::ListColumns() {
  column_list_.clear();
  for (auto& [id, column] : attributes_) column_list_.emplace_back(id, column.get());
}

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

Roaring TenantColumns::Between(const Roaring& universe, const ChunkedColumn<int64_t>& column, int64_t from,
                               int64_t to) {
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

size_t TenantColumns::MemoryBytes() const {
  size_t bytes = HeapBytes(alive_) + HeapBytes(has_email_) + HeapBytes(has_mobile_);
  for (const Roaring& channel : blacklisted_) bytes += HeapBytes(channel);
  bytes += created_.MemoryBytes() + modified_.MemoryBytes() + pk_hash_.MemoryBytes();
  for (const auto& [id, list] : lists_) bytes += HeapBytes(list);
  bytes += pk_filter_.MemoryBytes() + value_owners_.MemoryBytes();
  for (const auto& [hash, ordinals] : value_owners_more_) bytes += HeapBytes(ordinals);
  for (const auto& [id, column] : attributes_) bytes += column->MemoryBytes();
  return bytes;
}

}  // namespace contacts::store
