#include "common/zip/safe_zip.h"

#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include <sys/stat.h>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace contacts {
namespace {

constexpr size_t kChunkBytes = 256 * 1024;
// The ratio limit applies only past this many inflated bytes, so tiny, very compressible files pass.
constexpr uint64_t kRatioGraceBytes = 1 << 20;
// Enough leading bytes to recognise every archive magic below.
constexpr size_t kMagicBytes = 10;
// Names are quoted in messages; a hostile name must not flood the log.
constexpr size_t kMaxQuotedNameBytes = 200;

struct ZipDiscarder {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* file) const { zip_fclose(file); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipDiscarder>;
using ZipFilePtr = std::unique_ptr<zip_file_t, ZipFileCloser>;

enum class EntryKind { kDirectory, kJunk, kData, kOther };

// The entry name in double quotes, control bytes escaped, cut at kMaxQuotedNameBytes. UTF-8 passes.
std::string Quote(std::string_view name) {
  std::string out = "\"";
  for (size_t i = 0; i < name.size() && i < kMaxQuotedNameBytes; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (name.size() > kMaxQuotedNameBytes) out += "...";
  out += '"';
  return out;
}

absl::Status EntryError(std::string_view name, std::string_view problem) {
  return absl::InvalidArgumentError(fmt::format("zip entry {}: {}", Quote(name), problem));
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c); });
  return out;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view BaseName(std::string_view name) {
  const size_t slash = name.rfind('/');
  return slash == std::string_view::npos ? name : name.substr(slash + 1);
}

// Why the name is refused, if it is. Entry names never become paths here; refusing these anyway
// stops an archive that was built to attack other extractors.
std::optional<std::string> NameProblem(std::string_view name) {
  if (name.empty()) return "has an empty name";
  if (name.find('\0') != std::string_view::npos) return "name contains a NUL byte";
  if (name.find('\\') != std::string_view::npos) return "name contains a backslash";
  const bool drive_letter =
      name.size() >= 2 && name[1] == ':' && ((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z'));
  if (name.front() == '/' || drive_letter) return "name is an absolute path";
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    if (name.substr(start, end - start) == "..") return "name contains a \"..\" path component";
    start = end + 1;
  }
  return std::nullopt;
}

bool HasArchiveExtension(std::string_view name) {
  static constexpr std::array<std::string_view, 8> kArchiveExtensions = {".zip", ".gz",  ".tgz", ".7z",
                                                                         ".rar", ".tar", ".bz2", ".xz"};
  const std::string lower = ToLower(BaseName(name));
  return std::any_of(kArchiveExtensions.begin(), kArchiveExtensions.end(),
                     [&](std::string_view ext) { return EndsWith(lower, ext); });
}

// The archive format whose magic starts `head`, or nullptr.
const char* ArchiveMagic(std::string_view head) {
  struct Magic {
    std::string_view bytes;
    const char* format;
  };
  static const std::array<Magic, 8> kMagics = {{
      {std::string_view("PK\x03\x04", 4), "zip"},
      {std::string_view("PK\x05\x06", 4), "zip"},
      {std::string_view("PK\x07\x08", 4), "zip"},
      {std::string_view("\x1f\x8b", 2), "gzip"},
      {std::string_view("7z\xbc\xaf\x27\x1c", 6), "7z"},
      {std::string_view("Rar!\x1a\x07", 6), "rar"},
      {std::string_view("\xfd"
                        "7zXZ\x00",
                        6),
       "xz"},
      {std::string_view("BZh", 3), "bzip2"},
  }};
  for (const Magic& magic : kMagics) {
    if (head.substr(0, magic.bytes.size()) != magic.bytes) continue;
    // "BZh" alone is plausible text; bzip2 follows it with a block size digit and the pi block magic.
    if (std::string_view(magic.format) == "bzip2" &&
        (head.size() < 10 || head[3] < '1' || head[3] > '9' || head.substr(4, 6) != "1AY&SY")) {
      continue;
    }
    return magic.format;
  }
  return nullptr;
}

EntryKind Classify(std::string_view name) {
  if (name.back() == '/') return EntryKind::kDirectory;
  const std::string_view base = BaseName(name);
  if (name.substr(0, 9) == "__MACOSX/" || base.substr(0, 2) == "._" || base == ".DS_Store") return EntryKind::kJunk;
  const std::string lower = ToLower(base);
  if (EndsWith(lower, ".csv") || EndsWith(lower, ".txt")) return EntryKind::kData;
  return EntryKind::kOther;
}

// Reads until `out` is full or the entry ends; returns the byte count.
absl::StatusOr<size_t> ReadFull(zip_file_t* file, std::string_view name, char* out, size_t size) {
  size_t filled = 0;
  while (filled < size) {
    const zip_int64_t n = zip_fread(file, out + filled, size - filled);
    if (n < 0)
      return EntryError(name, fmt::format("cannot be inflated: {}", zip_error_strerror(zip_file_get_error(file))));
    if (n == 0) break;
    filled += static_cast<size_t>(n);
  }
  return filled;
}

absl::StatusOr<ZipFilePtr> OpenEntry(zip_t* archive, uint64_t index, std::string_view name) {
  ZipFilePtr file(zip_fopen_index(archive, index, 0));
  if (file == nullptr) {
    return EntryError(name, fmt::format("cannot be opened: {}", zip_error_strerror(zip_get_error(archive))));
  }
  return file;
}

absl::Status CheckNotNestedArchive(std::string_view name, std::string_view head) {
  if (const char* format = ArchiveMagic(head)) {
    return EntryError(
        name, fmt::format("is a nested {} archive (by its leading bytes); nested archives are refused", format));
  }
  return absl::OkStatus();
}

uint64_t LittleEndian(std::string_view bytes, size_t at, size_t width) {
  uint64_t value = 0;
  for (size_t i = 0; i < width; ++i) value |= uint64_t{static_cast<unsigned char>(bytes[at + i])} << (8 * i);
  return value;
}

absl::StatusOr<std::string> ReadAt(std::FILE* file, uint64_t offset, uint64_t size) {
  std::string out(size, '\0');
  if (::fseeko(file, static_cast<off_t>(offset), SEEK_SET) != 0 || std::fread(out.data(), 1, size, file) != size) {
    return absl::InvalidArgumentError("not a valid zip archive: cannot read its central directory");
  }
  return out;
}

// libzip shows a NUL in an entry name as a space, so the raw central directory is scanned for
// names holding a NUL. Runs after libzip opened the archive with ZIP_CHECKCONS, which guarantees
// the central directory ends where the (zip64) end-of-central-directory record starts.
absl::Status CheckRawNamesHaveNoNul(const std::string& zip_path, uint64_t num_entries) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(zip_path.c_str(), "rbe"), &std::fclose);
  if (file == nullptr)
    return absl::InternalError(fmt::format("cannot reopen \"{}\": {}", zip_path, std::strerror(errno)));
  if (::fseeko(file.get(), 0, SEEK_END) != 0) return absl::InternalError("cannot seek in the zip file");
  const auto file_size = static_cast<uint64_t>(::ftello(file.get()));
  constexpr uint64_t kEocdBytes = 22;
  constexpr uint64_t kLocatorBytes = 20;
  const uint64_t tail_size = std::min<uint64_t>(file_size, kEocdBytes + 0xffff + kLocatorBytes);
  auto tail = ReadAt(file.get(), file_size - tail_size, tail_size);
  if (!tail.ok()) return tail.status();
  // The last end-of-central-directory signature whose comment runs exactly to the end of the file.
  size_t eocd = std::string::npos;
  for (size_t at = tail->size() >= kEocdBytes ? tail->size() - kEocdBytes + 1 : 0; at-- > 0;) {
    if (tail->compare(at, 4, "PK\x05\x06") == 0 && at + kEocdBytes + LittleEndian(*tail, at + 20, 2) == tail->size()) {
      eocd = at;
      break;
    }
  }
  if (eocd == std::string::npos)
    return absl::InvalidArgumentError("not a valid zip archive: no end of central directory");
  uint64_t cd_offset = LittleEndian(*tail, eocd + 16, 4);
  uint64_t cd_size = LittleEndian(*tail, eocd + 12, 4);
  if ((cd_offset == 0xffffffff || cd_size == 0xffffffff || LittleEndian(*tail, eocd + 10, 2) == 0xffff) &&
      eocd >= kLocatorBytes && tail->compare(eocd - kLocatorBytes, 4, "PK\x06\x07") == 0) {
    auto zip64 = ReadAt(file.get(), LittleEndian(*tail, eocd - kLocatorBytes + 8, 8), 56);
    if (!zip64.ok()) return zip64.status();
    if (zip64->compare(0, 4, "PK\x06\x06") != 0) {
      return absl::InvalidArgumentError("not a valid zip archive: bad zip64 end of central directory");
    }
    cd_size = LittleEndian(*zip64, 40, 8);
    cd_offset = LittleEndian(*zip64, 48, 8);
  }
  // Each entry takes at most 46 fixed bytes plus three 16-bit-length fields.
  if (cd_offset > file_size || cd_size > file_size - cd_offset || cd_size > num_entries * (46 + 3 * 0xffff)) {
    return absl::InvalidArgumentError("not a valid zip archive: central directory out of bounds");
  }
  auto cd = ReadAt(file.get(), cd_offset, cd_size);
  if (!cd.ok()) return cd.status();
  size_t at = 0;
  for (uint64_t i = 0; i < num_entries; ++i) {
    if (at + 46 > cd->size() || cd->compare(at, 4, "PK\x01\x02") != 0) {
      return absl::InvalidArgumentError(
          fmt::format("not a valid zip archive: central directory entry #{} is corrupt", i));
    }
    const size_t name_size = LittleEndian(*cd, at + 28, 2);
    const size_t record_size = 46 + name_size + LittleEndian(*cd, at + 30, 2) + LittleEndian(*cd, at + 32, 2);
    if (at + record_size > cd->size()) {
      return absl::InvalidArgumentError(
          fmt::format("not a valid zip archive: central directory entry #{} is corrupt", i));
    }
    const std::string_view name(cd->data() + at + 46, name_size);
    if (name.find('\0') != std::string_view::npos) return EntryError(name, "name contains a NUL byte");
    at += record_size;
  }
  return absl::OkStatus();
}

absl::StatusOr<ZipPtr> OpenArchive(const std::string& zip_path) {
  struct stat st;
  if (::stat(zip_path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return absl::NotFoundError(fmt::format("zip file \"{}\" does not exist", zip_path));
    return absl::InternalError(fmt::format("cannot stat zip file \"{}\": {}", zip_path, std::strerror(err)));
  }
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_file_create(zip_path.c_str(), 0, -1, &error);
  zip_t* archive = nullptr;
  if (source != nullptr) {
    archive = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
    if (archive == nullptr) zip_source_free(source);
  }
  if (archive == nullptr) {
    const int code = zip_error_code_zip(&error);
    const std::string reason = zip_error_strerror(&error);
    zip_error_fini(&error);
    if (code == ZIP_ER_NOENT) return absl::NotFoundError(fmt::format("zip file \"{}\" does not exist", zip_path));
    if (code == ZIP_ER_OPEN || code == ZIP_ER_READ || code == ZIP_ER_SEEK || code == ZIP_ER_MEMORY) {
      return absl::InternalError(fmt::format("cannot read zip file \"{}\": {}", zip_path, reason));
    }
    return absl::InvalidArgumentError(fmt::format("not a valid zip archive: {}", reason));
  }
  zip_error_fini(&error);
  return ZipPtr(archive);
}

// The destination file while it is being written: removed unless Commit() succeeds.
class PartialFile {
 public:
  explicit PartialFile(std::string path) : path_(std::move(path)) {}
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;
  ~PartialFile() {
    if (file_ != nullptr) std::fclose(file_);
    if (created_ && !committed_) ::unlink(path_.c_str());
  }

  absl::Status Open() {
    file_ = std::fopen(path_.c_str(), "wbe");
    if (file_ == nullptr) return Errno("cannot create");
    created_ = true;
    return absl::OkStatus();
  }

  absl::Status Write(const char* data, size_t size) {
    if (size > 0 && std::fwrite(data, 1, size, file_) != size) return Errno("cannot write");
    return absl::OkStatus();
  }

  // Flushes, fsyncs and closes; the file then stays.
  absl::Status Commit() {
    if (std::fflush(file_) != 0) return Errno("cannot flush");
    if (::fsync(fileno(file_)) != 0) return Errno("cannot fsync");
    const int rc = std::fclose(file_);
    file_ = nullptr;
    if (rc != 0) return Errno("cannot close");
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  absl::Status Errno(std::string_view what) const {
    return absl::InternalError(fmt::format("{} destination \"{}\": {}", what, path_, std::strerror(errno)));
  }

  std::string path_;
  std::FILE* file_ = nullptr;
  bool created_ = false;
  bool committed_ = false;
};

struct DataEntry {
  uint64_t index;
  std::string name;
  zip_stat_t stat;
};

absl::Status Extract(zip_t* archive, const DataEntry& entry, const std::string& dest_path, const ZipLimits& limits,
                     uint64_t& written) {
  auto file = OpenEntry(archive, entry.index, entry.name);
  if (!file.ok()) return file.status();
  const uint64_t compressed = (entry.stat.valid & ZIP_STAT_COMP_SIZE) ? entry.stat.comp_size : 0;

  PartialFile dest(dest_path);
  if (absl::Status s = dest.Open(); !s.ok()) return s;
  std::vector<char> buffer(kChunkBytes);
  bool first = true;
  while (true) {
    auto n = ReadFull(file->get(), entry.name, buffer.data(), buffer.size());
    if (!n.ok()) return n.status();
    if (first) {
      first = false;
      absl::Status s = CheckNotNestedArchive(entry.name, std::string_view(buffer.data(), std::min(*n, kMagicBytes)));
      if (!s.ok()) return s;
    }
    if (*n == 0) break;
    // Count before writing, so nothing past a limit reaches the disk.
    written += *n;
    if (written > limits.max_entry_bytes) {
      return EntryError(entry.name,
                        fmt::format("inflates to more than the limit of {} bytes per entry", limits.max_entry_bytes));
    }
    if (written > limits.max_total_bytes) {
      return EntryError(entry.name,
                        fmt::format("inflates past the limit of {} bytes per archive", limits.max_total_bytes));
    }
    if (written > kRatioGraceBytes &&
        (compressed == 0 || static_cast<double>(written) > limits.max_ratio * static_cast<double>(compressed))) {
      return EntryError(entry.name, fmt::format("compression ratio exceeds the limit of {} ({} bytes inflated from {} "
                                                "compressed bytes so far); refused as a possible zip bomb",
                                                limits.max_ratio, written, compressed));
    }
    if (absl::Status s = dest.Write(buffer.data(), *n); !s.ok()) return s;
    if (*n < buffer.size()) break;
  }
  if ((entry.stat.valid & ZIP_STAT_SIZE) && written != entry.stat.size) {
    return EntryError(entry.name, fmt::format("inflated to {} bytes but its header says {}", written, entry.stat.size));
  }
  return dest.Commit();
}

}  // namespace

absl::StatusOr<ExtractedEntry> ExtractSingleDataFile(const std::string& zip_path, const std::string& dest_path,
                                                     const ZipLimits& limits) {
  auto archive_or = OpenArchive(zip_path);
  if (!archive_or.ok()) return archive_or.status();
  zip_t* archive = archive_or->get();

  const zip_int64_t num_entries = zip_get_num_entries(archive, 0);
  if (num_entries < 0) return absl::InvalidArgumentError("not a valid zip archive: cannot count its entries");
  if (static_cast<uint64_t>(num_entries) > limits.max_entries) {
    return absl::InvalidArgumentError(
        fmt::format("zip archive has {} entries, more than the limit of {}", num_entries, limits.max_entries));
  }

  if (absl::Status s = CheckRawNamesHaveNoNul(zip_path, static_cast<uint64_t>(num_entries)); !s.ok()) return s;

  std::vector<DataEntry> data_entries;
  std::vector<DataEntry> junk_entries;
  std::vector<std::string> other_names;
  for (uint64_t i = 0; i < static_cast<uint64_t>(num_entries); ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(archive, i, 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME) || st.name == nullptr) {
      return absl::InvalidArgumentError(fmt::format("zip entry #{} cannot be read: {}", i, zip_strerror(archive)));
    }
    const std::string name = st.name;
    if (auto problem = NameProblem(name)) return EntryError(name, *problem);
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE) {
      return EntryError(name, "is encrypted; encrypted archives are refused");
    }
    if (HasArchiveExtension(name))
      return EntryError(name, "is a nested archive (by its name); nested archives are refused");
    switch (Classify(name)) {
      case EntryKind::kDirectory:
        break;
      case EntryKind::kJunk:
        junk_entries.push_back({i, name, st});
        break;
      case EntryKind::kData:
        data_entries.push_back({i, name, st});
        break;
      case EntryKind::kOther:
        other_names.push_back(name);
        break;
    }
  }
  if (data_entries.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("zip archive holds no data file (.csv or .txt); it must hold exactly one{}",
                    other_names.empty() ? "" : fmt::format(" (found {})", Quote(other_names.front()))));
  }
  if (data_entries.size() > 1) {
    return absl::InvalidArgumentError(
        fmt::format("zip archive holds more than one data file ({} and {}); it must hold exactly one",
                    Quote(data_entries[0].name), Quote(data_entries[1].name)));
  }
  if (!other_names.empty()) {
    return EntryError(other_names.front(),
                      "is not a .csv or .txt data file; the archive must hold exactly one data file");
  }
  // Junk is never extracted, but a nested archive hidden as junk is still refused.
  for (const DataEntry& junk : junk_entries) {
    auto file = OpenEntry(archive, junk.index, junk.name);
    if (!file.ok()) return file.status();
    std::array<char, kMagicBytes> head;
    auto n = ReadFull(file->get(), junk.name, head.data(), head.size());
    if (!n.ok()) return n.status();
    if (absl::Status s = CheckNotNestedArchive(junk.name, std::string_view(head.data(), *n)); !s.ok()) return s;
  }

  const DataEntry& data = data_entries.front();
  uint64_t written = 0;
  if (absl::Status s = Extract(archive, data, dest_path, limits, written); !s.ok()) return s;
  const std::string base = ToLower(BaseName(data.name));
  return ExtractedEntry{
      .entry_name = data.name,
      .extension = base.substr(base.size() - 4),
      .uncompressed_bytes = written,
      .compressed_bytes = (data.stat.valid & ZIP_STAT_COMP_SIZE) ? data.stat.comp_size : 0,
  };
}

}  // namespace contacts
