// The scheduler driven by scripted workloads, with no model: each sampling row gets a scripted token. Every
// table row is worked out by hand from the rules in scheduler.h (budgets, page arithmetic, LRU eviction,
// retraction of the newest request), and the page integrity check runs after every call.

#include "scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <random>
#include <set>

namespace radixlm {
namespace {

using Ids = std::vector<uint64_t>;

struct StateRow {
  Ids running;
  Ids waiting;
  Ids retracted;
  int32_t free_pages;
};

std::vector<int32_t> tokens_from(int32_t first, int32_t count) {
  std::vector<int32_t> out(static_cast<size_t>(count));
  std::iota(out.begin(), out.end(), first);
  return out;
}

RequestInput request(uint64_t id, std::vector<int32_t> prompt, int32_t max_new_tokens) {
  RequestInput in;
  in.id = id;
  in.prompt = std::move(prompt);
  in.params.max_new_tokens = max_new_tokens;
  in.params.ignore_eos = true;
  return in;
}

SchedulerOptions options(int32_t page_size, int64_t total_tokens) {
  SchedulerOptions o;
  o.page_size = page_size;
  o.max_total_tokens = total_tokens;
  o.chunked_prefill_size = -1;
  o.context_length = 1024;
  o.check_integrity_every_step = true;
  return o;
}

std::unique_ptr<Scheduler> make(const SchedulerOptions& o, TextDecoderFactory decoders = nullptr) {
  auto s = Scheduler::create(o, std::move(decoders));
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return std::move(*s);
}

// One iteration: schedule, compare the state with `want`, then answer every sampling row with
// 1000 + the request id (tokens outside every prompt, so they never extend a cached prefix by accident).
std::vector<RequestUpdate> step(Scheduler& s, const StateRow& want, int iteration) {
  const BatchPlan plan = s.schedule();
  EXPECT_EQ(s.running_ids(), want.running) << "iteration " << iteration;
  EXPECT_EQ(s.waiting_ids(), want.waiting) << "iteration " << iteration;
  EXPECT_EQ(s.retracted_ids(), want.retracted) << "iteration " << iteration;
  EXPECT_EQ(s.page_pool().num_free(), want.free_pages) << "iteration " << iteration;
  std::vector<SampledToken> sampled;
  for (const PlannedSequence& seq : plan.seqs) {
    if (seq.samples) sampled.push_back(SampledToken{static_cast<int32_t>(1000 + seq.request_id), 0.0f, {}});
  }
  s.complete(plan, sampled);
  return s.take_updates();
}

void expect_all_pages_come_back(Scheduler& s) {
  EXPECT_TRUE(s.idle());
  EXPECT_TRUE(s.check_integrity().ok());
  s.cache().flush();
  EXPECT_EQ(s.page_pool().num_free(), s.page_pool().num_pages());
}

TEST(Scheduler, SharedPrefixIsReusedAndReported) {
  auto s = make(options(1, 32));
  ASSERT_TRUE(s->submit(request(1, tokens_from(10, 8), 2)).ok());
  step(*s, {{1}, {}, {}, 24}, 1);  // prefill 8 tokens
  auto done = step(*s, {{1}, {}, {}, 23}, 2);  // decode: one more slot; then finished, 9 tokens cached
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].finished);
  EXPECT_EQ(done[0].output_ids, (std::vector<int32_t>{1001, 1001}));
  EXPECT_STREQ(finish_reason_type(done[0].finish), "length");
  EXPECT_EQ(s->cache().cached_pages(), 9);

  // Shares 6 prompt tokens with request 1: only its last 2 tokens are computed.
  std::vector<int32_t> prompt = tokens_from(10, 6);
  prompt.insert(prompt.end(), {50, 51});
  ASSERT_TRUE(s->submit(request(2, prompt, 1)).ok());
  const BatchPlan plan = s->schedule();
  ASSERT_EQ(plan.seqs.size(), 1u);
  EXPECT_EQ(plan.seqs[0].start, 6);
  EXPECT_EQ(plan.seqs[0].tokens, (std::vector<int32_t>{50, 51}));
  EXPECT_EQ(s->page_pool().num_free(), 21);
  s->complete(plan, std::vector<SampledToken>{{7, 0.0f, {}}});
  done = s->take_updates();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].cached_tokens, 6);
  EXPECT_EQ(done[0].prompt_tokens, 8);
  EXPECT_EQ(s->cache().counters().hit_tokens, 6);
  expect_all_pages_come_back(*s);
}

TEST(Scheduler, ChunkedPrefillKeepsItsSlotAndCachesEachChunk) {
  SchedulerOptions o = options(2, 40);
  o.chunked_prefill_size = 4;
  auto s = make(o);
  ASSERT_TRUE(s->submit(request(1, tokens_from(10, 10), 2)).ok());
  ASSERT_TRUE(s->submit(request(2, tokens_from(30, 3), 2)).ok());
  const std::vector<StateRow> table = {
      {{1}, {2}, {}, 18},    // chunk 1 of request 1 (4 tokens, 2 pages)
      {{1}, {2}, {}, 16},    // chunk 2
      {{1, 2}, {}, {}, 14},  // request 1's last 2 tokens; request 2's first page-aligned 2 tokens fill the chunk
      {{1, 2}, {}, {}, 13},  // request 2's last token (prefill first: request 1 does not decode this step)
      {{1, 2}, {}, {}, 12},  // both decode; request 1 needs a 6th page; then both finish
  };
  for (size_t i = 0; i < table.size(); ++i) {
    step(*s, table[i], static_cast<int>(i + 1));
    if (i == 0) {
      EXPECT_EQ(s->cache().cached_pages(), 2);  // the first chunk is in the tree already
      EXPECT_EQ(s->cache().evictable_pages(), 0);  // and locked by its request
    }
  }
  // Request 1 keeps 5 whole pages (10 tokens; its partial 6th page is freed); request 2 keeps 2.
  EXPECT_EQ(s->page_pool().num_free(), 13);
  EXPECT_EQ(s->cache().cached_pages(), 7);
  expect_all_pages_come_back(*s);
}

TEST(Scheduler, RetractionUnderATinyPoolKeepsOutputAndResumes) {
  SchedulerOptions o = options(1, 20);
  o.schedule_conservativeness = 0.1;  // new_token_ratio 0.07: admits more than fits, so decode must retract
  auto s = make(o);
  ASSERT_TRUE(s->submit(request(1, tokens_from(10, 4), 10)).ok());
  ASSERT_TRUE(s->submit(request(2, tokens_from(30, 4), 10)).ok());
  const std::vector<StateRow> table = {
      {{1}, {2}, {}, 16},     // 1 admitted (4 + 10 <= 20); 2 does not fit beside its full estimate
      {{1, 2}, {}, {}, 12},   // 1 now reserves only ceil(9 x 0.07) = 1: 2 fits (4 + 10 <= 15)
      {{1, 2}, {}, {}, 10},   // decode
      {{1, 2}, {}, {}, 8},
      {{1, 2}, {}, {}, 6},
      {{1, 2}, {}, {}, 4},
      {{1, 2}, {}, {}, 2},
      {{1, 2}, {}, {}, 0},    // the pool is full
      {{1}, {2}, {2}, 9},     // 2 (newest) retracted: its 10 tokens cached, then evicted to give 1 its page
      {{1}, {2}, {2}, 8},     // 2 needs 11 + 3 tokens; only 8 - 1 are left
      {{1}, {2}, {2}, 7},     // 1 finishes (10 tokens); its 13 computed tokens are cached
      {{2}, {}, {}, 9},       // 2 resumes: prompt + 7 outputs prefilled after evicting 1's tokens
      {{2}, {}, {}, 8},
      {{2}, {}, {}, 7},       // 2 finishes
  };
  std::map<uint64_t, std::vector<int32_t>> outputs;
  for (size_t i = 0; i < table.size(); ++i) {
    for (const RequestUpdate& u : step(*s, table[i], static_cast<int>(i + 1))) {
      outputs[u.id].insert(outputs[u.id].end(), u.new_tokens.begin(), u.new_tokens.end());
      if (u.finished) {
        EXPECT_EQ(u.output_ids, outputs[u.id]);
      }
    }
    if (i == 8) {
      EXPECT_DOUBLE_EQ(s->new_token_ratio(), 1.0);  // min(1, (7 + 20) / 10)
    }
  }
  EXPECT_EQ(outputs[1].size(), 10u);
  EXPECT_EQ(outputs[2].size(), 10u);  // never dropped, nothing lost or repeated
  EXPECT_EQ(s->counters().retractions, 1);
  EXPECT_EQ(s->cache().counters().evicted_pages, 23);  // 2's 10, then 1's 13
  expect_all_pages_come_back(*s);
}

TEST(Scheduler, AbortMidPrefillAndMidDecodeFreesAtTheNextIteration) {
  SchedulerOptions o = options(1, 32);
  o.chunked_prefill_size = 4;
  auto s = make(o);
  ASSERT_TRUE(s->submit(request(1, tokens_from(10, 10), 5)).ok());
  ASSERT_TRUE(s->submit(request(2, tokens_from(30, 3), 5)).ok());
  step(*s, {{1}, {2}, {}, 28}, 1);  // request 1's first chunk
  s->abort(1);
  auto updates = step(*s, {{2}, {}, {}, 25}, 2);  // 1 is gone (its chunk stays cached, unlocked); 2 prefills
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(updates[0].id, 1u);
  EXPECT_TRUE(updates[0].finished);
  EXPECT_STREQ(finish_reason_type(updates[0].finish), "abort");
  EXPECT_EQ(s->cache().evictable_pages(), 4);
  step(*s, {{2}, {}, {}, 24}, 3);  // decode
  s->abort(2, "client went away");
  updates = step(*s, {{}, {}, {}, 24}, 4);  // nothing runs; 2's 4 computed tokens are cached
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].finish.message, "client went away");
  EXPECT_EQ(updates[0].output_ids.size(), 2u);
  EXPECT_EQ(s->cache().cached_pages(), 8);
  // Aborting a waiting request and an unknown id.
  ASSERT_TRUE(s->submit(request(3, tokens_from(60, 3), 5)).ok());
  s->abort(3);
  s->abort(99);
  updates = step(*s, {{}, {}, {}, 24}, 5);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_STREQ(finish_reason_type(updates[0].finish), "abort");
  expect_all_pages_come_back(*s);
}

TEST(Scheduler, LimitsOnRunningQueuedAndPrefillTokens) {
  SchedulerOptions o = options(1, 100);
  o.max_running_requests = 2;
  o.max_queued_requests = 3;
  o.max_prefill_tokens = 5;
  auto s = make(o);
  for (uint64_t id = 1; id <= 3; ++id) ASSERT_TRUE(s->submit(request(id, tokens_from(10 * static_cast<int32_t>(id), 3), 2)).ok());
  const Status full = s->submit(request(4, {1}, 1));
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  // 3 + 3 > 5 prefill tokens: one request per step (the first always fits), then the running limit.
  step(*s, {{1}, {2, 3}, {}, 97}, 1);
  step(*s, {{1, 2}, {3}, {}, 94}, 2);
  step(*s, {{1, 2}, {3}, {}, 92}, 3);  // the running limit keeps 3 waiting; both decode and finish
  step(*s, {{3}, {}, {}, 89}, 4);
  EXPECT_EQ(s->submit(request(3, {1}, 1)).code(), StatusCode::kInvalidArgument);  // 3 is live
}

TEST(Scheduler, MixedChunkRunsDecodeBesidePrefill) {
  SchedulerOptions o = options(1, 64);
  o.enable_mixed_chunk = true;
  o.chunked_prefill_size = 8;
  auto s = make(o);
  ASSERT_TRUE(s->submit(request(1, tokens_from(10, 3), 4)).ok());
  step(*s, {{1}, {}, {}, 61}, 1);
  ASSERT_TRUE(s->submit(request(2, tokens_from(30, 12), 4)).ok());
  const BatchPlan plan = s->schedule();
  // The chunk budget gives up one token per running request: 8 - 1 = 7 prompt tokens, plus 1's decode.
  ASSERT_EQ(plan.seqs.size(), 2u);
  EXPECT_TRUE(plan.seqs[0].is_prefill);
  EXPECT_EQ(plan.seqs[0].tokens.size(), 7u);
  EXPECT_FALSE(plan.seqs[1].is_prefill);
  EXPECT_EQ(plan.seqs[1].request_id, 1u);
  s->complete(plan, std::vector<SampledToken>{{5, 0.0f, {}}});
}

TEST(Scheduler, PoliciesOrderTheWaitingQueue) {
  const auto first_admitted = [](SchedulePolicy policy) {
    SchedulerOptions o = options(1, 200);
    o.policy = policy;
    o.max_running_requests = 1;
    auto s = make(o);
    // A cached prefix [1..8] for lpm and dfs-weight to find.
    RequestInput seed = request(100, tokens_from(1, 8), 1);
    EXPECT_TRUE(s->submit(seed).ok());
    s->complete(s->schedule(), std::vector<SampledToken>{{0, 0.0f, {}}});
    s->take_updates();
    RequestInput a = request(1, tokens_from(50, 6), 1);
    RequestInput b = request(2, tokens_from(1, 5), 1);  // 4 tokens of it are cached
    b.prompt.push_back(70);
    RequestInput c = request(3, tokens_from(90, 6), 1);
    c.priority = 5;
    for (auto* r : {&a, &b, &c}) EXPECT_TRUE(s->submit(*r).ok());
    const BatchPlan plan = s->schedule();
    EXPECT_EQ(plan.seqs.size(), 1u);
    return plan.seqs.empty() ? uint64_t{0} : plan.seqs[0].request_id;
  };
  EXPECT_EQ(first_admitted(SchedulePolicy::kFcfs), 1u);
  EXPECT_EQ(first_admitted(SchedulePolicy::kLpm), 2u);
  EXPECT_EQ(first_admitted(SchedulePolicy::kDfsWeight), 2u);  // the only non-root subtree with a request
  EXPECT_EQ(first_admitted(SchedulePolicy::kPriority), 3u);
  EXPECT_EQ(first_admitted(SchedulePolicy::kRandom), first_admitted(SchedulePolicy::kRandom));  // seeded
  EXPECT_FALSE(parse_schedule_policy("lifo").ok());
  EXPECT_EQ(*parse_schedule_policy("dfs-weight"), SchedulePolicy::kDfsWeight);
}

// Each token decodes to "<id>," so stop strings can span tokens.
class CommaDecoder final : public TextDecoder {
 public:
  std::string feed(int32_t id) override { return std::to_string(id) + ","; }
  std::string finish() override { return ""; }
};

TEST(Scheduler, StopStringsAcrossTokensAndStopTokens) {
  SchedulerOptions o = options(1, 64);
  o.eos_token_ids = {1002};
  auto s = make(o, [](const SamplingParams&) { return std::make_unique<CommaDecoder>(); });
  RequestInput a = request(1, {5, 6}, 10);
  a.params.stop = {"01,10"};  // the end of "1001," and the start of the next "1001,"
  RequestInput b = request(2, {7, 8}, 10);
  b.params.ignore_eos = false;  // 1002 is its own token: eos
  ASSERT_TRUE(s->submit(a).ok());
  ASSERT_TRUE(s->submit(b).ok());
  std::map<uint64_t, RequestUpdate> final;
  for (int i = 0; i < 4 && !s->idle(); ++i) {
    const BatchPlan plan = s->schedule();
    std::vector<SampledToken> sampled;
    for (const auto& seq : plan.seqs) sampled.push_back(SampledToken{static_cast<int32_t>(1000 + seq.request_id), 0, {}});
    s->complete(plan, sampled);
    for (auto& u : s->take_updates()) {
      if (u.finished) final[u.id] = u;
    }
  }
  ASSERT_EQ(final.size(), 2u);
  EXPECT_EQ(final[1].finish.kind, FinishKind::kStopString);
  EXPECT_EQ(final[1].finish.matched_string, "01,10");
  EXPECT_EQ(final[1].text, "10");  // cut where the stop string starts
  EXPECT_EQ(final[1].output_ids.size(), 2u);
  EXPECT_EQ(final[2].finish.kind, FinishKind::kStopToken);
  EXPECT_EQ(final[2].finish.matched_token, 1002);
  // Stop strings without a decoder are refused.
  auto plain = make(options(1, 16));
  EXPECT_EQ(plain->submit(a).code(), StatusCode::kInvalidArgument);
}

TEST(Scheduler, NoSharingCacheNeverReportsCachedTokens) {
  SchedulerOptions o = options(2, 64);
  o.disable_radix_cache = true;
  o.chunked_prefill_size = 4;
  auto s = make(o);
  for (uint64_t id = 1; id <= 2; ++id) ASSERT_TRUE(s->submit(request(id, tokens_from(10, 9), 3)).ok());
  int64_t cached = 0;
  for (int i = 0; i < 20 && !s->idle(); ++i) {
    const BatchPlan plan = s->schedule();
    std::vector<SampledToken> sampled(static_cast<size_t>(plan.num_sampled()), SampledToken{3, 0, {}});
    s->complete(plan, sampled);
    for (auto& u : s->take_updates()) cached += u.cached_tokens;
  }
  EXPECT_TRUE(s->idle());
  EXPECT_EQ(cached, 0);
  EXPECT_EQ(s->page_pool().num_free(), s->page_pool().num_pages());
}

TEST(Scheduler, BadOptionsAndRequestsAreErrors) {
  SchedulerOptions o = options(4, 3);
  EXPECT_FALSE(Scheduler::create(o).ok());  // less than one page
  o = options(4, 64);
  o.chunked_prefill_size = 2;
  EXPECT_FALSE(Scheduler::create(o).ok());
  auto s = make(options(1, 8));
  EXPECT_EQ(s->submit(request(1, {}, 1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->submit(request(2, tokens_from(0, 9), 1)).code(), StatusCode::kInvalidArgument);  // > the pool
}

}  // namespace
}  // namespace radixlm

namespace radixlm {
namespace {

TEST(Scheduler, NewTokenRatioDecaysPerDecodeStepAsSglang) {
  SchedulerOptions o = options(1, 256);
  o.schedule_conservativeness = 2.0;  // init = min(0.7 x 2, 1) = 1; min = 0.14; decay = 0.86 / 600 per step
  auto s = make(o);
  EXPECT_DOUBLE_EQ(s->new_token_ratio(), 1.0);
  ASSERT_TRUE(s->submit(request(1, tokens_from(10, 4), 50)).ok());
  for (int i = 0; i < 11; ++i) {
    const BatchPlan plan = s->schedule();  // one prefill, then ten decode steps
    s->complete(plan, std::vector<SampledToken>{{3, 0.0f, {}}});
  }
  EXPECT_NEAR(s->new_token_ratio(), 1.0 - 10 * 0.86 / 600, 1e-12);
}

// Small pools, pages of 1-4 tokens, chunking on or off, tight budgets, any policy: the random tests' options.
SchedulerOptions random_options(std::mt19937_64& rng) {
  SchedulerOptions o = options(1 + static_cast<int32_t>(rng() % 4), 0);
  o.max_total_tokens = o.page_size * (6 + static_cast<int64_t>(rng() % 24));
  o.chunked_prefill_size = rng() % 2 ? -1 : o.page_size * (1 + static_cast<int64_t>(rng() % 4));
  o.max_running_requests = 1 + static_cast<int32_t>(rng() % 6);
  o.max_prefill_tokens = 4 + static_cast<int64_t>(rng() % 30);
  o.policy = static_cast<SchedulePolicy>(rng() % 5);
  o.schedule_conservativeness = rng() % 2 ? 0.02 : 0.02 + static_cast<double>(rng() % 100) / 50.0;
  o.disable_radix_cache = rng() % 4 == 0;
  o.enable_mixed_chunk = rng() % 2 == 0;
  return o;
}

// Random workloads on small pools: whatever the options, every request ends exactly once, with exactly
// max_new_tokens tokens unless aborted or the whole pool cannot hold it (then it ends with "length" when its
// K/V fills every page), and no page is ever lost (the integrity check runs after each call).
TEST(Scheduler, RandomWorkloadsNeverLoseRequestsOrPages) {
  std::mt19937_64 rng(12345);
  int64_t total_finished = 0, total_retractions = 0, total_aborted = 0, total_hits = 0;
  for (int trial = 0; trial < 300; ++trial) {
    SchedulerOptions o = random_options(rng);
    auto s = make(o);
    std::map<uint64_t, int32_t> max_new;
    std::map<uint64_t, int64_t> prompt_len;
    std::map<uint64_t, int> finishes;
    std::set<uint64_t> aborted;
    uint64_t next_id = 1;
    for (int iteration = 0; iteration < 3000 && (next_id <= 12 || !s->idle()); ++iteration) {
      if (next_id <= 12 && rng() % 3 == 0) {
        // Prompts drawn from a few shared stems, so prefixes are shared and split.
        std::vector<int32_t> prompt = tokens_from(static_cast<int32_t>(rng() % 3) * 100, 1 + static_cast<int32_t>(rng() % 12));
        for (uint64_t k = rng() % 3; k > 0; --k) prompt.push_back(static_cast<int32_t>(500 + rng() % 5));
        const int32_t n = 1 + static_cast<int32_t>(rng() % 8);
        const Status submitted = s->submit(request(next_id, prompt, n));
        if (submitted.ok()) {
          max_new[next_id] = n;
          prompt_len[next_id] = static_cast<int64_t>(prompt.size());
        } else {
          EXPECT_EQ(submitted.code(), StatusCode::kInvalidArgument);  // a prompt longer than the whole pool
        }
        ++next_id;
      }
      if (rng() % 40 == 0 && next_id > 1) {
        const uint64_t victim = 1 + rng() % (next_id - 1);
        aborted.insert(victim);
        s->abort(victim);
      }
      const BatchPlan plan = s->schedule();
      std::vector<SampledToken> sampled(static_cast<size_t>(plan.num_sampled()),
                                        SampledToken{static_cast<int32_t>(700 + rng() % 3), 0.0f, {}});
      s->complete(plan, sampled);
      for (const RequestUpdate& u : s->take_updates()) {
        if (!u.finished) continue;
        ++finishes[u.id];
        if (u.finish.kind == FinishKind::kAbort) {
          EXPECT_TRUE(aborted.count(u.id)) << "trial " << trial;
        } else {
          const auto out = static_cast<int64_t>(u.output_ids.size());
          const bool complete = out == max_new[u.id];
          const bool pool_full = out < max_new[u.id] && prompt_len[u.id] + out - 1 == o.max_total_tokens;
          EXPECT_TRUE(complete || pool_full) << "trial " << trial << " id " << u.id << ": " << out << " tokens";
        }
      }
    }
    EXPECT_TRUE(s->idle()) << "trial " << trial;
    EXPECT_EQ(finishes.size(), max_new.size()) << "trial " << trial;
    total_finished += static_cast<int64_t>(finishes.size());
    total_retractions += s->counters().retractions;
    total_aborted += static_cast<int64_t>(aborted.size());
    total_hits += s->cache().counters().hit_tokens;
    for (const auto& [id, count] : finishes) EXPECT_EQ(count, 1) << "trial " << trial << " id " << id;
    expect_all_pages_come_back(*s);
  }
  // The workloads did exercise what they are meant to.
  EXPECT_GT(total_finished, 300 * 10);
  EXPECT_GT(total_retractions, 10);
  EXPECT_GT(total_aborted, 10);
  EXPECT_GT(total_hits, 100);
}

// Overlap scheduling against the plain loop: the same random workloads (submissions at the same iterations,
// tokens a function of the request and the output index, eos ending some) give every request the same
// output and finish, while the overlap driver schedules step N+1 before completing step N, resolves each
// kFutureToken from step N's tokens as the model runner does, and checks the pages after every call.
struct WorkloadResult {
  std::map<uint64_t, std::vector<int32_t>> outputs;
  std::map<uint64_t, std::string> finishes;
  int64_t future_tokens = 0;
  int64_t retractions = 0;
};

int32_t scripted_token(uint64_t id, int64_t index) { return 700 + static_cast<int32_t>((id * 31 + index * 7) % 5); }

WorkloadResult run_workload(const SchedulerOptions& o, uint64_t seed, bool overlap, std::set<uint64_t> aborts = {}) {
  auto s = make(o);
  std::mt19937_64 rng(seed);
  std::map<uint64_t, int64_t> prompt_len;
  WorkloadResult result;
  BatchPlan in_flight;  // empty: none
  std::map<uint64_t, int32_t> in_flight_tokens;  // request -> the token the step in flight samples for it
  std::vector<SampledToken> in_flight_sampled;
  uint64_t next_id = 1;
  auto collect = [&] {
    for (const RequestUpdate& u : s->take_updates()) {
      auto& out = result.outputs[u.id];
      out.insert(out.end(), u.new_tokens.begin(), u.new_tokens.end());
      if (u.finished) {
        EXPECT_FALSE(result.finishes.contains(u.id)) << "request " << u.id << " finished twice";
        result.finishes[u.id] = finish_reason_type(u.finish);
        EXPECT_EQ(u.output_ids, out);
      }
    }
  };
  for (int iteration = 0; iteration < 4000 && (next_id <= 14 || !s->idle() || !in_flight.empty()); ++iteration) {
    if (next_id <= 14 && rng() % 3 == 0) {
      std::vector<int32_t> prompt = tokens_from(static_cast<int32_t>(rng() % 3) * 100, 1 + static_cast<int32_t>(rng() % 12));
      for (uint64_t k = rng() % 3; k > 0; --k) prompt.push_back(static_cast<int32_t>(500 + rng() % 5));
      RequestInput in = request(next_id, prompt, 1 + static_cast<int32_t>(rng() % 8));
      in.params.ignore_eos = rng() % 2 == 0;
      if (s->submit(in).ok()) prompt_len[next_id] = static_cast<int64_t>(prompt.size());
      ++next_id;
    }
    if (aborts.contains(static_cast<uint64_t>(iteration))) s->abort(1 + static_cast<uint64_t>(iteration) % 14);
    const BatchPlan plan = s->schedule();
    collect();  // aborts, and requests the pool cannot hold
    std::vector<SampledToken> sampled;
    std::map<uint64_t, int32_t> tokens;
    for (const PlannedSequence& seq : plan.seqs) {
      for (int32_t token : seq.tokens) {
        if (token != kFutureToken) continue;
        // What the runner does: the token the step in flight samples for this request.
        ++result.future_tokens;
        EXPECT_TRUE(overlap) << "a future token without overlap";
        EXPECT_TRUE(in_flight_tokens.contains(seq.request_id)) << "request " << seq.request_id;
        EXPECT_EQ(seq.tokens.size(), 1u);
      }
      if (!seq.samples) continue;
      const int32_t token = scripted_token(seq.request_id, seq.start + static_cast<int64_t>(seq.tokens.size()) -
                                                               prompt_len.at(seq.request_id));
      sampled.push_back(SampledToken{token, 0.0f, {}});
      tokens[seq.request_id] = token;
    }
    if (!in_flight.empty()) {
      s->complete(in_flight, in_flight_sampled);
      collect();
      in_flight = BatchPlan{};
    }
    if (plan.empty()) continue;
    if (overlap) {
      in_flight = plan;
      in_flight_sampled = sampled;
      in_flight_tokens = tokens;
    } else {
      s->complete(plan, sampled);
      collect();
    }
  }
  EXPECT_TRUE(s->idle());
  EXPECT_TRUE(in_flight.empty());
  result.retractions = s->counters().retractions;
  expect_all_pages_come_back(*s);
  return result;
}

TEST(Scheduler, OverlapSchedulingGivesTheSameOutputsAsThePlainLoop) {
  std::mt19937_64 rng(777);
  int64_t future_tokens = 0, retractions = 0, stops = 0, finished = 0;
  for (int trial = 0; trial < 200; ++trial) {
    SchedulerOptions o = random_options(rng);
    o.eos_token_ids = {701};
    o.context_length = rng() % 4 == 0 ? 14 : 1024;
    const uint64_t seed = rng();
    const WorkloadResult plain = run_workload(o, seed, false);
    const WorkloadResult overlapped = run_workload(o, seed, true);
    EXPECT_EQ(overlapped.outputs, plain.outputs) << "trial " << trial;
    EXPECT_EQ(overlapped.finishes, plain.finishes) << "trial " << trial;
    EXPECT_EQ(plain.future_tokens, 0);
    future_tokens += overlapped.future_tokens;
    retractions += overlapped.retractions;
    finished += static_cast<int64_t>(plain.finishes.size());
    for (const auto& [id, reason] : plain.finishes) stops += reason == "stop";
  }
  EXPECT_GT(future_tokens, 1000);
  EXPECT_GT(retractions, 10);
  EXPECT_GT(stops, 100);
  EXPECT_GT(finished, 200 * 10);
}

TEST(Scheduler, OverlapSchedulingWithAbortsLosesNothing) {
  std::mt19937_64 rng(4242);
  for (int trial = 0; trial < 100; ++trial) {
    SchedulerOptions o = options(1 + static_cast<int32_t>(rng() % 4), 0);
    o.max_total_tokens = o.page_size * (6 + static_cast<int64_t>(rng() % 24));
    o.chunked_prefill_size = rng() % 2 ? -1 : o.page_size * (1 + static_cast<int64_t>(rng() % 4));
    o.eos_token_ids = {701};
    std::set<uint64_t> aborts;
    for (int k = 0; k < 6; ++k) aborts.insert(rng() % 60);
    const WorkloadResult r = run_workload(o, rng(), true, aborts);
    for (const auto& [id, tokens] : r.outputs) EXPECT_TRUE(r.finishes.contains(id)) << "trial " << trial << " id " << id;
  }
}

}  // namespace
}  // namespace radixlm
