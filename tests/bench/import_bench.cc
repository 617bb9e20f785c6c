// import-processor benchmark (issue "import-processor", acceptance 8 and 9). Prints figures beside
// PostgreSQL measured in the same run; never passes or fails.
//
//   contacts_bench_import [--rows 1000000] [--chunk_bytes 1048576] [--skip_pg] [--lists N]
//                         [--import_flags "--workers=2 --batch_rows=2000"] [--store_flags "..."]
//                         [--key_order scrambled|sequential] [--repeat N] [--tls]
//
// --lists N creates N lists and has every imported contact join them (StartImport's list_ids);
// the PostgreSQL side then still loads the file without memberships.
//
// --repeat N (default 1) measures N pairs, ours then PostgreSQL's, one after the other, each with
// fresh services and a fresh PostgreSQL, and prints every pair, then the table with the medians:
// this machine's speed drifts by 10-20% within minutes (tests/bench/RESULTS.md), for PostgreSQL as
// much as for us, so a ratio of times measured side by side is steadier than one of a single run,
// and the spread of the pairs shows how far to trust it. The ratio in the table is the median of
// the pairs' ratios; its "met" column asks every pair to meet the target, not the median alone.
//
// --tls measures ours a second time in each pair, right after the plaintext run, with both
// services serving mutual TLS (a throwaway CA made with the openssl CLI), import-processor calling
// contact-store over it (--store_tls_*) and the bench's client presenting a client certificate;
// then prints a second table with the TLS figures beside the plaintext ones of the same run.
//
// Generates the 10-column contacts CSV (tests/bench/bench_util.h; ~100 MB for 1M rows), starts
// contact-store (tenant with the 10 attributes set up) and import-processor, uploads the file
// through the Upload client stream in --chunk_bytes chunks, starts the import mapping every column
// to its attribute, and follows the job with WatchJob until it ends. Reports the seconds from the
// first upload message to the job seen finished, rows/s, the phases (upload, queue, run from the
// job's own timestamps), and the peak RSS (VmHWM) of both services.
// PostgreSQL: COPY of the same file into an UNLOGGED staging table + typed INSERT ... SELECT ...
// ON CONFLICT (pk) DO UPDATE into the indexed contacts table.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include "contacts/v1/import_processor.grpc.pb.h"

#include "tests/bench/bench_util.h"

namespace contacts::bench {
namespace {

struct Options {
  int64_t rows;
  int64_t chunk_bytes;
  bool skip_pg;
  int64_t lists;  // lists every imported contact joins (StartImport's list_ids)
  std::string import_flags;
  std::string store_flags;
  int64_t repeat;  // pairs measured (ours, then PostgreSQL's)
  bool tls;        // also measure ours over mutual TLS in each pair
};

struct Figures {
  uint64_t file_bytes = 0;
  double upload_s = -1;      // first message to UploadResponse
  double end_to_end_s = -1;  // first message to the WatchJob update that said the job finished
  double job_run_s = -1;     // job started_at -> finished_at
  double job_queue_s = -1;   // job created_at -> started_at
  v1::Job job;
  uint64_t import_rss_kib = 0, store_rss_kib = 0;
  uint64_t stored_contacts = 0;
  double pg_copy_s = -1, pg_insert_s = -1;
  // The same import over mutual TLS (--tls), measured right after the plaintext one.
  double tls_upload_s = -1, tls_end_to_end_s = -1, tls_job_run_s = -1;
  bool tls_completed = false;
};

std::chrono::system_clock::time_point Deadline(int seconds) {
  return std::chrono::system_clock::now() + std::chrono::seconds(seconds);
}

bool Finished(v1::JobState state) {
  return state == v1::COMPLETED || state == v1::COMPLETED_WITH_ERRORS || state == v1::FAILED || state == v1::CANCELLED;
}

// Our import on fresh services: plaintext, or (with `tls`) every connection over mutual TLS.
absl::Status MeasureOurs(const Options& options, const std::string& csv, const BenchTls* tls, Figures* figures) {
  auto store = StartService("contact-store", SplitFlags(options.store_flags), tls);
  if (!store.ok()) return store.status();
  auto store_stub =
      v1::ContactStore::NewStub(tls != nullptr ? BenchChannel((*store)->address(), tls) : (*store)->Channel());
  if (auto setup = SetupStoreSchema(store_stub.get()); !setup.ok()) return setup;
  std::vector<std::string> flags = SplitFlags(options.import_flags);
  flags.push_back(fmt::format("--store={}", (*store)->address()));
  if (tls != nullptr) {
    for (std::string& flag : tls->StoreClientFlags()) flags.push_back(std::move(flag));
  }
  auto importer = StartService("import-processor", flags, tls);
  if (!importer.ok()) return importer.status();
  std::shared_ptr<grpc::Channel> channel = (*importer)->Channel();  // connected by the start's health check
  if (tls != nullptr) {
    // Connected (handshake done) before the clock starts, as the plaintext channel is.
    channel = BenchChannel((*importer)->address(), tls);
    if (!channel->WaitForConnected(Deadline(30)))
      return absl::UnavailableError("no TLS connection to import-processor");
  }
  auto stub = v1::ImportProcessor::NewStub(channel);

  std::ifstream file(csv, std::ios::binary);
  if (!file) return absl::InternalError(fmt::format("cannot open {}", csv));
  std::string chunk(options.chunk_bytes, '\0');
  fmt::print("uploading {} ({:.1f} MB) in {} KiB chunks; load {}\n", csv, figures->file_bytes / 1e6,
             options.chunk_bytes / 1024, LoadAverage());
  std::fflush(stdout);

  const auto start = std::chrono::steady_clock::now();
  const int64_t start_wall_micros =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  v1::UploadResponse uploaded;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(600));
    auto writer = stub->Upload(&ctx, &uploaded);
    v1::UploadRequest first;
    first.mutable_start()->set_file_name("contacts.csv");
    first.mutable_start()->set_has_header(true);
    bool ok = writer->Write(first);
    while (ok && file) {
      file.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      std::streamsize n = file.gcount();
      if (n <= 0) break;
      v1::UploadRequest request;
      request.set_chunk(chunk.data(), static_cast<size_t>(n));
      ok = writer->Write(request);
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (!status.ok()) return absl::InternalError(fmt::format("Upload: {}", status.error_message()));
  }
  figures->upload_s = SecondsSince(start);
  fmt::print("upload {} stored: {} bytes in {:.2f} s ({:.0f} MB/s), {} columns detected\n", uploaded.upload_id(),
             uploaded.size_bytes(), figures->upload_s, uploaded.size_bytes() / 1e6 / figures->upload_s,
             uploaded.columns_size());
  std::fflush(stdout);  // scripts watching the output time the upload's end by this line

  v1::StartImportRequest import;
  import.set_upload_id(uploaded.upload_id());
  import.set_mode(v1::UPSERT);
  for (int64_t i = 1; i <= options.lists; ++i) {
    v1::CreateListRequest create;
    create.set_name(fmt::format("import-list-{}", i));
    v1::ContactList list;
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(60));
    grpc::Status status = store_stub->CreateList(&ctx, create, &list);
    if (!status.ok()) return absl::InternalError(fmt::format("CreateList: {}", status.error_message()));
    import.add_list_ids(list.id());
  }
  for (const char* column : kColumnNames) {
    auto* mapping = import.add_mapping();
    mapping->set_column(column);
    mapping->set_attribute(column);
  }
  v1::Job job;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(60));
    grpc::Status status = stub->StartImport(&ctx, import, &job);
    if (!status.ok()) return absl::InternalError(fmt::format("StartImport: {}", status.error_message()));
  }
  // Followed with WatchJob, which sends every change as it happens: polling GetJob every 50 ms saw
  // the end 25 ms late on average (the job's own finished_at against the poll).
  auto last_report = std::chrono::steady_clock::now();
  uint64_t last_received = 0;
  {
    v1::GetJobRequest request;
    request.set_job_id(job.id());
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(3600));
    std::unique_ptr<grpc::ClientReader<v1::Job>> updates = stub->WatchJob(&ctx, request);
    bool finished = false;
    v1::Job update;
    while (!finished && updates->Read(&update)) {
      job = std::move(update);
      finished = Finished(job.state());
      if (finished) figures->end_to_end_s = SecondsSince(start);
      if (!finished && SecondsSince(last_report) >= 2) {
        double seconds = SecondsSince(last_report);
        fmt::print("  t={:5.1f} s  {}  received {:>9}  inserted {:>9}  bytes {:>5.1f}%  ({}); load {}\n",
                   SecondsSince(start), v1::JobState_Name(job.state()), job.counts().received(),
                   job.counts().inserted(), job.bytes_total() > 0 ? 100.0 * job.bytes_done() / job.bytes_total() : 0.0,
                   FormatRate((job.counts().received() - last_received) / seconds, "rows/s"), LoadAverage());
        std::fflush(stdout);
        last_report = std::chrono::steady_clock::now();
        last_received = job.counts().received();
      }
    }
    if (!finished) ctx.TryCancel();
    grpc::Status status = updates->Finish();
    if (!finished) {
      return absl::InternalError(fmt::format("WatchJob ended before the job did: {}", status.error_message()));
    }
  }
  figures->job = job;
  if (job.started_at_micros() > 0 && job.finished_at_micros() > 0) {
    figures->job_run_s = (job.finished_at_micros() - job.started_at_micros()) / 1e6;
  }
  if (job.created_at_micros() > 0 && job.started_at_micros() > 0) {
    figures->job_queue_s = (job.started_at_micros() - job.created_at_micros()) / 1e6;
  }
  fmt::print(
      "job {} {}: {:.2f} s end to end (job run {:.2f} s, queued {:.3f} s; finished {:.2f} s after the first "
      "upload byte by its own clock)\n",
      job.id(), v1::JobState_Name(job.state()), figures->end_to_end_s, figures->job_run_s, figures->job_queue_s,
      (job.finished_at_micros() - start_wall_micros) / 1e6);
  fmt::print("counts: {}\n", job.counts().ShortDebugString());
  if (!job.error().empty()) fmt::print("job error: {}\n", job.error());
  auto importer_cpu = CpuSeconds((*importer)->pid());
  auto store_cpu = CpuSeconds((*store)->pid());
  fmt::print("CPU used (user + system, whole life of the process): import-processor {:.2f} s, contact-store {:.2f} s\n",
             importer_cpu.value_or(-1), store_cpu.value_or(-1));
  if (auto rss = PeakRssKib((*importer)->pid())) figures->import_rss_kib = *rss;
  if (auto rss = PeakRssKib((*store)->pid())) figures->store_rss_kib = *rss;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(30));
    v1::Tenant tenant;
    if (store_stub->GetTenant(&ctx, v1::GetTenantRequest(), &tenant).ok()) {
      figures->stored_contacts = tenant.contact_count();
    }
  }
  fmt::print("contact-store holds {} contacts; peak RSS import-processor {} MiB, contact-store {} MiB\n",
             figures->stored_contacts, figures->import_rss_kib / 1024, figures->store_rss_kib / 1024);
  std::fflush(stdout);
  (void)(*importer)->Terminate();
  (void)(*store)->Terminate();
  return absl::OkStatus();
}

absl::Status MeasurePostgres(const std::string& csv, Figures* figures) {
  auto pg = Postgres::Start();
  if (!pg.ok()) return pg.status();
  if (auto schema = CreatePostgresSchema(**pg); !schema.ok()) return schema;
  auto loaded = LoadPostgres(**pg, csv);
  if (!loaded.ok()) return loaded.status();
  figures->pg_copy_s = loaded->first;
  figures->pg_insert_s = loaded->second;
  fmt::print("PostgreSQL: COPY {:.2f} s + INSERT ... ON CONFLICT {:.2f} s; load {}\n", loaded->first, loaded->second,
             LoadAverage());
  std::fflush(stdout);
  return absl::OkStatus();
}

double PgSeconds(const Figures& f) { return f.pg_insert_s > 0 ? f.pg_copy_s + f.pg_insert_s : -1; }

// The pairs' figures, one line each (for --repeat above 1).
void PrintPairs(const Options& options, const std::vector<Figures>& runs) {
  fmt::print("\n{} pairs, in the order measured (ours end to end / PostgreSQL's load):\n", runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    const Figures& f = runs[i];
    const double pg_s = PgSeconds(f);
    fmt::print("  pair {}: {:.2f} s / {} = {} ({}; job run {:.2f} s, upload {:.2f} s)\n", i + 1, f.end_to_end_s,
               pg_s > 0 ? fmt::format("{:.2f} s", pg_s) : "-",
               pg_s > 0 && f.end_to_end_s > 0 ? FormatRatio(pg_s / f.end_to_end_s) : "-",
               FormatRate(options.rows / f.end_to_end_s, "rows/s"), f.job_run_s, f.upload_s);
  }
}

// The table: medians over the runs (a single run's figures for one), peak RSS the highest of them.
void PrintTable(const Options& options, const std::vector<Figures>& runs) {
  std::vector<double> ours_s, pg_s, ratios, upload_s, job_run_s, pg_copy_s, pg_insert_s;
  uint64_t import_rss_kib = 0, store_rss_kib = 0, stored_min = UINT64_MAX;
  bool all_completed = true, all_ratios_met = true;
  for (const Figures& f : runs) {
    ours_s.push_back(f.end_to_end_s);
    upload_s.push_back(f.upload_s);
    job_run_s.push_back(f.job_run_s);
    import_rss_kib = std::max(import_rss_kib, f.import_rss_kib);
    store_rss_kib = std::max(store_rss_kib, f.store_rss_kib);
    stored_min = std::min(stored_min, f.stored_contacts);
    const bool completed = f.job.state() == v1::COMPLETED;
    all_completed = all_completed && completed;
    if (PgSeconds(f) > 0) {
      pg_s.push_back(PgSeconds(f));
      pg_copy_s.push_back(f.pg_copy_s);
      pg_insert_s.push_back(f.pg_insert_s);
      const double ratio = PgSeconds(f) / f.end_to_end_s;
      ratios.push_back(ratio);
      all_ratios_met = all_ratios_met && completed && ratio >= 10;
    }
  }
  const bool several = runs.size() > 1;
  ResultTable table(fmt::format("import-processor, {} rows x 10 columns ({:.1f} MB CSV){}", options.rows,
                                runs.front().file_bytes / 1e6,
                                several ? fmt::format(", medians of {} pairs", runs.size()) : ""));
  const double seconds = Median(ours_s);
  const bool pg = !pg_s.empty();
  const double pg_seconds = pg ? Median(pg_s) : -1;
  const double ratio = pg ? Median(ratios) : -1;
  if (seconds > 0) {
    table.Add({"end to end (upload + import)", fmt::format("{:.2f} s", seconds),
               pg ? fmt::format("{:.2f} s", pg_seconds) : "-", pg ? FormatRatio(ratio) : "-", "-", "-"});
    table.Add({"rows/s end to end", FormatRate(options.rows / seconds, "rows/s"),
               pg ? FormatRate(options.rows / pg_seconds, "rows/s") : "-", pg ? FormatRatio(ratio) : "-",
               several ? ">= 10x PostgreSQL, every pair" : ">= 10x PostgreSQL", pg ? YesNo(all_ratios_met) : "?"});
    table.Add({"rows/s end to end (aim)", FormatRate(options.rows / seconds, "rows/s"), "-", "-", "500,000 rows/s",
               YesNo(all_completed && options.rows / seconds >= 500000)});
  }
  table.Add({"import-processor peak RSS", fmt::format("{} MiB", import_rss_kib / 1024), "-", "-", "< 256 MiB",
             YesNo(import_rss_kib > 0 && import_rss_kib < 256 * 1024)});
  table.Add({"contact-store peak RSS", fmt::format("{} MiB", store_rss_kib / 1024), "-", "-", "-", "-"});
  table.Print();
  fmt::print("jobs {}, at least {} of {} rows stored; phases: upload {:.2f} s, job run {:.2f} s{}\n",
             all_completed ? "all COMPLETED" : "NOT all completed", stored_min, options.rows, Median(upload_s),
             Median(job_run_s), several ? " (medians)" : "");
  if (pg) {
    fmt::print("PostgreSQL: COPY {:.2f} s + INSERT ... ON CONFLICT {:.2f} s{}\n", Median(pg_copy_s),
               Median(pg_insert_s), several ? " (medians)" : "");
  }
  if (several && pg) {
    fmt::print("pairs' ratios: lowest {}, highest {}\n", FormatRatio(*std::min_element(ratios.begin(), ratios.end())),
               FormatRatio(*std::max_element(ratios.begin(), ratios.end())));
  }
  fmt::print("load average at the end: {}\n", LoadAverage());
}

// --tls: the TLS runs' figures beside the plaintext runs' of the same pairs (medians). Ratios are
// TLS against plaintext with > 1 better for TLS (plaintext time / TLS time): 0.80x = TLS 20% slower.
void PrintTlsTable(const Options& options, const std::vector<Figures>& runs) {
  std::vector<double> tls_s, plain_s, ratios, tls_upload_s, plain_upload_s, tls_job_run_s, plain_job_run_s;
  bool all_completed = true;
  for (const Figures& f : runs) {
    tls_s.push_back(f.tls_end_to_end_s);
    plain_s.push_back(f.end_to_end_s);
    ratios.push_back(f.end_to_end_s / f.tls_end_to_end_s);
    tls_upload_s.push_back(f.tls_upload_s);
    plain_upload_s.push_back(f.upload_s);
    tls_job_run_s.push_back(f.tls_job_run_s);
    plain_job_run_s.push_back(f.job_run_s);
    all_completed = all_completed && f.tls_completed;
  }
  const bool several = runs.size() > 1;
  ResultTable table(fmt::format("import-processor over mutual TLS, {} rows{}", options.rows,
                                several ? fmt::format(", medians of {} pairs", runs.size()) : ""),
                    "plaintext", "TLS");
  const auto seconds_line = [&](const std::string& name, const std::vector<double>& tls,
                                const std::vector<double>& plain) {
    table.Add({name, fmt::format("{:.2f} s", Median(tls)), fmt::format("{:.2f} s", Median(plain)),
               FormatRatio(Median(plain) / Median(tls)), "-", "-"});
  };
  table.Add({"end to end (upload + import)", fmt::format("{:.2f} s", Median(tls_s)),
             fmt::format("{:.2f} s", Median(plain_s)), FormatRatio(Median(ratios)), "-", "-"});
  table.Add({"rows/s end to end", FormatRate(options.rows / Median(tls_s), "rows/s"),
             FormatRate(options.rows / Median(plain_s), "rows/s"), FormatRatio(Median(ratios)), "-", "-"});
  seconds_line("upload", tls_upload_s, plain_upload_s);
  seconds_line("job run", tls_job_run_s, plain_job_run_s);
  table.Print();
  fmt::print(
      "TLS jobs {}. P-256 certificates, client certificates required (--tls_client_ca_file) on both services;\n"
      "import-processor calls contact-store over TLS. Ratio > 1 is better for TLS (0.80x = 20% slower){}.\n",
      all_completed ? "all COMPLETED" : "NOT all completed",
      several ? "; end to end: the median of the pairs' ratios" : "");
}

int Main(int argc, char** argv) {
  StartServiceBench();
  const std::optional<std::string> key_order_flag = ApplyKeyOrderFlag(argc, argv);
  if (!key_order_flag) return 2;
  const std::string& key_order = *key_order_flag;
  Options options{
      .rows = IntFlag(argc, argv, "rows", 1000000),
      .chunk_bytes = IntFlag(argc, argv, "chunk_bytes", 1 << 20),
      .skip_pg = BoolFlag(argc, argv, "skip_pg"),
      .lists = IntFlag(argc, argv, "lists", 0),
      .import_flags = StringFlag(argc, argv, "import_flags", ""),
      .store_flags = StringFlag(argc, argv, "store_flags", ""),
      .repeat = IntFlag(argc, argv, "repeat", 1),
      .tls = BoolFlag(argc, argv, "tls"),
  };
  ExitOnUnknownFlags(argc, argv);
  if (options.rows < 1 || options.chunk_bytes < 1 || options.chunk_bytes > (4 << 20) || options.lists < 0 ||
      options.lists > 100 || options.repeat < 1 || options.repeat > 9) {
    std::fprintf(stderr, "bad flags: need rows >= 1, 1 <= chunk_bytes <= 4 MiB, 0 <= lists <= 100, 1 <= repeat <= 9\n");
    return 2;
  }
  fmt::print(
      "contacts_bench_import: {} rows ({} keys), {} byte chunks, {} lists joined, {} pair(s); {} cores; load average "
      "{}\n",
      options.rows, key_order, options.chunk_bytes, options.lists, options.repeat, std::thread::hardware_concurrency(),
      LoadAverage());
  if (options.lists > 0 && !options.skip_pg) {
    fmt::print("note: the PostgreSQL side loads the same file without list memberships\n");
  }
  test::TempDir dir("contacts_bench_import");
  if (!dir.ok()) {
    std::fprintf(stderr, "cannot create a temp folder\n");
    return 1;
  }
  chmod(dir.path().c_str(), 0755);  // PostgreSQL's server reads the CSV from here
  const std::string csv = dir.path() + "/contacts.csv";
  auto size = WriteCsv(csv, options.rows);
  if (!size.ok()) {
    fmt::print(stderr, "{}\n", size.status().ToString());
    return 1;
  }
  std::optional<BenchTls> tls;
  if (options.tls) {
    absl::StatusOr<BenchTls> made = MakeBenchTls(dir.path() + "/tls");
    if (!made.ok()) {
      fmt::print(stderr, "TLS certificates: {}\n", made.status().ToString());
      return 1;
    }
    tls = *std::move(made);
  }
  std::vector<Figures> runs;
  for (int64_t pair = 1; pair <= options.repeat; ++pair) {
    if (options.repeat > 1) fmt::print("\n--- pair {} of {} ---\n", pair, options.repeat);
    Figures& figures = runs.emplace_back();
    figures.file_bytes = *size;
    if (absl::Status ours = MeasureOurs(options, csv, nullptr, &figures); !ours.ok()) {
      fmt::print(stderr, "import-processor part failed: {}\n", ours.ToString());
      return 1;
    }
    if (tls) {
      fmt::print("--- the same over mutual TLS ---\n");
      Figures over_tls;
      over_tls.file_bytes = *size;
      if (absl::Status ours = MeasureOurs(options, csv, &*tls, &over_tls); !ours.ok()) {
        fmt::print(stderr, "import-processor over TLS part failed: {}\n", ours.ToString());
        return 1;
      }
      figures.tls_upload_s = over_tls.upload_s;
      figures.tls_end_to_end_s = over_tls.end_to_end_s;
      figures.tls_job_run_s = over_tls.job_run_s;
      figures.tls_completed = over_tls.job.state() == v1::COMPLETED;
    }
    if (!options.skip_pg) {
      if (auto status = MeasurePostgres(csv, &figures); !status.ok()) {
        fmt::print(stderr, "PostgreSQL part failed: {}\n", status.ToString());
        return 1;
      }
    }
  }
  if (runs.size() > 1) PrintPairs(options, runs);
  PrintTable(options, runs);
  if (tls) PrintTlsTable(options, runs);
  return 0;
}

}  // namespace
}  // namespace contacts::bench

int main(int argc, char** argv) { return contacts::bench::Main(argc, argv); }
