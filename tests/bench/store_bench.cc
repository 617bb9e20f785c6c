// contact-store benchmark (issue "contact-store", acceptance 8). Prints figures beside PostgreSQL
// measured in the same run; never passes or fails.
//
//   contacts_bench_store [--rows 1000000] [--batch 25000] [--grpc_threads 2] [--get_calls 20000]
//                        [--paced_rate 5000] [--paced_seconds 10] [--paced_senders 2] [--skip_pg]
//                        [--skip_in_process] [--key_order scrambled|sequential]
//                        [--store_flags "--rocksdb_memory_mb=512"]  (extra flags for contact-store)
//                        [--tls]
//
// 1. Batch upsert, in-process: ContactRepository::BatchUpsert on a fresh store (time of the calls;
//    building the requests is not counted). Then the same rows again with first_name changed
//    (every row an UPDATE, as in a re-import of an updated file), beside PostgreSQL doing the same.
// 2. Batch upsert over gRPC: BatchUpsert RPCs from --grpc_threads clients against a real
//    contact-store process with a second fresh store (requests built before the clock starts).
// 3. GetContact by primary key over gRPC, one call in flight, random keys: p50 / p99.
// 4. GetContact paced open-loop at --paced_rate calls/s for --paced_seconds (--paced_senders
//    threads, each with its own connection; callback API; latency from the scheduled send time,
//    so a late sender counts), after grpc.health.v1.Health/Check paced the same way as the floor.
// --tls: parts 2 to 4 once more against a second contact-store serving mutual TLS (a throwaway CA
// made with the openssl CLI; the bench's client presents a client certificate), after the
// plaintext ones, and a second table of the TLS figures beside the plaintext ones of the same run.
// PostgreSQL: COPY of the same rows (CSV) into an UNLOGGED staging table, then INSERT ... SELECT ...
// ON CONFLICT (pk) DO UPDATE into contacts(pk, email, mobile, attrs jsonb) with btree indexes on
// email and mobile and a GIN index on attrs; point selects by pk with pgbench (prepared statement,
// TCP on 127.0.0.1), one client, and paced with -R; last, the same upsert of every row with
// first_name changed, as the in-process update pass.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include "grpc/health/v1/health.grpc.pb.h"

#include "services/contact_store/contact_repository.h"
#include "tests/bench/bench_util.h"

namespace contacts::bench {
namespace {

struct Options {
  int64_t rows;
  int64_t batch;
  int64_t grpc_threads;
  int64_t get_calls;
  int64_t paced_rate;
  int64_t paced_seconds;
  int64_t paced_senders;
  bool skip_pg;
  bool skip_in_process;
  std::string store_flags;
  bool tls;
};

// Figures of one run; negative when not measured.
struct Figures {
  double in_process_rows_per_s = -1;
  double in_process_wall_rows_per_s = -1;
  double in_process_update_rows_per_s = -1;
  double grpc_rows_per_s = -1;
  double get_p50 = -1, get_p99 = -1, get_mean = -1;
  double health_p50 = -1, health_p99 = -1;
  double in_process_get_p50 = -1, in_process_get_p99 = -1;
  double in_process_get_by_email_p50 = -1, in_process_get_by_email_p99 = -1;
  double paced_p50 = -1, paced_p99 = -1, paced_achieved = -1;
  double paced_health_p99 = -1;  // the same pacing of Health/Check
  uint64_t paced_errors = 0;
  double pg_copy_s = -1, pg_insert_s = -1;
  double pg_update_copy_s = -1, pg_update_s = -1;  // the same upsert of every row, first_name changed
  double pg_get_p50 = -1, pg_get_p99 = -1;
  double pg_paced_p50 = -1, pg_paced_p99 = -1;
};

// The update pass's change (of both sides): first_name, not indexed, so keys, email and mobile stay.
void ChangeFirstName(ContactRow& row) {
  constexpr int kFirstName = 3;
  row.values[kFirstName] = "Updated";
}

// Upserts rows [0, options.rows) in batches of options.batch as job `job_id` (each request changed
// by `edit` when given) and checks that every row comes back as `expected`. Returns the seconds
// spent in BatchUpsert calls (building the requests is not counted).
absl::StatusOr<double> TimedUpsertPass(store::ContactRepository& repo, const Options& options,
                                       const std::string& job_id, v1::RowOutcome expected,
                                       const std::function<void(ContactRow&)>& edit) {
  double call_seconds = 0;
  uint64_t sequence = 0;
  for (int64_t first = 0; first < options.rows; first += options.batch, ++sequence) {
    auto request = MakeBatch(first, std::min<int64_t>(options.batch, options.rows - first), sequence, job_id, edit);
    auto start = std::chrono::steady_clock::now();
    auto response = repo.BatchUpsert("default", request);
    call_seconds += SecondsSince(start);
    if (!response.ok()) return response.status();
    for (const auto& result : response->results()) {
      if (result.outcome() != expected) {
        return absl::InternalError(fmt::format("{}: row {} outcome {}: {} {}", job_id, result.row_number(),
                                               v1::RowOutcome_Name(result.outcome()), result.attribute(),
                                               result.reason()));
      }
    }
  }
  return call_seconds;
}

absl::Status InProcessUpsert(const Options& options, Figures* figures) {
  test::TempDir dir("contacts_bench_store_inproc");
  auto repository = store::ContactRepository::Open(dir.path(), store::StoreDbOptions{});
  if (!repository.ok()) return repository.status();
  auto& repo = **repository;
  if (auto tenant = repo.SetupTenant("default", SchemaTenantRequest()); !tenant.ok()) return tenant.status();
  for (const auto& request : SchemaAttributeRequests()) {
    if (auto created = repo.CreateAttribute("default", request); !created.ok()) return created.status();
  }
  auto wall_start = std::chrono::steady_clock::now();
  absl::StatusOr<double> inserted = TimedUpsertPass(repo, options, "bench", v1::INSERTED, {});
  if (!inserted.ok()) return inserted.status();
  double wall = SecondsSince(wall_start);
  figures->in_process_rows_per_s = options.rows / *inserted;
  figures->in_process_wall_rows_per_s = options.rows / wall;
  fmt::print("in-process upsert: {} rows, BatchUpsert calls {:.2f} s ({}), with request building {:.2f} s\n",
             options.rows, *inserted, FormatRate(figures->in_process_rows_per_s, "rows/s"), wall);
  std::fflush(stdout);
  // The same rows again with first_name (not indexed) changed: a re-import of an updated file,
  // where every row is an UPDATE and keys, email and mobile stay.
  absl::StatusOr<double> updated = TimedUpsertPass(repo, options, "bench-update", v1::UPDATED, ChangeFirstName);
  if (!updated.ok()) return updated.status();
  figures->in_process_update_rows_per_s = options.rows / *updated;
  fmt::print("in-process update of every contact (first_name changed): BatchUpsert calls {:.2f} s ({})\n", *updated,
             FormatRate(figures->in_process_update_rows_per_s, "rows/s"));
  std::fflush(stdout);
  // Point reads straight on the repository (no gRPC): what GetContact costs without the RPC, by
  // primary key and by email (the email lookup goes through the query columns, then the record).
  std::mt19937_64 random(42);
  std::uniform_int_distribution<uint64_t> pick(0, options.rows - 1);
  Latencies by_key, by_email;
  for (int64_t call = 0; call < options.get_calls; ++call) {
    const uint64_t row = pick(random);
    v1::GetContactRequest request;
    request.set_primary_key(CustomerId(row));
    auto start = std::chrono::steady_clock::now();
    auto contact = repo.GetContact("default", request);
    by_key.Add(SecondsSince(start) * 1e6);
    if (!contact.ok()) return contact.status();

    request.set_email(MakeRow(row).values[1]);
    start = std::chrono::steady_clock::now();
    contact = repo.GetContact("default", request);
    by_email.Add(SecondsSince(start) * 1e6);
    if (!contact.ok()) return contact.status();
    if (contact->primary_key() != CustomerId(row)) {
      return absl::InternalError(fmt::format("GetContact by email of row {} found {}", row, contact->primary_key()));
    }
  }
  figures->in_process_get_p50 = by_key.Percentile(50);
  figures->in_process_get_p99 = by_key.Percentile(99);
  figures->in_process_get_by_email_p50 = by_email.Percentile(50);
  figures->in_process_get_by_email_p99 = by_email.Percentile(99);
  fmt::print("in-process GetContact: {} calls, p50 {}, p99 {}, mean {}\n", by_key.size(),
             FormatMicros(figures->in_process_get_p50), FormatMicros(figures->in_process_get_p99),
             FormatMicros(by_key.Mean()));
  fmt::print("in-process GetContact by email: {} calls, p50 {}, p99 {}, mean {}\n", by_email.size(),
             FormatMicros(figures->in_process_get_by_email_p50), FormatMicros(figures->in_process_get_by_email_p99),
             FormatMicros(by_email.Mean()));
  std::fflush(stdout);
  return absl::OkStatus();
}

// grpc.health.v1.Health/Check on the same server, one call in flight: the cost of a unary call
// through this server's gRPC setup with (almost) no handler work, as a baseline for GetContact.
absl::Status HealthOneInFlight(std::shared_ptr<grpc::Channel> channel, int64_t calls, Figures* figures) {
  auto health = grpc::health::v1::Health::NewStub(channel);
  Latencies latencies;
  for (int64_t call = 0; call < calls; ++call) {
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto start = std::chrono::steady_clock::now();
    grpc::Status status = health->Check(&ctx, request, &response);
    if (!status.ok()) return absl::InternalError(fmt::format("Health/Check: {}", status.error_message()));
    latencies.Add(SecondsSince(start) * 1e6);
  }
  figures->health_p50 = latencies.Percentile(50);
  figures->health_p99 = latencies.Percentile(99);
  fmt::print("baseline Health/Check, 1 in flight: {} calls, p50 {}, p99 {}\n", latencies.size(),
             FormatMicros(figures->health_p50), FormatMicros(figures->health_p99));
  return absl::OkStatus();
}

absl::Status GetOneInFlight(v1::ContactStore::Stub* stub, const Options& options, Figures* figures) {
  std::mt19937_64 random(42);
  std::uniform_int_distribution<uint64_t> pick(0, options.rows - 1);
  Latencies latencies;
  latencies.Reserve(options.get_calls);
  const int64_t warmup = std::min<int64_t>(2000, options.get_calls / 10);
  for (int64_t call = 0; call < warmup + options.get_calls; ++call) {
    v1::GetContactRequest request;
    request.set_primary_key(CustomerId(pick(random)));
    v1::Contact contact;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto start = std::chrono::steady_clock::now();
    grpc::Status status = stub->GetContact(&ctx, request, &contact);
    double micros = SecondsSince(start) * 1e6;
    if (!status.ok()) return absl::InternalError(fmt::format("GetContact: {}", status.error_message()));
    if (call >= warmup) latencies.Add(micros);
  }
  figures->get_p50 = latencies.Percentile(50);
  figures->get_p99 = latencies.Percentile(99);
  figures->get_mean = latencies.Mean();
  fmt::print("GetContact, 1 in flight: {} calls, p50 {}, p90 {}, p99 {}, p99.9 {}, mean {}\n", latencies.size(),
             FormatMicros(figures->get_p50), FormatMicros(latencies.Percentile(90)), FormatMicros(figures->get_p99),
             FormatMicros(latencies.Percentile(99.9)), FormatMicros(figures->get_mean));
  std::fflush(stdout);
  return absl::OkStatus();
}

// One open-loop paced run: call k is due at start + k / rate and is sent by sender k % senders.
// Latency counts from the due time, so a sender that wakes late (the wake-up alone takes ~100 us
// on this VM: tests/bench/README.md, "Reading the figures") is counted, as a client would see it.
struct PacedRun {
  Latencies latencies;
  Latencies send_lateness;  // due time -> the call handed to gRPC
  double send_seconds = 0;
  uint64_t late = 0;  // sent > 1 ms after its due time
  uint64_t errors = 0;
};

// Starts call k asynchronously on sender `sender`'s connection and calls done(ok) once it ends.
using PacedIssue = std::function<void(int sender, int64_t k, std::function<void(bool ok)> done)>;

PacedRun RunPaced(int64_t rate, int64_t total, int senders, const PacedIssue& issue) {
  // One slot per call, written by its callback only: no lock on the hot path.
  std::vector<double> latency_micros(total, -1), lateness_micros(total, -1);
  std::atomic<uint64_t> errors{0}, late{0};
  std::atomic<int64_t> finished{0};
  const auto interval = std::chrono::nanoseconds(1000000000LL / rate);
  const auto start = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
  std::vector<std::thread> sender_threads;
  for (int s = 0; s < senders; ++s) {
    sender_threads.emplace_back([&, s] {
      for (int64_t k = s; k < total; k += senders) {
        const auto scheduled = start + k * interval;
        std::this_thread::sleep_until(scheduled);
        const auto sent = std::chrono::steady_clock::now();
        lateness_micros[k] = std::chrono::duration<double, std::micro>(sent - scheduled).count();
        if (sent - scheduled > std::chrono::milliseconds(1)) ++late;
        issue(s, k, [&, k, scheduled](bool ok) {
          if (ok) {
            latency_micros[k] =
                std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - scheduled).count();
          } else {
            ++errors;
          }
          ++finished;  // last: the waiter below may return (and end these variables) after it
        });
      }
    });
  }
  for (auto& sender : sender_threads) sender.join();
  PacedRun run;
  run.send_seconds = SecondsSince(start);
  // Every call ends, with an answer or at its deadline. Polled, so that no lock or condition
  // variable is touched by a callback after the waiter may have gone.
  while (finished.load() < total) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  run.latencies.Reserve(total);
  for (double micros : latency_micros) {
    if (micros >= 0) run.latencies.Add(micros);
  }
  for (double micros : lateness_micros) run.send_lateness.Add(micros);
  run.late = late;
  run.errors = errors;
  return run;
}

void PrintPaced(const std::string& what, const Options& options, int64_t total, PacedRun& run) {
  fmt::print(
      "{} paced at {}/s for {} s from {} senders: {} calls sent in {:.2f} s ({:.0f}/s; sends p50 {} / p99 {} after "
      "their due time, {} > 1 ms), {} errors, p50 {}, p90 {}, p99 {}, p99.9 {}\n",
      what, options.paced_rate, options.paced_seconds, options.paced_senders, total, run.send_seconds,
      total / run.send_seconds, FormatMicros(run.send_lateness.Percentile(50)),
      FormatMicros(run.send_lateness.Percentile(99)), run.late, run.errors, FormatMicros(run.latencies.Percentile(50)),
      FormatMicros(run.latencies.Percentile(90)), FormatMicros(run.latencies.Percentile(99)),
      FormatMicros(run.latencies.Percentile(99.9)));
  std::fflush(stdout);
}

// Two threads passing one byte back and forth through pipes, no gRPC: each round trip is two
// wake-ups of a blocked thread, as a unary call over loopback needs at least (the server's, then
// the client's). This VM's wake-ups have taken from ~10 to ~50 us in different phases, which moves
// every latency figure below; printed so a run can be read against its own floor.
void PrintHandOffFloor() {
  constexpr int kRoundTrips = 20000;
  int to_echo[2], from_echo[2];
  if (pipe(to_echo) != 0 || pipe(from_echo) != 0) {
    fmt::print("hand-off floor: pipe failed\n");
    return;
  }
  std::thread echo([&] {
    char byte;
    while (read(to_echo[0], &byte, 1) == 1 && byte != 0) {
      if (write(from_echo[1], &byte, 1) != 1) break;
    }
  });
  Latencies round_trips;
  round_trips.Reserve(kRoundTrips);
  char byte = 1;
  for (int i = 0; i < kRoundTrips; ++i) {
    auto start = std::chrono::steady_clock::now();
    if (write(to_echo[1], &byte, 1) != 1 || read(from_echo[0], &byte, 1) != 1) break;
    round_trips.Add(SecondsSince(start) * 1e6);
  }
  byte = 0;
  if (write(to_echo[1], &byte, 1) != 1) close(to_echo[1]);
  echo.join();
  for (int fd : {to_echo[0], to_echo[1], from_echo[0], from_echo[1]}) close(fd);
  fmt::print("hand-off floor: two threads ping-ponging a byte through pipes, round trip p50 {}, p99 {}\n",
             FormatMicros(round_trips.Percentile(50)), FormatMicros(round_trips.Percentile(99)));
  std::fflush(stdout);
}

// How late one thread wakes from sleeping to a due time every 200 us, with no calls: the floor
// under any paced figure on this machine.
void PrintWakeupLateness() {
  constexpr int kSleeps = 10000;
  Latencies lateness;
  lateness.Reserve(kSleeps);
  auto due = std::chrono::steady_clock::now();
  for (int i = 0; i < kSleeps; ++i) {
    due += std::chrono::microseconds(200);
    std::this_thread::sleep_until(due);
    lateness.Add(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - due).count());
  }
  fmt::print("wake-up floor: sleeping to a due time every 200 us, woke p50 {}, p99 {}, p99.9 {} late\n",
             FormatMicros(lateness.Percentile(50)), FormatMicros(lateness.Percentile(99)),
             FormatMicros(lateness.Percentile(99.9)));
  std::fflush(stdout);
}

// One paced call; deleted by its completion callback.
template <typename Request, typename Response>
struct PacedCall {
  grpc::ClientContext ctx;
  Request request;
  Response response;
};

// The completion callback of a paced call: frees the call, then reports to RunPaced.
template <typename Call>
std::function<void(grpc::Status)> EndPaced(Call* call, std::function<void(bool)> done) {
  return [call, done = std::move(done)](grpc::Status status) {
    delete call;
    done(status.ok());
  };
}

// Paced GetContact, after the same pacing of grpc.health.v1.Health/Check on the same connections:
// the floor any unary call meets on this machine at this rate (the sender's wake-up, both
// processes' share of the 2 cores, gRPC's own threads), measured in the same run.
absl::Status GetPaced(const std::string& address, const BenchTls* tls, const Options& options, Figures* figures) {
  // Each sender has its own channel (its own connection). Calls use the callback API: the answer
  // is handled on the gRPC thread that read it, with no hand-over to a completion-queue thread (a
  // wake-up per call on this 2-core machine, where the client's CPU is taken from the server's).
  const int senders = static_cast<int>(options.paced_senders);
  const int64_t total = options.paced_rate * options.paced_seconds;
  std::vector<std::string> keys;
  keys.reserve(total);
  std::mt19937_64 random(7);
  std::uniform_int_distribution<uint64_t> pick(0, options.rows - 1);
  for (int64_t k = 0; k < total; ++k) keys.push_back(CustomerId(pick(random)));
  std::vector<std::unique_ptr<v1::ContactStore::Stub>> stubs;
  std::vector<std::unique_ptr<grpc::health::v1::Health::Stub>> health_stubs;
  for (int s = 0; s < senders; ++s) {
    grpc::ChannelArguments args;
    args.SetInt("contacts.bench.sender", s);  // distinct arguments: a connection per sender
    auto channel = BenchChannel(address, tls, args);
    stubs.push_back(v1::ContactStore::NewStub(channel));
    health_stubs.push_back(grpc::health::v1::Health::NewStub(channel));
    // Connect before the clock starts.
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetContactRequest request;
    request.set_primary_key(keys[0]);
    v1::Contact contact;
    if (grpc::Status status = stubs.back()->GetContact(&ctx, request, &contact); !status.ok()) {
      return absl::InternalError(fmt::format("GetContact: {}", status.error_message()));
    }
  }
  PrintWakeupLateness();
  const auto deadline = [] { return std::chrono::system_clock::now() + std::chrono::seconds(10); };
  PacedRun health = RunPaced(options.paced_rate, total, senders, [&](int s, int64_t, std::function<void(bool)> done) {
    using Call = PacedCall<grpc::health::v1::HealthCheckRequest, grpc::health::v1::HealthCheckResponse>;
    auto* call = new Call;
    call->ctx.set_deadline(deadline());
    health_stubs[s]->async()->Check(&call->ctx, &call->request, &call->response, EndPaced(call, std::move(done)));
  });
  PrintPaced("baseline Health/Check", options, total, health);
  figures->paced_health_p99 = health.latencies.Percentile(99);
  PacedRun get = RunPaced(options.paced_rate, total, senders, [&](int s, int64_t k, std::function<void(bool)> done) {
    auto* call = new PacedCall<v1::GetContactRequest, v1::Contact>;
    call->request.set_primary_key(keys[k]);
    call->ctx.set_deadline(deadline());
    stubs[s]->async()->GetContact(&call->ctx, &call->request, &call->response, EndPaced(call, std::move(done)));
  });
  PrintPaced("GetContact", options, total, get);
  figures->paced_p50 = get.latencies.Percentile(50);
  figures->paced_p99 = get.latencies.Percentile(99);
  figures->paced_achieved = total / get.send_seconds;
  figures->paced_errors = get.errors;
  return absl::OkStatus();
}

// Parts 2 to 4 against a fresh contact-store, plaintext or (with `tls`) over mutual TLS.
absl::Status OverGrpc(const Options& options, const BenchTls* tls, Figures* figures) {
  auto process = StartService("contact-store", SplitFlags(options.store_flags), tls);
  if (!process.ok()) return process.status();
  const std::shared_ptr<grpc::Channel> channel =
      tls != nullptr ? BenchChannel((*process)->address(), tls) : (*process)->Channel();
  auto stub = v1::ContactStore::NewStub(channel);
  if (auto setup = SetupStoreSchema(stub.get()); !setup.ok()) return setup;
  fmt::print("building {} rows of BatchUpsert requests...\n", options.rows);
  std::fflush(stdout);
  auto cpu_before = CpuSeconds((*process)->pid());
  auto seconds = LoadOverGrpc(channel, options.rows, static_cast<int>(options.batch),
                              static_cast<int>(options.grpc_threads), /*prebuild=*/true);
  if (!seconds.ok()) return seconds.status();
  auto cpu_after = CpuSeconds((*process)->pid());
  if (cpu_before && cpu_after) {
    fmt::print("contact-store used {:.1f} CPU seconds for the load ({:.0f} us per row)\n", *cpu_after - *cpu_before,
               (*cpu_after - *cpu_before) * 1e6 / options.rows);
  }
  figures->grpc_rows_per_s = options.rows / *seconds;
  fmt::print("gRPC upsert: {} rows in {:.2f} s ({}), {} client threads, batches of {}; load {}\n", options.rows,
             *seconds, FormatRate(figures->grpc_rows_per_s, "rows/s"), options.grpc_threads, options.batch,
             LoadAverage());
  std::fflush(stdout);
  if (auto rss = PeakRssKib((*process)->pid())) fmt::print("contact-store peak RSS after load: {} MiB\n", *rss / 1024);
  fmt::print("waited {:.0f} s for contact-store to go quiet (compactions after the load)\n",
             WaitUntilQuiet((*process)->pid(), std::chrono::seconds(300)));
  std::fflush(stdout);
  auto cpu_report = [&](const char* what, std::optional<double> server_before, std::optional<double> client_before,
                        int64_t calls) {
    auto server_after = CpuSeconds((*process)->pid());
    auto client_after = CpuSeconds(getpid());
    if (server_before && server_after && client_before && client_after) {
      fmt::print("  CPU per call ({}): contact-store {:.0f} us, this client {:.0f} us\n", what,
                 (*server_after - *server_before) * 1e6 / calls, (*client_after - *client_before) * 1e6 / calls);
    }
  };
  PrintHandOffFloor();
  {
    auto server_before = CpuSeconds((*process)->pid());
    auto client_before = CpuSeconds(getpid());
    const int64_t calls = std::max<int64_t>(1000, options.get_calls / 4);
    if (auto got = HealthOneInFlight(channel, calls, figures); !got.ok()) return got;
    cpu_report("Health/Check", server_before, client_before, calls);
  }
  {
    auto server_before = CpuSeconds((*process)->pid());
    auto client_before = CpuSeconds(getpid());
    if (auto got = GetOneInFlight(stub.get(), options, figures); !got.ok()) return got;
    cpu_report("1 in flight", server_before, client_before,
               options.get_calls + std::min<int64_t>(2000, options.get_calls / 10));
  }
  {
    auto server_before = CpuSeconds((*process)->pid());
    auto client_before = CpuSeconds(getpid());
    if (auto paced = GetPaced((*process)->address(), tls, options, figures); !paced.ok()) return paced;
    cpu_report("paced, Health/Check and GetContact", server_before, client_before,
               2 * options.paced_rate * options.paced_seconds);
  }
  if (auto rss = PeakRssKib((*process)->pid())) fmt::print("contact-store peak RSS at the end: {} MiB\n", *rss / 1024);
  auto exit = (*process)->Terminate();
  if (!exit.ok()) fmt::print("contact-store stop: {}\n", exit.status().ToString());
  return absl::OkStatus();
}

absl::Status PostgresSide(const Options& options, Figures* figures) {
  auto pg = Postgres::Start();
  if (!pg.ok()) return pg.status();
  const std::string csv = (*pg)->work_dir() + "/contacts.csv";
  auto size = WriteCsv(csv, options.rows);
  if (!size.ok()) return size.status();
  if (auto schema = CreatePostgresSchema(**pg); !schema.ok()) return schema;
  auto loaded = LoadPostgres(**pg, csv);
  if (!loaded.ok()) return loaded.status();
  figures->pg_copy_s = loaded->first;
  figures->pg_insert_s = loaded->second;
  fmt::print("PostgreSQL: COPY {:.2f} s, INSERT ... ON CONFLICT {:.2f} s: {} end to end; load {}\n", loaded->first,
             loaded->second, FormatRate(options.rows / (loaded->first + loaded->second), "rows/s"), LoadAverage());
  std::fflush(stdout);
  if (auto analyzed = (*pg)->Sql("VACUUM ANALYZE contacts;"); !analyzed.ok()) return analyzed.status();
  const std::string script =
      PgbenchRandomKeyNumber(options.rows) +
      "SELECT pk, email, mobile, attrs FROM contacts WHERE pk = 'C' || lpad(:k::text, 10, '0');\n";
  auto one = (*pg)->Pgbench(script, {.seconds = 10});
  if (!one.ok()) return one.status();
  figures->pg_get_p50 = one->Percentile(50);
  figures->pg_get_p99 = one->Percentile(99);
  fmt::print("PostgreSQL point select, 1 client (pgbench, prepared, TCP): {} selects, p50 {}, p99 {}\n", one->size(),
             FormatMicros(figures->pg_get_p50), FormatMicros(figures->pg_get_p99));
  auto paced = (*pg)->Pgbench(script, {.seconds = static_cast<double>(options.paced_seconds),
                                       .rate = static_cast<double>(options.paced_rate),
                                       .clients = 4});
  if (!paced.ok()) return paced.status();
  figures->pg_paced_p50 = paced->Percentile(50);
  figures->pg_paced_p99 = paced->Percentile(99);
  fmt::print("PostgreSQL point select paced at {}/s (pgbench -R, 4 clients): {} selects, p50 {}, p99 {}\n",
             options.paced_rate, paced->size(), FormatMicros(figures->pg_paced_p50),
             FormatMicros(figures->pg_paced_p99));
  std::fflush(stdout);
  // Last, so that the point selects above ran on the table as loaded: the same upsert again with
  // every row's first_name changed (the in-process update pass's rows).
  if (auto written = WriteCsv(csv, options.rows, ChangeFirstName); !written.ok()) return written.status();
  auto updated = LoadPostgres(**pg, csv);
  if (!updated.ok()) return updated.status();
  figures->pg_update_copy_s = updated->first;
  figures->pg_update_s = updated->second;
  fmt::print(
      "PostgreSQL update of every row (first_name changed): COPY {:.2f} s, INSERT ... ON CONFLICT {:.2f} s: {}\n",
      updated->first, updated->second, FormatRate(options.rows / (updated->first + updated->second), "rows/s"));
  std::fflush(stdout);
  return absl::OkStatus();
}

void PrintTable(const Options& options, const Figures& f) {
  ResultTable table(fmt::format("contact-store, {} contacts x 10 attributes", options.rows));
  // A rate beside PostgreSQL's COPY + upsert of the same rows (copy_s, upsert_s; -1: not run),
  // against the 10x target when `targeted`.
  auto rate_line = [&](const std::string& name, double rate, double copy_s, double upsert_s, bool targeted) {
    if (rate < 0) return;
    const bool have_pg = upsert_s > 0;
    const double pg_rate = have_pg ? options.rows / (copy_s + upsert_s) : -1;
    const double ratio = have_pg ? rate / pg_rate : -1;
    table.Add({name, FormatRate(rate, "rows/s"), have_pg ? FormatRate(pg_rate, "rows/s") : "-", FormatRatio(ratio),
               targeted ? ">= 10x PostgreSQL" : "-",
               !targeted ? "-"
               : have_pg ? YesNo(ratio >= 10)
                         : "?"});
  };
  rate_line("batch upsert, in-process", f.in_process_rows_per_s, f.pg_copy_s, f.pg_insert_s, true);
  rate_line("batch upsert, gRPC", f.grpc_rows_per_s, f.pg_copy_s, f.pg_insert_s, true);
  rate_line("update of every contact, in-process", f.in_process_update_rows_per_s, f.pg_update_copy_s, f.pg_update_s,
            false);
  auto latency_line = [&](const std::string& name, double ours, double pg, double target_us) {
    if (ours < 0) return;
    table.Add({name, FormatMicros(ours), pg > 0 ? FormatMicros(pg) + " (ref)" : "-",
               pg > 0 ? FormatRatio(pg / ours) : "-", fmt::format("< {}", FormatMicros(target_us)),
               YesNo(ours < target_us)});
  };
  latency_line("GetContact p50, 1 in flight", f.get_p50, f.pg_get_p50, 150);
  latency_line("GetContact p99, 1 in flight", f.get_p99, f.pg_get_p99, 500);
  latency_line(fmt::format("GetContact p99 at {}/s", options.paced_rate), f.paced_p99, f.pg_paced_p99, 1000);
  if (f.in_process_get_p50 > 0) {
    table.Add({"in-process GetContact p50 / p99",
               fmt::format("{} / {}", FormatMicros(f.in_process_get_p50), FormatMicros(f.in_process_get_p99)), "-", "-",
               "-", "-"});
    table.Add({"in-process GetContact by email p50 / p99",
               fmt::format("{} / {}", FormatMicros(f.in_process_get_by_email_p50),
                           FormatMicros(f.in_process_get_by_email_p99)),
               "-", "-", "-", "-"});
  }
  if (f.health_p50 > 0) {
    table.Add({"baseline: Health/Check p50 / p99",
               fmt::format("{} / {}", FormatMicros(f.health_p50), FormatMicros(f.health_p99)), "-", "-", "-", "-"});
  }
  if (f.paced_health_p99 > 0) {
    table.Add({fmt::format("baseline: Health/Check p99 at {}/s", options.paced_rate), FormatMicros(f.paced_health_p99),
               "-", "-", "-", "-"});
  }
  table.Print();
  fmt::print("PostgreSQL upsert = COPY into UNLOGGED staging ({:.2f} s) + INSERT ... ON CONFLICT ({:.2f} s).\n",
             f.pg_copy_s, f.pg_insert_s);
  fmt::print("PostgreSQL latencies are pgbench (prepared statement over TCP, no gRPC/protobuf): a reference only.\n");
  fmt::print("load average at the end: {}\n", LoadAverage());
}

// The TLS run's figures beside the plaintext run's of the same bench run. Ratios are TLS against
// plaintext with > 1 better for TLS (rate / rate, plaintext time / TLS time): 0.80x = TLS 20% slower.
void PrintTlsTable(const Options& options, const Figures& plain, const Figures& tls) {
  ResultTable table(fmt::format("contact-store over mutual TLS, {} contacts x 10 attributes", options.rows),
                    "plaintext", "TLS");
  if (tls.grpc_rows_per_s > 0) {
    table.Add({"batch upsert, gRPC", FormatRate(tls.grpc_rows_per_s, "rows/s"),
               FormatRate(plain.grpc_rows_per_s, "rows/s"), FormatRatio(tls.grpc_rows_per_s / plain.grpc_rows_per_s),
               "-", "-"});
  }
  auto latency_line = [&](const std::string& name, double tls_micros, double plain_micros) {
    if (tls_micros <= 0 || plain_micros <= 0) return;
    table.Add(
        {name, FormatMicros(tls_micros), FormatMicros(plain_micros), FormatRatio(plain_micros / tls_micros), "-", "-"});
  };
  latency_line("GetContact p50, 1 in flight", tls.get_p50, plain.get_p50);
  latency_line("GetContact p99, 1 in flight", tls.get_p99, plain.get_p99);
  latency_line("Health/Check p50, 1 in flight", tls.health_p50, plain.health_p50);
  latency_line("Health/Check p99, 1 in flight", tls.health_p99, plain.health_p99);
  latency_line(fmt::format("GetContact p50 at {}/s", options.paced_rate), tls.paced_p50, plain.paced_p50);
  latency_line(fmt::format("GetContact p99 at {}/s", options.paced_rate), tls.paced_p99, plain.paced_p99);
  latency_line(fmt::format("Health/Check p99 at {}/s", options.paced_rate), tls.paced_health_p99,
               plain.paced_health_p99);
  table.Print();
  fmt::print(
      "TLS: P-256 certificates, client certificate required (--tls_client_ca_file). Ratio > 1 is better for TLS\n"
      "(0.80x = 20% slower). Connections are made before the clocks start: handshakes are not timed.\n");
}

int Main(int argc, char** argv) {
  StartServiceBench();
  const std::optional<std::string> key_order_flag = ApplyKeyOrderFlag(argc, argv);
  if (!key_order_flag) return 2;
  const std::string& key_order = *key_order_flag;
  Options options{
      .rows = IntFlag(argc, argv, "rows", 1000000),
      .batch = IntFlag(argc, argv, "batch", 25000),  // import-processor's batch
      .grpc_threads = IntFlag(argc, argv, "grpc_threads", 2),
      .get_calls = IntFlag(argc, argv, "get_calls", 20000),
      .paced_rate = IntFlag(argc, argv, "paced_rate", 5000),
      .paced_seconds = IntFlag(argc, argv, "paced_seconds", 10),
      .paced_senders = IntFlag(argc, argv, "paced_senders", 2),
      .skip_pg = BoolFlag(argc, argv, "skip_pg"),
      .skip_in_process = BoolFlag(argc, argv, "skip_in_process"),
      .store_flags = StringFlag(argc, argv, "store_flags", ""),
      .tls = BoolFlag(argc, argv, "tls"),
  };
  ExitOnUnknownFlags(argc, argv);
  if (options.rows < 1 || options.batch < 1 || options.batch > store::kMaxBatchRows || options.grpc_threads < 1 ||
      options.get_calls < 1 || options.paced_rate < 1 || options.paced_seconds < 1 || options.paced_senders < 1) {
    std::fprintf(stderr, "bad flags: need rows >= 1, 1 <= batch <= %d, threads, calls, rate, seconds >= 1\n",
                 store::kMaxBatchRows);
    return 2;
  }
  fmt::print("contacts_bench_store: {} rows ({} keys), batch {}, {} gRPC client threads; {} cores; load average {}\n",
             options.rows, key_order, options.batch, options.grpc_threads, std::thread::hardware_concurrency(),
             LoadAverage());
  std::fflush(stdout);
  Figures figures;
  if (!options.skip_in_process) {
    if (auto status = InProcessUpsert(options, &figures); !status.ok()) {
      fmt::print(stderr, "in-process upsert failed: {}\n", status.ToString());
      return 1;
    }
  }
  if (auto status = OverGrpc(options, nullptr, &figures); !status.ok()) {
    fmt::print(stderr, "gRPC part failed: {}\n", status.ToString());
    return 1;
  }
  Figures tls_figures;
  if (options.tls) {
    test::TempDir cert_dir("contacts_bench_store_tls");
    auto tls = MakeBenchTls(cert_dir.path());
    if (!tls.ok()) {
      fmt::print(stderr, "TLS certificates: {}\n", tls.status().ToString());
      return 1;
    }
    fmt::print("\n--- the same over mutual TLS ---\n");
    std::fflush(stdout);
    if (auto status = OverGrpc(options, &*tls, &tls_figures); !status.ok()) {
      fmt::print(stderr, "gRPC over TLS part failed: {}\n", status.ToString());
      return 1;
    }
  }
  if (!options.skip_pg) {
    if (auto status = PostgresSide(options, &figures); !status.ok()) {
      fmt::print(stderr, "PostgreSQL part failed: {}\n", status.ToString());
      return 1;
    }
  }
  PrintTable(options, figures);
  if (options.tls) PrintTlsTable(options, figures, tls_figures);
  return 0;
}

}  // namespace
}  // namespace contacts::bench

int main(int argc, char** argv) { return contacts::bench::Main(argc, argv); }
