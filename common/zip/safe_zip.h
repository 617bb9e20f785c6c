// Safe extraction of an uploaded .zip that must hold exactly one data file (.csv or .txt).
//
// import-processor spools an upload to disk; when it is a .zip, ExtractSingleDataFile checks the
// archive (entry count, encryption, nested archives, entry names, junk) and streams the one data
// entry to a destination path, counting inflated bytes as they come so that a zip bomb is stopped
// early whatever its headers claim. Entry names are never used as file paths.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace contacts {

struct ZipLimits {
  // Entries in the central directory, directories and junk included. Default: 16.
  uint64_t max_entries = 16;
  // Uncompressed bytes of the data entry, counted while inflating. Default: 4 GiB.
  uint64_t max_entry_bytes = 4ull << 30;
  // Uncompressed bytes extracted from the whole archive. Default: 4 GiB.
  uint64_t max_total_bytes = 4ull << 30;
  // Inflated bytes / compressed size of the entry, enforced once more than 1 MiB has been
  // inflated (small, very compressible files are fine). Default: 200.
  double max_ratio = 200.0;
};

struct ExtractedEntry {
  std::string entry_name;       // name inside the archive, e.g. "export/contacts.csv"
  std::string extension;        // ".csv" or ".txt" (lower case)
  uint64_t uncompressed_bytes;  // bytes written to the destination
  uint64_t compressed_bytes;    // compressed size of the entry in the archive
};

// Extracts the single .csv/.txt entry of the archive at `zip_path` to `dest_path` (created, or
// replaced if it exists, then fsynced). Directories and macOS junk (__MACOSX/..., "._*",
// .DS_Store) are ignored; any other entry is refused.
//
// Errors:
//   NOT_FOUND         `zip_path` does not exist.
//   INVALID_ARGUMENT  the upload is unacceptable; the message names the entry and the problem:
//                     not a zip, truncated or inconsistent archive, more than max_entries entries,
//                     an encrypted entry, a nested archive (by name or by magic bytes), an entry
//                     name that is absolute or holds "..", a backslash or a NUL, no data file or
//                     more than one, an entry that is neither data nor junk, a limit of `limits`
//                     exceeded while inflating, a CRC or inflate error.
//   INTERNAL          the zip file could not be opened or read, or `dest_path` could not be
//                     written (message has errno's text).
// On any error `dest_path` does not exist afterwards if this call created or truncated it; it is
// left untouched if the archive was refused before extraction began.
absl::StatusOr<ExtractedEntry> ExtractSingleDataFile(const std::string& zip_path, const std::string& dest_path,
                                                     const ZipLimits& limits);

}  // namespace contacts
