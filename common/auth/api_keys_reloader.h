// ApiKeysReloader: follows the API keys file while the service runs, so that keys are added,
// rotated and revoked without a restart (in Kubernetes the kubelet rewrites a mounted Secret's
// files in place, about a minute after the Secret changes).
//
// Every `interval` it reads the file. New content is applied once it has read the same twice,
// `settle` apart, so that a file being written (an editor saving in place, `cat > file`) is never
// applied half-written, which could revoke the keys not yet written. Content that does not parse,
// or a file that cannot be read, leaves the keys in use as they were: it is logged once (error)
// and shown by the metrics below until the file is fixed. Nothing is logged while the file is
// unchanged.
//
// Metrics (when given a registry):
//   api_keys_reloads_total{result="applied"|"rejected"|"unreadable"}: changed contents applied,
//     changed contents refused as malformed (each distinct content once), and failed reads;
//   api_keys_file_in_use: 1 while the file's content is the one in use, 0 while the file on disk
//     is unreadable or refused (alert on it: a key added to the file does not work yet);
//   api_keys_loaded: the number of keys in use.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/auth/auth.h"

namespace prometheus {
class Counter;
class Gauge;
class Registry;
}  // namespace prometheus

namespace contacts {

class ApiKeysReloader {
 public:
  struct Options {
    absl::Duration interval = absl::Seconds(10);
    absl::Duration settle = absl::Seconds(1);
  };

  // `auth` (enabled, loaded from `path`) must outlive the reloader. The file as read now is taken
  // as the content in use (the caller loaded it a moment ago); a difference is applied by the
  // first Check. `metrics` may be null.
  ApiKeysReloader(Authenticator* auth, std::string path, Options options, prometheus::Registry* metrics);
  // Stops the thread started by Start(), waiting for a check in progress.
  ~ApiKeysReloader();
  ApiKeysReloader(const ApiKeysReloader&) = delete;
  ApiKeysReloader& operator=(const ApiKeysReloader&) = delete;

  // Runs Check on a thread of its own until destruction.
  void Start();

  // One look at the file at time `now`; returns when the next look is due: `now + interval`, or
  // sooner while a new content waits to be read again `settle` later.
  absl::Time Check(absl::Time now);

 private:
  void Run();
  void Report(const absl::Status& failure, prometheus::Counter* counter);

  Authenticator* const auth_;
  const std::string path_;
  const Options options_;

  // Check's state: only Check touches it (one thread, or the test's).
  std::string text_in_use_;
  std::optional<std::string> pending_text_;  // new content read once, waiting for `settle`
  absl::Time pending_since_;
  std::optional<std::string> rejected_text_;  // refused content: not parsed again until it changes
  std::string last_failure_;                  // the failure logged last, so that it is logged once

  prometheus::Counter* applied_ = nullptr;
  prometheus::Counter* rejected_ = nullptr;
  prometheus::Counter* unreadable_ = nullptr;
  prometheus::Gauge* file_in_use_ = nullptr;
  prometheus::Gauge* loaded_ = nullptr;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace contacts
