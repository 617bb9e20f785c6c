// A generated contacts file for import-processor's integration and crash tests, with the
// expected outcome computed independently of the importer: which rows are rejected and why,
// which rows lose to a later row with the same primary key, and the canonical values each
// contact must end up with.
//
// Columns: customer_id (primary key, TEXT), first_name (TEXT, non-ASCII), email (EMAIL, ~2%
// with a domain typo), mobile (MOBILE, national or +91 or 0-prefixed), age (INTEGER), joined
// (DATE, two spellings), score (DECIMAL), vip (BOOLEAN), notes (TEXT with quotes, delimiters,
// embedded LF and CRLF). About 1% of rows hold a value of the wrong type, 0.2% are ragged, 0.2%
// lack the primary key, and ~3% repeat an earlier primary key (`repeat_per_mille`).
#pragma once

#include <cctype>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace contacts::test {

struct DatasetRow {
  std::string pk;
  std::vector<std::string> fields;               // raw, as written to the file
  std::string reject_key;                        // expected rejected_by_reason key, empty if valid
  bool typo = false;                             // email has a fixable domain typo
  std::map<std::string, std::string> canonical;  // attribute -> expected stored value (valid rows)
};

struct DatasetExpectation {
  uint64_t received = 0;
  uint64_t inserted = 0;
  uint64_t duplicate = 0;
  uint64_t rejected = 0;
  uint64_t emails_fixed = 0;
  std::map<std::string, uint64_t> rejected_by_reason;
  std::map<uint64_t, std::string> rejected_rows;                       // row number -> reason key
  std::map<uint64_t, std::pair<std::string, std::string>> fixed_rows;  // row number -> (email before, after the fix)
  std::map<std::string, std::map<std::string, std::string>> contacts;  // pk -> attributes
};

class Dataset {
 public:
  static inline const std::vector<std::string> kHeader = {"customer_id", "First Name", "E-mail", "Mobile", "age",
                                                          "joined",      "score",      "vip",    "notes"};
  static inline const std::vector<std::string> kAttributes = {"customer_id", "first_name", "email", "mobile", "age",
                                                              "joined",      "score",      "vip",   "notes"};

  Dataset(int rows, uint32_t seed, int repeat_per_mille = 30) {
    std::mt19937 rng(seed);
    auto chance = [&](int per_mille) { return static_cast<int>(rng() % 1000) < per_mille; };
    static const std::vector<std::string> kNames = {"Zoë", "José",  "Renée", "Łukasz", "Σοφία", "山田",
                                                    "Ana", "Priya", "Ömer",  "Nguyễn", "Olúwa", "Åsa"};
    static const std::vector<std::string> kNotes = {
        "plain", "He said \"hi\", then left", "line1\nline2", "windows\r\nline", "a;b|c\tand a tab", "", "  padded  "};
    int next_id = 1;
    std::vector<int> used_ids;
    for (int i = 0; i < rows; ++i) {
      DatasetRow row;
      int id;
      if (!used_ids.empty() && chance(repeat_per_mille)) {
        id = used_ids[rng() % used_ids.size()];
      } else {
        id = next_id++;
        used_ids.push_back(id);
      }
      row.pk = fmt::format("C{:06d}", id);
      const std::string name = kNames[rng() % kNames.size()] + (chance(500) ? " Smith" : "");
      row.typo = chance(20);
      const std::string email = fmt::format("U{}@{}", id, row.typo ? "GMIAL.com" : "Gmail.com");
      std::string mobile;
      switch (rng() % 4) {
        case 0:
          mobile = fmt::format("9{:09d}", id);
          break;
        case 1:
          mobile = fmt::format("+91 9{:09d}", id);
          break;
        case 2:
          mobile = fmt::format("09{:09d}", id);
          break;
        default:
          mobile = "";
      }
      const int age = 18 + static_cast<int>(rng() % 70);
      const int month = 1 + static_cast<int>(rng() % 12);
      const int day = 1 + static_cast<int>(rng() % 28);
      const std::string joined =
          chance(500) ? fmt::format("2023-{:02d}-{:02d}", month, day) : fmt::format("2023/{}/{}", month, day);
      const int cents = static_cast<int>(rng() % 10000);
      const std::string score = fmt::format("{}.{:02d}", cents / 100, cents % 100);
      static const std::vector<std::pair<std::string, std::string>> kBools = {
          {"yes", "true"}, {"no", "false"}, {"TRUE", "true"}, {"0", "false"}, {"", ""}};
      const auto& vip = kBools[rng() % kBools.size()];
      const std::string notes = kNotes[rng() % kNotes.size()];
      row.fields = {row.pk, name, email, mobile, std::to_string(age), joined, score, vip.first, notes};

      // Canonical values, computed by hand.
      auto& c = row.canonical;
      c["customer_id"] = row.pk;
      c["first_name"] = name;
      c["email"] = fmt::format("u{}@gmail.com", id);  // typo fixed (tests import with fix on)
      if (!mobile.empty()) c["mobile"] = fmt::format("+919{:09d}", id);
      c["age"] = std::to_string(age);
      c["joined"] = fmt::format("2023-{:02d}-{:02d}", month, day);
      std::string s = fmt::format("{}.{:02d}", cents / 100, cents % 100);
      while (s.back() == '0') s.pop_back();
      if (s.back() == '.') s.pop_back();
      c["score"] = s;
      if (!vip.second.empty()) c["vip"] = vip.second;
      std::string trimmed = notes;
      while (!trimmed.empty() && trimmed.front() == ' ') trimmed.erase(trimmed.begin());
      while (!trimmed.empty() && trimmed.back() == ' ') trimmed.pop_back();
      if (!trimmed.empty()) c["notes"] = trimmed;

      // Defects: at most one per row.
      const int defect = static_cast<int>(rng() % 1000);
      if (defect < 10) {
        static const std::vector<std::pair<size_t, std::string>> kBad = {
            {2, "not-an-email"}, {4, "forty"}, {5, "2023-02-30"}, {6, "1,5"}, {7, "maybe"}};
        const auto& [column, value] = kBad[rng() % kBad.size()];
        row.fields[column] = value;
        row.reject_key = "invalid_value:" + kAttributes[column];
      } else if (defect < 12) {
        row.fields.pop_back();
        row.reject_key = "ragged_row";
      } else if (defect < 14) {
        row.fields[0] = "";
        row.pk = "";
        row.reject_key = "missing_primary_key";
      }
      rows_.push_back(std::move(row));
    }
  }

  const std::vector<DatasetRow>& rows() const { return rows_; }

  // The file: header then rows, RFC 4180 quoting, optional BOM, CRLF or LF line ends.
  std::string Render(char delimiter = ',', bool bom = true, bool crlf = true) const {
    std::string out = bom ? "\xEF\xBB\xBF" : "";
    auto line = [&](const std::vector<std::string>& fields) {
      for (size_t i = 0; i < fields.size(); ++i) {
        if (i > 0) out += delimiter;
        const std::string& f = fields[i];
        if (f.find_first_of(std::string("\"\r\n") + delimiter) != std::string::npos ||
            (!f.empty() && (f.front() == ' ' || f.back() == ' '))) {
          out += '"';
          for (char ch : f) {
            if (ch == '"') out += '"';
            out += ch;
          }
          out += '"';
        } else {
          out += f;
        }
      }
      out += crlf ? "\r\n" : "\n";
    };
    line(kHeader);
    for (const DatasetRow& row : rows_) line(row.fields);
    return out;
  }

  DatasetExpectation Expect() const {
    DatasetExpectation e;
    std::map<std::string, size_t> last;  // pk -> index of its last valid row
    for (size_t i = 0; i < rows_.size(); ++i) {
      if (rows_[i].reject_key.empty()) last[rows_[i].pk] = i;
    }
    for (size_t i = 0; i < rows_.size(); ++i) {
      const DatasetRow& row = rows_[i];
      ++e.received;
      if (!row.reject_key.empty()) {
        ++e.rejected;
        ++e.rejected_by_reason[row.reject_key];
        e.rejected_rows[i + 1] = row.reject_key;
      } else if (last[row.pk] != i) {
        ++e.duplicate;
      } else {
        ++e.inserted;
        if (row.typo) {
          ++e.emails_fixed;
          // The log keeps the address as normalised before the fix (trimmed, lower-case).
          std::string before = row.fields[2];
          for (char& c : before) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          e.fixed_rows[i + 1] = {before, row.canonical.at("email")};
        }
        e.contacts[row.pk] = row.canonical;
      }
    }
    return e;
  }

 private:
  std::vector<DatasetRow> rows_;
};

}  // namespace contacts::test
