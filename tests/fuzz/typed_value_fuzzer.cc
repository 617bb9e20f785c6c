// Any text normalised as every attribute type (and read as a prefix search's query): no crash, canonical values are
// fixed points, and AppendNormalizedValue appends exactly NormalizeValue's text (leaving the buffer alone on error).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/values/attribute_type.h"
#include "common/values/typed_value.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  for (int type = 1; type <= 8; ++type) {
    auto kind = static_cast<contacts::AttributeType>(type);
    (void)contacts::CanonicalPrefix(kind, input);  // as typed into a prefix search: no crash
    auto canonical = contacts::NormalizeValue(kind, input);
    std::string buffer = "Held|";
    const absl::Status appended = contacts::AppendNormalizedValue(kind, input, contacts::ValueOptions(), &buffer);
    if (appended != canonical.status() || buffer != "Held|" + canonical.value_or("")) std::abort();
    if (!canonical.ok()) continue;
    auto again = contacts::NormalizeValue(kind, *canonical);
    if (!again.ok() || *again != *canonical) std::abort();
    (void)contacts::CompareValues(kind, *canonical, input);
  }
  return 0;
}
