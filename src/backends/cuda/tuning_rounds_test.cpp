#include "backends/cuda/tuning_rounds.h"

#include <map>
#include <vector>

#include <gtest/gtest.h>

namespace radixlm::cuda {
namespace {

// A timer that replays scripted times per choice, one per call, and counts the calls.
struct ScriptedTimer {
  std::map<size_t, std::vector<double>> script;
  std::map<size_t, int> calls;
  double operator()(size_t i) { return script[i][static_cast<size_t>(calls[i]++)]; }
};

TEST(TuningRounds, IndexOfFastestSkipsChoicesThatDidNotRun) {
  EXPECT_EQ(index_of_fastest({}), -1);
  EXPECT_EQ(index_of_fastest({-1.0, -1.0}), -1);
  EXPECT_EQ(index_of_fastest({-1.0, 3.0, 2.0, 2.0}), 2);  // the first of equal times
}

TEST(TuningRounds, ASlowFirstTimingDoesNotRuleTheFasterChoiceOut) {
  // Choice 1 is the fastest, but its first timing met a hiccup (1.1 against choice 0's 1.0: within 15%);
  // choice 2 is 30% slower and is not timed again.
  ScriptedTimer timer;
  timer.script = {{0, {1.0, 1.02, 1.01}}, {1, {1.1, 0.9, 0.95}}, {2, {1.3}}};
  const std::vector<double> fastest = fastest_over_rounds(3, 3, [&](size_t i) { return timer(i); });
  EXPECT_EQ(fastest, (std::vector<double>{1.0, 0.9, 1.3}));
  EXPECT_EQ(index_of_fastest(fastest), 1);
  EXPECT_EQ(timer.calls[0], 3);
  EXPECT_EQ(timer.calls[1], 3);
  EXPECT_EQ(timer.calls[2], 1);
}

TEST(TuningRounds, ChoicesThatFailAreNeverRetimedAndOneRoundTimesEachOnce) {
  ScriptedTimer timer;
  timer.script = {{0, {-1.0}}, {1, {2.0, 2.5}}};
  std::vector<double> fastest = fastest_over_rounds(2, 2, [&](size_t i) { return timer(i); });
  EXPECT_EQ(fastest, (std::vector<double>{-1.0, 2.0}));  // the slower second timing does not replace 2.0
  EXPECT_EQ(timer.calls[0], 1);

  ScriptedTimer all_fail;
  all_fail.script = {{0, {-1.0}}, {1, {-1.0}}};
  fastest = fastest_over_rounds(2, 3, [&](size_t i) { return all_fail(i); });
  EXPECT_EQ(index_of_fastest(fastest), -1);
  EXPECT_EQ(all_fail.calls[0] + all_fail.calls[1], 2);
}

}  // namespace
}  // namespace radixlm::cuda
