// Any bytes as a contacts-family record: the export's own wire reader (StoredContactFields) and
// protobuf with stored_values.h must agree, ordinal and values alike, on every record both take;
// neither may crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "services/contact_store/export_writer.h"
#include "services/contact_store/stored_values.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view record(reinterpret_cast<const char*>(data), size);
  const std::vector<uint32_t> ids = {0, 1, 2, 3, 4, 7, 127, 128, 300, 1, 70000};
  contacts::store::StoredContactFields fields(ids);
  const bool read = fields.Read(record).ok();
  contacts::internal::StoredContact contact;
  const bool parsed = contacts::store::ParseStoredContact(record, &contact);
  if (!read) return 0;
  if (!parsed) {
    // The export skips the fields it does not read, so it may take a record whose other fields
    // protobuf refuses; but never one whose packed values ParseStoredContact calls malformed.
    contacts::internal::StoredContact plain;
    if (plain.ParseFromArray(record.data(), static_cast<int>(record.size()))) std::abort();
    return 0;
  }
  if (fields.ordinal() != contact.ordinal()) std::abort();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (fields.values()[i] != contacts::store::StoredValueOf(contact, ids[i])) std::abort();
  }
  return 0;
}
