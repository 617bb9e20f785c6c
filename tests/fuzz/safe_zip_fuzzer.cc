// Any bytes as an uploaded .zip through ExtractSingleDataFile: no crash, and its promises kept.
// A refused archive leaves no destination file behind; an accepted one leaves exactly the bytes
// it counted, within the limits. Files live in a folder of the fuzzer's own under /dev/shm (or
// $TMPDIR), made once per process.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <sys/stat.h>

#include "common/zip/safe_zip.h"

namespace {

const std::string& WorkDir() {
  static const std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/dev/shm") + "/safe_zip_fuzzer.XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    return pattern;
  }();
  return dir;
}

bool Exists(const std::string& path, uint64_t* size) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return false;
  *size = static_cast<uint64_t>(st.st_size);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string zip_path = WorkDir() + "/upload.zip";
  const std::string dest_path = WorkDir() + "/extracted";
  {
    std::ofstream zip(zip_path, std::ios::binary | std::ios::trunc);
    zip.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!zip) std::abort();
  }
  std::remove(dest_path.c_str());
  const contacts::ZipLimits limits{
      .max_entries = 8, .max_entry_bytes = 1 << 20, .max_total_bytes = 1 << 20, .max_ratio = 200.0};
  auto extracted = contacts::ExtractSingleDataFile(zip_path, dest_path, limits);
  uint64_t dest_bytes = 0;
  const bool dest_exists = Exists(dest_path, &dest_bytes);
  if (!extracted.ok()) {
    if (dest_exists) std::abort();  // a refused archive must not leave a partial file
    return 0;
  }
  if (!dest_exists || dest_bytes != extracted->uncompressed_bytes) std::abort();
  if (extracted->uncompressed_bytes > limits.max_entry_bytes) std::abort();
  if (extracted->extension != ".csv" && extracted->extension != ".txt") std::abort();
  return 0;
}
