#include "backends/cuda/env_switch.h"

#include <cstdlib>

#include <gtest/gtest.h>

namespace radixlm::cuda {
namespace {

constexpr const char* kName = "RADIXLM_ENV_SWITCH_TEST";

TEST(EnvSwitch, OnUnlessZero) {
  unsetenv(kName);
  EXPECT_TRUE(env_switch_on(kName));
  setenv(kName, "0", 1);
  EXPECT_FALSE(env_switch_on(kName));
  setenv(kName, "1", 1);
  EXPECT_TRUE(env_switch_on(kName));
  unsetenv(kName);
}

TEST(EnvSwitch, IsComparesTheWholeValue) {
  unsetenv(kName);
  EXPECT_FALSE(env_is(kName, "legacy"));
  setenv(kName, "legacy", 1);
  EXPECT_TRUE(env_is(kName, "legacy"));
  EXPECT_FALSE(env_is(kName, "leg"));
  setenv(kName, "legacy2", 1);
  EXPECT_FALSE(env_is(kName, "legacy"));
  unsetenv(kName);
}

TEST(EnvSwitch, IntOutsideTheRangeOrUnparsedFallsBack) {
  unsetenv(kName);
  EXPECT_EQ(env_int(kName, 1, 8, 3), 3);
  setenv(kName, "5", 1);
  EXPECT_EQ(env_int(kName, 1, 8, 3), 5);
  setenv(kName, "9", 1);
  EXPECT_EQ(env_int(kName, 1, 8, 3), 3);
  setenv(kName, "-2", 1);
  EXPECT_EQ(env_int(kName, 1, 8, 3), 3);
  setenv(kName, "many", 1);
  EXPECT_EQ(env_int(kName, 1, 8, 3), 3);
  unsetenv(kName);
}

}  // namespace
}  // namespace radixlm::cuda
