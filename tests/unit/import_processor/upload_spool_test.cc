#include "services/import_processor/upload_spool.h"

#include <zip.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/csv/byte_source.h"
#include "common/csv/csv_reader.h"
#include "common/digest/sha256.h"
#include "tests/unit/import_processor/fake_store.h"

namespace contacts::test {
namespace {

class UploadSpoolTest : public ::testing::Test {
 protected:
  absl::StatusOr<UploadPreview> Spool(const std::string& content, const std::string& name = "f.csv", size_t chunk = 5,
                                      const std::string& delimiter = "") {
    auto session = UploadSession::Begin(dir_.path(), "u1", name, delimiter, limits_);
    if (!session.ok()) return session.status();
    (*session)->Expect(expected_size_, expected_sha256_);
    for (size_t i = 0; i < content.size(); i += chunk) {
      if (auto s = (*session)->Append(content.substr(i, chunk)); !s.ok()) return s;
    }
    return (*session)->Finish();
  }

  bool SpoolIsEmpty() const { return std::filesystem::is_empty(dir_.path()); }

  std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // A zip holding the given entries (name -> content), as bytes.
  std::string Zip(const std::vector<std::pair<std::string, std::string>>& entries) {
    const std::string path = dir_.path() + "/../" + std::filesystem::path(dir_.path()).filename().string() + ".zip";
    int error = 0;
    zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
    EXPECT_NE(archive, nullptr);
    for (const auto& [name, content] : entries) {
      zip_source_t* source = zip_source_buffer(archive, content.data(), content.size(), 0);
      EXPECT_GE(zip_file_add(archive, name.c_str(), source, ZIP_FL_OVERWRITE), 0);
    }
    EXPECT_EQ(zip_close(archive), 0);
    std::string bytes = ReadFile(path);
    std::filesystem::remove(path);
    return bytes;
  }

  static std::string Sha256Of(std::string_view bytes) {
    Sha256 hash;
    hash.Update(bytes);
    return hash.FinishHex();
  }

  ScopedTempDir dir_;
  UploadLimits limits_;
  uint64_t expected_size_ = 0;  // what Spool's sessions Expect
  std::string expected_sha256_;
};

TEST_F(UploadSpoolTest, PreviewsACsvWithBomCrlfAndQuotedNewlines) {
  auto preview = Spool("\xEF\xBB\xBFname,age\r\n\"Zoë\nSmith\",41\r\nBob,x\r\n");
  ASSERT_TRUE(preview.ok()) << preview.status();
  EXPECT_EQ(preview->delimiter, ',');
  EXPECT_EQ(preview->columns, (std::vector<std::string>{"name", "age"}));
  EXPECT_EQ(preview->data_rows, 2u);
  ASSERT_EQ(preview->sample_rows.size(), 2u);
  EXPECT_EQ(preview->sample_rows[0].values[0], "Zoë\nSmith");
  EXPECT_EQ(preview->inferred_types[1], AttributeType::kText);  // "x" is not a number
  EXPECT_EQ(preview->extension, ".csv");
  EXPECT_TRUE(std::filesystem::exists(preview->data_path));
}

// A row with a field missing or one too many (an unquoted comma) shifts its values under other
// columns; the import rejects it as ragged_row. It is left out of type inference, and shown in the
// sample rows as it is, its length telling it apart.
TEST_F(UploadSpoolTest, RaggedRowsAreShownButNotInferredFrom) {
  auto preview = Spool(
      "name,age,city\n"
      "Ann,41,Pune\n"
      "Bob,Goa\n"             // no age: "Goa" would be an age
      "Smith, Jr,52,Delhi\n"  // " Jr" would be an age, "52" a city
      "Cy,7,Mumbai\n");
  ASSERT_TRUE(preview.ok()) << preview.status();
  EXPECT_EQ(preview->data_rows, 4u);
  EXPECT_EQ(preview->inferred_types,
            (std::vector<AttributeType>{AttributeType::kText, AttributeType::kInteger, AttributeType::kText}));
  ASSERT_EQ(preview->sample_rows.size(), 4u);
  EXPECT_EQ(preview->sample_rows[1].values, (std::vector<std::string>{"Bob", "Goa"}));
  EXPECT_EQ(preview->sample_rows[2].values, (std::vector<std::string>{"Smith", " Jr", "52", "Delhi"}));
}

// Each sample row says where it starts and, when ragged, the reason the import's error log will
// give for rejecting it; a UI need not count values to tell it apart.
TEST_F(UploadSpoolTest, SampleRowsSayTheirLineAndWhyTheImportWouldRejectThem) {
  auto preview = Spool(
      "\xEF\xBB\xBFname,age,city\r\n"
      "Ann,41,Pune\r\n"
      "Bob,Goa\r\n"
      "\r\n"                         // blank: a line, no row
      "\"Zo\n\"\"Z\"\"\",3,Goa\r\n"  // a quoted line break: a row of two lines
      "Smith, Jr,52,Delhi\r\n"
      "Cy,7,Mumbai\r\n");
  ASSERT_TRUE(preview.ok()) << preview.status();
  ASSERT_EQ(preview->sample_rows.size(), 5u);
  std::vector<uint64_t> lines;
  std::vector<std::string> problems;
  for (const SampleRow& row : preview->sample_rows) {
    lines.push_back(row.line);
    problems.push_back(row.problem);
  }
  EXPECT_EQ(lines, (std::vector<uint64_t>{2, 3, 5, 7, 8}));
  EXPECT_EQ(problems, (std::vector<std::string>{"", "ragged_row: row has 2 fields, the header has 3", "",
                                                "ragged_row: row has 4 fields, the header has 3", ""}));
}

// The inference window counts the rows it reads: ragged rows do not use it up.
TEST_F(UploadSpoolTest, InferenceReadsTheFirstRowsThatAreNotRagged) {
  limits_.inference_rows = 2;
  auto preview = Spool("name,age,city\nAnn,41,Pune\nBob,42\nCy,forty,Delhi\nDee,43,Goa\n");
  ASSERT_TRUE(preview.ok()) << preview.status();
  EXPECT_EQ(preview->inferred_types[1], AttributeType::kText);  // "forty", in the second row that is not ragged
}

// Split points are where a first pass may start a second reader: each must be a record start as
// CsvReader sees it (after a BOM, CRLF line ends and quoted newlines), about evenly spread, and at
// most kMaxSplitPoints however long the file.
TEST_F(UploadSpoolTest, InferenceUsesTheTenantsCountryCodeAsTheImportWill) {
  // 14 digits without a country code: a MOBILE with country code 1 (15 digits), too long with the
  // default 91 (16).
  const std::string content = "name,phone\nAnn,1234-5678-901234\nBob,1234-5678-901235\n";
  auto infer = [&](std::optional<std::string> country_code) -> AttributeType {
    auto session = UploadSession::Begin(dir_.path(), "u1", "f.csv", "", limits_);
    EXPECT_TRUE(session.ok()) << session.status();
    if (country_code) {
      ValueOptions options;
      options.default_country_code = *country_code;
      (*session)->InferWith(options);
    }
    EXPECT_TRUE((*session)->Append(content).ok());
    absl::StatusOr<UploadPreview> preview = (*session)->Finish();
    EXPECT_TRUE(preview.ok()) << preview.status();
    return preview.ok() ? preview->inferred_types[1] : AttributeType::kText;
  };
  EXPECT_EQ(infer("1"), AttributeType::kMobile);
  EXPECT_EQ(infer(std::nullopt), AttributeType::kText);
}

TEST_F(UploadSpoolTest, SplitPointsAreRecordStartsSpreadOverTheFile) {
  for (const int rows : {1000, 300000}) {  // ~20 KiB: no point yet; ~7 MiB: the spacing doubled
    std::string content = "\xEF\xBB\xBFid,note\r\n";
    for (int i = 0; i < rows; ++i) {
      content +=
          i % 7 == 0 ? fmt::format("k{},\"two\nlines, {}\"\r\n", i + 2, i) : fmt::format("k{},plain {}\r\n", i + 2, i);
    }
    auto preview = Spool(content, "f.csv", 65536);
    ASSERT_TRUE(preview.ok()) << preview.status();
    const auto& points = preview->split_points;
    if (rows == 1000) {
      EXPECT_TRUE(points.empty());
      continue;
    }
    ASSERT_GE(points.size(), UploadPreview::kMaxSplitPoints / 2);
    ASSERT_LE(points.size(), UploadPreview::kMaxSplitPoints);
    EXPECT_LT(points.back().byte_offset, content.size());
    EXPECT_GT(points.back().byte_offset, content.size() / 2);
    for (size_t i = 0; i < points.size(); ++i) {
      if (i > 0) {
        EXPECT_GT(points[i].byte_offset, points[i - 1].byte_offset);
      }
      auto source = OpenFileByteSource(preview->data_path);
      ASSERT_TRUE(source.ok()) << source.status();
      CsvReader reader(*std::move(source));
      ASSERT_TRUE(reader.Seek(points[i]).ok());
      CsvRecord record;
      auto more = reader.Next(&record);
      ASSERT_TRUE(more.ok() && *more) << i;
      EXPECT_EQ(record.position, points[i]) << i;
      // Record n (header = 1) holds "k<n>".
      EXPECT_EQ(record.fields[0], fmt::format("k{}", points[i].record_number)) << i;
    }
    std::filesystem::remove(preview->data_path);
  }
}

TEST_F(UploadSpoolTest, DetectsTabsInTxt) {
  auto preview = Spool("a\tb\n1\t2\n", "data.TXT");
  ASSERT_TRUE(preview.ok()) << preview.status();
  EXPECT_EQ(preview->delimiter, '\t');
  EXPECT_EQ(preview->inferred_types[0], AttributeType::kInteger);
}

// A single-column file gives no delimiter away. A .txt is tab-separated, so its values may hold
// commas ("Smith, John"): read with ',' (the .csv default) such rows were ragged and every one was
// rejected by the import. A .csv keeps ','.
TEST_F(UploadSpoolTest, ASingleColumnTxtIsReadWithTabsAndItsCommasStayInTheValues) {
  for (const std::string name : {"names.txt", "names.zip"}) {
    const std::string content = "full name\nSmith, John\n\"Doe, Jane\"\nPlain\n";
    auto preview = name == "names.zip" ? Spool(Zip({{"names.txt", content}}), name, 100) : Spool(content, name);
    ASSERT_TRUE(preview.ok()) << preview.status();
    EXPECT_EQ(preview->delimiter, '\t') << name;
    ASSERT_EQ(preview->sample_rows.size(), 3u) << name;
    EXPECT_EQ(preview->sample_rows[0].values, (std::vector<std::string>{"Smith, John"})) << name;
    EXPECT_EQ(preview->sample_rows[1].values, (std::vector<std::string>{"Doe, Jane"})) << name;
    std::filesystem::remove(preview->data_path);
  }
  auto csv = Spool("email\na@b.co\n", "emails.csv");
  ASSERT_TRUE(csv.ok()) << csv.status();
  EXPECT_EQ(csv->delimiter, ',');
  // A .txt whose header does name a delimiter keeps it.
  auto commas = Spool("id,name\n1,\"Smith, John\"\n", "people.txt");
  ASSERT_TRUE(commas.ok()) << commas.status();
  EXPECT_EQ(commas->delimiter, ',');
}

// Commas in the header and in every row of a tab-separated .txt split it as evenly as its tabs:
// the tie goes to '\t' for a .txt (to ',' for a .csv, as before).
TEST_F(UploadSpoolTest, ATxtWithCommasInItsHeaderIsReadWithTabs) {
  const std::string content = "Name (Last, First)\tEmail\nSmith, John\tj@x.com\nDoe, Jane\tjane@x.com\n";
  auto preview = Spool(content, "names.txt");
  ASSERT_TRUE(preview.ok()) << preview.status();
  EXPECT_EQ(preview->delimiter, '\t');
  ASSERT_EQ(preview->sample_rows.size(), 2u);
  EXPECT_EQ(preview->sample_rows[0].values, (std::vector<std::string>{"Smith, John", "j@x.com"}));
  std::filesystem::remove(preview->data_path);
  auto csv = Spool(content, "names.csv");
  ASSERT_TRUE(csv.ok()) << csv.status();
  EXPECT_EQ(csv->delimiter, ',');
  std::filesystem::remove(csv->data_path);
}

TEST_F(UploadSpoolTest, InvalidUtf8IsRefusedWithOffsetAndLineAndNothingStays) {
  auto preview = Spool("name\nJos\xE9\n");  // Latin-1 é
  ASSERT_EQ(preview.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(preview.status().message().find("invalid UTF-8 at byte 8 (line 2)"), std::string_view::npos)
      << preview.status();
  EXPECT_TRUE(SpoolIsEmpty());
}

// The first fault in the file is the one reported, whatever later bytes hold (bad UTF-8, more
// than the size limit).
TEST_F(UploadSpoolTest, TheFirstFaultInTheFileIsTheOneReported) {
  // The field passes the 1 MiB limit two chunks before it ends, and the bad byte comes later.
  const std::string too_long_field = "a,b\n1,\"" + std::string((1 << 20) + (128 << 10), 'x') + "\"\n";
  std::string later_rows;
  while (later_rows.size() < (256 << 10)) later_rows += "2,fine\n";
  auto preview = Spool(too_long_field + later_rows + "3,Jos\xE9\n", "f.csv", 64 << 10);
  ASSERT_EQ(preview.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(preview.status().message().find("line 2 (record 2): field 2 is longer than the limit"),
            std::string_view::npos)
      << preview.status();
  EXPECT_TRUE(SpoolIsEmpty());

  limits_.max_upload_bytes = too_long_field.size() + later_rows.size();
  preview = Spool(too_long_field + later_rows + "3,one too many\n", "f.csv", 64 << 10);
  ASSERT_EQ(preview.status().code(), absl::StatusCode::kInvalidArgument) << preview.status();
  EXPECT_NE(preview.status().message().find("is longer than the limit"), std::string_view::npos) << preview.status();
  EXPECT_TRUE(SpoolIsEmpty());
}

TEST_F(UploadSpoolTest, SizeLimitIsEnforced) {
  limits_.max_upload_bytes = 10;
  auto preview = Spool("id\n1234567890\n");
  EXPECT_EQ(preview.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(SpoolIsEmpty());
}

TEST_F(UploadSpoolTest, RefusesUnknownExtensionsDelimitersAndEmptyFiles) {
  EXPECT_EQ(Spool("x", "f.xlsx").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Spool("x", "f.csv", 5, "::").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Spool("", "f.csv").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(SpoolIsEmpty());
}

TEST_F(UploadSpoolTest, TheDigestOfWhatArrivedIsReportedAndADeclaredOneChecked) {
  const std::string content = "name,city\nJos\xC3\xA9,Pune\n";
  auto preview = Spool(content);
  ASSERT_TRUE(preview.ok()) << preview.status();
  EXPECT_EQ(preview->sha256, Sha256Of(content));

  expected_size_ = content.size();
  expected_sha256_ = Sha256Of(content);
  preview = Spool(content);
  ASSERT_TRUE(preview.ok()) << preview.status();
  EXPECT_EQ(preview->sha256, expected_sha256_);

  // A .zip's digest is the archive's, as the client sent it.
  const std::string zip = Zip({{"contacts.csv", content}});
  expected_size_ = zip.size();
  expected_sha256_ = Sha256Of(zip);
  preview = Spool(zip, "upload.zip", 100);
  ASSERT_TRUE(preview.ok()) << preview.status();
  EXPECT_EQ(preview->sha256, expected_sha256_);
}

// A stream that ends early looks like a whole file to the server unless the client said how long
// it is: cut inside a character it would read as bad UTF-8, cut at a line end as fewer rows.
TEST_F(UploadSpoolTest, AnUploadCutShortOfItsDeclaredSizeIsRefusedAndNothingStays) {
  const std::string content = "name,city\nJos\xC3\xA9,Pune\nAna,Goa\n";
  expected_size_ = content.size();
  for (size_t cut : {content.find('\xC3') + 1, content.find("Ana")}) {
    auto preview = Spool(content.substr(0, cut));
    ASSERT_EQ(preview.status().code(), absl::StatusCode::kInvalidArgument) << cut;
    EXPECT_EQ(preview.status().message(),
              fmt::format("upload was cut short: start.size_bytes declares {} bytes, {} arrived; nothing was stored",
                          content.size(), cut));
    EXPECT_TRUE(SpoolIsEmpty());
  }
}

TEST_F(UploadSpoolTest, AnUploadLongerThanDeclaredIsRefusedAtTheChunkThatPassesIt) {
  const std::string content = "id\n1\n2\n3\n";
  expected_size_ = 7;
  auto preview = Spool(content, "f.csv", 4);
  ASSERT_EQ(preview.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(preview.status().message(),
            "upload is longer than start.size_bytes declares: 7 bytes declared, 8 received so far; nothing was stored");
  EXPECT_TRUE(SpoolIsEmpty());
}

TEST_F(UploadSpoolTest, AnUploadWhoseBytesChangedOnTheWayIsRefused) {
  const std::string sent = "id,city\n1,Pune\n";
  std::string arrived = sent;
  arrived[10] = 'X';  // same size, one byte different
  expected_size_ = sent.size();
  expected_sha256_ = Sha256Of(sent);
  auto preview = Spool(arrived);
  ASSERT_EQ(preview.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(preview.status().message(),
            fmt::format("upload's bytes are not the file declared: their SHA-256 is {}, start.sha256 declares {}; "
                        "nothing was stored",
                        Sha256Of(arrived), Sha256Of(sent)));
  EXPECT_TRUE(SpoolIsEmpty());
}

TEST_F(UploadSpoolTest, UnterminatedQuoteIsRefused) {
  auto preview = Spool("a,b\n1,\"open\n");
  EXPECT_EQ(preview.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(SpoolIsEmpty());
}

TEST_F(UploadSpoolTest, ExtractsTheDataFileOfAZip) {
  auto preview = Spool(Zip({{"export/contacts.csv", "id;city\nk1;Pune\n"}}), "upload.zip", 100);
  ASSERT_TRUE(preview.ok()) << preview.status();
  EXPECT_EQ(preview->delimiter, ';');
  EXPECT_EQ(preview->data_rows, 1u);
  EXPECT_EQ(ReadFile(preview->data_path), "id;city\nk1;Pune\n");
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/u1.zip"));
}

TEST_F(UploadSpoolTest, RefusesZipsWithSeveralDataFilesOrBadUtf8) {
  EXPECT_EQ(Spool(Zip({{"a.csv", "x\n"}, {"b.csv", "y\n"}}), "u.zip").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(SpoolIsEmpty());
  auto latin1 = Spool(Zip({{"a.csv", "x\n\xE9\n"}}), "u.zip");
  EXPECT_NE(latin1.status().message().find("invalid UTF-8 at byte 2 (line 2)"), std::string_view::npos)
      << latin1.status();
  EXPECT_TRUE(SpoolIsEmpty());
  EXPECT_EQ(Spool("not a zip at all", "u.zip").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(SpoolIsEmpty());
}

}  // namespace
}  // namespace contacts::test
