#include "tests/bench/bench_util.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "absl/synchronization/mutex.h"
#include "common/values/packed_cells.h"
#include "tests/testing/test_authority.h"

namespace contacts::bench {

namespace {

// The flags a bench has asked for so far -> whether `--name X` takes X even when it starts with
// "--" (see FlagText), for ExitOnUnknownFlags.
std::map<std::string, bool, std::less<>>& AskedFlags() {
  static auto* flags = new std::map<std::string, bool, std::less<>>();
  return *flags;
}

// `value_required`: `--name X` takes X even when it starts with "--" (string flags holding flags).
std::optional<std::string> FlagText(int argc, char** argv, std::string_view name, bool value_required = false) {
  AskedFlags().emplace(std::string(name), value_required);
  const std::string flag = fmt::format("--{}", name);
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == flag) {
      if (i + 1 < argc && (value_required || std::string_view(argv[i + 1]).substr(0, 2) != "--")) {
        return std::string(argv[i + 1]);
      }
      return std::string("true");
    }
    if (arg.size() > flag.size() && arg.substr(0, flag.size()) == flag && arg[flag.size()] == '=') {
      return std::string(arg.substr(flag.size() + 1));
    }
  }
  return std::nullopt;
}

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Howard Hinnant's civil_from_days.
void CivilFromDays(int64_t z, int* year, unsigned* month, unsigned* day) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *day = doy - (153 * mp + 2) / 5 + 1;
  *month = mp < 10 ? mp + 3 : mp - 9;
  *year = static_cast<int>(y + (*month <= 2));
}

constexpr const char* kFirstNames[] = {"Aarav",  "Vivaan", "Aditya", "Vihaan", "Arjun", "Sai",   "Reyansh", "Ayaan",
                                       "Ananya", "Diya",   "Priya",  "Isha",   "Kavya", "Meera", "Riya",    "Sara"};
constexpr const char* kLastNames[] = {"Sharma", "Verma", "Patel", "Iyer",  "Reddy", "Nair",     "Gupta", "Khan",
                                      "Singh",  "Das",   "Joshi", "Mehta", "Rao",   "Kulkarni", "Bose",  "Menon"};
// "Pune" first: 10% of rows.
constexpr const char* kCities[] = {"Pune",      "Mumbai",  "Delhi",     "Bengaluru", "Chennai",
                                   "Hyderabad", "Kolkata", "Ahmedabad", "Jaipur",    "Lucknow"};
constexpr const char* kDomains[] = {"gmail.com",      "yahoo.co.in", "outlook.com", "hotmail.com",
                                    "rediffmail.com", "example.org", "company.in",  "mail.com"};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string CsvField(const std::string& value) {
  if (value.find_first_of(",\"\n\r") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace

// ----- Command line -----

int64_t IntFlag(int argc, char** argv, std::string_view name, int64_t fallback) {
  auto text = FlagText(argc, argv, name);
  if (!text) return fallback;
  char* end = nullptr;
  long long value = std::strtoll(text->c_str(), &end, 10);
  if (end == text->c_str() || *end != '\0') {
    std::fprintf(stderr, "--%s: \"%s\" is not an integer\n", std::string(name).c_str(), text->c_str());
    std::exit(2);
  }
  return value;
}

bool BoolFlag(int argc, char** argv, std::string_view name) {
  auto text = FlagText(argc, argv, name);
  return text && (*text == "true" || *text == "1");
}

std::string StringFlag(int argc, char** argv, std::string_view name, std::string_view fallback) {
  auto text = FlagText(argc, argv, name, /*value_required=*/true);
  return text ? *text : std::string(fallback);
}

void ExitOnUnknownFlags(int argc, char** argv) {
  const auto& asked = AskedFlags();
  std::string known;
  for (const auto& [name, value_required] : asked) known += fmt::format(" --{}", name);
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fprintf(stdout, "flags:%s\n", known.c_str());
      std::exit(0);
    }
    if (arg.substr(0, 2) != "--") {
      std::fprintf(stderr, "unexpected argument \"%s\"; flags:%s\n", argv[i], known.c_str());
      std::exit(2);
    }
    const size_t equals = arg.find('=');
    auto flag = asked.find(arg.substr(2, equals == std::string_view::npos ? equals : equals - 2));
    if (flag == asked.end()) {
      std::fprintf(stderr, "unknown flag \"%s\"; flags:%s\n", argv[i], known.c_str());
      std::exit(2);
    }
    // `--name X`: skip X as FlagText took it.
    if (equals == std::string_view::npos && i + 1 < argc &&
        (flag->second || std::string_view(argv[i + 1]).substr(0, 2) != "--")) {
      ++i;
    }
  }
}

std::vector<std::string> SplitFlags(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  std::string word;
  while (in >> word) out.push_back(word);
  return out;
}

void DefaultBinDirToSelf() {
  if (std::getenv("CONTACTS_BIN_DIR") != nullptr) return;
  std::error_code error;
  auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) setenv("CONTACTS_BIN_DIR", self.parent_path().c_str(), 1);
}

void StartServiceBench() {
  DefaultBinDirToSelf();
  signal(SIGPIPE, SIG_IGN);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

// ----- Data set -----

const char* const kColumnNames[kColumns] = {"customer_id", "email", "mobile", "first_name", "last_name",
                                            "city",        "age",   "score",  "signup",     "vip"};

namespace {
bool sequential_keys = false;
}  // namespace

void SetSequentialKeys(bool sequential) { sequential_keys = sequential; }
bool SequentialKeys() { return sequential_keys; }

std::optional<std::string> ApplyKeyOrderFlag(int argc, char** argv) {
  std::string key_order = StringFlag(argc, argv, "key_order", "scrambled");
  if (key_order != "scrambled" && key_order != "sequential") {
    std::fprintf(stderr, "--key_order: scrambled or sequential\n");
    return std::nullopt;
  }
  SetSequentialKeys(key_order == "sequential");
  return key_order;
}

std::string CustomerId(uint64_t i) {
  if (sequential_keys) return fmt::format("C{:010d}", i);
  // Multiplying by an odd constant modulo 2^32 is a bijection: unique keys in scrambled order.
  return fmt::format("C{:010d}", (i * 2654435761ULL) & 0xffffffffULL);
}

std::string CustomerIdSql(std::string_view row) {
  if (sequential_keys) return fmt::format("'C' || lpad(({})::text, 10, '0')", row);
  return fmt::format("'C' || lpad((({}) * 2654435761 % 4294967296)::text, 10, '0')", row);
}

std::string PgbenchRandomKeyNumber(int64_t rows) {
  if (sequential_keys) return fmt::format("\\set k random(0, {})\n", rows - 1);
  return fmt::format("\\set r random(0, {})\n\\set k (:r * 2654435761) % 4294967296\n", rows - 1);
}

ContactRow MakeRow(uint64_t i) {
  const uint64_t h = SplitMix(i);
  ContactRow row;
  const char* first = kFirstNames[h % 16];
  const char* last = kLastNames[(h >> 4) % 16];
  row.values[0] = CustomerId(i);
  row.values[1] = fmt::format("{}.{}{}@{}", Lower(first), Lower(last), i, kDomains[(h >> 8) % 8]);
  row.values[2] = fmt::format("+919{:09d}", i % 1000000000ULL);
  row.values[3] = first;
  row.values[4] = last;
  row.values[5] = kCities[(h >> 12) % 10];
  row.values[6] = std::to_string(18 + (h >> 20) % 63);
  row.values[7] = fmt::format("{}.{:02d}", (h >> 28) % 1000, (h >> 38) % 100);
  int year;
  unsigned month, day;
  CivilFromDays(16436 + static_cast<int64_t>((h >> 45) % 3650), &year, &month, &day);  // from 2015-01-01
  row.values[8] = fmt::format("{:04d}-{:02d}-{:02d}", year, month, day);
  row.values[9] = (h >> 57) % 10 == 0 ? "true" : "false";
  return row;
}

absl::StatusOr<uint64_t> WriteCsv(const std::string& path, uint64_t rows,
                                  const std::function<void(ContactRow&)>& edit) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return absl::InternalError(fmt::format("cannot create {}", path));
  std::string buffer;
  buffer.reserve(1 << 21);
  for (int c = 0; c < kColumns; ++c) {
    if (c > 0) buffer += ',';
    buffer += kColumnNames[c];
  }
  buffer += '\n';
  uint64_t size = 0;
  for (uint64_t i = 0; i < rows; ++i) {
    ContactRow row = MakeRow(i);
    if (edit) edit(row);
    for (int c = 0; c < kColumns; ++c) {
      if (c > 0) buffer += ',';
      buffer += CsvField(row.values[c]);
    }
    buffer += '\n';
    if (buffer.size() >= (1 << 20) || i + 1 == rows) {
      if (std::fwrite(buffer.data(), 1, buffer.size(), file) != buffer.size()) {
        std::fclose(file);
        return absl::InternalError(fmt::format("write to {} failed", path));
      }
      size += buffer.size();
      buffer.clear();
    }
  }
  if (rows == 0) {
    std::fwrite(buffer.data(), 1, buffer.size(), file);
    size += buffer.size();
  }
  if (std::fclose(file) != 0) return absl::InternalError(fmt::format("close of {} failed", path));
  chmod(path.c_str(), 0644);
  return size;
}

contacts::v1::SetupTenantRequest SchemaTenantRequest() {
  contacts::v1::SetupTenantRequest request;
  request.set_primary_key_attribute("customer_id");
  request.set_primary_key_type(contacts::v1::TEXT);
  return request;
}

std::vector<contacts::v1::CreateAttributeRequest> SchemaAttributeRequests() {
  struct Spec {
    const char* name;
    contacts::v1::AttributeType type;
    bool indexed;
  };
  const Spec specs[] = {{"first_name", contacts::v1::TEXT, false}, {"last_name", contacts::v1::TEXT, false},
                        {"city", contacts::v1::TEXT, true},        {"age", contacts::v1::INTEGER, true},
                        {"score", contacts::v1::DECIMAL, false},   {"signup", contacts::v1::DATE, true},
                        {"vip", contacts::v1::BOOLEAN, true}};
  std::vector<contacts::v1::CreateAttributeRequest> out;
  for (const Spec& spec : specs) {
    contacts::v1::CreateAttributeRequest request;
    request.set_name(spec.name);
    request.set_type(spec.type);
    request.set_indexed(spec.indexed);
    out.push_back(std::move(request));
  }
  return out;
}

absl::Status SetupStoreSchema(contacts::v1::ContactStore::Stub* stub) {
  auto deadline = [] { return std::chrono::system_clock::now() + std::chrono::seconds(30); };
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    contacts::v1::Tenant tenant;
    grpc::Status status = stub->SetupTenant(&ctx, SchemaTenantRequest(), &tenant);
    if (!status.ok()) return absl::InternalError(fmt::format("SetupTenant: {}", status.error_message()));
  }
  for (const auto& request : SchemaAttributeRequests()) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    contacts::v1::Attribute attribute;
    grpc::Status status = stub->CreateAttribute(&ctx, request, &attribute);
    if (!status.ok()) {
      return absl::InternalError(fmt::format("CreateAttribute {}: {}", request.name(), status.error_message()));
    }
  }
  return absl::OkStatus();
}

contacts::v1::BatchUpsertRequest MakeBatch(uint64_t first, uint64_t count, uint64_t sequence, const std::string& job_id,
                                           const std::function<void(ContactRow&)>& edit) {
  contacts::v1::BatchUpsertRequest request;
  request.set_job_id(job_id);
  request.set_batch_sequence(sequence);
  for (int c = 0; c < kColumns; ++c) request.add_columns(kColumnNames[c]);
  contacts::v1::PackedRows* packed = request.mutable_packed_rows();
  packed->mutable_row_numbers()->Reserve(static_cast<int>(count));
  packed->mutable_cells()->reserve(count * 110);
  for (uint64_t i = first; i < first + count; ++i) {
    ContactRow row = MakeRow(i);
    if (edit) edit(row);
    packed->add_row_numbers(i + 1);
    for (int c = 0; c < kColumns; ++c) AppendPackedCell(packed->mutable_cells(), row.values[c]);
  }
  return request;
}

absl::StatusOr<double> LoadOverGrpc(std::shared_ptr<grpc::Channel> channel, uint64_t rows, int batch_rows, int threads,
                                    bool prebuild) {
  const size_t batch_count = (rows + batch_rows - 1) / batch_rows;
  std::vector<contacts::v1::BatchUpsertRequest> batches;
  auto make = [&](size_t index) {
    const uint64_t first = index * static_cast<uint64_t>(batch_rows);
    return MakeBatch(first, std::min<uint64_t>(batch_rows, rows - first), index, "bench-load");
  };
  if (prebuild) {
    for (size_t index = 0; index < batch_count; ++index) batches.push_back(make(index));
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::vector<absl::Status> errors(threads);
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto stub = contacts::v1::ContactStore::NewStub(channel);
      while (!failed) {
        size_t index = next++;
        if (index >= batch_count) return;
        contacts::v1::BatchUpsertRequest built;
        if (!prebuild) built = make(index);
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(300));
        contacts::v1::BatchUpsertResponse response;
        grpc::Status status = stub->BatchUpsert(&ctx, prebuild ? batches[index] : built, &response);
        if (!status.ok()) {
          errors[t] = absl::InternalError(fmt::format("BatchUpsert #{}: {}", index, status.error_message()));
          failed = true;
          return;
        }
        for (const auto& result : response.results()) {
          if (result.outcome() == contacts::v1::REJECTED || result.outcome() == contacts::v1::ROW_OUTCOME_UNSPECIFIED) {
            errors[t] = absl::InternalError(
                fmt::format("row {} rejected: {} {}", result.row_number(), result.attribute(), result.reason()));
            failed = true;
            return;
          }
        }
      }
    });
  }
  for (auto& worker : workers) worker.join();
  double seconds = SecondsSince(start);
  for (const auto& error : errors) {
    if (!error.ok()) return error;
  }
  return seconds;
}

// ----- Measurements -----

double Latencies::Percentile(double p) {
  if (values_.empty()) return 0;
  if (!sorted_) {
    std::sort(values_.begin(), values_.end());
    sorted_ = true;
  }
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values_.size())));
  if (rank == 0) rank = 1;
  return values_[std::min(rank, values_.size()) - 1];
}

double Median(std::vector<double> values) {
  if (values.empty()) return -1;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

size_t Latencies::CountAbove(double limit) const {
  return std::count_if(values_.begin(), values_.end(), [limit](double v) { return v > limit; });
}

double Latencies::Mean() const {
  if (values_.empty()) return 0;
  return std::accumulate(values_.begin(), values_.end(), 0.0) / static_cast<double>(values_.size());
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return fmt::format("{} {} {}", a, b, c);
}

std::optional<uint64_t> PeakRssKib(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return std::nullopt;
}

namespace {

// utime + stime of a /proc/.../stat file in seconds, and its command name; nullopt if unreadable.
std::optional<double> StatCpuSeconds(const std::string& path, std::string* name = nullptr) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces: fields are counted after its closing ')'.
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  if (name != nullptr) *name = text.substr(open + 1, close - open - 1);
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

std::optional<double> CpuSeconds(pid_t pid) { return StatCpuSeconds(fmt::format("/proc/{}/stat", pid)); }

double ThreadsCpuSeconds(pid_t pid, std::string_view name_prefix) {
  double total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid), ec)) {
    std::string name;
    auto seconds = StatCpuSeconds(entry.path().string() + "/stat", &name);
    if (seconds && name.starts_with(name_prefix)) total += *seconds;
  }
  return total;
}

double WaitUntilQuiet(pid_t pid, std::chrono::seconds timeout) {
  auto start = std::chrono::steady_clock::now();
  auto previous = CpuSeconds(pid);
  int quiet_seconds = 0;
  while (previous && quiet_seconds < 3 && std::chrono::steady_clock::now() - start < timeout) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    auto now = CpuSeconds(pid);
    if (!now) break;
    quiet_seconds = *now - *previous < 0.05 ? quiet_seconds + 1 : 0;
    previous = now;
  }
  return SecondsSince(start);
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    socklen_t length = sizeof(address);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

// ----- Result table -----

void ResultTable::Print() const {
  const ResultLine header{"metric", ours_, baseline_, "ratio", "target", "met"};
  size_t widths[6] = {};
  auto fields = [](const ResultLine& line) {
    return std::array<const std::string*, 6>{&line.metric, &line.ours,   &line.postgres,
                                             &line.ratio,  &line.target, &line.met};
  };
  for (const ResultLine* line : {&header}) {
    auto f = fields(*line);
    for (int i = 0; i < 6; ++i) widths[i] = std::max(widths[i], f[i]->size());
  }
  for (const auto& line : lines_) {
    auto f = fields(line);
    for (int i = 0; i < 6; ++i) widths[i] = std::max(widths[i], f[i]->size());
  }
  std::string out = fmt::format("\n== {} ==\n", title_);
  auto row = [&](const ResultLine& line) {
    auto f = fields(line);
    out += "|";
    for (int i = 0; i < 6; ++i) out += fmt::format(" {:<{}} |", *f[i], widths[i]);
    out += "\n";
  };
  row(header);
  out += "|";
  for (int i = 0; i < 6; ++i) out += std::string(widths[i] + 2, '-') + "|";
  out += "\n";
  for (const auto& line : lines_) row(line);
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
}

std::string FormatRate(double per_second, std::string_view unit) {
  std::string digits = fmt::format("{:.0f}", per_second);
  std::string grouped;
  int count = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (count > 0 && count % 3 == 0 && *it != '-') grouped.insert(grouped.begin(), ',');
    grouped.insert(grouped.begin(), *it);
    ++count;
  }
  return fmt::format("{} {}", grouped, unit);
}

std::string FormatMicros(double micros) {
  if (micros < 1000) return fmt::format("{:.0f} us", micros);
  if (micros < 1000000) return fmt::format("{:.2f} ms", micros / 1000);
  return fmt::format("{:.2f} s", micros / 1000000);
}

std::string FormatRatio(double ratio) {
  if (!(ratio > 0)) return "-";
  return ratio >= 10 ? fmt::format("{:.0f}x", ratio) : fmt::format("{:.2f}x", ratio);
}

std::string YesNo(bool met) { return met ? "yes" : "NO"; }

// ----- Processes -----

absl::StatusOr<std::string> RunCommand(const std::string& command) {
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError(fmt::format("popen failed: {}", command));
  std::string out;
  char buffer[65536];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  int status = pclose(pipe);
  if (status != 0) {
    return absl::InternalError(
        fmt::format("`{}` exited with status {}: {}", command, WIFEXITED(status) ? WEXITSTATUS(status) : -1, out));
  }
  return out;
}

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ScriptPath() {
  if (const char* env = std::getenv("CONTACTS_SOURCE_DIR"); env != nullptr) {
    return fmt::format("{}/scripts/bench_postgres.sh", env);
  }
  return CONTACTS_SOURCE_DIR "/scripts/bench_postgres.sh";
}

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";

}  // namespace

// ----- TLS -----

std::vector<std::string> BenchTls::ServerFlags() const {
  return {"--tls_cert_file=" + server_cert_file, "--tls_key_file=" + server_key_file,
          "--tls_client_ca_file=" + ca_file};
}

std::vector<std::string> BenchTls::StoreClientFlags() const {
  return {"--store_tls_ca_file=" + ca_file, "--store_tls_cert_file=" + client_cert_file,
          "--store_tls_key_file=" + client_key_file};
}

std::shared_ptr<grpc::ChannelCredentials> BenchTls::ClientCredentials() const {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(ca_file);
  ssl.pem_cert_chain = ReadFile(client_cert_file);
  ssl.pem_private_key = ReadFile(client_key_file);
  return grpc::SslCredentials(ssl);
}

absl::StatusOr<BenchTls> MakeBenchTls(const std::string& dir) {
  absl::StatusOr<test::TestAuthority> authority = test::MakeTestAuthority(dir, "contacts-bench");
  if (!authority.ok()) return authority.status();
  return BenchTls{.ca_file = authority->ca_file,
                  .server_cert_file = authority->server_cert_file,
                  .server_key_file = authority->server_key_file,
                  .client_cert_file = authority->client_cert_file,
                  .client_key_file = authority->client_key_file};
}

std::shared_ptr<grpc::Channel> BenchChannel(const std::string& address, const BenchTls* tls,
                                            const grpc::ChannelArguments& args) {
  return grpc::CreateCustomChannel(
      address, tls != nullptr ? tls->ClientCredentials() : grpc::InsecureChannelCredentials(), args);
}

absl::StatusOr<std::unique_ptr<test::ServiceProcess>> StartService(const std::string& binary,
                                                                   std::vector<std::string> flags,
                                                                   const BenchTls* tls) {
  if (tls == nullptr) return test::ServiceProcess::Start({.binary = binary, .flags = std::move(flags)});
  for (std::string& flag : tls->ServerFlags()) flags.push_back(std::move(flag));
  return test::ServiceProcess::Start(
      {.binary = binary, .flags = std::move(flags), .channel_credentials = tls->ClientCredentials()});
}

// ----- PostgreSQL -----

Postgres::Postgres() : dir_("contacts_bench_pg") {}

absl::StatusOr<std::unique_ptr<Postgres>> Postgres::Start() {
  std::unique_ptr<Postgres> pg(new Postgres());
  if (!pg->dir_.ok()) return absl::InternalError("cannot create a temp folder for PostgreSQL");
  if (!std::filesystem::exists(ScriptPath())) {
    return absl::FailedPreconditionError(fmt::format("{} not found (set CONTACTS_SOURCE_DIR)", ScriptPath()));
  }
  if (!std::filesystem::exists(fmt::format("{}/postgres", kPgBin))) {
    return absl::FailedPreconditionError(fmt::format("PostgreSQL 15 not found in {}", kPgBin));
  }
  chmod(pg->dir_.path().c_str(), 0755);
  pg->pg_dir_ = pg->dir_.path() + "/pg";
  pg->port_ = FreePort();
  auto started = RunCommand(fmt::format("{} start {} {} 2>&1", ScriptPath(), pg->pg_dir_, pg->port_));
  if (!started.ok())
    return absl::InternalError(fmt::format("PostgreSQL did not start: {}", std::string(started.status().message())));
  pg->running_ = true;
  return pg;
}

Postgres::~Postgres() {
  if (running_) {
    auto stopped = RunCommand(fmt::format("{} stop {} 2>&1", ScriptPath(), pg_dir_));
    if (!stopped.ok()) std::fprintf(stderr, "PostgreSQL stop: %s\n", std::string(stopped.status().message()).c_str());
  }
}

std::string Postgres::ConnectionArgs() const { return fmt::format("-h {} -p {} -U postgres", pg_dir_, port_); }
std::string Postgres::TcpConnectionArgs() const { return fmt::format("-h 127.0.0.1 -p {} -U postgres", port_); }

absl::StatusOr<std::string> Postgres::Sql(const std::string& sql) {
  const std::string sql_path = dir_.path() + "/statement.sql";
  const std::string err_path = dir_.path() + "/psql.err";
  {
    std::ofstream out(sql_path, std::ios::trunc);
    out << sql << "\n";
  }
  auto result = RunCommand(
      fmt::format("psql {} -d postgres -X -v ON_ERROR_STOP=1 -Atq -f {} 2>{}", ConnectionArgs(), sql_path, err_path));
  if (!result.ok()) return absl::InternalError(fmt::format("psql failed on [{}]: {}", sql, ReadFile(err_path)));
  return result;
}

absl::StatusOr<double> Postgres::TimedSql(const std::string& sql) {
  auto start = std::chrono::steady_clock::now();
  auto result = Sql(sql);
  if (!result.ok()) return result.status();
  return SecondsSince(start);
}

absl::StatusOr<std::pair<uint64_t, double>> Postgres::CopyOut(const std::string& query) {
  const std::string sql_path = dir_.path() + "/copy.sql";
  const std::string err_path = dir_.path() + "/copy.err";
  {
    std::ofstream out(sql_path, std::ios::trunc);
    out << "COPY (" << query << ") TO STDOUT WITH (FORMAT csv, HEADER true);\n";
  }
  auto start = std::chrono::steady_clock::now();
  std::FILE* pipe =
      popen(fmt::format("psql {} -d postgres -X -v ON_ERROR_STOP=1 -q -f {} 2>{}", ConnectionArgs(), sql_path, err_path)
                .c_str(),
            "r");
  if (pipe == nullptr) return absl::InternalError("popen psql failed");
  uint64_t bytes = 0;
  std::vector<char> buffer(1 << 20);
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) bytes += n;
  int status = pclose(pipe);
  double seconds = SecondsSince(start);
  if (status != 0) return absl::InternalError(fmt::format("COPY out failed: {}", ReadFile(err_path)));
  return std::make_pair(bytes, seconds);
}

absl::StatusOr<Latencies> Postgres::Pgbench(const std::string& script, const PgbenchOptions& options) {
  static int run = 0;
  const std::string script_path = fmt::format("{}/pgbench_{}.sql", dir_.path(), ++run);
  const std::string log_dir = fmt::format("{}/pgbench_log_{}", dir_.path(), run);
  std::filesystem::create_directories(log_dir);
  {
    std::ofstream out(script_path, std::ios::trunc);
    out << script << "\n";
  }
  std::string limits;
  if (options.transactions > 0) {
    limits = fmt::format("-t {}", options.transactions);
  } else {
    limits = fmt::format("-T {}", std::max<int64_t>(1, static_cast<int64_t>(options.seconds + 0.5)));
  }
  if (options.rate > 0) limits += fmt::format(" -R {:.0f}", options.rate);
  const std::string err_path = log_dir + "/stderr";
  auto result = RunCommand(
      fmt::format("{}/pgbench {} -n -M prepared -c {} -j {} {} -f {} -l --log-prefix={}/tx postgres 2>{}", kPgBin,
                  TcpConnectionArgs(), options.clients, options.clients, limits, script_path, log_dir, err_path));
  if (!result.ok())
    return absl::InternalError(
        fmt::format("pgbench failed: {}\n{}", std::string(result.status().message()), ReadFile(err_path)));
  Latencies latencies;
  for (const auto& entry : std::filesystem::directory_iterator(log_dir)) {
    if (entry.path().filename().string().rfind("tx", 0) != 0) continue;
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      // client_id transaction_no time script_no time_epoch time_us [schedule_lag]
      std::istringstream fields(line);
      std::string client, transaction, micros;
      fields >> client >> transaction >> micros;
      if (micros.empty() || micros == "skipped") continue;
      latencies.Add(std::strtod(micros.c_str(), nullptr));
    }
  }
  if (latencies.size() == 0) return absl::InternalError(fmt::format("pgbench logged no transaction: {}", *result));
  return latencies;
}

absl::Status CreatePostgresSchema(Postgres& pg) {
  auto created = pg.Sql(R"sql(
CREATE UNLOGGED TABLE staging(customer_id text, email text, mobile text, first_name text, last_name text,
                              city text, age text, score text, signup text, vip text);
CREATE TABLE contacts(pk text PRIMARY KEY, email text, mobile text, attrs jsonb NOT NULL DEFAULT '{}');
CREATE INDEX contacts_email ON contacts(email);
CREATE INDEX contacts_mobile ON contacts(mobile);
CREATE INDEX contacts_attrs ON contacts USING gin(attrs jsonb_path_ops);
)sql");
  return created.status();
}

absl::StatusOr<std::pair<double, double>> LoadPostgres(Postgres& pg, const std::string& csv_path) {
  auto truncated = pg.Sql("TRUNCATE staging;");
  if (!truncated.ok()) return truncated.status();
  auto copy = pg.TimedSql(fmt::format("COPY staging FROM '{}' WITH (FORMAT csv, HEADER true);", csv_path));
  if (!copy.ok()) return copy.status();
  auto insert = pg.TimedSql(R"sql(
INSERT INTO contacts(pk, email, mobile, attrs)
SELECT customer_id, lower(email), mobile,
       jsonb_build_object('first_name', first_name, 'last_name', last_name, 'city', city, 'age', age::int,
                          'score', score::numeric, 'signup', signup::date, 'vip', vip::boolean)
FROM staging
ON CONFLICT (pk) DO UPDATE SET email = EXCLUDED.email, mobile = EXCLUDED.mobile,
                               attrs = contacts.attrs || EXCLUDED.attrs;
)sql");
  if (!insert.ok()) return insert.status();
  auto emptied = pg.Sql("TRUNCATE staging;");
  if (!emptied.ok()) return emptied.status();
  return std::make_pair(*copy, *insert);
}

}  // namespace contacts::bench
