// Test support for integration and end-to-end tests: start a real service binary on free ports
// with a fresh temporary data folder, wait until it is healthy, and stop, kill or restart it.
// Also helpers to ask server reflection what it serves, to GET /metrics, and a temp-folder RAII.
//
// Binaries are found in $CONTACTS_BIN_DIR (ctest sets it to <build>/bin). A test prints log() when
// it fails, so a broken start shows the service's own messages:
//
//   auto store = ServiceProcess::Start({.binary = "contact-store"});
//   ASSERT_TRUE(store.ok()) << store.status();
//   auto stub = contacts::v1::ContactStore::NewStub((*store)->Channel());
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <sys/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace contacts::test {

// A fresh folder under $TMPDIR (or /tmp), made with mkdtemp and removed with everything in it
// when destroyed unless keep() was called. path() is empty if creation failed (ok() false).
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "contacts_test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  void keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

// Polls `condition` until it returns true or `timeout` passes; returns whether it became true.
// The pause between polls grows from 1 ms to 50 ms.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

struct ServiceProcessOptions {
  // Binary name in $CONTACTS_BIN_DIR ("contact-store"), or a path containing '/'.
  std::string binary;
  // Extra flags. If they include --listen, --metrics_listen or --data_dir, those replace the
  // defaults (127.0.0.1:0, 127.0.0.1:0, <temp>/data).
  std::vector<std::string> flags;
  // Extra environment variables for the child, on top of this process's environment.
  std::map<std::string, std::string> env;
  // Keep the temp folder (data and log) after the test, e.g. to inspect a failure. Setting the
  // environment variable CONTACTS_KEEP_TEST_DIRS=1 keeps them for every process.
  bool keep_temp_dir = false;
  // How long Start() / Restart() wait for "listening on" and health SERVING.
  std::chrono::milliseconds start_timeout{30000};
  // Wait for grpc.health.v1 overall status SERVING before Start() returns.
  bool wait_for_health = true;
  // How Channel() (and so the health wait) connects: null for plaintext; TLS credentials for a
  // service started with --tls_cert_file.
  std::shared_ptr<grpc::ChannelCredentials> channel_credentials;
};

struct ExitInfo {
  int exit_code = -1;                    // when the process exited normally, else -1
  int signal = 0;                        // the signal that killed it, else 0
  std::chrono::milliseconds elapsed{0};  // from sending the signal to the process being reaped
  bool exited_cleanly() const { return signal == 0 && exit_code == 0; }
};

class ServiceProcess {
 public:
  // Starts the binary and waits until it is serving.
  // Errors: NOT_FOUND (no binary), INTERNAL (spawn failed), FAILED_PRECONDITION (the process exited
  // during start; the message ends with its log), DEADLINE_EXCEEDED (no "listening on" line or no
  // SERVING in time; the process is killed and the message ends with its log).
  static absl::StatusOr<std::unique_ptr<ServiceProcess>> Start(ServiceProcessOptions options);

  // Kills the process if it still runs, then removes the temp folder unless asked to keep it.
  // With the environment variable CONTACTS_TEST_TERMINATE set, stops it with SIGTERM first (as
  // Terminate, up to 30 s), so that a coverage build's process writes its counters at exit.
  ~ServiceProcess();

  // "HOST:PORT" of the gRPC server (as logged; a wildcard host becomes loopback) and
  // "127.0.0.1:PORT" of /metrics ("" if the service logged no metrics line).
  std::string address() const;
  std::string metrics_address() const;
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // The folder passed as --data_dir (kept across restarts) and the temp folder holding it and the log.
  const std::string& data_dir() const { return data_dir_; }
  const std::string& temp_dir() const { return temp_dir_.path(); }
  const std::string& log_path() const { return log_path_; }

  // A channel to address() with options.channel_credentials, made once per run (a new one after
  // Restart()).
  std::shared_ptr<grpc::Channel> Channel();

  // SIGTERM, then waits up to `timeout` for the exit; if it does not exit in time, SIGKILLs it
  // and returns DEADLINE_EXCEEDED. FAILED_PRECONDITION if not running.
  absl::StatusOr<ExitInfo> Terminate(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGKILL and reap. FAILED_PRECONDITION if not running.
  absl::StatusOr<ExitInfo> Kill();
  // Sends any signal without waiting (e.g. SIGINT, SIGSTOP).
  absl::Status Signal(int signo);
  // Waits up to `timeout` for the process to exit by itself.
  absl::StatusOr<ExitInfo> WaitForExit(std::chrono::milliseconds timeout);

  // Stops the process if it runs (SIGTERM, then SIGKILL after the timeout) and starts it again on
  // the same data_dir with the same flags. With same_port, it listens on the port it had, so
  // other processes configured with address() can reach it again.
  absl::Status Restart(bool same_port = false);

  // Everything the process wrote to stdout / stderr over all runs (restarts are marked).
  std::string log() const;

 private:
  explicit ServiceProcess(ServiceProcessOptions options);
  absl::Status Spawn(bool same_port);
  absl::Status AwaitReady();
  // The exit of the process if it has ended (reaped: pid_ becomes -1), without waiting.
  std::optional<ExitInfo> ReapIfExited();
  absl::StatusOr<ExitInfo> Reap(std::chrono::steady_clock::time_point since, std::chrono::milliseconds timeout);
  std::string WithLog(std::string_view message) const;

  ServiceProcessOptions options_;
  std::string binary_path_;
  TempDir temp_dir_;
  std::string data_dir_;
  std::string log_path_;
  size_t log_offset_ = 0;  // where the current run's output starts in the log
  pid_t pid_ = -1;
  std::string host_ = "127.0.0.1";
  int port_ = 0;
  int metrics_port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

// The three services on loopback, each with its own temp folder.
struct Suite {
  std::unique_ptr<ServiceProcess> store;
  std::unique_ptr<ServiceProcess> importer;
  std::unique_ptr<ServiceProcess> audience;
};

// Starts contact-store, then import-processor and audience-query pointed at it, each with `flags`
// as well. Errors: ServiceProcess::Start's, for the first service that does not start.
absl::StatusOr<Suite> StartSuite(const std::vector<std::string>& flags = {});

// Asks server reflection for the services it lists. Empty on error.
std::vector<std::string> ReflectionListServices(std::shared_ptr<grpc::Channel> channel);

// Asks server reflection for the file defining `symbol` (e.g. "grpc.health.v1.Health") and returns
// that file's name (e.g. "grpc/health/v1/health.proto").
// Errors: the reflection error (NOT_FOUND when it does not know the symbol), or the RPC's error.
absl::StatusOr<std::string> ReflectionFileContainingSymbol(std::shared_ptr<grpc::Channel> channel,
                                                           const std::string& symbol);

// grpc.health.v1.Health/Check for `service` ("" = overall): true when SERVING.
// Errors: the RPC's status (NOT_FOUND for an unknown service name).
absl::StatusOr<bool> HealthServing(std::shared_ptr<grpc::Channel> channel, const std::string& service = "",
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5));

// A plain HTTP/1.0 GET over a socket (for /metrics); returns the body when the status is 200.
// Errors: UNAVAILABLE (connect / read), INTERNAL (malformed reply), the HTTP status otherwise.
absl::StatusOr<std::string> HttpGet(const std::string& host_port, const std::string& path,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(5));

// The value of the Prometheus sample `name` in a text exposition whose labels include all of
// `labels` (others may be present); summed if several series match. nullopt if none matches.
std::optional<double> MetricValue(std::string_view exposition, std::string_view name,
                                  const std::map<std::string, std::string>& labels = {});

// Runs `command` with /bin/sh and returns its exit status (-1 when it could not start or did not
// exit normally), with its standard output in *output (redirect stderr in `command` to keep it).
int RunShell(const std::string& command, std::string* output);

// "$CONTACTS_BIN_DIR/<binary>" ("./<binary>" when the variable is unset), for commands run with
// RunShell.
std::string BinaryPath(std::string_view binary);

}  // namespace contacts::test
