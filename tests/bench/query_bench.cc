// audience-query benchmark (issue "audience-query", acceptance 6). Prints figures beside
// PostgreSQL measured in the same run; never passes or fails.
//
//   contacts_bench_query [--rows 1000000] [--calls 200] [--pg_calls 30] [--skip_pg] [--skip_export]
//                        [--export_runs 5]
//                        [--key_order scrambled|sequential] [--store_flags "..."]
//
// Data: the 10-attribute contacts (tests/bench/bench_util.h) loaded through BatchUpsert into a
// contact-store process, and every 5th contact (20%) in the list "vip". audience-query runs as a
// process in front of it. Measured over gRPC through audience-query, text filters:
//   (a) in_list("vip") AND city = "Pune"    (b) age BETWEEN 30 AND 40
//   (c) city = "Pune" OR age > 60 OR vip = true
// count p50/p99 (--calls each, after a warm-up), first page (page_size 50) of (a), and Export of
// every contact (bytes of CSV received / seconds; --export_runs runs, each printed with the CPU of
// every process; the table has the median of the runs after the first, for PostgreSQL's COPY too).
// PostgreSQL: the same rows in contacts(pk, email, mobile, attrs jsonb) with btree, GIN
// (jsonb_path_ops) and an expression index on (attrs->>'age')::int, list_members(list_id, pk)
// with its primary key; counts as SQL through pgbench (prepared, one client, TCP) and export as
// COPY (SELECT ...) TO STDOUT through psql (in heap order: no ORDER BY, PostgreSQL's best case).
//
// --rows 10000000 gives the 10M count figures: loading takes minutes on both sides (see the
// printed phase times); --skip_export skips the export there if wanted.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include "contacts/v1/audience_query.grpc.pb.h"

#include "tests/bench/bench_util.h"

namespace contacts::bench {
namespace {

struct Options {
  int64_t rows;
  int64_t calls;
  int64_t pg_calls;
  bool skip_pg;
  bool skip_export;
  int64_t export_runs;
  std::string store_flags;
};

// The median of the runs after the first (the first is a warm-up), or the only run; -1 for none.
double WarmRunsMedian(std::vector<double> runs) {
  if (runs.empty()) return -1;
  if (runs.size() > 1) runs.erase(runs.begin());
  return Median(std::move(runs));
}

struct CountCase {
  std::string name;
  std::string filter_text;
  std::string sql;
};

std::vector<CountCase> Cases() {
  return {
      {"(a) in_list AND city", R"(in_list("vip") AND city = "Pune")",
       "SELECT count(*) FROM contacts c JOIN list_members m ON m.list_id = 1 AND m.pk = c.pk "
       "WHERE c.attrs @> '{\"city\": \"Pune\"}';"},
      {"(b) age BETWEEN 30 AND 40", "age BETWEEN 30 AND 40",
       "SELECT count(*) FROM contacts WHERE (attrs->>'age')::int BETWEEN 30 AND 40;"},
      {"(c) 3-term OR", R"(city = "Pune" OR age > 60 OR vip = true)",
       "SELECT count(*) FROM contacts WHERE attrs @> '{\"city\": \"Pune\"}' OR (attrs->>'age')::int > 60 "
       "OR attrs @> '{\"vip\": true}';"},
  };
}

const char* kFirstPageSql =
    "SELECT c.pk, c.email, c.mobile, c.attrs FROM contacts c JOIN list_members m ON m.list_id = 1 AND m.pk = c.pk "
    "WHERE c.attrs @> '{\"city\": \"Pune\"}' ORDER BY c.pk LIMIT 50;";

const char* kExportSql =
    "SELECT pk, email, mobile, attrs->>'first_name', attrs->>'last_name', attrs->>'city', attrs->>'age', "
    "attrs->>'score', attrs->>'signup', attrs->>'vip' FROM contacts";

struct CaseFigures {
  uint64_t count = 0;
  double p50 = -1, p99 = -1;
  int64_t pg_count = -1;
  double pg_p50 = -1, pg_p99 = -1;
};

struct Figures {
  std::vector<CaseFigures> cases;
  double page_p50 = -1, page_p99 = -1;
  double pg_page_p50 = -1, pg_page_p99 = -1;
  double export_mb_s = -1;  // WarmRunsMedian of the runs' MB/s
  std::vector<double> export_runs_mb_s;
  uint64_t export_bytes = 0, export_rows = 0;
  double pg_export_mb_s = -1;
  std::vector<double> pg_export_runs_mb_s;
  uint64_t pg_export_bytes = 0;
  double pg_load_s = -1;
};

std::chrono::system_clock::time_point Deadline(int seconds) {
  return std::chrono::system_clock::now() + std::chrono::seconds(seconds);
}

absl::Status AddVipList(v1::ContactStore::Stub* stub, int64_t rows) {
  v1::CreateListRequest create;
  create.set_name("vip");
  v1::ContactList list;
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline(30));
  if (grpc::Status status = stub->CreateList(&ctx, create, &list); !status.ok()) {
    return absl::InternalError(fmt::format("CreateList: {}", status.error_message()));
  }
  v1::ListMembershipRequest request;
  request.set_list_id(list.id());
  auto flush = [&]() -> absl::Status {
    if (request.primary_keys_size() == 0) return absl::OkStatus();
    grpc::ClientContext add_ctx;
    add_ctx.set_deadline(Deadline(300));
    v1::ListMembershipResponse response;
    if (grpc::Status status = stub->AddToList(&add_ctx, request, &response); !status.ok()) {
      return absl::InternalError(fmt::format("AddToList: {}", status.error_message()));
    }
    if (response.not_found() != 0)
      return absl::InternalError(fmt::format("AddToList: {} not found", response.not_found()));
    request.clear_primary_keys();
    return absl::OkStatus();
  };
  for (int64_t i = 0; i < rows; i += 5) {
    request.add_primary_keys(CustomerId(i));
    if (request.primary_keys_size() == 10000) {
      if (auto status = flush(); !status.ok()) return status;
    }
  }
  return flush();
}

absl::Status MeasureOurs(const Options& options, Figures* figures) {
  auto store = test::ServiceProcess::Start({.binary = "contact-store", .flags = SplitFlags(options.store_flags)});
  if (!store.ok()) return store.status();
  auto store_stub = v1::ContactStore::NewStub((*store)->Channel());
  grpc::ChannelArguments direct_args;
  direct_args.SetMaxReceiveMessageSize(-1);
  auto direct_store_stub = v1::ContactStore::NewStub(
      grpc::CreateCustomChannel((*store)->address(), grpc::InsecureChannelCredentials(), direct_args));
  if (auto setup = SetupStoreSchema(store_stub.get()); !setup.ok()) return setup;
  auto load_start = std::chrono::steady_clock::now();
  auto loaded = LoadOverGrpc((*store)->Channel(), options.rows, 2000, 2, /*prebuild=*/false);
  if (!loaded.ok()) return loaded.status();
  fmt::print("contact-store: {} rows loaded through BatchUpsert in {:.1f} s ({})\n", options.rows, *loaded,
             FormatRate(options.rows / *loaded, "rows/s"));
  auto list_start = std::chrono::steady_clock::now();
  if (auto listed = AddVipList(store_stub.get(), options.rows); !listed.ok()) return listed;
  fmt::print("list \"vip\": {} members added in {:.1f} s; setup total {:.1f} s; load {}\n", (options.rows + 4) / 5,
             SecondsSince(list_start), SecondsSince(load_start), LoadAverage());
  fmt::print("waited {:.0f} s for contact-store to go quiet (compactions after the load)\n",
             WaitUntilQuiet((*store)->pid(), std::chrono::seconds(300)));
  std::fflush(stdout);

  auto query = test::ServiceProcess::Start(
      {.binary = "audience-query", .flags = {fmt::format("--store={}", (*store)->address())}});
  if (!query.ok()) return query.status();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  auto channel = grpc::CreateCustomChannel((*query)->address(), grpc::InsecureChannelCredentials(), args);
  auto stub = v1::AudienceQuery::NewStub(channel);

  auto count = [&](const std::string& text, uint64_t* result) -> absl::Status {
    v1::CountRequest request;
    request.mutable_filter()->set_text(text);
    v1::CountResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(60));
    grpc::Status status = stub->Count(&ctx, request, &response);
    if (!status.ok()) return absl::InternalError(fmt::format("Count [{}]: {}", text, status.error_message()));
    *result = response.count();
    return absl::OkStatus();
  };
  for (const CountCase& c : Cases()) {
    CaseFigures f;
    for (int i = 0; i < 5; ++i) {
      if (auto status = count(c.filter_text, &f.count); !status.ok()) return status;
    }
    Latencies latencies;
    for (int64_t i = 0; i < options.calls; ++i) {
      auto start = std::chrono::steady_clock::now();
      uint64_t result;
      if (auto status = count(c.filter_text, &result); !status.ok()) return status;
      latencies.Add(SecondsSince(start) * 1e6);
    }
    f.p50 = latencies.Percentile(50);
    f.p99 = latencies.Percentile(99);
    fmt::print("Count {}: {} matches; {} calls p50 {}, p99 {}, max {}, {} over 10 ms\n", c.filter_text, f.count,
               latencies.size(), FormatMicros(f.p50), FormatMicros(f.p99), FormatMicros(latencies.Percentile(100)),
               latencies.CountAbove(10000));
    // The same count straight at contact-store (tree from ParseFilter): what audience-query adds.
    v1::ParseFilterRequest parse;
    parse.set_text(c.filter_text);
    v1::StoreCountRequest direct;
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(Deadline(30));
      if (grpc::Status status = stub->ParseFilter(&ctx, parse, direct.mutable_filter()); !status.ok()) {
        return absl::InternalError(fmt::format("ParseFilter: {}", status.error_message()));
      }
    }
    Latencies store_latencies;
    for (int64_t i = 0; i < options.calls; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(Deadline(60));
      v1::StoreCountResponse response;
      auto start = std::chrono::steady_clock::now();
      grpc::Status status = store_stub->Count(&ctx, direct, &response);
      if (!status.ok()) return absl::InternalError(fmt::format("store Count: {}", status.error_message()));
      store_latencies.Add(SecondsSince(start) * 1e6);
    }
    fmt::print("  straight at contact-store: p50 {}, p99 {}, max {}, {} over 10 ms\n",
               FormatMicros(store_latencies.Percentile(50)), FormatMicros(store_latencies.Percentile(99)),
               FormatMicros(store_latencies.Percentile(100)), store_latencies.CountAbove(10000));
    figures->cases.push_back(f);
  }
  {
    Latencies latencies;
    for (int64_t i = 0; i < options.calls + 5; ++i) {
      v1::QueryRequest request;
      request.mutable_filter()->set_text(Cases()[0].filter_text);
      request.set_page_size(50);
      v1::QueryResponse response;
      grpc::ClientContext ctx;
      ctx.set_deadline(Deadline(60));
      auto start = std::chrono::steady_clock::now();
      grpc::Status status = stub->Query(&ctx, request, &response);
      double micros = SecondsSince(start) * 1e6;
      if (!status.ok()) return absl::InternalError(fmt::format("Query: {}", status.error_message()));
      if (response.contacts_size() != std::min<int64_t>(50, figures->cases[0].count)) {
        return absl::InternalError(fmt::format("Query returned {} contacts", response.contacts_size()));
      }
      if (i >= 5) latencies.Add(micros);
    }
    figures->page_p50 = latencies.Percentile(50);
    figures->page_p99 = latencies.Percentile(99);
    fmt::print("Query first page (50) of (a): {} calls p50 {}, p99 {}\n", latencies.size(),
               FormatMicros(figures->page_p50), FormatMicros(figures->page_p99));
  }
  std::fflush(stdout);
  if (!options.skip_export) {
    for (int run = 0; run < options.export_runs; ++run) {
      const auto store_cpu = CpuSeconds((*store)->pid());
      const double store_background_cpu = ThreadsCpuSeconds((*store)->pid(), "rocksdb:");
      const auto query_cpu = CpuSeconds((*query)->pid());
      const auto client_cpu = CpuSeconds(getpid());
      v1::ExportRequest request;
      v1::ExportChunk chunk;
      grpc::ClientContext ctx;
      ctx.set_deadline(Deadline(3600));
      uint64_t bytes = 0, rows = 0, chunks = 0;
      auto start = std::chrono::steady_clock::now();
      auto reader = stub->Export(&ctx, request);
      while (reader->Read(&chunk)) {
        bytes += chunk.csv().size();
        rows += chunk.rows();
        ++chunks;
      }
      grpc::Status status = reader->Finish();
      double seconds = SecondsSince(start);
      if (!status.ok()) return absl::InternalError(fmt::format("Export: {}", status.error_message()));
      if (rows != static_cast<uint64_t>(options.rows)) {
        return absl::InternalError(fmt::format("Export gave {} rows, expected {}", rows, options.rows));
      }
      fmt::print(
          "Export run {}: {} rows, {:.1f} MB in {} chunks, {:.2f} s: {:.0f} MB/s, {}; CPU contact-store {:.2f} s "
          "(RocksDB flushes and compactions {:.2f} s), audience-query {:.2f} s, this client {:.2f} s\n",
          run + 1, rows, bytes / 1e6, chunks, seconds, bytes / 1e6 / seconds, FormatRate(rows / seconds, "rows/s"),
          CpuSeconds((*store)->pid()).value_or(0) - store_cpu.value_or(0),
          ThreadsCpuSeconds((*store)->pid(), "rocksdb:") - store_background_cpu,
          CpuSeconds((*query)->pid()).value_or(0) - query_cpu.value_or(0),
          CpuSeconds(getpid()).value_or(0) - client_cpu.value_or(0));
      figures->export_runs_mb_s.push_back(bytes / 1e6 / seconds);
      figures->export_bytes = bytes;
      figures->export_rows = rows;
    }
    figures->export_mb_s = WarmRunsMedian(figures->export_runs_mb_s);
    // The same export straight from contact-store (one gRPC hop less), with the CPU each
    // process used, to show where the time goes.
    {
      const auto store_cpu = CpuSeconds((*store)->pid());
      const auto client_cpu = CpuSeconds(getpid());
      v1::StoreExportRequest request;
      v1::StoreExportChunk chunk;
      grpc::ClientContext ctx;
      ctx.set_deadline(Deadline(3600));
      uint64_t bytes = 0, rows = 0;
      auto start = std::chrono::steady_clock::now();
      auto reader = direct_store_stub->Export(&ctx, request);
      while (reader->Read(&chunk)) {
        bytes += chunk.csv().size();
        rows += chunk.rows();
      }
      grpc::Status status = reader->Finish();
      double seconds = SecondsSince(start);
      if (!status.ok()) return absl::InternalError(fmt::format("store Export: {}", status.error_message()));
      auto store_after = CpuSeconds((*store)->pid());
      auto client_after = CpuSeconds(getpid());
      fmt::print(
          "Export straight at contact-store: {} rows, {:.1f} MB, {:.2f} s: {:.0f} MB/s; CPU contact-store "
          "{:.2f} s, this client {:.2f} s\n",
          rows, bytes / 1e6, seconds, bytes / 1e6 / seconds, store_after.value_or(0) - store_cpu.value_or(0),
          client_after.value_or(0) - client_cpu.value_or(0));
    }
  }
  for (auto* process : {query->get(), store->get()}) {
    if (auto rss = PeakRssKib(process->pid())) fmt::print("peak RSS pid {}: {} MiB\n", process->pid(), *rss / 1024);
  }
  std::fflush(stdout);
  (void)(*query)->Terminate();
  (void)(*store)->Terminate();
  return absl::OkStatus();
}

absl::Status MeasurePostgres(const Options& options, Figures* figures) {
  auto pg = Postgres::Start();
  if (!pg.ok()) return pg.status();
  const std::string csv = (*pg)->work_dir() + "/contacts.csv";
  auto size = WriteCsv(csv, options.rows);
  if (!size.ok()) return size.status();
  if (auto schema = CreatePostgresSchema(**pg); !schema.ok()) return schema;
  auto start = std::chrono::steady_clock::now();
  auto loaded = LoadPostgres(**pg, csv);
  if (!loaded.ok()) return loaded.status();
  auto prepared = (*pg)->Sql(fmt::format(R"sql(
CREATE TABLE list_members(list_id int NOT NULL, pk text NOT NULL, PRIMARY KEY (list_id, pk));
INSERT INTO list_members
  SELECT 1, {} FROM generate_series(0::bigint, {}, 5) i;
CREATE INDEX contacts_age ON contacts (((attrs->>'age')::int));
VACUUM ANALYZE contacts;
VACUUM ANALYZE list_members;
)sql",
                                         CustomerIdSql("i"), options.rows - 1));
  if (!prepared.ok()) return prepared.status();
  figures->pg_load_s = SecondsSince(start);
  fmt::print(
      "PostgreSQL: COPY {:.1f} s + INSERT ... ON CONFLICT {:.1f} s; with list_members, age index and ANALYZE "
      "{:.1f} s; load {}\n",
      loaded->first, loaded->second, figures->pg_load_s, LoadAverage());
  std::fflush(stdout);
  auto cases = Cases();
  for (size_t i = 0; i < cases.size(); ++i) {
    auto count = (*pg)->Sql(cases[i].sql);
    if (!count.ok()) return count.status();
    auto explain = (*pg)->Sql("EXPLAIN " + cases[i].sql);
    if (explain.ok()) fmt::print("PostgreSQL plan for {}:\n{}", cases[i].name, *explain);
    auto latencies = (*pg)->Pgbench(cases[i].sql, {.transactions = options.pg_calls});
    if (!latencies.ok()) return latencies.status();
    CaseFigures& f = figures->cases[i];
    f.pg_count = std::strtoll(count->c_str(), nullptr, 10);
    f.pg_p50 = latencies->Percentile(50);
    f.pg_p99 = latencies->Percentile(99);
    fmt::print("PostgreSQL count {}: {} matches{}; {} runs p50 {}, p99 {}\n", cases[i].name, f.pg_count,
               f.pg_count == static_cast<int64_t>(f.count) ? "" : fmt::format(" (contacts said {}!)", f.count),
               latencies->size(), FormatMicros(f.pg_p50), FormatMicros(f.pg_p99));
    std::fflush(stdout);
  }
  auto page = (*pg)->Pgbench(kFirstPageSql, {.transactions = options.pg_calls * 3});
  if (!page.ok()) return page.status();
  figures->pg_page_p50 = page->Percentile(50);
  figures->pg_page_p99 = page->Percentile(99);
  fmt::print("PostgreSQL first page of (a): {} runs p50 {}, p99 {}\n", page->size(), FormatMicros(figures->pg_page_p50),
             FormatMicros(figures->pg_page_p99));
  if (!options.skip_export) {
    for (int run = 0; run < options.export_runs; ++run) {
      auto copied = (*pg)->CopyOut(kExportSql);
      if (!copied.ok()) return copied.status();
      double mb_s = copied->first / 1e6 / copied->second;
      fmt::print("PostgreSQL COPY TO STDOUT run {}: {:.1f} MB in {:.2f} s: {:.0f} MB/s\n", run + 1, copied->first / 1e6,
                 copied->second, mb_s);
      figures->pg_export_runs_mb_s.push_back(mb_s);
      figures->pg_export_bytes = copied->first;
    }
    figures->pg_export_mb_s = WarmRunsMedian(figures->pg_export_runs_mb_s);
  }
  std::fflush(stdout);
  return absl::OkStatus();
}

void PrintTable(const Options& options, const Figures& f) {
  ResultTable table(fmt::format("audience-query over contact-store, {} contacts", options.rows));
  auto cases = Cases();
  for (size_t i = 0; i < f.cases.size(); ++i) {
    const CaseFigures& c = f.cases[i];
    const bool pg = c.pg_p50 > 0;
    const double ratio = pg ? c.pg_p50 / c.p50 : -1;
    table.Add({fmt::format("count {} p50", cases[i].name), FormatMicros(c.p50), pg ? FormatMicros(c.pg_p50) : "-",
               FormatRatio(ratio), ">= 10x PostgreSQL", pg ? YesNo(ratio >= 10) : "?"});
    table.Add({fmt::format("count {} p99", cases[i].name), FormatMicros(c.p99), pg ? FormatMicros(c.pg_p99) : "-",
               pg ? FormatRatio(c.pg_p99 / c.p99) : "-", "< 10 ms", YesNo(c.p99 < 10000)});
  }
  const bool pg_page = f.pg_page_p50 > 0;
  table.Add({"first page (50) of (a) p50", FormatMicros(f.page_p50), pg_page ? FormatMicros(f.pg_page_p50) : "-",
             pg_page ? FormatRatio(f.pg_page_p50 / f.page_p50) : "-", "< 5 ms", YesNo(f.page_p50 < 5000)});
  table.Add({"first page (50) of (a) p99", FormatMicros(f.page_p99), pg_page ? FormatMicros(f.pg_page_p99) : "-",
             pg_page ? FormatRatio(f.pg_page_p99 / f.page_p99) : "-", "< 5 ms", YesNo(f.page_p99 < 5000)});
  if (f.export_mb_s > 0) {
    const bool pg = f.pg_export_mb_s > 0;
    table.Add({"export, all contacts (median)", fmt::format("{:.0f} MB/s", f.export_mb_s),
               pg ? fmt::format("{:.0f} MB/s", f.pg_export_mb_s) : "-",
               pg ? FormatRatio(f.export_mb_s / f.pg_export_mb_s) : "-", ">= 250 MB/s", YesNo(f.export_mb_s >= 250)});
  }
  table.Print();
  bool counts_agree = true;
  for (const auto& c : f.cases)
    counts_agree = counts_agree && (c.pg_count < 0 || c.pg_count == static_cast<int64_t>(c.count));
  if (!f.cases.empty() && f.cases[0].pg_count >= 0) {
    fmt::print("counts agree with PostgreSQL: {}\n", counts_agree ? "yes" : "NO");
  }
  if (f.export_bytes > 0) {
    auto runs = [](const std::vector<double>& mb_s) {
      std::string text;
      for (double run : mb_s) text += fmt::format("{}{:.0f}", text.empty() ? "" : ", ", run);
      return text;
    };
    fmt::print(
        "export: ours {:.1f} MB ({} rows), runs {} MB/s{}; the table has the median of the runs after the "
        "first (a warm-up: fresh processes fault in their buffers)\n",
        f.export_bytes / 1e6, f.export_rows, runs(f.export_runs_mb_s),
        f.pg_export_bytes > 0
            ? fmt::format("; PostgreSQL {:.1f} MB, runs {} MB/s", f.pg_export_bytes / 1e6, runs(f.pg_export_runs_mb_s))
            : "");
  }
  fmt::print(
      "latencies: contacts over gRPC through audience-query (client-measured); PostgreSQL via pgbench "
      "(prepared, TCP, one client).\nload average at the end: {}\n",
      LoadAverage());
}

int Main(int argc, char** argv) {
  StartServiceBench();
  const std::optional<std::string> key_order_flag = ApplyKeyOrderFlag(argc, argv);
  if (!key_order_flag) return 2;
  const std::string& key_order = *key_order_flag;
  Options options{
      .rows = IntFlag(argc, argv, "rows", 1000000),
      .calls = IntFlag(argc, argv, "calls", 200),
      .pg_calls = IntFlag(argc, argv, "pg_calls", 30),
      .skip_pg = BoolFlag(argc, argv, "skip_pg"),
      .skip_export = BoolFlag(argc, argv, "skip_export"),
      .export_runs = IntFlag(argc, argv, "export_runs", 5),
      .store_flags = StringFlag(argc, argv, "store_flags", ""),
  };
  ExitOnUnknownFlags(argc, argv);
  if (options.rows < 5 || options.calls < 1 || options.pg_calls < 1 || options.export_runs < 1) {
    std::fprintf(stderr, "bad flags: need rows >= 5, calls >= 1, pg_calls >= 1, export_runs >= 1\n");
    return 2;
  }
  fmt::print(
      "contacts_bench_query: {} rows ({} keys), {} calls per figure ({} for PostgreSQL); {} cores; load average {}\n",
      options.rows, key_order, options.calls, options.pg_calls, std::thread::hardware_concurrency(), LoadAverage());
  std::fflush(stdout);
  auto start = std::chrono::steady_clock::now();
  Figures figures;
  if (auto status = MeasureOurs(options, &figures); !status.ok()) {
    fmt::print(stderr, "contacts part failed: {}\n", status.ToString());
    return 1;
  }
  if (!options.skip_pg) {
    if (auto status = MeasurePostgres(options, &figures); !status.ok()) {
      fmt::print(stderr, "PostgreSQL part failed: {}\n", status.ToString());
      return 1;
    }
  }
  PrintTable(options, figures);
  fmt::print("whole run: {:.0f} s\n", SecondsSince(start));
  return 0;
}

}  // namespace
}  // namespace contacts::bench

int main(int argc, char** argv) { return contacts::bench::Main(argc, argv); }
