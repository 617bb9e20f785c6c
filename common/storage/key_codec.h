// Key codec for contact-store's RocksDB: every key layout of every column family lives here, built
// from order-preserving primitives so that RocksDB's bytewise comparator sorts keys the way the
// fields sort (Kvrocks' habit: one codec module, layouts drawn below, round-trip and ordering
// tests for every encoder in tests/unit/storage/key_codec_test.cc).
//
// Every tenant-owned key starts with the 4-byte big-endian tenant id, so a prefix scan bounded by
// PrefixSuccessor(prefix) as iterate_upper_bound never reaches another tenant's keys.
//
// Field encodings (all appendable and self-delimiting, so fields concatenate and still sort):
//
//   u32         4 bytes big-endian
//   u64         8 bytes big-endian
//   i64         8 bytes big-endian of (uint64(v) XOR 0x8000000000000000)   (sign bit flipped)
//   i64desc     8 bytes big-endian of ~(uint64(v) XOR 0x8000000000000000)  (newest/largest first)
//   f64         IEEE-754 bits, all bits flipped if negative, sign bit flipped otherwise;
//               -0.0 is written as +0.0; NaN is not allowed (see PutDoubleOrdered)
//   bool        1 byte: 0x00 false, 0x01 true
//   str         the bytes with each 0x00 written as 0x00 0xFF, then the terminator 0x00 0x01
//               (encode(a) < encode(b) exactly when a < b bytewise, whatever follows)
//
// Key layouts (| is concatenation, nothing is written between fields):
//
//   +-------------------+-----------------------------------------------------------+-----------+
//   | column family     | key                                                       | value     |
//   +-------------------+-----------------------------------------------------------+-----------+
//   | contacts          | tenant:u32 | pk:str                                       | Contact   |
//   | index             | tenant:u32 | attr_id:u32 | value:<kind> | pk:str           | empty     |
//   |                   |   value kind: str (TEXT, EMAIL, MOBILE), i64 (INTEGER,    |           |
//   |                   |   DATE, DATETIME), f64 (DECIMAL), bool (BOOLEAN)          |           |
//   | membership        | tenant:u32 | list_id:u64 | pk:str                         | empty     |
//   | ordinals          | tenant:u32 | ordinal:u32                                  | (caller)  |
//   | catalog           | tenant:u32 | kind:u8 (CatalogKind) | name:str             | (caller)  |
//   | catalog (global)  | FF FF FF FF | 'T' (0x54) | tenant_name:str                | (caller)  |
//   | applied           | tenant:u32 | job_id:str | batch_seq:u64                   | (caller)  |
//   | anonymous         | tenant:u32 | guid:str                                     | (caller)  |
//   | anonymous_by_time | tenant:u32 | created_micros:i64desc | guid:str            | empty     |
//   +-------------------+-----------------------------------------------------------+-----------+
//
// Since session 9 contact-store writes nothing to `index` and `membership` (email and mobile
// lookups and list members live in its in-memory query columns, rebuilt from `contacts`) and drops
// what earlier versions wrote there at the first open; their layouts and codecs stay here, tested,
// as the record of that format, and are unused by the services.
//
// Tenant id 0xFFFFFFFF (kReservedTenantId) is never assigned: its key space holds the global tenant
// registry. Changing any layout or encoding here changes the on-disk format: bump kKeyFormatVersion
// (stored in the catalog under CatalogKind::kFormatVersion) and write a migration.
//
// Decoding convention: key decoders take the fields the scan already knows (tenant, attribute id,
// list id, kind), check them, and return the fields it does not know. Malformed keys (truncated,
// bad escape, trailing bytes, wrong tenant) give INVALID_ARGUMENT; nothing here crashes on bad
// input. Error messages name the field and byte offset, never the key bytes (a pk may be an email).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace contacts::keys {

// Column family names, one per layout above.
inline constexpr std::string_view kContactsCf = "contacts";                  // pk -> Contact protobuf
inline constexpr std::string_view kIndexCf = "index";                        // empty since session 9 (above)
inline constexpr std::string_view kMembershipCf = "membership";              // empty since session 9 (above)
inline constexpr std::string_view kOrdinalsCf = "ordinals";                  // dense ordinals for bitmaps
inline constexpr std::string_view kCatalogCf = "catalog";                    // schema, lists, segments, registry
inline constexpr std::string_view kAppliedCf = "applied";                    // idempotency of import batches
inline constexpr std::string_view kAnonymousCf = "anonymous";                // anonymous users by GUID
inline constexpr std::string_view kAnonymousByTimeCf = "anonymous_by_time";  // anonymous users, newest first

// Version of the layouts in this file; stored in the catalog (CatalogKind::kFormatVersion).
inline constexpr uint32_t kKeyFormatVersion = 1;

// The tenant id whose key space holds the global tenant registry; never assign it to a tenant.
inline constexpr uint32_t kReservedTenantId = 0xFFFFFFFFu;

// ---------------------------------------------------------------------------------------------
// Primitives. Put* append to *dst. Get* read from the front of *in and advance it; on failure
// they return false and leave *in unchanged.
// ---------------------------------------------------------------------------------------------

void PutFixed32BE(std::string* dst, uint32_t value);
void PutFixed64BE(std::string* dst, uint64_t value);
// Returns false when fewer than 4 (8) bytes remain.
bool GetFixed32BE(std::string_view* in, uint32_t* value);
bool GetFixed64BE(std::string_view* in, uint64_t* value);

// Signed integers, sorted ascending.
void PutInt64Ordered(std::string* dst, int64_t value);
bool GetInt64Ordered(std::string_view* in, int64_t* value);

// Signed integers, sorted descending (largest first): used for newest-first time orders.
void PutInt64OrderedDesc(std::string* dst, int64_t value);
bool GetInt64OrderedDesc(std::string_view* in, int64_t* value);

// Doubles, sorted ascending: -inf < negatives < -0.0 == 0.0 < positives < +inf.
// REQUIRES: !std::isnan(value). Callers reject NaN before building keys (the values layer does);
// a NaN that slips through is written as the canonical quiet NaN, which sorts after +inf and which
// GetDoubleOrdered refuses, so it shows up instead of silently corrupting a range scan.
void PutDoubleOrdered(std::string* dst, double value);
// Returns false when truncated or when the bytes decode to NaN.
bool GetDoubleOrdered(std::string_view* in, double* value);

void PutBool(std::string* dst, bool value);
// Returns false when empty or when the byte is neither 0x00 nor 0x01.
bool GetBool(std::string_view* in, bool* value);

// Order-preserving, self-delimiting string (0x00 -> 0x00 0xFF, then 0x00 0x01).
void PutStringOrdered(std::string* dst, std::string_view value);
// Returns false when the terminator is missing or a 0x00 is followed by anything but 0xFF / 0x01.
bool GetStringOrdered(std::string_view* in, std::string* value);
// Appends only the escaped bytes, without the terminator: every string starting with `value`
// encodes to bytes starting with these, so it serves as a "starts with" scan prefix.
void PutStringEscapedNoTerminator(std::string* dst, std::string_view value);

// The smallest string greater than every string starting with `prefix`, for iterate_upper_bound:
// trailing 0xFF bytes are dropped and the last remaining byte incremented. Returns "" when there is
// none (prefix empty or all 0xFF): then scan to the end of the column family.
std::string PrefixSuccessor(std::string prefix);

// Reads the tenant id at the front of any tenant-owned key (or kReservedTenantId for the registry).
// Errors: INVALID_ARGUMENT when the key is shorter than 4 bytes.
absl::StatusOr<uint32_t> DecodeKeyTenant(std::string_view key);

// ---------------------------------------------------------------------------------------------
// contacts CF: tenant | str(pk)
// ---------------------------------------------------------------------------------------------

std::string ContactKey(uint32_t tenant, std::string_view pk);
// ContactKey appended to `dst` (a batch builds thousands into one reused string).
void AppendContactKey(std::string* dst, uint32_t tenant, std::string_view pk);
std::string ContactPrefix(uint32_t tenant);
// Errors: INVALID_ARGUMENT when malformed or not a key of `tenant`.
absl::StatusOr<std::string> DecodeContactKey(std::string_view key, uint32_t tenant);

// ---------------------------------------------------------------------------------------------
// index CF: tenant | u32 attr_id | value | str(pk)
// ---------------------------------------------------------------------------------------------

// How an index value is encoded; one kind per attribute type (see the table above). Persisted only
// implicitly (it decides the key bytes), so values are explicit.
enum class IndexValueKind : uint8_t {
  kString = 1,  // PutStringOrdered: TEXT, EMAIL, MOBILE
  kInt64 = 2,   // PutInt64Ordered: INTEGER, DATE (days), DATETIME (micros), created/modified times
  kDouble = 3,  // PutDoubleOrdered: DECIMAL
  kBool = 4,    // PutBool: BOOLEAN
};

// Value encoders: exactly the primitives above, returned as a fresh string for IndexKey.
std::string EncodeIndexString(std::string_view value);
std::string EncodeIndexInt64(int64_t value);
// REQUIRES: !std::isnan(value) (see PutDoubleOrdered).
std::string EncodeIndexDouble(double value);
std::string EncodeIndexBool(bool value);

// Value decoders: the whole of `encoded` must be one value of that kind.
// Errors: INVALID_ARGUMENT when malformed or followed by extra bytes.
absl::StatusOr<std::string> DecodeIndexString(std::string_view encoded);
absl::StatusOr<int64_t> DecodeIndexInt64(std::string_view encoded);
absl::StatusOr<double> DecodeIndexDouble(std::string_view encoded);
absl::StatusOr<bool> DecodeIndexBool(std::string_view encoded);

// REQUIRES: encoded_value came from an EncodeIndex* function (or the matching primitive).
std::string IndexKey(uint32_t tenant, uint32_t attr_id, std::string_view encoded_value, std::string_view pk);
// All entries of one attribute (scan bound for "is set", or a whole-attribute walk).
std::string IndexAttributePrefix(uint32_t tenant, uint32_t attr_id);
// All pks having exactly this value: exact because every value encoding is self-delimiting.
// Also the lower bound of a range scan starting at that value.
std::string IndexValuePrefix(uint32_t tenant, uint32_t attr_id, std::string_view encoded_value);
// All pks whose string value starts with `value_prefix` (a "starts with" predicate).
std::string IndexStringStartsWithPrefix(uint32_t tenant, uint32_t attr_id, std::string_view value_prefix);

struct IndexKeyFields {
  std::string encoded_value;  // decode with DecodeIndex<Kind>
  std::string pk;
};
// Splits an index key of (tenant, attr_id) whose value has the given kind.
// Errors: INVALID_ARGUMENT when malformed, of another tenant or attribute, or the kind is unknown.
absl::StatusOr<IndexKeyFields> DecodeIndexKey(std::string_view key, uint32_t tenant, uint32_t attr_id,
                                              IndexValueKind kind);
// The pk only (the last field). Errors: as DecodeIndexKey.
absl::StatusOr<std::string> DecodeIndexKeyPk(std::string_view key, uint32_t tenant, uint32_t attr_id,
                                             IndexValueKind kind);

// ---------------------------------------------------------------------------------------------
// membership CF: tenant | u64 list_id | str(pk)
// ---------------------------------------------------------------------------------------------

std::string MembershipKey(uint32_t tenant, uint64_t list_id, std::string_view pk);
std::string MembershipListPrefix(uint32_t tenant, uint64_t list_id);
// Errors: INVALID_ARGUMENT when malformed or not a key of (tenant, list_id).
absl::StatusOr<std::string> DecodeMembershipPk(std::string_view key, uint32_t tenant, uint64_t list_id);

// ---------------------------------------------------------------------------------------------
// ordinals CF: tenant | u32 ordinal
// ---------------------------------------------------------------------------------------------

std::string OrdinalKey(uint32_t tenant, uint32_t ordinal);
// OrdinalKey appended to `dst`.
void AppendOrdinalKey(std::string* dst, uint32_t tenant, uint32_t ordinal);
std::string OrdinalPrefix(uint32_t tenant);
// Errors: INVALID_ARGUMENT when malformed or not a key of `tenant`.
absl::StatusOr<uint32_t> DecodeOrdinal(std::string_view key, uint32_t tenant);

// ---------------------------------------------------------------------------------------------
// catalog CF: tenant | u8 kind | str(name); and the global registry FF FF FF FF | 'T' | str(name)
// ---------------------------------------------------------------------------------------------

// Persisted: these values can never change.
enum class CatalogKind : uint8_t {
  kTenant = 1,         // the tenant's own settings (name "")
  kAttribute = 2,      // attribute definitions by name
  kList = 3,           // lists by name
  kSegment = 4,        // saved filters by name
  kControlGroup = 5,   // control-group definitions by name
  kFormatVersion = 6,  // kKeyFormatVersion the data was written with (name "")
};

std::string CatalogKey(uint32_t tenant, CatalogKind kind, std::string_view name);
std::string CatalogKindPrefix(uint32_t tenant, CatalogKind kind);
// Errors: INVALID_ARGUMENT when malformed or not a key of (tenant, kind).
absl::StatusOr<std::string> DecodeCatalogName(std::string_view key, uint32_t tenant, CatalogKind kind);

// Global tenant registry (tenant name -> id), in the catalog CF under the reserved tenant id.
std::string TenantRegistryKey(std::string_view tenant_name);
std::string TenantRegistryPrefix();
// Errors: INVALID_ARGUMENT when malformed or not a registry key.
absl::StatusOr<std::string> DecodeTenantRegistryName(std::string_view key);

// ---------------------------------------------------------------------------------------------
// applied CF: tenant | str(job_id) | u64 batch_seq
// ---------------------------------------------------------------------------------------------

std::string AppliedKey(uint32_t tenant, std::string_view job_id, uint64_t batch_seq);
// Every applied batch of one job (e.g. to drop them when the job is purged).
std::string AppliedJobPrefix(uint32_t tenant, std::string_view job_id);

struct AppliedKeyFields {
  std::string job_id;
  uint64_t batch_seq = 0;
};
// Errors: INVALID_ARGUMENT when malformed or not a key of `tenant`.
absl::StatusOr<AppliedKeyFields> DecodeAppliedKey(std::string_view key, uint32_t tenant);

// ---------------------------------------------------------------------------------------------
// anonymous CF: tenant | str(guid); anonymous_by_time CF: tenant | i64desc(created_micros) | str(guid)
// ---------------------------------------------------------------------------------------------

std::string AnonymousKey(uint32_t tenant, std::string_view guid);
std::string AnonymousPrefix(uint32_t tenant);
// Errors: INVALID_ARGUMENT when malformed or not a key of `tenant`.
absl::StatusOr<std::string> DecodeAnonymousKey(std::string_view key, uint32_t tenant);

// Newest first: a forward scan from AnonymousByTimePrefix meets the latest created_micros first.
std::string AnonymousByTimeKey(uint32_t tenant, int64_t created_micros, std::string_view guid);
std::string AnonymousByTimePrefix(uint32_t tenant);
// Seek target for "created at or before created_micros" (newest-first order).
std::string AnonymousByTimeSeek(uint32_t tenant, int64_t created_micros);

struct AnonymousByTimeFields {
  int64_t created_micros = 0;
  std::string guid;
};
// Errors: INVALID_ARGUMENT when malformed or not a key of `tenant`.
absl::StatusOr<AnonymousByTimeFields> DecodeAnonymousByTime(std::string_view key, uint32_t tenant);

}  // namespace contacts::keys
