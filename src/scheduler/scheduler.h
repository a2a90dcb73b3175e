#pragma once
// The continuous-batching scheduler (DESIGN §3, §4), as pure bookkeeping: it owns the requests, the page
// pool and the prefix cache, and each iteration turns them into a BatchPlan (which requests run, which
// tokens each feeds, their page tables). The engine runs the plan through the model, samples, and hands the
// tokens back to complete(). Nothing here calls a model, so a test can drive it with scripted tokens.
//
// One iteration, as SGLang's event loop:
//   1. aborts are applied (in any state; the request's pages go back at once);
//   2. a prefill batch is formed: first the next chunk of the request being prefilled in chunks, then
//      waiting requests in policy order while the budgets allow: --max-running-requests, the step's
//      --max-prefill-tokens, the --chunked-prefill-size chunk, and memory: a request's uncached tokens plus
//      its clipped max_new_tokens must fit in the free and evictable pages left after reserving
//      new_token_ratio x (remaining max_new_tokens) for every running request;
//   3. with no prefill (or with --enable-mixed-chunk, alongside it) every running request decodes one token;
//      when a decode step cannot get a page even after evicting, the newest requests are retracted: their
//      pages go to the cache and they wait again with their output kept, to be prefilled anew later (a
//      request mid chunked prefill that got no chunk this step is retracted too, when it is the last). A
//      request that is alone and still cannot grow (the whole pool holds its K/V) finishes with "length"
//      (SGLang raises an error there).
// Overlap scheduling (DESIGN §3): the engine may call schedule() for step N+1 before complete() of step N.
// A request whose token from step N is still pending then decodes with kFutureToken at that position (the
// model runner reads the id step N sampled, on the device); one whose pending token certainly ends it
// (max_new_tokens, the context) is not planned; a request that finishes by a stop token or string at
// complete(N) wastes its row of step N+1, and complete(N+1) skips rows of requests that are gone. Pages freed
// or cached in between are only reused by steps queued after the one in flight, so the device's stream order
// keeps every K/V write ahead of its readers.
// new_token_ratio starts at 0.7 x conservativeness, falls linearly to 0.14 of that over 600 decode steps,
// and after a retraction is reset to SGLang's estimate from the running requests' progress.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "cache/page_pool.h"
#include "cache/prefix_cache.h"
#include "core/status.h"
#include "sampling/philox.h"
#include "sampling/sampler.h"
#include "scheduler/request.h"
#include "scheduler/schedule_policy.h"

namespace radixlm {

struct SchedulerOptions {
  int32_t page_size = 1;
  int64_t max_total_tokens = 0;  // the KV pool, in tokens (rounded down to whole pages)
  int32_t max_running_requests = 256;
  int64_t max_prefill_tokens = 16384;
  int64_t chunked_prefill_size = 8192;  // <= 0: no chunking
  SchedulePolicy policy = SchedulePolicy::kFcfs;
  double schedule_conservativeness = 1.0;
  bool disable_radix_cache = false;
  bool enable_mixed_chunk = false;
  int64_t max_queued_requests = -1;  // < 0: unlimited
  uint64_t random_seed = 0;          // request seeds and the random policy
  int64_t context_length = 0;
  std::vector<int32_t> eos_token_ids;
  bool check_integrity_every_step = false;  // tests: RADIXLM_CHECK the page integrity after each call
};

// A planned token whose id the step in flight is still sampling (overlap scheduling).
inline constexpr int32_t kFutureToken = -1;

// One sequence of a step.
struct PlannedSequence {
  uint64_t request_id = 0;
  int64_t start = 0;             // position of tokens[0]; positions below it are already in the KV cache
  std::vector<int32_t> tokens;   // fed this step; a decode's one token may be kFutureToken
  std::vector<int32_t> pages;    // its page-table row (covers start + tokens.size() positions)
  bool samples = false;          // its last row's logits give the next token
  bool prompt_logits = false;    // every row's logits are wanted (return_prompt_logits, or input logprobs)
  bool is_prefill = false;
};

struct BatchPlan {
  std::vector<PlannedSequence> seqs;
  int64_t num_tokens() const;
  int64_t num_sampled() const;
  bool empty() const { return seqs.empty(); }
};

// What one request produced since the last update.
struct RequestUpdate {
  uint64_t id = 0;
  std::vector<int32_t> new_tokens;
  std::vector<SampledToken> new_samples;  // with the logprobs the engine computed, one per new token
  std::string new_text;
  bool finished = false;
  FinishReason finish;
  std::vector<int32_t> output_ids;  // the whole output, on the final update
  std::string text;                 // the whole text, on the final update
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
};

struct SchedulerCounters {
  int64_t steps = 0;
  int64_t prefill_tokens = 0;
  int64_t decode_tokens = 0;
  int64_t retractions = 0;
};

class Scheduler {
 public:
  // Bad options (page size, pool smaller than a page, chunk smaller than a page) are errors.
  static Expected<std::unique_ptr<Scheduler>> create(const SchedulerOptions& options,
                                                     TextDecoderFactory decoders = nullptr);

  // Queues a request. Refused: a full queue (--max-queued-requests), a duplicate id, an empty prompt, or one
  // that does not fit the context or the whole KV pool; stop strings without a decoder.
  Status submit(RequestInput input);
  // Marks a request for abort; it is finished (with its pages freed) at the next schedule(). Unknown ids
  // (already finished) are ignored.
  void abort(uint64_t id, std::string message = "aborted");

  BatchPlan schedule();
  // `sampled` has one entry per plan sequence with samples == true, in plan order. Plans complete in the
  // order they were scheduled; at most one may be outstanding when the next is scheduled.
  void complete(const BatchPlan& plan, std::span<const SampledToken> sampled);
  std::vector<RequestUpdate> take_updates();

  bool idle() const { return requests_.empty(); }
  const Request* find(uint64_t id) const;

  // For tests and the engine's logs.
  std::vector<uint64_t> running_ids() const;  // decoding, or prefilling in chunks, sorted
  std::vector<uint64_t> waiting_ids() const;  // sorted
  std::vector<uint64_t> retracted_ids() const;  // waiting after a retraction, sorted
  const PagePool& page_pool() const { return pool_; }
  PrefixCache& cache() { return *cache_; }
  const PrefixCache& cache() const { return *cache_; }
  double new_token_ratio() const { return new_token_ratio_; }
  const SchedulerCounters& counters() const { return counters_; }
  const SchedulerOptions& options() const { return options_; }
  Status check_integrity() const;

 private:
  Scheduler(const SchedulerOptions& options, TextDecoderFactory decoders);

  void apply_aborts();
  std::vector<PlannedSequence> form_prefill();
  std::vector<PlannedSequence> form_decode();
  bool reserve_pages(CachedRow& row, int64_t positions);
  int64_t remaining_decode_estimate(const Request& r) const;
  void retract(Request& r);
  void promote_prefilled();
  bool certain_to_finish(const Request& r) const;
  void accept_token(Request& r, const SampledToken& sampled, RequestUpdate& update);
  void finish_request(Request& r, RequestUpdate& update);
  RequestUpdate& update_for(Request& r);
  PlannedSequence plan_for(Request& r, int64_t count, bool prefill);

  SchedulerOptions options_;
  TextDecoderFactory decoders_;
  PagePool pool_;
  std::unique_ptr<PrefixCache> cache_;
  RequestSeedSource seeds_;
  std::mt19937_64 rng_;
  std::map<uint64_t, std::unique_ptr<Request>> requests_;  // every live request
  std::vector<uint64_t> waiting_;
  std::vector<uint64_t> running_;      // decoding, in admission order
  std::optional<uint64_t> chunked_;    // mid chunked prefill: keeps its slot and its pages between chunks
  bool chunk_planned_ = false;         // the chunked request has a chunk in this step's plan
  std::vector<uint64_t> prefilling_;   // admitted this step: running after complete()
  std::map<uint64_t, RequestUpdate> updates_;
  uint64_t next_arrival_ = 0;
  uint64_t next_admission_ = 0;
  double init_new_token_ratio_;
  double min_new_token_ratio_;
  double new_token_ratio_decay_;
  double new_token_ratio_;
  SchedulerCounters counters_;
};

}  // namespace radixlm
