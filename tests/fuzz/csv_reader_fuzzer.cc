// Any bytes through the CSV reader and the UTF-8 validator: no crash, bounded memory.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/csv/byte_source.h"
#include "common/csv/csv_reader.h"
#include "common/csv/utf8_stream.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  contacts::Utf8StreamValidator utf8;
  (void)utf8.Feed(input);
  (void)utf8.Finish();
  char delimiter = contacts::DetectDelimiter(input);
  contacts::CsvReader reader(contacts::MakeStringByteSource(input), contacts::CsvDialect{delimiter},
                             contacts::CsvLimits{.max_field_bytes = 4096, .max_fields = 64, .max_record_bytes = 65536});
  contacts::CsvRecord record;
  for (int i = 0; i < 100000; ++i) {
    auto more = reader.Next(&record);
    if (!more.ok() || !*more) break;
  }
  return 0;
}
