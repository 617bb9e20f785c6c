#include "common/auth/api_keys_reloader.h"

#include <utility>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

namespace contacts {

ApiKeysReloader::ApiKeysReloader(Authenticator* auth, std::string path, Options options, prometheus::Registry* metrics)
    : auth_(auth), path_(std::move(path)), options_(options) {
  if (absl::StatusOr<std::string> text = ReadApiKeysFile(path_); text.ok()) text_in_use_ = *std::move(text);
  if (metrics != nullptr) {
    auto& reloads = prometheus::BuildCounter()
                        .Name("api_keys_reloads_total")
                        .Help("Changes of the API keys file: applied, refused as malformed; and failed reads")
                        .Register(*metrics);
    applied_ = &reloads.Add({{"result", "applied"}});
    rejected_ = &reloads.Add({{"result", "rejected"}});
    unreadable_ = &reloads.Add({{"result", "unreadable"}});
    file_in_use_ = &prometheus::BuildGauge()
                        .Name("api_keys_file_in_use")
                        .Help(
                            "1 while the API keys file's content is the one in use; 0 while it is unreadable or "
                            "refused")
                        .Register(*metrics)
                        .Add({});
    file_in_use_->Set(1);
    loaded_ = &prometheus::BuildGauge().Name("api_keys_loaded").Help("API keys in use").Register(*metrics).Add({});
    loaded_->Set(static_cast<double>(auth_->key_count()));
  }
}

ApiKeysReloader::~ApiKeysReloader() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ApiKeysReloader::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ApiKeysReloader::Run() {
  absl::Time next = absl::Now() + options_.interval;
  absl::MutexLock lock(&mu_);
  while (true) {
    mu_.AwaitWithDeadline(absl::Condition(&stopping_), next);  // woken early only by the destructor
    if (stopping_) return;
    mu_.Unlock();
    next = Check(absl::Now());
    mu_.Lock();
  }
}

absl::Time ApiKeysReloader::Check(absl::Time now) {
  absl::StatusOr<std::string> text = ReadApiKeysFile(path_);
  if (!text.ok()) {
    Report(text.status(), unreadable_);
    return now + options_.interval;
  }
  if (*text == text_in_use_) {
    // Back to the content in use (a bad edit undone): nothing to apply or report.
    pending_text_.reset();
    rejected_text_.reset();
    last_failure_.clear();
    if (file_in_use_ != nullptr) file_in_use_->Set(1);
    return now + options_.interval;
  }
  if (*text == rejected_text_) return now + options_.interval;
  if (pending_text_ != *text) {
    pending_text_ = *std::move(text);
    pending_since_ = now;
    return now + options_.settle;
  }
  if (now - pending_since_ < options_.settle) return pending_since_ + options_.settle;
  pending_text_.reset();
  const size_t keys_before = auth_->key_count();
  if (absl::Status replaced = auth_->ReplaceKeys(*text, path_); !replaced.ok()) {
    rejected_text_ = *std::move(text);
    Report(absl::Status(replaced.code(), std::string(replaced.message()) + "; the keys in use are unchanged"),
           rejected_);
    return now + options_.interval;
  }
  text_in_use_ = *std::move(text);
  rejected_text_.reset();
  last_failure_.clear();
  spdlog::info("API keys file \"{}\" changed: {} keys in use (were {})", path_, auth_->key_count(), keys_before);
  if (applied_ != nullptr) {
    applied_->Increment();
    file_in_use_->Set(1);
    loaded_->Set(static_cast<double>(auth_->key_count()));
  }
  return now + options_.interval;
}

void ApiKeysReloader::Report(const absl::Status& failure, prometheus::Counter* counter) {
  if (counter != nullptr) {
    counter->Increment();
    file_in_use_->Set(0);
  }
  std::string message(failure.message());
  if (message == last_failure_) return;
  spdlog::error("{}", message);
  last_failure_ = std::move(message);
}

}  // namespace contacts
