// Shared pieces of the benchmark programs (store_bench, query_bench, import_bench): the synthetic
// 10-attribute contact data set, the contact-store schema for it, latency percentiles, the result
// table, throwaway TLS certificates, a throwaway PostgreSQL (scripts/bench_postgres.sh) driven
// through psql and pgbench, and small process helpers (free port, peak RSS, load average). Benchmarks print figures;
// they never pass or fail.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <sys/types.h>

#include "contacts/v1/contact_store.grpc.pb.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/testing/service_process.h"

namespace contacts::bench {

// ----- Command line -----

// `--name N` / `--name=N` as an integer, or `fallback`. Exits with a message on a malformed value.
int64_t IntFlag(int argc, char** argv, std::string_view name, int64_t fallback);
// `--name` present (also `--name=true`).
bool BoolFlag(int argc, char** argv, std::string_view name);
// `--name VALUE` / `--name=VALUE`, or `fallback`.
std::string StringFlag(int argc, char** argv, std::string_view name, std::string_view fallback);

// Exits with status 2 and the list of flags when argv holds a flag none of the calls above asked
// for, or a stray argument (a typo like --skip-pg would otherwise run the whole bench); `--help`
// prints the list and exits 0. Call it after reading every flag.
void ExitOnUnknownFlags(int argc, char** argv);

// Splits a flag string on spaces ("--a=1 --b=2" -> {"--a=1", "--b=2"}).
std::vector<std::string> SplitFlags(const std::string& text);

// Sets $CONTACTS_BIN_DIR to this executable's folder when it is unset (benches live in <build>/bin).
void DefaultBinDirToSelf();

// What a bench that starts the services and calls them does first: DefaultBinDirToSelf, SIGPIPE
// ignored (a service that dies mid-call must not kill the bench), and Abseil's mutex deadlock
// detection off as in the services (common/server/service_main.cc): gRPC's client side locks as
// much as its server side.
void StartServiceBench();

// ----- Data set -----

// The 10 columns, in file order: customer_id (primary key, TEXT), email, mobile, first_name,
// last_name, city, age INTEGER, score DECIMAL, signup DATE, vip BOOLEAN.
inline constexpr int kColumns = 10;
extern const char* const kColumnNames[kColumns];

// Row `i` of the data set (deterministic, no randomness): unique customer_id, email and mobile;
// primary keys in scrambled order (a bijection of i; see SetSequentialKeys), city "Pune" for 10%, age 18..80 uniform,
// vip true for 10%.
struct ContactRow {
  std::string values[kColumns];
};
ContactRow MakeRow(uint64_t i);
// The primary key of row i alone (for random lookups).
std::string CustomerId(uint64_t i);
// Key order of the data set: scrambled (default: "C" + 10 digits of i * 2654435761 mod 2^32, so
// consecutive rows land all over the key space, as in a file sorted by anything but the key) or
// sequential ("C" + 10 digits of i: rows arrive in key order). Set once, before generating data.
void SetSequentialKeys(bool sequential);
bool SequentialKeys();
// Reads --key_order (scrambled or sequential, default scrambled) and sets the key order from it.
// Returns the flag's value, or nullopt (with a message on stderr) for any other value.
std::optional<std::string> ApplyKeyOrderFlag(int argc, char** argv);
// SQL (PostgreSQL) for the primary key of the row whose number is the bigint expression `row`.
std::string CustomerIdSql(std::string_view row);
// pgbench commands setting :k to the key number of a random row in [0, rows).
std::string PgbenchRandomKeyNumber(int64_t rows);

// Writes rows [0, rows) as CSV with a header line, each row changed by `edit` first when given.
// Returns the file size.
absl::StatusOr<uint64_t> WriteCsv(const std::string& path, uint64_t rows,
                                  const std::function<void(ContactRow&)>& edit = {});

// Sets up a fresh tenant on contact-store: primary key customer_id (TEXT), attributes first_name,
// last_name (TEXT), city (TEXT, indexed), age (INTEGER, indexed), score (DECIMAL), signup (DATE,
// indexed), vip (BOOLEAN, indexed).
absl::Status SetupStoreSchema(contacts::v1::ContactStore::Stub* stub);
// The same as requests, for in-process use.
contacts::v1::SetupTenantRequest SchemaTenantRequest();
std::vector<contacts::v1::CreateAttributeRequest> SchemaAttributeRequests();

// A BatchUpsert request for rows [first, first + count), in the packed positional form
// import-processor sends; `edit`, when given, changes each row first.
contacts::v1::BatchUpsertRequest MakeBatch(uint64_t first, uint64_t count, uint64_t sequence, const std::string& job_id,
                                           const std::function<void(ContactRow&)>& edit = {});

// Loads rows [0, rows) through BatchUpsert RPCs from `threads` client threads (batches of
// `batch_rows`; with `prebuild` all requests are built before the clock starts, which holds them
// all in memory: ~1.5 GB per million rows). Returns the seconds from the first call to the last
// answer. Errors: the first failed RPC, or a row that was not INSERTED/UPDATED/UNCHANGED.
absl::StatusOr<double> LoadOverGrpc(std::shared_ptr<grpc::Channel> channel, uint64_t rows, int batch_rows, int threads,
                                    bool prebuild);

// ----- Measurements -----

// Latencies in microseconds; percentiles by nearest rank.
class Latencies {
 public:
  void Add(double micros) {
    values_.push_back(micros);
    sorted_ = false;
  }
  void Reserve(size_t n) { values_.reserve(n); }
  void Merge(const Latencies& other) {
    values_.insert(values_.end(), other.values_.begin(), other.values_.end());
    sorted_ = false;
  }
  size_t size() const { return values_.size(); }
  // p in [0, 100]. 0 if empty.
  double Percentile(double p);
  double Mean() const;
  // How many values are above `limit` (e.g. calls slower than 10 ms).
  size_t CountAbove(double limit) const;

 private:
  std::vector<double> values_;
  bool sorted_ = false;
};

// The median of `values` (the mean of the two middle ones for an even count); -1 for none.
double Median(std::vector<double> values);

double SecondsSince(std::chrono::steady_clock::time_point start);

// "1.23 4.56 7.89" from /proc/loadavg.
std::string LoadAverage();
// VmHWM (peak resident set) of a process in KiB, from /proc/<pid>/status. nullopt if unreadable.
std::optional<uint64_t> PeakRssKib(pid_t pid);
// CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. nullopt if unreadable.
std::optional<double> CpuSeconds(pid_t pid);
// CPU seconds of the threads of `pid` whose name starts with `name_prefix` (threads that ended
// are not counted): e.g. "rocksdb:" for a store's flushes and compactions.
double ThreadsCpuSeconds(pid_t pid, std::string_view name_prefix);
// Waits until `pid` has used less than 5% of a core in each of 3 consecutive seconds (e.g. RocksDB
// compactions after a load have finished), at most `timeout`. Returns the seconds waited.
double WaitUntilQuiet(pid_t pid, std::chrono::seconds timeout);
// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// ----- Result table -----

// One line of a result table. `ratio` is ours vs PostgreSQL in the direction where > 1 is better
// for us (rate / rate, or PostgreSQL time / our time); `target` and `met` describe the issue's
// acceptance target ("-" when the line is only a reference).
struct ResultLine {
  std::string metric;
  std::string ours;
  std::string postgres;
  std::string ratio;
  std::string target;
  std::string met;
};

class ResultTable {
 public:
  // `baseline` heads the column of ResultLine::postgres (a bench without PostgreSQL names its own),
  // `ours` the column of ResultLine::ours.
  explicit ResultTable(std::string title, std::string baseline = "PostgreSQL", std::string ours = "contacts")
      : title_(std::move(title)), baseline_(std::move(baseline)), ours_(std::move(ours)) {}
  void Add(ResultLine line) { lines_.push_back(std::move(line)); }
  // Prints the table to stdout with aligned columns.
  void Print() const;

 private:
  std::string title_;
  std::string baseline_;
  std::string ours_;
  std::vector<ResultLine> lines_;
};

// Formatting helpers for the table.
std::string FormatRate(double per_second, std::string_view unit);  // "123,456 rows/s"
std::string FormatMicros(double micros);                           // "123 us" / "4.56 ms"
std::string FormatRatio(double ratio);                             // "12.3x"
std::string YesNo(bool met);

// ----- TLS -----

// A throwaway CA and the certificates it signed, as PEM files: a server certificate for
// 127.0.0.1 and localhost, and a client certificate (mutual TLS, as a deployment that checks its
// callers runs).
struct BenchTls {
  std::string ca_file;
  std::string server_cert_file;
  std::string server_key_file;
  std::string client_cert_file;
  std::string client_key_file;

  // A service's listener flags: serve TLS and require a client certificate signed by the CA.
  std::vector<std::string> ServerFlags() const;
  // import-processor's / audience-query's flags for calling contact-store over (mutual) TLS.
  std::vector<std::string> StoreClientFlags() const;
  // The credentials of this bench's own client: trusts the CA, presents the client certificate.
  std::shared_ptr<grpc::ChannelCredentials> ClientCredentials() const;
};

// Makes the CA and certificates under `dir` with the openssl CLI (P-256 keys: fast to make).
// Errors: INTERNAL with openssl's output.
absl::StatusOr<BenchTls> MakeBenchTls(const std::string& dir);

// Starts `binary` with `flags` plus, when `tls` is given, its ServerFlags, and waits until it is
// SERVING (over TLS with the bench's client certificate when `tls` is given).
absl::StatusOr<std::unique_ptr<test::ServiceProcess>> StartService(const std::string& binary,
                                                                   std::vector<std::string> flags, const BenchTls* tls);

// A channel to `address`: plaintext, or TLS with the bench's client certificate when `tls` is given.
std::shared_ptr<grpc::Channel> BenchChannel(const std::string& address, const BenchTls* tls,
                                            const grpc::ChannelArguments& args = {});

// ----- PostgreSQL -----

// A throwaway PostgreSQL 15 started by scripts/bench_postgres.sh in a fresh temp folder and
// stopped (and removed) when destroyed. psql/pgbench run as clients over the unix socket.
class Postgres {
 public:
  // Errors: FAILED_PRECONDITION when the script or PostgreSQL is missing; INTERNAL when start failed.
  static absl::StatusOr<std::unique_ptr<Postgres>> Start();
  ~Postgres();

  // A folder that the postgres OS user can read (for COPY FROM a server-side file) and that is
  // removed with this object.
  const std::string& work_dir() const { return dir_.path(); }

  // Runs SQL through `psql -v ON_ERROR_STOP=1 -Atq` and returns its stdout.
  // Errors: INTERNAL with psql's stderr when it fails.
  absl::StatusOr<std::string> Sql(const std::string& sql);
  // Runs SQL and returns the seconds it took (psql start included: a few ms).
  absl::StatusOr<double> TimedSql(const std::string& sql);
  // Runs `COPY (query) TO STDOUT WITH CSV` through psql and counts the bytes received.
  // Returns {bytes, seconds}.
  absl::StatusOr<std::pair<uint64_t, double>> CopyOut(const std::string& query);

  // pgbench with a custom script (one client, prepared statements): runs `transactions` times
  // (or for `seconds` when transactions is 0; at `rate` per second open-loop when rate > 0) and
  // returns per-transaction latencies from its log.
  struct PgbenchOptions {
    int64_t transactions = 0;
    double seconds = 0;
    double rate = 0;
    int clients = 1;
  };
  absl::StatusOr<Latencies> Pgbench(const std::string& script, const PgbenchOptions& options);

  // psql/pgbench arguments over the unix socket, and over TCP on 127.0.0.1 (like our gRPC clients).
  std::string ConnectionArgs() const;
  std::string TcpConnectionArgs() const;

 private:
  Postgres();
  test::TempDir dir_;
  std::string pg_dir_;
  int port_ = 0;
  bool running_ = false;
};

// Runs a shell command and returns its stdout. Errors: INTERNAL with the exit status.
absl::StatusOr<std::string> RunCommand(const std::string& command);

// The PostgreSQL side of the contacts table: contacts(pk text primary key, email, mobile, attrs
// jsonb) with btree indexes on email and mobile and a GIN (jsonb_path_ops) index on attrs, plus
// an UNLOGGED staging table of text columns.
absl::Status CreatePostgresSchema(Postgres& pg);
// COPY `csv_path` into staging, then the typed INSERT ... SELECT ... ON CONFLICT (pk) DO UPDATE.
// Returns {copy_seconds, insert_seconds}. The staging table is truncated first and after.
absl::StatusOr<std::pair<double, double>> LoadPostgres(Postgres& pg, const std::string& csv_path);

}  // namespace contacts::bench
