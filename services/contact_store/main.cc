// contact-store: the data service. See services/contact_store/README.md.
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include "common/auth/auth.h"
#include "common/config/flags.h"
#include "common/logging/logging.h"
#include "common/server/server_runner.h"
#include "common/server/service_main.h"
#include "services/contact_store/contact_repository.h"
#include "services/contact_store/contact_store_service.h"

int main(int argc, char** argv) {
  using namespace contacts;  // NOLINT
  FlagSet flags("contact-store");
  CommonFlags common = RegisterCommonFlags(flags, "127.0.0.1:50051", "127.0.0.1:9464", "./data/contact-store");
  bool* sync_writes = flags.Bool("sync_writes", false,
                                 "fsync the write-ahead log on every write (survives power loss, slower); "
                                 "off, a process crash still loses nothing acknowledged");
  // 0 would turn off RocksDB's memtable limit (a WriteBufferManager of size 0 is unbounded); 1 TiB
  // keeps the byte count far from overflowing.
  int64_t* rocksdb_memory_mb =
      flags.Int("rocksdb_memory_mb", 128, "RocksDB memory budget in MiB: block cache plus memtables",
                {.min = 1, .max = int64_t{1} << 20});
  int64_t* export_threads =
      flags.Int("export_threads", 2, "threads that read and render one large export; rows stay in key order",
                {.min = 1, .max = 16});
  int64_t* idle_compaction_ms =
      flags.Int("idle_compaction_ms", 2000,
                "after a burst of writes (4 MiB or more) and this many ms without one, flush the memtables and "
                "compact RocksDB's level 0, so scans and reads merge fewer sorted runs; 0 turns it off",
                {.min = 0});
  int64_t* ingest_min_entries =
      flags.Int("ingest_min_entries", 5000,
                "a batch write of at least this many RocksDB entries (about two per new contact) is written as "
                "SST files and ingested, skipping the write-ahead log and the memtables; 0 turns it off",
                {.min = 0});
  int64_t* min_free_disk_mb =
      flags.Int("min_free_disk_mb", 256,
                "writes are refused (RESOURCE_EXHAUSTED) while less than this many MiB are free on the data "
                "volume, so RocksDB never meets a full disk; reads go on; 0 turns it off",
                {.min = 0, .max = int64_t{1} << 30});
  absl::StatusOr<Authenticator> started = StartService("contact-store", flags, common, argc, argv);
  if (!started.ok()) return StartFailureExitCode("contact-store", started.status());
  Authenticator auth = *std::move(started);
  absl::StatusOr<std::unique_ptr<CertificateMonitor>> staged = StageTlsFiles(common, nullptr);
  if (!staged.ok()) return StartFailureExitCode("contact-store", staged.status());
  const std::unique_ptr<CertificateMonitor> tls_files = *std::move(staged);

  store::StoreDbOptions db_options;
  db_options.sync_writes = *sync_writes;
  db_options.memory_budget_bytes = static_cast<size_t>(*rocksdb_memory_mb) << 20;
  db_options.idle_compaction.idle_after = absl::Milliseconds(*idle_compaction_ms);
  db_options.ingest_min_entries = static_cast<size_t>(*ingest_min_entries);
  db_options.min_free_disk_bytes = static_cast<uint64_t>(*min_free_disk_mb) << 20;
  auto repository = store::ContactRepository::Open(*common.data_dir, db_options,
                                                   {.export_threads = static_cast<int>(*export_threads)});
  if (!repository.ok()) {
    spdlog::critical("cannot open the store: {}", repository.status().ToString());
    return kRuntimeFailureExitCode;
  }
  spdlog::info("store open at {} with {} contacts", *common.data_dir, (*repository)->TotalContacts());

  store::ContactStoreService service(repository->get(), &auth, *common.deadline_cap_ms);
  ServerRunner runner(MakeServerOptions("contact-store", common, *tls_files));
  runner.AddService(&service);
  auto& contacts_gauge = prometheus::BuildGauge()
                             .Name("contacts_stored")
                             .Help("Contacts stored, all tenants")
                             .Register(runner.metrics())
                             .Add({});
  const std::unique_ptr<ApiKeysReloader> keys_reloader = FollowApiKeysFile(&auth, common, runner.metrics());
  const TlsMonitoring tls_monitoring = MonitorTlsFiles(*tls_files, runner.metrics());  // ends before runner
  if (absl::Status serving = runner.Start(); !serving.ok()) {
    spdlog::critical("{}", serving.ToString());
    return kRuntimeFailureExitCode;
  }
  // The gauge follows the store every few seconds until shutdown.
  std::mutex gauge_mu;
  std::condition_variable gauge_cv;
  bool stopping = false;
  std::thread gauge_updater([&] {
    std::unique_lock lock(gauge_mu);
    do {
      contacts_gauge.Set(static_cast<double>((*repository)->TotalContacts()));
    } while (!gauge_cv.wait_for(lock, std::chrono::seconds(5), [&] { return stopping; }));
  });
  runner.WaitForShutdownSignal();
  {
    std::lock_guard lock(gauge_mu);
    stopping = true;
  }
  gauge_cv.notify_all();
  gauge_updater.join();
  spdlog::info("contact-store stopped");
  return 0;
}
