// Any text normalised as every attribute type: no crash, and canonical values are fixed points.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/values/attribute_type.h"
#include "common/values/typed_value.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  for (int type = 1; type <= 8; ++type) {
    auto kind = static_cast<contacts::AttributeType>(type);
    auto canonical = contacts::NormalizeValue(kind, input);
    if (!canonical.ok()) continue;
    auto again = contacts::NormalizeValue(kind, *canonical);
    if (!again.ok() || *again != *canonical) std::abort();
    (void)contacts::CompareValues(kind, *canonical, input);
  }
  return 0;
}
