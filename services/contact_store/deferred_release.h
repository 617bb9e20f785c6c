// Frees what a finished request leaves behind (a large batch's records, plans and staged writes)
// on a thread of its own, so that the caller has its answer without waiting for the frees: for a
// batch of 25,000 rows they took ~10% of the batch's time on the caller's thread while the other
// core sat idle (tests/bench/RESULTS.md, session 14).
#pragma once

#include <atomic>
#include <functional>

#include "services/contact_store/blocking_work_pool.h"

namespace contacts::store {

class DeferredRelease {
 public:
  // At most `max_pending` releases wait for the thread; beyond that the caller frees its own, so
  // memory stays bounded when requests come faster than the thread frees them.
  explicit DeferredRelease(int max_pending = 2) : max_pending_(max_pending) {}
  // Runs every release already handed over, then returns.
  ~DeferredRelease() = default;
  DeferredRelease(const DeferredRelease&) = delete;
  DeferredRelease& operator=(const DeferredRelease&) = delete;

  // Runs `release` on the release thread, or here when max_pending releases already wait there.
  // `release` must not touch anything its caller may free before it runs.
  void Release(std::function<void()> release);

 private:
  const int max_pending_;
  std::atomic<int> pending_{0};
  BlockingWorkPool thread_{1};  // last: joined first, while pending_ still exists
};

}  // namespace contacts::store
