#include "services/contact_store/column_update.h"

#include <system_error>

namespace contacts::store {

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

void ColumnUpdate::ApplyAll() { columns_->ApplyChanges(changes_); }

void ColumnUpdate::Finish() {
  if (helper_.joinable()) helper_.join();
}

void ColumnUpdate::Revert() {
  Finish();
  if (reverted_) return;
  reverted_ = true;
  std::vector<ContactChange> undo;
  undo.reserve(changes_.size());
  for (auto it = changes_.rbegin(); it != changes_.rend(); ++it) undo.emplace_back(it->second, it->first);
  columns_->ApplyChanges(undo);
}

}  // namespace contacts::store
