// A few threads for work that may block, handed over from gRPC callback handlers: those run on
// gRPC's small shared pool of event threads, which must never wait for a tenant lock held by a
// long writer (a batch commit, an attribute being indexed).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace contacts::store {

class BlockingWorkPool {
 public:
  explicit BlockingWorkPool(int threads);
  // Runs every task already queued, then joins the threads.
  ~BlockingWorkPool();
  BlockingWorkPool(const BlockingWorkPool&) = delete;
  BlockingWorkPool& operator=(const BlockingWorkPool&) = delete;

  void Run(std::function<void()> task);

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace contacts::store
