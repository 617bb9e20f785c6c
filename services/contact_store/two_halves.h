// Work over a range split between the calling thread and a helper thread: a batch that reads or
// resolves thousands of rows while the other core would sit idle does each half on one core.
#pragma once

#include <cstddef>
#include <functional>
#include <system_error>
#include <thread>

#include "absl/status/status.h"

namespace contacts::store {

// Starts `work` on a thread of its own, or runs it here when no thread is to be had (the
// returned thread is then not joinable). Join the thread before what `work` touches goes.
inline std::thread StartThreadOrRunHere(std::function<void()> work) {
  try {
    return std::thread(work);
  } catch (const std::system_error&) {
    work();
    return std::thread();
  }
}

// Runs run(0, count / 2) here and run(count / 2, count) on a helper thread meanwhile when `split`
// and count >= min_to_split; otherwise run(0, count) here. `run` must touch only what belongs to
// its range (or is thread-safe). Returns the first half's error, else the second half's: the
// lowest row's, as a single pass would have found. Without a thread to be had, runs the halves in
// turn.
inline absl::Status RunInTwoHalves(size_t count, size_t min_to_split, bool split,
                                   const std::function<absl::Status(size_t begin, size_t end)>& run) {
  if (!split || count < min_to_split) return run(0, count);
  const size_t half = count / 2;
  absl::Status second;
  std::thread helper = StartThreadOrRunHere([&] { second = run(half, count); });
  absl::Status first = run(0, half);
  if (helper.joinable()) helper.join();
  return first.ok() ? second : first;
}

}  // namespace contacts::store
