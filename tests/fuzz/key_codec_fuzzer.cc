// Any bytes through every key decoder: errors, never crashes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/storage/key_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace contacts::keys;  // NOLINT
  std::string_view key(reinterpret_cast<const char*>(data), size);
  (void)DecodeKeyTenant(key);
  (void)DecodeContactKey(key, 1);
  for (auto kind : {IndexValueKind::kString, IndexValueKind::kInt64, IndexValueKind::kDouble, IndexValueKind::kBool}) {
    (void)DecodeIndexKey(key, 1, 2, kind);
  }
  (void)DecodeMembershipPk(key, 1, 3);
  (void)DecodeOrdinal(key, 1);
  (void)DecodeCatalogName(key, 1, CatalogKind::kAttribute);
  (void)DecodeTenantRegistryName(key);
  (void)DecodeAppliedKey(key, 1);
  (void)DecodeAnonymousByTime(key, 1);
  (void)PrefixSuccessor(std::string(key));
  return 0;
}
