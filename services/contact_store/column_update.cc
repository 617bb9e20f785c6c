#include "services/contact_store/column_update.h"

#include <system_error>

namespace contacts::store {
namespace {

// A contact whose ordinal changed leaves its old ordinal and takes the new one; any other change
// replaces the ordinal's state.
void ApplyOne(TenantColumns* columns, const contacts::internal::StoredContact* before,
              const contacts::internal::StoredContact* after) {
  if (before != nullptr && after != nullptr && before->ordinal() != after->ordinal()) {
    columns->Apply(before, nullptr);
    columns->Apply(nullptr, after);
  } else {
    columns->Apply(before, after);
  }
}

}  // namespace

ColumnUpdate::ColumnUpdate(TenantColumns* columns, std::vector<ContactChange> changes, size_t parallel_min_changes)
    : columns_(columns), changes_(std::move(changes)) {
  if (changes_.size() >= parallel_min_changes) {
    try {
      helper_ = std::thread([this] { ApplyAll(); });
      ran_on_helper_thread_ = true;
      return;
    } catch (const std::system_error&) {
      // No thread to be had: apply inline below.
    }
  }
  ApplyAll();
}

ColumnUpdate::~ColumnUpdate() { Finish(); }

void ColumnUpdate::ApplyAll() {
  for (size_t i = 0; i < changes_.size(); ++i) {
    if (i + TenantColumns::kPrefetchAhead < changes_.size()) {
      const auto& [before, after] = changes_[i + TenantColumns::kPrefetchAhead];
      columns_->PrefetchKeyEntries(before, after);
    }
    ApplyOne(columns_, changes_[i].first, changes_[i].second);
  }
}

void ColumnUpdate::Finish() {
  if (helper_.joinable()) helper_.join();
}

void ColumnUpdate::Revert() {
  Finish();
  if (reverted_) return;
  reverted_ = true;
  for (auto it = changes_.rbegin(); it != changes_.rend(); ++it) ApplyOne(columns_, it->second, it->first);
}

}  // namespace contacts::store
