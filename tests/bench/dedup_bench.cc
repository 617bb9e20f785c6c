// Dedup pass benchmark (issue "import-processor", the import's first pass). In-process: the
// baseline is the design LastOccurrenceIndex replaced, measured in the same run on the same keys.
//
//   contacts_bench_dedup [--rows 1000000] [--rounds 5]
//
// An import's pass 1 records a fingerprint of every valid row's primary key; pass 2 asks, for each
// row it sends, whether a later row holds the same key. Baseline: a hash map from the fingerprint
// to the key's last row (absl::flat_hash_map, 24-byte slots), asked again with the key's
// fingerprint in pass 2. Ours: LastOccurrenceIndex (reserve, append, sort once, keep the superseded
// rows).
// Keys look like the import bench's emails; "with duplicates" makes every tenth row of the second
// half repeat the key of the row half a file earlier (5% of the rows).
// Hashing the key (Fingerprint) is in pass 1 of both and in pass 2 of the baseline only.
#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "absl/container/flat_hash_map.h"
#include "services/import_processor/dedup_index.h"
#include "tests/bench/bench_util.h"

namespace contacts::bench {
namespace {

using Fingerprint = LastOccurrenceIndex::KeyFingerprint;

class HashMapLastRows {
 public:
  void Record(std::string_view key, uint64_t row) { last_row_[LastOccurrenceIndex::Fingerprint(key)] = row; }
  bool IsLast(std::string_view key, uint64_t row) const {
    auto it = last_row_.find(LastOccurrenceIndex::Fingerprint(key));
    return it == last_row_.end() || it->second == row;
  }

 private:
  absl::flat_hash_map<Fingerprint, uint64_t> last_row_;
};

// Row i holds keys[i]. With duplicates, every tenth row of the second half repeats the key of the row
// half a file earlier.
std::vector<std::string> Keys(int64_t rows, bool duplicates) {
  std::mt19937_64 random(7);
  std::vector<std::string> keys;
  keys.reserve(rows);
  for (int64_t i = 0; i < rows; ++i) {
    if (duplicates && i % 10 == 9 && i > rows / 2) {
      keys.push_back(keys[i - rows / 2]);
    } else {
      keys.push_back(fmt::format("user{:012d}@example.com", random() % 1000000000000ull));
    }
  }
  return keys;
}

struct Round {
  double pass1_s = 0, pass2_s = 0;
  std::vector<bool> last;
};

Round RunBaseline(const std::vector<std::string>& keys) {
  Round round;
  auto start = std::chrono::steady_clock::now();
  HashMapLastRows index;
  for (size_t i = 0; i < keys.size(); ++i) index.Record(keys[i], i);
  round.pass1_s = SecondsSince(start);
  round.last.resize(keys.size());
  start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < keys.size(); ++i) round.last[i] = index.IsLast(keys[i], i);
  round.pass2_s = SecondsSince(start);
  return round;
}

Round RunOurs(const std::vector<std::string>& keys) {
  Round round;
  auto start = std::chrono::steady_clock::now();
  LastOccurrenceIndex index;
  index.Reserve(keys.size() * 11 / 10);  // as the job runner does, from the file's size
  for (size_t i = 0; i < keys.size(); ++i) index.Record(keys[i], i);
  index.Finish();
  round.pass1_s = SecondsSince(start);
  round.last.resize(keys.size());
  start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < keys.size(); ++i) round.last[i] = index.IsLast(i);
  round.pass2_s = SecondsSince(start);
  return round;
}

int Main(int argc, char** argv) {
  const int64_t rows = IntFlag(argc, argv, "rows", 1000000);
  const int64_t rounds = IntFlag(argc, argv, "rounds", 5);
  ExitOnUnknownFlags(argc, argv);
  if (rows < 1 || rounds < 1) {
    std::fprintf(stderr, "bad flags: need rows >= 1, rounds >= 1\n");
    return 2;
  }
  fmt::print("contacts_bench_dedup: {} rows, {} rounds alternating baseline and ours; {} cores; load average {}\n",
             rows, rounds, std::thread::hardware_concurrency(), LoadAverage());
  ResultTable table(fmt::format("import dedup pass, {} rows", rows), "hash map (baseline)");
  bool agree = true;
  for (bool duplicates : {false, true}) {
    const std::vector<std::string> keys = Keys(rows, duplicates);
    std::vector<double> base1, base2, ours1, ours2;
    for (int64_t r = 0; r < rounds; ++r) {
      Round base = RunBaseline(keys);
      Round ours = RunOurs(keys);
      agree = agree && base.last == ours.last;
      base1.push_back(base.pass1_s);
      base2.push_back(base.pass2_s);
      ours1.push_back(ours.pass1_s);
      ours2.push_back(ours.pass2_s);
      fmt::print(
          "{} round {}: pass 1 {:.0f} vs {:.0f} ns per row, pass 2 {:.0f} vs {:.0f} ns per row (baseline vs ours)\n",
          duplicates ? "with duplicates" : "distinct keys", r + 1, base.pass1_s * 1e9 / rows, ours.pass1_s * 1e9 / rows,
          base.pass2_s * 1e9 / rows, ours.pass2_s * 1e9 / rows);
    }
    const std::string what = duplicates ? ", 5% duplicates" : "";
    auto line = [&](const std::string& metric, double base_s, double ours_s) {
      table.Add({.metric = metric + what,
                 .ours = fmt::format("{:.0f} ns/row", ours_s * 1e9 / rows),
                 .postgres = fmt::format("{:.0f} ns/row", base_s * 1e9 / rows),
                 .ratio = FormatRatio(base_s / ours_s),
                 .target = "-",
                 .met = "-"});
    };
    line("pass 1 (record, finish), median", Median(base1), Median(ours1));
    line("pass 2 (is it the last row?), median", Median(base2), Median(ours2));
  }
  fmt::print("\n");
  table.Print();
  fmt::print("baseline and ours agree on every row: {}\n", agree ? "yes" : "NO");
  return agree ? 0 : 1;
}

}  // namespace
}  // namespace contacts::bench

int main(int argc, char** argv) { return contacts::bench::Main(argc, argv); }
