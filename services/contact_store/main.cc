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
#include "services/contact_store/contact_repository.h"
#include "services/contact_store/contact_store_service.h"

int main(int argc, char** argv) {
  using namespace contacts;  // NOLINT
  FlagSet flags("contact-store");
  CommonFlags common = RegisterCommonFlags(flags, "127.0.0.1:50051", "127.0.0.1:9464", "./data/contact-store");
  bool* sync_writes = flags.Bool("sync_writes", false,
                                 "fsync the write-ahead log on every write (survives power loss, slower); "
                                 "off, a process crash still loses nothing acknowledged");
  int64_t* rocksdb_memory_mb =
      flags.Int("rocksdb_memory_mb", 128, "RocksDB memory budget in MiB: block cache plus memtables");
  absl::Status parsed = flags.Parse(argc, argv);
  if (IsHelpRequested(parsed)) return 0;
  if (!parsed.ok()) {
    std::fprintf(stderr, "contact-store: %s\n", std::string(parsed.message()).c_str());
    return 2;
  }
  if (absl::Status logging = InitLogging(*common.log_level, "contact-store"); !logging.ok()) {
    std::fprintf(stderr, "contact-store: %s\n", std::string(logging.message()).c_str());
    return 2;
  }
  spdlog::info("contact-store starting with flags:\n{}", flags.Describe());

  Authenticator auth = Authenticator::Disabled();
  if (!common.api_keys_file->empty()) {
    auto loaded = Authenticator::FromFile(*common.api_keys_file);
    if (!loaded.ok()) {
      spdlog::critical("api keys: {}", loaded.status().ToString());
      return 2;
    }
    auth = *std::move(loaded);
  }

  store::StoreDbOptions db_options;
  db_options.sync_writes = *sync_writes;
  db_options.memory_budget_bytes = static_cast<size_t>(*rocksdb_memory_mb) << 20;
  auto repository = store::ContactRepository::Open(*common.data_dir, db_options);
  if (!repository.ok()) {
    spdlog::critical("cannot open the store: {}", repository.status().ToString());
    return 1;
  }
  spdlog::info("store open at {} with {} contacts", *common.data_dir, (*repository)->TotalContacts());

  store::ContactStoreService service(repository->get(), &auth, *common.deadline_cap_ms);
  ServerRunner runner(ServerOptions{.service_name = "contact-store",
                                    .listen = *common.listen,
                                    .metrics_listen = *common.metrics_listen,
                                    .grace_period_ms = *common.grace_period_ms,
                                    .max_message_bytes = *common.max_message_bytes,
                                    .deadline_cap_ms = *common.deadline_cap_ms});
  runner.AddService(&service);
  auto& contacts_gauge = prometheus::BuildGauge()
                             .Name("contacts_stored")
                             .Help("Contacts stored, all tenants")
                             .Register(runner.metrics())
                             .Add({});
  if (absl::Status started = runner.Start(); !started.ok()) {
    spdlog::critical("{}", started.ToString());
    return 1;
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
