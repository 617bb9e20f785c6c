// Test doubles for import-processor's unit tests: an in-memory contact store that behaves like
// contact-store's batch API (classification per row, idempotency per (job id, batch sequence)
// with the original results returned on replay), and a temporary folder.
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "common/values/packed_cells.h"
#include "services/import_processor/store_client.h"

namespace contacts::test {

class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "import_unit_XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScopedTempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class FakeStore : public StoreClient {
 public:
  FakeStore() {
    tenant_.set_name("default");
    tenant_.set_primary_key_attribute("customer_id");
    tenant_.set_default_country_code("91");
    AddAttribute("customer_id", v1::TEXT, true);
    AddAttribute("email", v1::EMAIL, false);
    AddAttribute("mobile", v1::MOBILE, false);
    AddAttribute("age", v1::INTEGER, false);
    AddAttribute("city", v1::TEXT, false);
    v1::ContactList list;
    list.set_id(7);
    list.set_name("vip");
    *lists_.add_lists() = list;
  }

  void SetDefaultCountryCode(const std::string& code) {
    std::lock_guard lock(mu_);
    tenant_.set_default_country_code(code);
  }

  // As contact-store does, the display name defaults to the name.
  void AddAttribute(const std::string& name, v1::AttributeType type, bool pk, const std::string& display_name = "") {
    v1::Attribute* a = attributes_.add_attributes();
    a->set_id(static_cast<uint32_t>(attributes_.attributes_size()));
    a->set_name(name);
    a->set_display_name(display_name.empty() ? name : display_name);
    a->set_type(type);
    a->set_primary_key(pk);
  }

  // Called before each batch call; a non-OK status is returned instead of applying. `applied`
  // says whether the batch is applied first (a lost answer) or not at all.
  std::function<absl::Status(uint64_t sequence, bool* apply_first)> batch_hook;
  // Called before each BatchDelete is applied, with its sequence.
  std::function<void(uint64_t sequence)> delete_hook;
  // Called after each BatchDelete is applied (or replayed); a non-OK status is returned instead of
  // the answer, as when the answer is lost.
  std::function<absl::Status(uint64_t sequence)> delete_answer_hook;
  // A row whose value of this attribute equals this is REJECTED by the "store".
  std::pair<std::string, std::string> reject_value;

  // Called at the start of each GetTenant, outside the store's lock (so it may block).
  std::function<void()> get_tenant_hook;

  absl::StatusOr<v1::Tenant> GetTenant(const StoreCredentials& credentials, const grpc::ServerContextBase*) override {
    if (get_tenant_hook) get_tenant_hook();
    std::lock_guard lock(mu_);
    last_credentials = credentials;
    if (!tenant_ready) {
      // Like contact-store, which answers a tenant it never set up with a blank record: its name
      // and no primary key.
      v1::Tenant blank;
      blank.set_name(tenant_.name());
      return blank;
    }
    return tenant_;
  }
  absl::StatusOr<v1::ListAttributesResponse> ListAttributes(const StoreCredentials&,
                                                            const grpc::ServerContextBase*) override {
    std::lock_guard lock(mu_);
    return attributes_;
  }
  absl::StatusOr<v1::Attribute> CreateAttribute(const StoreCredentials&, const grpc::ServerContextBase*,
                                                const v1::CreateAttributeRequest& request) override {
    std::lock_guard lock(mu_);
    for (const v1::Attribute& a : attributes_.attributes()) {
      if (a.name() == request.name()) return absl::AlreadyExistsError("exists");
    }
    v1::Attribute* a = attributes_.add_attributes();
    a->set_name(request.name());
    a->set_type(request.type());
    created.push_back(request.name());
    return *a;
  }
  absl::StatusOr<v1::ListListsResponse> ListLists(const StoreCredentials&, const grpc::ServerContextBase*) override {
    std::lock_guard lock(mu_);
    return lists_;
  }

  absl::StatusOr<v1::BatchUpsertResponse> BatchUpsert(const StoreCredentials& credentials,
                                                      const v1::BatchUpsertRequest& request) override {
    // Like contact-store: several calls may be in flight, applied in after_batch_sequence order.
    const int in_flight = ++upserts_in_flight_;
    absl::Cleanup leave = [&] { --upserts_in_flight_; };
    std::unique_lock lock(mu_);
    max_upserts_in_flight = std::max(max_upserts_in_flight, in_flight);
    last_credentials = credentials;
    last_expect = request.expect();
    last_columns.assign(request.columns().begin(), request.columns().end());
    if (request.after_batch_sequence() != 0 && !request.dry_run()) {
      const auto previous = std::make_pair(request.job_id(), request.after_batch_sequence());
      if (!applied_cv_.wait_for(lock, std::chrono::seconds(2), [&] { return applied_upserts_.contains(previous); })) {
        return absl::AbortedError("the batch to follow is not applied yet");
      }
    }
    bool apply_first = false;
    absl::Status hook = batch_hook ? batch_hook(request.batch_sequence(), &apply_first) : absl::OkStatus();
    if (!hook.ok() && !apply_first) return hook;
    auto key = std::make_pair(request.job_id(), request.batch_sequence());
    if (auto it = applied_upserts_.find(key); it != applied_upserts_.end()) {
      ++replays;
      v1::BatchUpsertResponse replay = it->second;
      replay.set_replayed(true);
      return replay;
    }
    v1::BatchUpsertResponse response;
    // Rows come packed (BatchUpsertRequest.packed_rows, by columns); the fake works on attribute
    // maps.
    const v1::PackedRows& packed = request.packed_rows();
    const size_t width = request.columns_size();
    std::vector<std::string_view> cells;
    if (absl::Status split = SplitPackedCells(packed.cells(), packed.row_numbers_size(), width, &cells); !split.ok()) {
      return absl::InvalidArgumentError(split.message());
    }
    for (int r = 0; r < packed.row_numbers_size(); ++r) {
      v1::BatchRow row;
      row.set_row_number(packed.row_numbers(r));
      for (size_t i = 0; i < width; ++i) {
        std::string_view value = cells[r * width + i];
        if (!value.empty()) (*row.mutable_attributes())[request.columns(i)] = std::string(value);
      }
      v1::BatchRowResult* result = response.add_results();
      result->set_row_number(row.row_number());
      auto value = row.attributes().find(reject_value.first);
      if (value != row.attributes().end() && value->second == reject_value.second) {
        result->set_outcome(v1::REJECTED);
        result->set_attribute(reject_value.first);
        result->set_reason("refused by the fake store");
        continue;
      }
      const std::string pk = row.attributes().at("customer_id");
      auto existing = contacts.find(pk);
      if (request.mode() == v1::ADD_ONLY && existing != contacts.end()) {
        result->set_outcome(v1::SKIPPED_EXISTS);
        continue;
      }
      if (request.mode() == v1::UPDATE_ONLY && existing == contacts.end()) {
        result->set_outcome(v1::SKIPPED_MISSING);
        continue;
      }
      std::map<std::string, std::string> merged =
          existing == contacts.end() ? std::map<std::string, std::string>() : existing->second;
      for (const auto& [k, v] : row.attributes()) merged[k] = v;
      if (existing == contacts.end()) {
        result->set_outcome(v1::INSERTED);
      } else if (merged == existing->second) {
        result->set_outcome(v1::UNCHANGED);
      } else {
        result->set_outcome(v1::UPDATED);
      }
      if (!request.dry_run()) {
        contacts[pk] = merged;
        for (uint64_t list : request.list_ids()) memberships[list].insert(pk);
      }
    }
    applied_upserts_[key] = response;
    applied_cv_.notify_all();
    ++applied_batches;
    applied_sequences.push_back(request.batch_sequence());
    if (!hook.ok()) return hook;  // applied, but the answer is lost
    return response;
  }

  absl::StatusOr<v1::BatchDeleteResponse> BatchDelete(const StoreCredentials&,
                                                      const v1::BatchDeleteRequest& request) override {
    if (delete_hook) delete_hook(request.batch_sequence());
    absl::StatusOr<v1::BatchDeleteResponse> answer = ApplyDelete(request);
    if (answer.ok() && delete_answer_hook) {
      if (absl::Status lost = delete_answer_hook(request.batch_sequence()); !lost.ok()) return lost;
    }
    return answer;
  }

  // False: GetTenant answers as contact-store does for a tenant never set up (no primary key).
  bool tenant_ready = true;
  std::map<std::string, std::map<std::string, std::string>> contacts;
  std::map<uint64_t, std::set<std::string>> memberships;
  std::vector<std::string> created;
  int replays = 0;
  int applied_batches = 0;
  std::vector<uint64_t> applied_sequences;  // upsert batches in the order they were applied
  int max_upserts_in_flight = 0;
  StoreCredentials last_credentials;
  v1::BatchExpectations last_expect;      // of the last BatchUpsert
  std::vector<std::string> last_columns;  // of the last BatchUpsert

 private:
  absl::StatusOr<v1::BatchDeleteResponse> ApplyDelete(const v1::BatchDeleteRequest& request) {
    std::lock_guard lock(mu_);
    auto key = std::make_pair(request.job_id(), request.batch_sequence());
    if (auto it = applied_deletes_.find(key); it != applied_deletes_.end()) {
      v1::BatchDeleteResponse replay = it->second;
      replay.set_replayed(true);
      return replay;
    }
    v1::BatchDeleteResponse response;
    for (const std::string& k : request.keys()) {
      std::string pk = k;
      if (request.key_kind() == v1::BatchDeleteRequest::EMAIL) {
        pk.clear();
        for (const auto& [p, attrs] : contacts) {
          if (auto e = attrs.find("email"); e != attrs.end() && e->second == k) pk = p;
        }
      }
      if (pk.empty() || !contacts.contains(pk)) {
        response.set_not_found(response.not_found() + 1);
        continue;
      }
      if (request.list_ids().empty()) {
        contacts.erase(pk);
        for (auto& [list, members] : memberships) members.erase(pk);
        response.set_deleted(response.deleted() + 1);
      } else {
        bool removed = false;
        for (uint64_t list : request.list_ids()) removed |= memberships[list].erase(pk) > 0;
        if (removed) {
          response.set_deleted(response.deleted() + 1);
        } else {
          response.set_not_found(response.not_found() + 1);
        }
      }
    }
    applied_deletes_[key] = response;
    return response;
  }

  std::mutex mu_;
  std::condition_variable applied_cv_;
  std::atomic<int> upserts_in_flight_{0};
  v1::Tenant tenant_;
  v1::ListAttributesResponse attributes_;
  v1::ListListsResponse lists_;
  std::map<std::pair<std::string, uint64_t>, v1::BatchUpsertResponse> applied_upserts_;
  std::map<std::pair<std::string, uint64_t>, v1::BatchDeleteResponse> applied_deletes_;
};

}  // namespace contacts::test
