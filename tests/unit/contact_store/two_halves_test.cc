#include "services/contact_store/two_halves.h"

#include <algorithm>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace contacts::store {
namespace {

// Which ranges ran, and on how many threads.
struct Calls {
  std::mutex mu;
  std::vector<std::pair<size_t, size_t>> ranges;
  std::vector<std::thread::id> threads;

  absl::Status Record(size_t begin, size_t end, absl::Status result = absl::OkStatus()) {
    std::lock_guard lock(mu);
    ranges.emplace_back(begin, end);
    threads.push_back(std::this_thread::get_id());
    return result;
  }
};

TEST(RunInTwoHalves, SplitsALargeRangeBetweenTwoThreads) {
  Calls calls;
  std::vector<int> touched(1001, 0);
  absl::Status done = RunInTwoHalves(1001, 1000, /*split=*/true, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) ++touched[i];
    return calls.Record(begin, end);
  });
  ASSERT_TRUE(done.ok()) << done;
  for (size_t i = 0; i < touched.size(); ++i) ASSERT_EQ(touched[i], 1) << i;
  ASSERT_EQ(calls.ranges.size(), 2u);
  EXPECT_NE(calls.threads[0], calls.threads[1]);
  std::sort(calls.ranges.begin(), calls.ranges.end());
  EXPECT_EQ(calls.ranges[0], std::make_pair(size_t{0}, size_t{500}));
  EXPECT_EQ(calls.ranges[1], std::make_pair(size_t{500}, size_t{1001}));
}

TEST(RunInTwoHalves, SmallRangesAndUnsplitRunsStayOnTheCallingThread) {
  for (auto [count, split] : {std::pair<size_t, bool>{999, true}, {5000, false}, {0, true}}) {
    Calls calls;
    ASSERT_TRUE(RunInTwoHalves(count, 1000, split, [&](size_t b, size_t e) { return calls.Record(b, e); }).ok());
    ASSERT_EQ(calls.ranges.size(), 1u) << count;
    EXPECT_EQ(calls.ranges[0], std::make_pair(size_t{0}, count));
    EXPECT_EQ(calls.threads[0], std::this_thread::get_id());
  }
}

TEST(RunInTwoHalves, TheFirstHalfsErrorWinsElseTheSecondsComesBack) {
  auto fail_in = [](bool first, bool second) {
    return RunInTwoHalves(2000, 1000, true, [&](size_t begin, size_t) {
      const bool fail = begin == 0 ? first : second;
      return fail ? absl::InvalidArgumentError(begin == 0 ? "first" : "second") : absl::OkStatus();
    });
  };
  EXPECT_EQ(fail_in(true, true).message(), "first");
  EXPECT_EQ(fail_in(false, true).message(), "second");
  EXPECT_EQ(fail_in(true, false).message(), "first");
  EXPECT_TRUE(fail_in(false, false).ok());
}

}  // namespace
}  // namespace contacts::store
