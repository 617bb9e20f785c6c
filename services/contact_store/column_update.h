// Applies one commit's contact changes to a tenant's query columns, on a helper thread when the
// commit is large, so that the update overlaps building and writing the commit's WriteBatch.
//
// An import batch spends an eighth to a fifth of its commit time in the columns (hash-filter
// counts and bitmaps of 2,000 contacts, mostly cache misses), while the other core of a 2-core
// machine is partly idle; the columns are only read under the tenant's lock, which the committer
// holds until Finish or Revert returns, so no reader sees them half updated.
#pragma once

#include <cstddef>
#include <thread>
#include <utility>
#include <vector>

#include "contacts/internal/storage.pb.h"

#include "services/contact_store/query_columns.h"

namespace contacts::store {

class ColumnUpdate {
 public:
  // Commits with at least this many changes update the columns on a helper thread; smaller ones
  // (single-contact writes) do it inline, where a thread would cost more than it saves.
  static constexpr size_t kParallelMinChanges = 256;

  // Starts applying `changes` in order; their records must outlive the ColumnUpdate. REQUIRES: the
  // caller holds the tenant's exclusive lock until Finish or Revert returns, and touches `columns`
  // in no other way meanwhile.
  ColumnUpdate(TenantColumns* columns, std::vector<ContactChange> changes,
               size_t parallel_min_changes = kParallelMinChanges);
  // Finishes the update (joins the helper) if neither Finish nor Revert was called.
  ~ColumnUpdate();
  ColumnUpdate(const ColumnUpdate&) = delete;
  ColumnUpdate& operator=(const ColumnUpdate&) = delete;

  // Waits until every change is applied (the write it shadowed succeeded).
  void Finish();
  // Waits, then takes every change back in reverse order, leaving the columns as they were (the
  // write failed). A second call does nothing.
  void Revert();

  bool ran_on_helper_thread() const { return ran_on_helper_thread_; }

 private:
  void ApplyAll();

  TenantColumns* columns_;
  std::vector<ContactChange> changes_;
  std::thread helper_;
  bool ran_on_helper_thread_ = false;
  bool reverted_ = false;
};

}  // namespace contacts::store
