#include "common/zip/safe_zip.h"

#include <stdlib.h>
#include <zip.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace contacts {
namespace {

using ::testing::HasSubstr;

struct TestEntry {
  std::string name;
  std::string data;
  zip_int32_t method = ZIP_CM_DEFLATE;
  bool directory = false;
  bool encrypt = false;
};

TestEntry Dir(std::string name) { return TestEntry{.name = std::move(name), .directory = true}; }

class SafeZipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "safe_zip_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    zip_path_ = (dir_ / "upload.zip").string();
    dest_path_ = (dir_ / "extracted.data").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Builds an archive at `path` with libzip itself.
  static void WriteZip(const std::string& path, const std::vector<TestEntry>& entries) {
    int error = 0;
    zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
    ASSERT_NE(archive, nullptr) << "zip_open error " << error;
    for (const TestEntry& entry : entries) {
      zip_int64_t index;
      if (entry.directory) {
        index = zip_dir_add(archive, entry.name.c_str(), ZIP_FL_ENC_UTF_8);
      } else {
        zip_source_t* source = zip_source_buffer(archive, entry.data.data(), entry.data.size(), 0);
        ASSERT_NE(source, nullptr);
        index = zip_file_add(archive, entry.name.c_str(), source, ZIP_FL_ENC_UTF_8);
        if (index < 0) zip_source_free(source);
      }
      ASSERT_GE(index, 0) << entry.name << ": " << zip_strerror(archive);
      if (!entry.directory) {
        ASSERT_EQ(zip_set_file_compression(archive, index, entry.method, 0), 0) << zip_strerror(archive);
      }
      if (entry.encrypt) {
        ASSERT_EQ(zip_file_set_encryption(archive, index, ZIP_EM_AES_256, "secret"), 0) << zip_strerror(archive);
      }
    }
    ASSERT_EQ(zip_close(archive), 0) << zip_strerror(archive);
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  static void WriteFile(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }

  absl::StatusOr<ExtractedEntry> Extract(const ZipLimits& limits = {}) {
    return ExtractSingleDataFile(zip_path_, dest_path_, limits);
  }

  // Asserts INVALID_ARGUMENT naming `problem`, and that no destination file was left behind.
  void ExpectRefused(const absl::StatusOr<ExtractedEntry>& result, const std::string& problem) {
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(problem));
    EXPECT_FALSE(std::filesystem::exists(dest_path_));
  }

  std::filesystem::path dir_;
  std::string zip_path_;
  std::string dest_path_;
};

const std::string kCsv = "email,first_name,age\nann@example.com,Ann,41\nbob@example.com,Bob,37\n";

TEST_F(SafeZipTest, ExtractsTheSingleCsvByteForByte) {
  WriteZip(zip_path_, {{.name = "contacts.csv", .data = kCsv}});
  auto result = Extract();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->entry_name, "contacts.csv");
  EXPECT_EQ(result->extension, ".csv");
  EXPECT_EQ(result->uncompressed_bytes, kCsv.size());
  EXPECT_GT(result->compressed_bytes, 0u);
  EXPECT_EQ(ReadFile(dest_path_), kCsv);
}

TEST_F(SafeZipTest, ExtractsStoredTxtWithUpperCaseExtension) {
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "row " + std::to_string(i) + "\tvalue\n";  // spans several chunks
  WriteZip(zip_path_, {Dir("export/"), {.name = "export/Data.TXT", .data = text, .method = ZIP_CM_STORE}});
  auto result = Extract();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->entry_name, "export/Data.TXT");
  EXPECT_EQ(result->extension, ".txt");
  EXPECT_EQ(result->compressed_bytes, text.size());
  EXPECT_EQ(ReadFile(dest_path_), text);
}

TEST_F(SafeZipTest, IgnoresMacosxJunkBesideOneCsv) {
  WriteZip(zip_path_, {{.name = "contacts.csv", .data = kCsv},
                       Dir("__MACOSX/"),
                       {.name = "__MACOSX/._contacts.csv", .data = std::string("\x00\x05\x16\x07junk", 8)},
                       {.name = "._contacts.csv", .data = "junk"},
                       {.name = ".DS_Store", .data = "Bud1"}});
  auto result = Extract();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->entry_name, "contacts.csv");
  EXPECT_EQ(ReadFile(dest_path_), kCsv);
}

TEST_F(SafeZipTest, AcceptsSmallFileWithHighRatio) {
  const std::string zeros(512 * 1024, '0');  // ratio far above 200, but under the 1 MiB grace
  WriteZip(zip_path_, {{.name = "zeros.csv", .data = zeros}});
  auto result = Extract();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->uncompressed_bytes / result->compressed_bytes, 200u);
  EXPECT_EQ(ReadFile(dest_path_), zeros);
}

TEST_F(SafeZipTest, RefusesZipBombByRatioBeforeInflatingItAll) {
  WriteZip(zip_path_, {{.name = "bomb.csv", .data = std::string(50 << 20, '\0')}});
  auto result = Extract();
  ExpectRefused(result, "compression ratio exceeds the limit of 200");
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("\"bomb.csv\""));
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("zip bomb"));
}

TEST_F(SafeZipTest, RefusesEntryOverByteLimit) {
  WriteZip(zip_path_, {{.name = "contacts.csv", .data = kCsv}});
  ZipLimits limits;
  limits.max_entry_bytes = 10;
  ExpectRefused(Extract(limits), "\"contacts.csv\": inflates to more than the limit of 10 bytes per entry");
}

TEST_F(SafeZipTest, RefusesArchiveOverTotalByteLimit) {
  WriteZip(zip_path_, {{.name = "contacts.csv", .data = kCsv}});
  ZipLimits limits;
  limits.max_total_bytes = 20;
  ExpectRefused(Extract(limits), "past the limit of 20 bytes per archive");
}

TEST_F(SafeZipTest, RefusesTooManyEntries) {
  std::vector<TestEntry> entries = {{.name = "contacts.csv", .data = kCsv}};
  for (int i = 0; i < 16; ++i) entries.push_back(Dir("d" + std::to_string(i) + "/"));
  WriteZip(zip_path_, entries);
  ExpectRefused(Extract(), "has 17 entries, more than the limit of 16");
}

TEST_F(SafeZipTest, RefusesNestedArchiveByName) {
  WriteZip(zip_path_, {{.name = "contacts.csv", .data = kCsv}, {.name = "more/Inner.ZIP", .data = "whatever"}});
  ExpectRefused(Extract(), "\"more/Inner.ZIP\": is a nested archive (by its name)");
}

TEST_F(SafeZipTest, RefusesNestedZipDisguisedAsCsv) {
  const std::string inner_path = (dir_ / "inner.zip").string();
  WriteZip(inner_path, {{.name = "contacts.csv", .data = kCsv}});
  WriteZip(zip_path_, {{.name = "contacts.csv", .data = ReadFile(inner_path)}});
  ExpectRefused(Extract(), "\"contacts.csv\": is a nested zip archive (by its leading bytes)");
}

TEST_F(SafeZipTest, RefusesGzipHiddenAsJunk) {
  WriteZip(zip_path_, {{.name = "contacts.csv", .data = kCsv},
                       {.name = "__MACOSX/._contacts.csv", .data = std::string("\x1f\x8b\x08\x00rest", 8)}});
  ExpectRefused(Extract(), "\"__MACOSX/._contacts.csv\": is a nested gzip archive");
}

TEST_F(SafeZipTest, RefusesArchiveWithoutDataFile) {
  WriteZip(zip_path_, {Dir("docs/"), {.name = ".DS_Store", .data = "Bud1"}});
  ExpectRefused(Extract(), "holds no data file (.csv or .txt)");
}

TEST_F(SafeZipTest, RefusesTwoDataFiles) {
  WriteZip(zip_path_, {{.name = "a.csv", .data = kCsv}, {.name = "b.txt", .data = kCsv}});
  ExpectRefused(Extract(), "more than one data file (\"a.csv\" and \"b.txt\")");
}

TEST_F(SafeZipTest, RefusesEntryThatIsNeitherDataNorJunk) {
  WriteZip(zip_path_, {{.name = "contacts.csv", .data = kCsv}, {.name = "logo.png", .data = "\x89PNG"}});
  ExpectRefused(Extract(), "\"logo.png\": is not a .csv or .txt data file");
}

TEST_F(SafeZipTest, RefusesParentDirectoryInName) {
  WriteZip(zip_path_, {{.name = "../x.csv", .data = kCsv}});
  ExpectRefused(Extract(), "\"../x.csv\": name contains a \"..\" path component");
}

TEST_F(SafeZipTest, RefusesAbsoluteName) {
  WriteZip(zip_path_, {{.name = "/abs.csv", .data = kCsv}});
  ExpectRefused(Extract(), "\"/abs.csv\": name is an absolute path");
}

TEST_F(SafeZipTest, RefusesBackslashInName) {
  WriteZip(zip_path_, {{.name = "dir\\x.csv", .data = kCsv}});
  ExpectRefused(Extract(), "name contains a backslash");
}

TEST_F(SafeZipTest, RefusesNulInName) {
  // libzip cannot write a NUL in a name, so write a placeholder and patch both of its headers.
  WriteZip(zip_path_, {{.name = "evil.csv?x.txt", .data = kCsv}});
  std::string bytes = ReadFile(zip_path_);
  int patched = 0;
  for (size_t at = bytes.find("evil.csv?"); at != std::string::npos; at = bytes.find("evil.csv?", at + 1), ++patched) {
    bytes[at + 8] = '\0';
  }
  ASSERT_EQ(patched, 2);  // local header and central directory
  WriteFile(zip_path_, bytes);
  ExpectRefused(Extract(), "\"evil.csv\\x00x.txt\": name contains a NUL byte");
}

TEST_F(SafeZipTest, AcceptsDoubleDotInsideAFileName) {
  WriteZip(zip_path_, {{.name = "report..final.csv", .data = kCsv}});
  auto result = Extract();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(ReadFile(dest_path_), kCsv);
}

TEST_F(SafeZipTest, RefusesTruncatedArchive) {
  std::string csv;
  for (int i = 0; i < 2000; ++i) csv += kCsv;
  WriteZip(zip_path_, {{.name = "contacts.csv", .data = csv}});
  const std::string bytes = ReadFile(zip_path_);
  WriteFile(zip_path_, bytes.substr(0, bytes.size() / 2));
  ExpectRefused(Extract(), "not a valid zip archive: ");
}

TEST_F(SafeZipTest, RefusesCorruptEntryData) {
  std::string csv;
  for (int i = 0; i < 100; ++i) csv += kCsv;
  WriteZip(zip_path_, {{.name = "contacts.csv", .data = csv, .method = ZIP_CM_STORE}});
  std::string bytes = ReadFile(zip_path_);
  const size_t at = bytes.find("bob@example.com", bytes.size() / 2);
  ASSERT_NE(at, std::string::npos);
  bytes[at] = 'B';  // stored data changes, the CRC in the headers does not
  WriteFile(zip_path_, bytes);
  ExpectRefused(Extract(), "\"contacts.csv\": cannot be inflated: CRC error");
}

TEST_F(SafeZipTest, RefusesCorruptDeflateStream) {
  std::string csv;
  for (int i = 0; i < 1000; ++i) csv += std::to_string(i * 7919) + "," + kCsv;
  WriteZip(zip_path_, {{.name = "contacts.csv", .data = csv}});
  std::string bytes = ReadFile(zip_path_);
  const size_t data_start = 30 + std::string("contacts.csv").size();  // after the local header
  for (size_t i = 0; i < 64; ++i) bytes[data_start + 100 + i] = static_cast<char>(0xff);
  WriteFile(zip_path_, bytes);
  ExpectRefused(Extract(), "\"contacts.csv\": cannot be inflated: Zlib error");
}

TEST_F(SafeZipTest, RefusesEncryptedEntry) {
  if (!zip_encryption_method_supported(ZIP_EM_AES_256, 1)) {
    GTEST_SKIP() << "this libzip was built without crypto, so it cannot write an AES-256 entry";
  }
  WriteZip(zip_path_, {{.name = "contacts.csv", .data = kCsv, .encrypt = true}});
  ExpectRefused(Extract(), "\"contacts.csv\": is encrypted");
}

TEST_F(SafeZipTest, RefusesFileThatIsNotAZip) {
  WriteFile(zip_path_, kCsv);
  ExpectRefused(Extract(), "not a valid zip archive: Not a zip archive");
}

TEST_F(SafeZipTest, MissingUploadIsNotFound) {
  auto result = Extract();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound) << result.status();
}

TEST_F(SafeZipTest, KeepsExistingDestinationWhenRefusedBeforeExtraction) {
  WriteFile(dest_path_, "previous");
  WriteZip(zip_path_, {{.name = "a.csv", .data = kCsv}, {.name = "b.csv", .data = kCsv}});
  auto result = Extract();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadFile(dest_path_), "previous");
}

}  // namespace
}  // namespace contacts
