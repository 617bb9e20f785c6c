#include "common/storage/key_codec.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "common/status/status_macros.h"

namespace contacts::keys {
namespace {

constexpr uint64_t kSignBit = uint64_t{1} << 63;
constexpr char kEscape = '\x00';
constexpr char kEscapedZero = '\xFF';
constexpr char kTerminator = '\x01';
constexpr char kRegistryTag = 'T';

uint64_t Int64ToOrdered(int64_t value) { return static_cast<uint64_t>(value) ^ kSignBit; }
int64_t OrderedToInt64(uint64_t bits) { return static_cast<int64_t>(bits ^ kSignBit); }

// Walks a key field by field, remembering where it is so errors can say so without echoing the
// key's bytes.
class KeyReader {
 public:
  KeyReader(std::string_view key, std::string_view what) : key_(key), rest_(key), what_(what) {}

  absl::Status Tenant(uint32_t expected) {
    uint32_t tenant = 0;
    if (!GetFixed32BE(&rest_, &tenant)) return Malformed("tenant id");
    if (tenant != expected) {
      return absl::InvalidArgumentError(
          fmt::format("{} key belongs to tenant {}, expected tenant {}", what_, tenant, expected));
    }
    return absl::OkStatus();
  }

  absl::Status U32(std::string_view field, uint32_t* value) {
    return GetFixed32BE(&rest_, value) ? absl::OkStatus() : Malformed(field);
  }
  absl::Status U64(std::string_view field, uint64_t* value) {
    return GetFixed64BE(&rest_, value) ? absl::OkStatus() : Malformed(field);
  }
  absl::Status Str(std::string_view field, std::string* value) {
    return GetStringOrdered(&rest_, value) ? absl::OkStatus() : Malformed(field);
  }
  absl::Status Int64Desc(std::string_view field, int64_t* value) {
    return GetInt64OrderedDesc(&rest_, value) ? absl::OkStatus() : Malformed(field);
  }
  absl::Status Byte(std::string_view field, uint8_t* value) {
    if (rest_.empty()) return Malformed(field);
    *value = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return absl::OkStatus();
  }

  // Checks a known field value, e.g. the attribute id of an index scan.
  template <typename T>
  absl::Status Expect(std::string_view field, T got, T expected) {
    if (got == expected) return absl::OkStatus();
    return absl::InvalidArgumentError(fmt::format("{} key has {} {}, expected {}", what_, field, got, expected));
  }

  // Reads one index value of `kind` and returns its bytes (a view into the key).
  absl::Status IndexValue(IndexValueKind kind, std::string_view* encoded) {
    std::string_view before = rest_;
    bool ok = false;
    switch (kind) {
      case IndexValueKind::kString: {
        std::string ignored;
        ok = GetStringOrdered(&rest_, &ignored);
        break;
      }
      case IndexValueKind::kInt64: {
        int64_t ignored = 0;
        ok = GetInt64Ordered(&rest_, &ignored);
        break;
      }
      case IndexValueKind::kDouble: {
        double ignored = 0;
        ok = GetDoubleOrdered(&rest_, &ignored);
        break;
      }
      case IndexValueKind::kBool: {
        bool ignored = false;
        ok = GetBool(&rest_, &ignored);
        break;
      }
      default:
        return absl::InvalidArgumentError(
            fmt::format("{} key: unknown index value kind {}", what_, static_cast<int>(kind)));
    }
    if (!ok) return Malformed("value");
    *encoded = before.substr(0, before.size() - rest_.size());
    return absl::OkStatus();
  }

  absl::Status Done() const {
    if (rest_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(
        fmt::format("{} key: {} unexpected trailing byte(s) at offset {}", what_, rest_.size(), Offset()));
  }

 private:
  size_t Offset() const { return key_.size() - rest_.size(); }
  absl::Status Malformed(std::string_view field) const {
    return absl::InvalidArgumentError(
        fmt::format("{} key: truncated or malformed {} at offset {} of {}", what_, field, Offset(), key_.size()));
  }

  std::string_view key_;
  std::string_view rest_;
  std::string_view what_;
};

std::string TenantPrefix(uint32_t tenant) {
  std::string out;
  PutFixed32BE(&out, tenant);
  return out;
}

template <typename T>
absl::StatusOr<T> DecodeWhole(std::string_view encoded, bool (*get)(std::string_view*, T*), std::string_view what) {
  std::string_view in = encoded;
  T value{};
  if (!get(&in, &value)) {
    return absl::InvalidArgumentError(fmt::format("index value: malformed {} ({} bytes)", what, encoded.size()));
  }
  if (!in.empty()) {
    return absl::InvalidArgumentError(fmt::format("index value: {} followed by {} extra byte(s)", what, in.size()));
  }
  return value;
}

}  // namespace

// ---- primitives ---------------------------------------------------------------------------------

void PutFixed32BE(std::string* dst, uint32_t value) {
  char buf[4];
  for (int i = 3; i >= 0; --i) {
    buf[i] = static_cast<char>(value & 0xFF);
    value >>= 8;
  }
  dst->append(buf, sizeof(buf));
}

void PutFixed64BE(std::string* dst, uint64_t value) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(value & 0xFF);
    value >>= 8;
  }
  dst->append(buf, sizeof(buf));
}

bool GetFixed32BE(std::string_view* in, uint32_t* value) {
  if (in->size() < 4) return false;
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>((*in)[i]);
  *value = v;
  in->remove_prefix(4);
  return true;
}

bool GetFixed64BE(std::string_view* in, uint64_t* value) {
  if (in->size() < 8) return false;
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>((*in)[i]);
  *value = v;
  in->remove_prefix(8);
  return true;
}

void PutInt64Ordered(std::string* dst, int64_t value) { PutFixed64BE(dst, Int64ToOrdered(value)); }

bool GetInt64Ordered(std::string_view* in, int64_t* value) {
  uint64_t bits = 0;
  if (!GetFixed64BE(in, &bits)) return false;
  *value = OrderedToInt64(bits);
  return true;
}

void PutInt64OrderedDesc(std::string* dst, int64_t value) { PutFixed64BE(dst, ~Int64ToOrdered(value)); }

bool GetInt64OrderedDesc(std::string_view* in, int64_t* value) {
  uint64_t bits = 0;
  if (!GetFixed64BE(in, &bits)) return false;
  *value = OrderedToInt64(~bits);
  return true;
}

void PutDoubleOrdered(std::string* dst, double value) {
  if (value == 0.0) value = 0.0;  // -0.0 == 0.0, so they must encode alike.
  uint64_t bits = std::isnan(value) ? uint64_t{0x7FF8000000000000} : std::bit_cast<uint64_t>(value);
  bits = (bits & kSignBit) != 0 ? ~bits : (bits ^ kSignBit);
  PutFixed64BE(dst, bits);
}

bool GetDoubleOrdered(std::string_view* in, double* value) {
  std::string_view probe = *in;
  uint64_t bits = 0;
  if (!GetFixed64BE(&probe, &bits)) return false;
  bits = (bits & kSignBit) != 0 ? (bits ^ kSignBit) : ~bits;
  double decoded = std::bit_cast<double>(bits);
  if (std::isnan(decoded)) return false;
  *value = decoded;
  *in = probe;
  return true;
}

void PutBool(std::string* dst, bool value) { dst->push_back(value ? '\x01' : '\x00'); }

bool GetBool(std::string_view* in, bool* value) {
  if (in->empty()) return false;
  char c = in->front();
  if (c != '\x00' && c != '\x01') return false;
  *value = c == '\x01';
  in->remove_prefix(1);
  return true;
}

void PutStringEscapedNoTerminator(std::string* dst, std::string_view value) {
  size_t start = 0;
  while (true) {
    size_t zero = value.find('\0', start);
    if (zero == std::string_view::npos) {
      dst->append(value.substr(start));
      return;
    }
    dst->append(value.substr(start, zero - start));
    dst->push_back(kEscape);
    dst->push_back(kEscapedZero);
    start = zero + 1;
  }
}

void PutStringOrdered(std::string* dst, std::string_view value) {
  dst->reserve(dst->size() + value.size() + 2);
  PutStringEscapedNoTerminator(dst, value);
  dst->push_back(kEscape);
  dst->push_back(kTerminator);
}

bool GetStringOrdered(std::string_view* in, std::string* value) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t zero = in->find('\0', pos);
    if (zero == std::string_view::npos || zero + 1 >= in->size()) return false;  // no terminator
    out.append(in->substr(pos, zero - pos));
    char next = (*in)[zero + 1];
    if (next == kTerminator) {
      *value = std::move(out);
      in->remove_prefix(zero + 2);
      return true;
    }
    if (next != kEscapedZero) return false;  // bad escape
    out.push_back('\0');
    pos = zero + 2;
  }
}

std::string PrefixSuccessor(std::string prefix) {
  while (!prefix.empty() && static_cast<uint8_t>(prefix.back()) == 0xFF) prefix.pop_back();
  if (prefix.empty()) return prefix;
  prefix.back() = static_cast<char>(static_cast<uint8_t>(prefix.back()) + 1);
  return prefix;
}

absl::StatusOr<uint32_t> DecodeKeyTenant(std::string_view key) {
  uint32_t tenant = 0;
  if (!GetFixed32BE(&key, &tenant)) {
    return absl::InvalidArgumentError(fmt::format("key of {} bytes is too short for a tenant id", key.size()));
  }
  return tenant;
}

// ---- contacts -----------------------------------------------------------------------------------

std::string ContactKey(uint32_t tenant, std::string_view pk) {
  std::string out;
  AppendContactKey(&out, tenant, pk);
  return out;
}

void AppendContactKey(std::string* dst, uint32_t tenant, std::string_view pk) {
  PutFixed32BE(dst, tenant);
  PutStringOrdered(dst, pk);
}

std::string ContactPrefix(uint32_t tenant) { return TenantPrefix(tenant); }

absl::StatusOr<std::string> DecodeContactKey(std::string_view key, uint32_t tenant) {
  KeyReader reader(key, "contacts");
  std::string pk;
  RETURN_IF_ERROR(reader.Tenant(tenant));
  RETURN_IF_ERROR(reader.Str("pk", &pk));
  RETURN_IF_ERROR(reader.Done());
  return pk;
}

// ---- index --------------------------------------------------------------------------------------

std::string EncodeIndexString(std::string_view value) {
  std::string out;
  PutStringOrdered(&out, value);
  return out;
}

std::string EncodeIndexInt64(int64_t value) {
  std::string out;
  PutInt64Ordered(&out, value);
  return out;
}

std::string EncodeIndexDouble(double value) {
  std::string out;
  PutDoubleOrdered(&out, value);
  return out;
}

std::string EncodeIndexBool(bool value) {
  std::string out;
  PutBool(&out, value);
  return out;
}

absl::StatusOr<std::string> DecodeIndexString(std::string_view encoded) {
  return DecodeWhole<std::string>(encoded, &GetStringOrdered, "string");
}
absl::StatusOr<int64_t> DecodeIndexInt64(std::string_view encoded) {
  return DecodeWhole<int64_t>(encoded, &GetInt64Ordered, "int64");
}
absl::StatusOr<double> DecodeIndexDouble(std::string_view encoded) {
  return DecodeWhole<double>(encoded, &GetDoubleOrdered, "double");
}
absl::StatusOr<bool> DecodeIndexBool(std::string_view encoded) { return DecodeWhole<bool>(encoded, &GetBool, "bool"); }

std::string IndexAttributePrefix(uint32_t tenant, uint32_t attr_id) {
  std::string out = TenantPrefix(tenant);
  PutFixed32BE(&out, attr_id);
  return out;
}

std::string IndexValuePrefix(uint32_t tenant, uint32_t attr_id, std::string_view encoded_value) {
  std::string out = IndexAttributePrefix(tenant, attr_id);
  out.append(encoded_value);
  return out;
}

std::string IndexStringStartsWithPrefix(uint32_t tenant, uint32_t attr_id, std::string_view value_prefix) {
  std::string out = IndexAttributePrefix(tenant, attr_id);
  PutStringEscapedNoTerminator(&out, value_prefix);
  return out;
}

std::string IndexKey(uint32_t tenant, uint32_t attr_id, std::string_view encoded_value, std::string_view pk) {
  std::string out = IndexValuePrefix(tenant, attr_id, encoded_value);
  PutStringOrdered(&out, pk);
  return out;
}

absl::StatusOr<IndexKeyFields> DecodeIndexKey(std::string_view key, uint32_t tenant, uint32_t attr_id,
                                              IndexValueKind kind) {
  KeyReader reader(key, "index");
  uint32_t got_attr = 0;
  std::string_view value;
  IndexKeyFields fields;
  RETURN_IF_ERROR(reader.Tenant(tenant));
  RETURN_IF_ERROR(reader.U32("attribute id", &got_attr));
  RETURN_IF_ERROR(reader.Expect("attribute id", got_attr, attr_id));
  RETURN_IF_ERROR(reader.IndexValue(kind, &value));
  RETURN_IF_ERROR(reader.Str("pk", &fields.pk));
  RETURN_IF_ERROR(reader.Done());
  fields.encoded_value.assign(value);
  return fields;
}

absl::StatusOr<std::string> DecodeIndexKeyPk(std::string_view key, uint32_t tenant, uint32_t attr_id,
                                             IndexValueKind kind) {
  absl::StatusOr<IndexKeyFields> fields = DecodeIndexKey(key, tenant, attr_id, kind);
  if (!fields.ok()) return fields.status();
  return std::move(fields->pk);
}

// ---- membership ---------------------------------------------------------------------------------

std::string MembershipListPrefix(uint32_t tenant, uint64_t list_id) {
  std::string out = TenantPrefix(tenant);
  PutFixed64BE(&out, list_id);
  return out;
}

std::string MembershipKey(uint32_t tenant, uint64_t list_id, std::string_view pk) {
  std::string out = MembershipListPrefix(tenant, list_id);
  PutStringOrdered(&out, pk);
  return out;
}

absl::StatusOr<std::string> DecodeMembershipPk(std::string_view key, uint32_t tenant, uint64_t list_id) {
  KeyReader reader(key, "membership");
  uint64_t got_list = 0;
  std::string pk;
  RETURN_IF_ERROR(reader.Tenant(tenant));
  RETURN_IF_ERROR(reader.U64("list id", &got_list));
  RETURN_IF_ERROR(reader.Expect("list id", got_list, list_id));
  RETURN_IF_ERROR(reader.Str("pk", &pk));
  RETURN_IF_ERROR(reader.Done());
  return pk;
}

// ---- ordinals -----------------------------------------------------------------------------------

std::string OrdinalKey(uint32_t tenant, uint32_t ordinal) {
  std::string out;
  AppendOrdinalKey(&out, tenant, ordinal);
  return out;
}

void AppendOrdinalKey(std::string* dst, uint32_t tenant, uint32_t ordinal) {
  PutFixed32BE(dst, tenant);
  PutFixed32BE(dst, ordinal);
}

std::string OrdinalPrefix(uint32_t tenant) { return TenantPrefix(tenant); }

absl::StatusOr<uint32_t> DecodeOrdinal(std::string_view key, uint32_t tenant) {
  KeyReader reader(key, "ordinals");
  uint32_t ordinal = 0;
  RETURN_IF_ERROR(reader.Tenant(tenant));
  RETURN_IF_ERROR(reader.U32("ordinal", &ordinal));
  RETURN_IF_ERROR(reader.Done());
  return ordinal;
}

// ---- catalog ------------------------------------------------------------------------------------

std::string CatalogKindPrefix(uint32_t tenant, CatalogKind kind) {
  std::string out = TenantPrefix(tenant);
  out.push_back(static_cast<char>(kind));
  return out;
}

std::string CatalogKey(uint32_t tenant, CatalogKind kind, std::string_view name) {
  std::string out = CatalogKindPrefix(tenant, kind);
  PutStringOrdered(&out, name);
  return out;
}

absl::StatusOr<std::string> DecodeCatalogName(std::string_view key, uint32_t tenant, CatalogKind kind) {
  KeyReader reader(key, "catalog");
  uint8_t got_kind = 0;
  std::string name;
  RETURN_IF_ERROR(reader.Tenant(tenant));
  RETURN_IF_ERROR(reader.Byte("kind", &got_kind));
  RETURN_IF_ERROR(reader.Expect<int>("kind", got_kind, static_cast<int>(kind)));
  RETURN_IF_ERROR(reader.Str("name", &name));
  RETURN_IF_ERROR(reader.Done());
  return name;
}

std::string TenantRegistryPrefix() {
  std::string out = TenantPrefix(kReservedTenantId);
  out.push_back(kRegistryTag);
  return out;
}

std::string TenantRegistryKey(std::string_view tenant_name) {
  std::string out = TenantRegistryPrefix();
  PutStringOrdered(&out, tenant_name);
  return out;
}

absl::StatusOr<std::string> DecodeTenantRegistryName(std::string_view key) {
  KeyReader reader(key, "tenant registry");
  uint8_t tag = 0;
  std::string name;
  RETURN_IF_ERROR(reader.Tenant(kReservedTenantId));
  RETURN_IF_ERROR(reader.Byte("tag", &tag));
  RETURN_IF_ERROR(reader.Expect<int>("tag", tag, kRegistryTag));
  RETURN_IF_ERROR(reader.Str("tenant name", &name));
  RETURN_IF_ERROR(reader.Done());
  return name;
}

// ---- applied ------------------------------------------------------------------------------------

std::string AppliedJobPrefix(uint32_t tenant, std::string_view job_id) {
  std::string out = TenantPrefix(tenant);
  PutStringOrdered(&out, job_id);
  return out;
}

std::string AppliedKey(uint32_t tenant, std::string_view job_id, uint64_t batch_seq) {
  std::string out = AppliedJobPrefix(tenant, job_id);
  PutFixed64BE(&out, batch_seq);
  return out;
}

absl::StatusOr<AppliedKeyFields> DecodeAppliedKey(std::string_view key, uint32_t tenant) {
  KeyReader reader(key, "applied");
  AppliedKeyFields fields;
  RETURN_IF_ERROR(reader.Tenant(tenant));
  RETURN_IF_ERROR(reader.Str("job id", &fields.job_id));
  RETURN_IF_ERROR(reader.U64("batch sequence", &fields.batch_seq));
  RETURN_IF_ERROR(reader.Done());
  return fields;
}

// ---- anonymous ----------------------------------------------------------------------------------

std::string AnonymousKey(uint32_t tenant, std::string_view guid) {
  std::string out = TenantPrefix(tenant);
  PutStringOrdered(&out, guid);
  return out;
}

std::string AnonymousPrefix(uint32_t tenant) { return TenantPrefix(tenant); }

absl::StatusOr<std::string> DecodeAnonymousKey(std::string_view key, uint32_t tenant) {
  KeyReader reader(key, "anonymous");
  std::string guid;
  RETURN_IF_ERROR(reader.Tenant(tenant));
  RETURN_IF_ERROR(reader.Str("guid", &guid));
  RETURN_IF_ERROR(reader.Done());
  return guid;
}

std::string AnonymousByTimePrefix(uint32_t tenant) { return TenantPrefix(tenant); }

std::string AnonymousByTimeSeek(uint32_t tenant, int64_t created_micros) {
  std::string out = TenantPrefix(tenant);
  PutInt64OrderedDesc(&out, created_micros);
  return out;
}

std::string AnonymousByTimeKey(uint32_t tenant, int64_t created_micros, std::string_view guid) {
  std::string out = AnonymousByTimeSeek(tenant, created_micros);
  PutStringOrdered(&out, guid);
  return out;
}

absl::StatusOr<AnonymousByTimeFields> DecodeAnonymousByTime(std::string_view key, uint32_t tenant) {
  KeyReader reader(key, "anonymous_by_time");
  AnonymousByTimeFields fields;
  RETURN_IF_ERROR(reader.Tenant(tenant));
  RETURN_IF_ERROR(reader.Int64Desc("created time", &fields.created_micros));
  RETURN_IF_ERROR(reader.Str("guid", &fields.guid));
  RETURN_IF_ERROR(reader.Done());
  return fields;
}

}  // namespace contacts::keys
