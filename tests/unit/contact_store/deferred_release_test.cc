#include "services/contact_store/deferred_release.h"

#include <atomic>
#include <future>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

namespace contacts::store {
namespace {

TEST(DeferredRelease, RunsAReleaseOnItsOwnThread) {
  std::promise<std::thread::id> ran_on;
  DeferredRelease release;
  release.Release([&ran_on] { ran_on.set_value(std::this_thread::get_id()); });
  EXPECT_NE(ran_on.get_future().get(), std::this_thread::get_id());
}

TEST(DeferredRelease, TheCallerFreesItsOwnOnceMaxPendingWait) {
  std::promise<void> unblock;
  std::shared_future<void> unblocked = unblock.get_future().share();
  std::promise<void> first_started;
  std::atomic<bool> second_ran{false};
  std::thread::id third_ran_on;
  // Declared after what its releases touch, so that it runs them before those go.
  DeferredRelease release(/*max_pending=*/2);
  // The first release holds the thread, so it and the second are pending.
  release.Release([&first_started, unblocked] {
    first_started.set_value();
    unblocked.wait();
  });
  first_started.get_future().wait();
  release.Release([&second_ran] { second_ran = true; });
  release.Release([&third_ran_on] { third_ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(third_ran_on, std::this_thread::get_id());  // ran here, before Release returned
  EXPECT_FALSE(second_ran.load());
  unblock.set_value();
}

TEST(DeferredRelease, DestructionRunsEveryPendingReleaseFirst) {
  std::atomic<int> ran{0};
  std::weak_ptr<int> watched;
  {
    DeferredRelease release(/*max_pending=*/100);
    for (int i = 0; i < 50; ++i) {
      auto object = std::make_shared<int>(i);
      if (i == 49) watched = object;
      release.Release([object = std::move(object), &ran]() mutable {
        object.reset();
        ++ran;
      });
    }
  }
  EXPECT_EQ(ran.load(), 50);
  EXPECT_TRUE(watched.expired());
}

}  // namespace
}  // namespace contacts::store
