// The finish rule against SGLang's Req.check_finished, case by case.

#include "sampling/finish_check.h"

#include <gtest/gtest.h>

#include <vector>

namespace radixlm {
namespace {

const std::vector<int32_t> kEos = {2};

TEST(FinishCheck, EosAndStopTokenIdsFinish) {
  SamplingParams params;
  params.stop_token_ids = {9};
  EXPECT_EQ(check_token_finish(params, 1, 5, kEos).kind, TokenFinishKind::kNone);
  const TokenFinish eos = check_token_finish(params, 1, 2, kEos);
  EXPECT_EQ(eos.kind, TokenFinishKind::kStopToken);
  EXPECT_EQ(eos.matched_token, 2);
  EXPECT_EQ(check_token_finish(params, 3, 9, kEos).matched_token, 9);
}

TEST(FinishCheck, LengthComesFirst) {
  SamplingParams params;
  params.max_new_tokens = 3;
  EXPECT_EQ(check_token_finish(params, 2, 5, kEos).kind, TokenFinishKind::kNone);
  EXPECT_EQ(check_token_finish(params, 3, 5, kEos).kind, TokenFinishKind::kLength);
  EXPECT_EQ(check_token_finish(params, 3, 2, kEos).kind, TokenFinishKind::kLength);  // eos at the limit
  params.max_new_tokens.reset();
  EXPECT_EQ(check_token_finish(params, 1000000, 5, kEos).kind, TokenFinishKind::kNone);
}

TEST(FinishCheck, IgnoreEosIgnoresStopTokenIdsToo) {
  SamplingParams params;
  params.ignore_eos = true;
  params.stop_token_ids = {9};
  EXPECT_EQ(check_token_finish(params, 1, 2, kEos).kind, TokenFinishKind::kNone);
  EXPECT_EQ(check_token_finish(params, 1, 9, kEos).kind, TokenFinishKind::kNone);
  params.max_new_tokens = 1;
  EXPECT_EQ(check_token_finish(params, 1, 9, kEos).kind, TokenFinishKind::kLength);
}

}  // namespace
}  // namespace radixlm
