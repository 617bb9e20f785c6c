// Any text through the filter parser; whatever parses must print and parse back to the same tree.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <google/protobuf/util/message_differencer.h>

#include "services/audience_query/filter_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto tree = contacts::ParseFilterText(input);
  if (!tree.ok()) return 0;
  auto again = contacts::ParseFilterText(contacts::PrintFilterText(*tree));
  if (!again.ok() || !google::protobuf::util::MessageDifferencer::Equals(*tree, *again)) std::abort();
  return 0;
}
