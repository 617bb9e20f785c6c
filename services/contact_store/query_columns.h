// In-memory query columns of one tenant: bitmaps of contact ordinals (alive, lists, identity,
// blacklist per channel) and one typed column per indexed attribute. They are derived from the
// contacts column family (rebuilt at start, updated under the tenant's write lock with every
// write), so counts are bitmap cardinalities and predicates are tight loops over vectors rather
// than record decodes (PERFORMANCE.md: decoding 10M records takes seconds, bitmaps milliseconds).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <roaring/roaring.hh>

#include "contacts/internal/storage.pb.h"

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/numeric/int128.h"
#include "absl/types/span.h"
#include "services/contact_store/chunked_column.h"
#include "services/contact_store/predicate.h"
#include "services/contact_store/staggered_hash_map.h"

namespace contacts::store {

// Values of one indexed attribute by ordinal. TEXT, EMAIL and MOBILE are dictionary-encoded (the
// dictionary only grows; a rebuild at start drops unused entries).
//
// While the column holds at most value_bitmap_limit() distinct values it also keeps one bitmap of
// ordinals per distinct value, so a predicate is decided once per distinct value and answered by a
// many-way union of the matching bitmaps (or the present ordinals minus the union of the others,
// whichever touches fewer ordinals). A write moves the ordinal from its old value's bitmap to the
// new one's. When a write brings the distinct values above the limit the bitmaps are dropped for
// good (until the next rebuild at start) and predicates scan the typed vector instead.
class AttributeColumn {
 public:
  explicit AttributeColumn(AttributeType type) : type_(type) {}

  AttributeType type() const { return type_; }
  // Sets the value of `ordinal`; "" clears it. REQUIRES: canonical is valid for the type.
  void Set(uint32_t ordinal, std::string_view canonical);
  // Set of a value for an ordinal that holds none, without adding it to present(): the caller
  // adds a batch's such ordinals at once with AddPresent (which sorts them). REQUIRES: canonical
  // is valid for the type and not "".
  void SetNew(uint32_t ordinal, std::string_view canonical);
  void AddPresent(std::vector<uint32_t>& ordinals);
  // Ordinals of `universe` whose value matches. `universe_is_alive` (the universe is every alive
  // contact, so it holds every present ordinal) spares intersecting value bitmaps with it.
  Roaring Evaluate(const TypedPredicate& predicate, const Roaring& universe, bool universe_is_alive = false) const;
  const Roaring& present() const { return present_; }
  // How many alive contacts match, without building their bitmap: the sum of the matching values'
  // sizes. nullopt when that takes a bitmap (no value bitmaps, or IS_NOT_SET, which needs the
  // alive contacts).
  std::optional<uint64_t> CountMatches(const TypedPredicate& predicate) const;

  // Whether the column keeps per-value bitmaps, and how many (distinct values present).
  bool has_value_bitmaps() const { return !high_cardinality_; }
  size_t value_bitmap_count() const { return by_value_.size(); }
  // Heap bytes of the column (vectors, dictionary, bitmaps), roughly.
  size_t MemoryBytes() const;

  // Most distinct values a column keeps bitmaps for. Tests lower it to drive both paths.
  static size_t value_bitmap_limit();
  static void set_value_bitmap_limit_for_testing(size_t limit);
  static constexpr size_t kDefaultValueBitmapLimit = 1024;

 private:
  // Ordinals holding one value, and how many (kept alongside: Roaring counts in O(containers)).
  struct ValueBitmap {
    Roaring ordinals;
    uint64_t size = 0;
  };
  // The value of a present ordinal as a bitmap key: the integer, the scaled decimal or the code.
  absl::int128 KeyAt(uint32_t ordinal) const;
  // Writes the value into the typed vector (or the dictionary), nothing else.
  void StoreValue(uint32_t ordinal, std::string_view canonical);
  bool KeyMatches(const TypedPredicate& predicate, absl::int128 key) const;
  void AddToValue(absl::int128 key, uint32_t ordinal);
  void RemoveFromValue(absl::int128 key, uint32_t ordinal);
  Roaring EvaluateByValues(const TypedPredicate& predicate, const Roaring& universe, bool universe_is_alive) const;
  Roaring EvaluateByScan(const TypedPredicate& predicate, const Roaring& universe) const;

  AttributeType type_;
  Roaring present_;
  ChunkedColumn<int64_t> ints_;
  ChunkedColumn<absl::int128> decimals_;
  ChunkedColumn<uint32_t> codes_;
  std::vector<std::string> dictionary_;
  absl::flat_hash_map<std::string, uint32_t> code_of_;
  bool high_cardinality_ = false;
  absl::flat_hash_map<absl::int128, ValueBitmap> by_value_;
};

// Which attribute ids the columns follow, taken from the tenant's catalog.
struct ColumnLayout {
  uint32_t email_attribute_id = 0;
  uint32_t mobile_attribute_id = 0;
};

// One contact's change: the stored record before (null for a new contact) and after (null when
// deleted).
using ContactChange = std::pair<const contacts::internal::StoredContact*, const contacts::internal::StoredContact*>;

class TenantColumns {
 public:
  // Replaces a contact's state: `before` is the stored record or null (new contact), `after` the
  // new record or null (deleted). A contact whose ordinal changed leaves its old ordinal and takes
  // the new one.
  void Apply(const contacts::internal::StoredContact* before, const contacts::internal::StoredContact* after);
  // Apply of every change, in order.
  void ApplyChanges(absl::Span<const ContactChange> changes);
  // Commits of at least this many changes set their new contacts column by column.
  static constexpr size_t kFreshColumnWiseMin = 64;

  // Starts following an indexed attribute; the caller then feeds every record through Apply or
  // through SetAttribute.
  void AddAttributeColumn(uint32_t attribute_id, AttributeType type);
  void DropAttributeColumn(uint32_t attribute_id);
  const AttributeColumn* attribute_column(uint32_t attribute_id) const;
  void SetAttribute(uint32_t attribute_id, uint32_t ordinal, std::string_view canonical);

  void DropList(uint64_t list_id) { lists_.erase(list_id); }
  void set_layout(ColumnLayout layout) { layout_ = layout; }

  const Roaring& alive() const { return alive_; }
  const Roaring& has_email() const { return has_email_; }
  const Roaring& has_mobile() const { return has_mobile_; }
  // Empty bitmap for an unknown list.
  const Roaring& list(uint64_t list_id) const;
  const Roaring& blacklisted(contacts::v1::Channel channel) const;
  uint64_t ListSize(uint64_t list_id) const { return list(list_id).cardinality(); }

  // Alive ordinals of `universe` whose created (or modified) time lies in [from, to].
  Roaring CreatedBetween(const Roaring& universe, int64_t from_micros, int64_t to_micros) const;
  Roaring ModifiedBetween(const Roaring& universe, int64_t from_micros, int64_t to_micros) const;
  // Alive ordinals of `universe` in the control group: a hash of seed, group name and primary key
  // below percent_basis_points out of 10000.
  Roaring ControlGroup(const Roaring& universe, uint64_t group_seed, uint32_t percent_basis_points) const;

  // Exact negative lookups for the write path: false means no stored contact has this primary key
  // (or this email / mobile value), so the batch writer skips the RocksDB read; true means "maybe"
  // (a 64-bit hash matched) and the caller reads to be sure. The primary-key filter counts and the
  // value owners name every holder, so deleting one of two keys with the same hash keeps the other.
  bool MayHavePrimaryKey(std::string_view primary_key) const {
    return MayHaveFilterKeyHash(FilterKeyHash(primary_key));
  }
  // The same for a key's FilterKeyHash, worked out once by a caller that also prefetches with it.
  bool MayHaveFilterKeyHash(uint64_t filter_key_hash) const { return pk_filter_.Contains(filter_key_hash); }
  bool MayHaveLookupValue(uint32_t attribute_id, std::string_view value) const {
    return MayHaveLookupHash(LookupValueHash(attribute_id, value));
  }
  // The same for a value's LookupValueHash, worked out once by a caller that probes twice.
  bool MayHaveLookupHash(uint64_t lookup_hash) const { return value_owners_.Contains(lookup_hash); }
  // Start loading the hash-table slots that the calls above will touch for a key, so that a loop
  // over a batch can ask kPrefetchAhead rows ahead: at millions of contacts every probe is a cache
  // (and TLB) miss. Far enough to hide a miss behind the rows in between, near enough that the
  // lines are still cached when used.
  static constexpr size_t kPrefetchAhead = 8;
  void PrefetchFilterKeyHash(uint64_t filter_key_hash) const { pk_filter_.Prefetch(filter_key_hash); }
  void PrefetchLookupHash(uint64_t lookup_hash) const { value_owners_.Prefetch(lookup_hash); }
  // The ordinals of the live contacts that may hold `value` in the email or mobile attribute (the
  // value's 64-bit hash matched), ascending; the caller reads their records to be sure. This is
  // the only index of email and mobile values: RocksDB keeps no lookup entries for them
  // (docs/architecture.md, "Email and mobile lookups").
  std::vector<uint32_t> LookupValueOrdinals(uint32_t attribute_id, std::string_view value) const;
  // Calls visit(ordinals) for each email or mobile value hash that more than one live contact
  // holds (ascending ordinals), until visit returns false: where duplicates of either attribute,
  // and the rare hash collisions, are. Used before a tenant makes a value unique.
  void ForEachSharedLookupHash(absl::FunctionRef<bool(const std::vector<uint32_t>&)> visit) const;
  // How many (value, contact) pairs the email and mobile lookups hold: one per contact and value
  // held. For consistency checks, which find stale entries by it.
  size_t ValueOwnerCount() const;

  // Heap bytes of all columns, roughly (for logs and the README's sizing).
  size_t MemoryBytes() const;

  // The control-group hash, shared with tests and the brute-force checks.
  static uint64_t PrimaryKeyHash(std::string_view primary_key);
  static bool InControlGroup(uint64_t pk_hash, uint64_t group_seed, uint32_t percent_basis_points);
  // The hash of an email or mobile value (`attribute_id`'s) in the value owners, like FilterKeyHash
  // in memory only; also how a batch tells its rows' values apart (MarkLookupValuesUniqueInBatch).
  static uint64_t LookupValueHash(uint32_t attribute_id, std::string_view value);
  // The hash of the primary-key filter, which lives in memory only (rebuilt at every start), so it
  // need not be stable: absl's hash reads a word at a time, where PrimaryKeyHash's FNV-1a (kept for
  // control groups, whose members must not change) takes a multiply per byte, and a batch hashes
  // each row's key, email and mobile several times.
  static uint64_t FilterKeyHash(std::string_view primary_key);

 private:
  void Grow(uint32_t ordinal);
  void ListColumns();
  static Roaring Between(const Roaring& universe, const ChunkedColumn<int64_t>& column, int64_t from, int64_t to);
  static void Count(StaggeredHashMap<uint32_t>& filter, uint64_t hash, bool add);
  void AddValueOwner(uint64_t hash, uint32_t ordinal);
  void RemoveValueOwner(uint64_t hash, uint32_t ordinal);
  // An addition to or removal from the primary-key filter or the value owners.
  struct KeyEntryOp {
    uint64_t hash;
    uint32_t ordinal;  // value owners only
    bool add;
  };
  // Inline room for one contact's ops, so that Apply of a single change (a rebuild at start, one
  // record at a time) allocates nothing.
  using KeyEntryOps = absl::InlinedVector<KeyEntryOp, 4>;
  // The ops that move the primary-key count and the email and mobile owners from `before`'s keys
  // to `after`'s (either may be null; both have the same ordinal when neither is), in order.
  void CollectKeyEntryOps(const contacts::internal::StoredContact* before,
                          const contacts::internal::StoredContact* after, KeyEntryOps* pk_ops,
                          KeyEntryOps* owner_ops) const;
  // The created and modified times, the control-group hash and the blacklist bitmaps of
  // `contact`'s ordinal, as its record says. Adds to the blacklists only: a contact leaving one was
  // taken out of all of them first. REQUIRES: Grow(its ordinal).
  void SetTimesHashAndBlacklist(const contacts::internal::StoredContact& contact);
  // Everything of Apply but the key entries, for one ordinal (before and after share it).
  void ApplyOrdinalState(const contacts::internal::StoredContact* before,
                         const contacts::internal::StoredContact* after);
  // ApplyOrdinalState(nullptr, contact) for each of `contacts`, which take new ordinals, column by
  // column: each bitmap gets its ordinals in one sorted addMany instead of an add per contact,
  // and no column asks whether a new ordinal held a value. For commits of at least
  // kFreshColumnWiseMin changes (single writes and the rebuild at start go contact by contact).
  void ApplyFreshOrdinalStates(const std::vector<const contacts::internal::StoredContact*>& contacts);

  ColumnLayout layout_;
  Roaring alive_;
  Roaring has_email_;
  Roaring has_mobile_;
  std::array<Roaring, 5> blacklisted_;  // by contacts.v1.Channel number
  ChunkedColumn<int64_t> created_;
  ChunkedColumn<int64_t> modified_;
  ChunkedColumn<uint64_t> pk_hash_;
  absl::flat_hash_map<uint64_t, Roaring> lists_;
  // Staggered: see staggered_hash_map.h.
  StaggeredHashMap<uint32_t> pk_filter_;  // FilterKeyHash -> live contacts
  // LookupValueHash -> the ordinal of one live contact holding the value; any further ones (the
  // tenant allows duplicate emails or mobiles, or two values' hashes collide) in value_owners_more_.
  StaggeredHashMap<uint32_t> value_owners_;
  absl::flat_hash_map<uint64_t, Roaring> value_owners_more_;
  absl::flat_hash_map<uint32_t, std::unique_ptr<AttributeColumn>> attributes_;
  // attributes_ as a list, to walk beside a record's values (a few indexed attributes: a linear
  // search beats a hash lookup). Kept by ListColumns whenever attributes_ changes.
  std::vector<std::pair<uint32_t, AttributeColumn*>> column_list_;
  Roaring empty_;
};

}  // namespace contacts::store
