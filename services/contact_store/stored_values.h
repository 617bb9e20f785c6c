// The values of a stored contact by attribute id: a short list, in no particular order, with at most
// one entry per attribute. Records hold them packed in one string (StoredContact.packed_values:
// entries of varint attribute id, varint length, value bytes); records written before session 19
// hold them as StoredValue messages (StoredContact.values), which every reader here still reads and
// SetStoredValue moves to the packed form.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "contacts/internal/storage.pb.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace contacts::store {

inline void AppendPackedVarint(std::string* packed, uint64_t v) {
  while (v >= 0x80) {
    packed->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  packed->push_back(static_cast<char>(v));
}

// Appends one entry to a packed string, whatever it holds already.
inline void AppendPackedValue(std::string* packed, uint32_t attribute_id, std::string_view value) {
  AppendPackedVarint(packed, attribute_id);
  AppendPackedVarint(packed, value.size());
  packed->append(value.data(), value.size());
}

// Appends one entry whose value write(packed) appends, without a string of its own. Returns the
// value (a view into *packed, valid until it changes), or write's error; on an error or an empty
// value *packed is left as it was.
template <typename Write>
absl::StatusOr<std::string_view> AppendPackedValueWith(std::string* packed, uint32_t attribute_id, Write&& write) {
  const size_t entry_start = packed->size();
  AppendPackedVarint(packed, attribute_id);
  const size_t length_at = packed->size();
  packed->push_back('\0');  // the length: one byte for a value under 128 bytes, widened below
  const size_t value_start = packed->size();
  if (absl::Status written = write(packed); !written.ok()) {
    packed->resize(entry_start);
    return written;
  }
  const size_t size = packed->size() - value_start;
  if (size == 0) {
    packed->resize(entry_start);
    return std::string_view();
  }
  if (size < 0x80) {
    (*packed)[length_at] = static_cast<char>(size);
  } else {
    std::string length;
    AppendPackedVarint(&length, size);
    packed->replace(length_at, 1, length);
  }
  return std::string_view(packed->data() + packed->size() - size, size);
}

// Reads the entries of a packed string in order. A malformed tail (which no writer produces; a
// damaged record fails RocksDB's checksums first) ends the entries, and malformed() says so.
class PackedValueReader {
 public:
  explicit PackedValueReader(std::string_view packed) : at_(packed.data()), end_(packed.data() + packed.size()) {}

  bool Next(uint32_t* attribute_id, std::string_view* value) {
    if (at_ == end_) return false;
    uint64_t id = 0;
    uint64_t size = 0;
    if (!Varint(&id) || !Varint(&size) || id > UINT32_MAX || size > static_cast<uint64_t>(end_ - at_)) {
      malformed_ = true;
      at_ = end_;
      return false;
    }
    *attribute_id = static_cast<uint32_t>(id);
    *value = std::string_view(at_, size);
    at_ += size;
    return true;
  }
  bool malformed() const { return malformed_; }

 private:
  bool Varint(uint64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && at_ < end_; shift += 7) {
      const auto byte = static_cast<uint8_t>(*at_++);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (byte < 0x80) {
        *out = v;
        return true;
      }
    }
    return false;
  }

  const char* at_;
  const char* end_;
  bool malformed_ = false;
};

// Whether a packed string holds whole entries only.
inline bool PackedValuesWellFormed(std::string_view packed) {
  PackedValueReader reader(packed);
  uint32_t id = 0;
  std::string_view value;
  while (reader.Next(&id, &value)) {
  }
  return !reader.malformed();
}

// Parses a contacts-family record: false when protobuf refuses it or its packed values are
// malformed, which the export's reader refuses too. Callers answer DATA_LOSS rather than read, or
// rewrite, a record cut short.
inline bool ParseStoredContact(std::string_view bytes, contacts::internal::StoredContact* contact) {
  if (!contact->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  return PackedValuesWellFormed(contact->packed_values());
}

// Calls fn(attribute_id, value) for every entry of `contact`: the old messages first, then the
// packed entries.
template <typename Fn>
void ForEachStoredValue(const contacts::internal::StoredContact& contact, Fn&& fn) {
  for (const contacts::internal::StoredValue& entry : contact.values()) {
    fn(entry.attribute_id(), std::string_view(entry.value()));
  }
  PackedValueReader reader(contact.packed_values());
  uint32_t id = 0;
  std::string_view value;
  while (reader.Next(&id, &value)) fn(id, value);
}

// The value of `attribute_id`, or nullopt. A record written through the old map encoding could in
// principle repeat an id; the map kept the last, and so does this.
inline std::optional<std::string_view> FindStoredValue(const contacts::internal::StoredContact& contact,
                                                       uint32_t attribute_id) {
  std::optional<std::string_view> found;
  ForEachStoredValue(contact, [&](uint32_t id, std::string_view value) {
    if (id == attribute_id) found = value;
  });
  return found;
}

// The value of `attribute_id`; "" when it has none.
inline std::string_view StoredValueOf(const contacts::internal::StoredContact& contact, uint32_t attribute_id) {
  return FindStoredValue(contact, attribute_id).value_or(std::string_view());
}

// How many entries `contact` has.
inline int StoredValueCount(const contacts::internal::StoredContact& contact) {
  int count = 0;
  ForEachStoredValue(contact, [&](uint32_t, std::string_view) { ++count; });
  return count;
}

// Sets the value of `attribute_id`; "" removes it. Moves the values of a record of the old form to
// the packed one.
inline void SetStoredValue(contacts::internal::StoredContact* contact, uint32_t attribute_id, std::string_view value) {
  std::string packed;
  packed.reserve(contact->packed_values().size() + value.size() + 10 + 8 * contact->values_size());
  bool replaced = false;
  ForEachStoredValue(*contact, [&](uint32_t id, std::string_view old) {
    if (id != attribute_id) {
      // An old-form record repeating another id keeps each entry, and readers still take the last.
      AppendPackedValue(&packed, id, old);
    } else if (!replaced && !value.empty()) {
      AppendPackedValue(&packed, id, value);
      replaced = true;
    }
  });
  if (!replaced && !value.empty()) AppendPackedValue(&packed, attribute_id, value);
  contact->clear_values();
  contact->set_packed_values(std::move(packed));
}

// Sets every entry of `changes` in `contact` (an empty value removes the attribute), in one pass:
// what an update of many values at once costs with SetStoredValue value by value, without the
// rebuild per value. `changes` holds each id at most once.
inline void MergeStoredValues(contacts::internal::StoredContact* contact,
                              const contacts::internal::StoredContact& changes) {
  std::string packed;
  packed.reserve(contact->packed_values().size() + changes.packed_values().size() + 8 * contact->values_size());
  ForEachStoredValue(*contact, [&](uint32_t id, std::string_view old) {
    if (!FindStoredValue(changes, id).has_value()) AppendPackedValue(&packed, id, old);
  });
  ForEachStoredValue(changes, [&](uint32_t id, std::string_view value) {
    if (!value.empty()) AppendPackedValue(&packed, id, value);
  });
  contact->clear_values();
  contact->set_packed_values(std::move(packed));
}

// Whether both contacts hold the same values, whatever their order or form. A record of the old
// form may repeat an id (the last entry counts, as everywhere): each side's ids are looked up in
// the other.
inline bool SameStoredValues(const contacts::internal::StoredContact& a, const contacts::internal::StoredContact& b) {
  if (a.values_size() == 0 && b.values_size() == 0 && a.packed_values() == b.packed_values()) return true;
  auto covers = [](const contacts::internal::StoredContact& from, const contacts::internal::StoredContact& in) {
    bool same = true;
    ForEachStoredValue(from, [&](uint32_t id, std::string_view) {
      if (same && FindStoredValue(from, id) != FindStoredValue(in, id)) same = false;
    });
    return same;
  };
  return covers(a, b) && covers(b, a);
}

}  // namespace contacts::store
