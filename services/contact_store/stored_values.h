// The values of a stored contact by attribute id (StoredContact.values, storage.proto): a short
// list, in no particular order, with at most one entry per attribute.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "contacts/internal/storage.pb.h"

namespace contacts::store {

// The entry for `attribute_id`, or null. A record written through the old map encoding could in
// principle repeat an id; the map kept the last, and so does this.
inline const std::string* FindStoredValue(const contacts::internal::StoredContact& contact, uint32_t attribute_id) {
  for (int i = contact.values_size() - 1; i >= 0; --i) {
    const contacts::internal::StoredValue& entry = contact.values(i);
    if (entry.attribute_id() == attribute_id) return &entry.value();
  }
  return nullptr;
}

// The value of `attribute_id`; "" when it has none.
inline std::string_view StoredValueOf(const contacts::internal::StoredContact& contact, uint32_t attribute_id) {
  const std::string* value = FindStoredValue(contact, attribute_id);
  return value == nullptr ? std::string_view() : std::string_view(*value);
}

// Sets the value of `attribute_id`; "" removes it.
inline void SetStoredValue(contacts::internal::StoredContact* contact, uint32_t attribute_id, std::string_view value) {
  auto* values = contact->mutable_values();
  for (int i = values->size() - 1; i >= 0; --i) {
    if (values->Get(i).attribute_id() != attribute_id) continue;
    if (value.empty()) {
      values->SwapElements(i, values->size() - 1);
      values->RemoveLast();
    } else {
      values->Mutable(i)->set_value(value.data(), value.size());
    }
    return;
  }
  if (value.empty()) return;
  contacts::internal::StoredValue* entry = values->Add();
  entry->set_attribute_id(attribute_id);
  entry->set_value(value.data(), value.size());
}

// Whether both contacts hold the same values, whatever their order.
inline bool SameStoredValues(const contacts::internal::StoredContact& a, const contacts::internal::StoredContact& b) {
  if (a.values_size() != b.values_size()) return false;
  for (const contacts::internal::StoredValue& entry : a.values()) {
    const std::string* other = FindStoredValue(b, entry.attribute_id());
    if (other == nullptr || *other != entry.value()) return false;
  }
  return true;
}

}  // namespace contacts::store
