#include "scheduler/scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cache/radix_cache.h"
#include "cache/sequence_pages.h"
#include "sampling/finish_check.h"

namespace radixlm {
namespace {

// SGLang's constants: max_new_tokens counts at most this much in memory estimates
// (SGLANG_CLIP_MAX_NEW_TOKENS_ESTIMATION), and a retraction assumes this many more decode steps per request.
constexpr int64_t kClipMaxNewTokens = 4096;
constexpr int64_t kRetractDecodeSteps = 20;
constexpr double kInitNewTokenRatio = 0.7;
constexpr double kMinNewTokenRatioFactor = 0.14;
constexpr double kNewTokenRatioDecaySteps = 600;

std::span<const int32_t> matchable(const Request& r) {
  return std::span<const int32_t>(r.tokens).first(r.tokens.size() - 1);
}

// The prefix admission may take from the cache: with input logprobs wanted, positions from
// logprob_start_len on must be computed (SGLang limits the prefix match the same way).
std::span<const int32_t> matchable_for(const Request& r) {
  std::span<const int32_t> tokens = matchable(r);
  const int64_t start = input_logprob_start(r);
  if (start >= 0 && start < static_cast<int64_t>(tokens.size())) tokens = tokens.first(static_cast<size_t>(start));
  return tokens;
}

std::span<const int32_t> computed(const Request& r) {
  return std::span<const int32_t>(r.tokens).first(static_cast<size_t>(r.kv_tokens));
}

void erase_id(std::vector<uint64_t>& ids, uint64_t id) { ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end()); }

}  // namespace

int64_t BatchPlan::num_tokens() const {
  int64_t total = 0;
  for (const PlannedSequence& s : seqs) total += static_cast<int64_t>(s.tokens.size());
  return total;
}

int64_t BatchPlan::num_sampled() const {
  return std::count_if(seqs.begin(), seqs.end(), [](const PlannedSequence& s) { return s.samples; });
}

Expected<std::unique_ptr<Scheduler>> Scheduler::create(const SchedulerOptions& options, TextDecoderFactory decoders) {
  if (options.page_size < 1) return make_error(StatusCode::kInvalidArgument, "--page-size must be >= 1");
  if (options.max_total_tokens < options.page_size || options.max_total_tokens / options.page_size > INT32_MAX) {
    return make_error(StatusCode::kInvalidArgument, "--max-total-tokens {} must hold at least one page of {} tokens",
                      options.max_total_tokens, options.page_size);
  }
  if (options.max_running_requests < 1) return make_error(StatusCode::kInvalidArgument, "--max-running-requests must be >= 1");
  if (options.max_prefill_tokens < 1) return make_error(StatusCode::kInvalidArgument, "--max-prefill-tokens must be >= 1");
  if (options.chunked_prefill_size > 0 && options.chunked_prefill_size < options.page_size) {
    return make_error(StatusCode::kInvalidArgument, "--chunked-prefill-size {} is smaller than a page ({})",
                      options.chunked_prefill_size, options.page_size);
  }
  if (!(options.schedule_conservativeness > 0) || !std::isfinite(options.schedule_conservativeness)) {
    return make_error(StatusCode::kInvalidArgument, "--schedule-conservativeness must be > 0");
  }
  if (options.context_length < 1) return make_error(StatusCode::kInvalidArgument, "context length must be >= 1");
  return std::unique_ptr<Scheduler>(new Scheduler(options, std::move(decoders)));
}

Scheduler::Scheduler(const SchedulerOptions& options, TextDecoderFactory decoders)
    : options_(options),
      decoders_(std::move(decoders)),
      pool_(static_cast<int32_t>(options.max_total_tokens / options.page_size)),
      cache_(make_prefix_cache(pool_, options.page_size, options.disable_radix_cache)),
      seeds_(options.random_seed),
      rng_(options.random_seed) {
  init_new_token_ratio_ = std::min(kInitNewTokenRatio * options.schedule_conservativeness, 1.0);
  min_new_token_ratio_ = std::min(init_new_token_ratio_ * kMinNewTokenRatioFactor, 1.0);
  new_token_ratio_decay_ = (init_new_token_ratio_ - min_new_token_ratio_) / kNewTokenRatioDecaySteps;
  new_token_ratio_ = init_new_token_ratio_;
}

Status Scheduler::submit(RequestInput input) {
  if (options_.max_queued_requests >= 0 && static_cast<int64_t>(waiting_.size()) >= options_.max_queued_requests) {
    return make_error(StatusCode::kResourceExhausted, "the queue is full ({} waiting, --max-queued-requests {})",
                      waiting_.size(), options_.max_queued_requests);
  }
  if (requests_.count(input.id) != 0) return make_error(StatusCode::kInvalidArgument, "request id {} is in use", input.id);
  const auto prompt_len = static_cast<int64_t>(input.prompt.size());
  if (prompt_len == 0) return make_error(StatusCode::kInvalidArgument, "request {}: empty prompt", input.id);
  if (prompt_len > options_.context_length) {
    return make_error(StatusCode::kInvalidArgument, "request {}: the prompt has {} tokens, more than the context length {}",
                      input.id, prompt_len, options_.context_length);
  }
  const int64_t pool_tokens = int64_t{pool_.num_pages()} * options_.page_size;
  if (prompt_len > pool_tokens) {
    return make_error(StatusCode::kInvalidArgument, "request {}: the prompt has {} tokens, more than the KV pool holds ({})",
                      input.id, prompt_len, pool_tokens);
  }
  if (!input.params.stop.empty() && !decoders_) {
    return make_error(StatusCode::kInvalidArgument, "request {}: stop strings need a tokenizer to detokenize with",
                      input.id);
  }
  auto r = std::make_unique<Request>();
  r->id = input.id;
  r->tokens = input.prompt;
  r->sampling.seed = input.params.seed ? *input.params.seed : seeds_.next();
  if (decoders_) r->decoder = decoders_(input.params);
  if (!input.params.stop.empty()) r->stop_matcher.emplace(input.params.stop, input.params.no_stop_trim);
  r->arrival = next_arrival_++;
  r->input = std::move(input);
  waiting_.push_back(r->id);
  requests_.emplace(r->id, std::move(r));
  return {};
}

void Scheduler::abort(uint64_t id, std::string message) {
  const auto it = requests_.find(id);
  if (it == requests_.end()) return;
  it->second->abort_requested = true;
  it->second->abort_message = std::move(message);
}

const Request* Scheduler::find(uint64_t id) const {
  const auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : it->second.get();
}

RequestUpdate& Scheduler::update_for(Request& r) {
  RequestUpdate& u = updates_[r.id];
  u.id = r.id;
  u.prompt_tokens = r.prompt_len();
  u.completion_tokens = r.num_output();
  u.cached_tokens = r.cached_tokens;
  return u;
}

std::vector<RequestUpdate> Scheduler::take_updates() {
  std::vector<RequestUpdate> out;
  out.reserve(updates_.size());
  for (auto& [id, update] : updates_) out.push_back(std::move(update));
  updates_.clear();
  return out;
}

void Scheduler::finish_request(Request& r, RequestUpdate& update) {
  if (r.finish.kind != FinishKind::kStopString && r.decoder) {
    // The detokenizer's held-back text, then the stop matcher's: neither can change any more.
    std::string tail = r.decoder->finish();
    std::string emitted = tail;
    if (r.stop_matcher) {
      emitted = std::string(r.stop_matcher->append(tail));
      if (!r.stop_matcher->stopped()) emitted += r.stop_matcher->finish();
    }
    r.text += emitted;
    update.new_text += emitted;
  }
  if (!r.row.pages.empty() || r.row.node != kRootNode) cache_->cache_finished(r.input.cache_namespace, computed(r), r.row);
  r.kv_tokens = 0;
  r.state = RequestState::kFinished;
  update.finished = true;
  update.finish = r.finish;
  update.output_ids.assign(r.tokens.begin() + r.prompt_len(), r.tokens.end());
  update.text = r.text;
  update.completion_tokens = r.num_output();
}

void Scheduler::apply_aborts() {
  std::vector<uint64_t> aborted;
  for (const auto& [id, r] : requests_) {
    if (r->abort_requested) aborted.push_back(id);
  }
  for (uint64_t id : aborted) {
    Request& r = *requests_.at(id);
    erase_id(waiting_, id);
    erase_id(running_, id);
    erase_id(prefilling_, id);
    if (chunked_ == id) chunked_.reset();
    r.finish = FinishReason{FinishKind::kAbort, -1, "", r.abort_message};
    finish_request(r, update_for(r));
    requests_.erase(id);
  }
}

bool Scheduler::reserve_pages(CachedRow& row, int64_t positions) {
  const int64_t need = pages_for_tokens(positions, options_.page_size) - static_cast<int64_t>(row.pages.size());
  if (need <= 0) return true;
  if (need > pool_.num_free()) cache_->evict(need - pool_.num_free());
  if (need > pool_.num_free()) return false;
  auto pages = pool_.alloc(static_cast<int32_t>(need));
  RADIXLM_CHECK(pages.ok(), "{}", pages.status().to_string());
  row.pages.insert(row.pages.end(), pages->begin(), pages->end());
  return true;
}

int64_t Scheduler::remaining_decode_estimate(const Request& r) const {
  const int64_t limit = r.input.params.max_new_tokens ? *r.input.params.max_new_tokens
                                                      : options_.context_length - r.prompt_len();
  return std::clamp<int64_t>(limit - r.num_output(), 0, kClipMaxNewTokens);
}

PlannedSequence Scheduler::plan_for(Request& r, int64_t count, bool prefill) {
  PlannedSequence s;
  s.request_id = r.id;
  s.start = r.kv_tokens;
  const auto known = static_cast<int64_t>(r.tokens.size());
  for (int64_t p = r.kv_tokens; p < r.kv_tokens + count; ++p) {
    s.tokens.push_back(p < known ? r.tokens[static_cast<size_t>(p)] : kFutureToken);
  }
  r.kv_tokens += count;
  s.pages = r.row.pages;
  s.samples = r.kv_tokens == r.planned_len();
  if (s.samples) ++r.in_flight;
  // Input logprobs need the rows of positions [start, prompt_len - 1): row p gives the logprob of token p + 1
  // (the token at `start` itself has none).
  const int64_t logprob_start = input_logprob_start(r);
  const bool input_logprob_rows = logprob_start >= 0 && logprob_start < r.prompt_len() - 1 &&
                                  s.start + count > logprob_start && s.start < r.prompt_len() - 1;
  s.prompt_logits = prefill && r.num_output() == 0 && (r.input.return_prompt_logits || input_logprob_rows);
  s.is_prefill = prefill;
  return s;
}

std::vector<PlannedSequence> Scheduler::form_prefill() {
  std::vector<PlannedSequence> out;
  const int64_t page = options_.page_size;
  const auto align = [page](int64_t n) { return n / page * page; };
  int64_t rem_input = options_.max_prefill_tokens;
  int64_t rem_chunk = options_.chunked_prefill_size > 0 ? options_.chunked_prefill_size
                                                        : std::numeric_limits<int64_t>::max();
  if (options_.enable_mixed_chunk && options_.chunked_prefill_size > 0) {
    rem_chunk -= static_cast<int64_t>(running_.size());  // the decode tokens ride in the same step
  }
  int64_t rem_total = (pool_.num_free() + cache_->evictable_pages()) * page;
  for (uint64_t id : running_) {
    rem_total -= static_cast<int64_t>(
        std::ceil(static_cast<double>(remaining_decode_estimate(*requests_.at(id))) * new_token_ratio_));
  }

  chunk_planned_ = false;
  if (chunked_) {
    Request& r = *requests_.at(*chunked_);
    const int64_t left = static_cast<int64_t>(r.tokens.size()) - r.kv_tokens;
    int64_t take = std::min(left, rem_chunk);
    if (take < left) take = align(take);
    if (take > 0 && reserve_pages(r.row, r.kv_tokens + take)) {
      chunk_planned_ = true;
      out.push_back(plan_for(r, take, true));
      rem_input -= take;
      rem_chunk -= take;
      if (out.back().samples) {
        chunked_.reset();
        prefilling_.push_back(r.id);
      }
    }
    if (chunked_) return out;  // still mid-prompt: this step's chunk budget is spent
  }

  int64_t slots = options_.max_running_requests - static_cast<int64_t>(running_.size() + prefilling_.size());
  if (slots <= 0 || waiting_.empty()) return out;
  std::vector<Request*> order;
  for (uint64_t id : waiting_) order.push_back(requests_.at(id).get());
  order_waiting_requests(options_.policy, order, *cache_, rng_);
  const bool nothing_in_flight = running_.empty() && prefilling_.empty();

  std::vector<uint64_t> admitted;
  for (Request* r : order) {
    if (slots <= 0 || rem_input <= 0 || rem_chunk <= 0) break;
    if (r->in_flight > 0) continue;  // retracted while its last token was pending: admitted once it is back
    const std::string& ns = r->input.cache_namespace;
    PrefixMatch match;
    if (!r->input.return_prompt_logits) match = cache_->match_prefix(ns, matchable_for(*r), false);
    const int64_t extend = static_cast<int64_t>(r->tokens.size()) - match.num_tokens;
    const int64_t decode_estimate = remaining_decode_estimate(*r);
    // Memory: its uncached tokens and its whole (clipped) output must fit beside what the running requests
    // are expected to need. A lone request is let in regardless; decode stops it if the pool runs out.
    const bool alone = nothing_in_flight && admitted.empty();
    if (extend + decode_estimate > rem_total && !alone) break;
    int64_t take = extend;
    bool chunk = false;
    if (take > rem_chunk) {
      take = align(rem_chunk);
      chunk = true;
      if (take <= 0) break;
    } else if (take > rem_input && !admitted.empty()) {
      break;
    }
    cache_->lock(match.node);  // before reserving: eviction must not take the prefix
    r->row = CachedRow{match.pages, match.num_tokens, match.node};
    r->kv_tokens = match.num_tokens;
    if (!reserve_pages(r->row, r->kv_tokens + take)) {
      cache_->unlock(match.node);
      r->row = CachedRow{};
      r->kv_tokens = 0;
      break;
    }
    if (!r->input.return_prompt_logits) cache_->match_prefix(ns, matchable_for(*r), true);  // counts the hit
    if (!r->ever_admitted) r->cached_tokens = match.num_tokens;
    r->ever_admitted = true;
    r->retracted = false;
    r->state = RequestState::kPrefilling;
    r->admission = next_admission_++;
    admitted.push_back(r->id);
    out.push_back(plan_for(*r, take, true));
    rem_total -= extend + decode_estimate;
    rem_input -= take;
    rem_chunk -= take;
    --slots;
    if (chunk) {
      chunked_ = r->id;
      chunk_planned_ = true;
      break;
    }
    prefilling_.push_back(r->id);
  }
  for (uint64_t id : admitted) erase_id(waiting_, id);
  return out;
}

void Scheduler::retract(Request& r) {
  if (chunked_ == r.id) chunked_.reset();
  cache_->cache_finished(r.input.cache_namespace, computed(r), r.row);
  r.kv_tokens = 0;
  r.state = RequestState::kWaiting;
  r.retracted = true;
  ++r.retractions;
  ++counters_.retractions;
  erase_id(running_, r.id);
  waiting_.push_back(r.id);
}

bool Scheduler::certain_to_finish(const Request& r) const {
  if (r.in_flight == 0) return false;
  const std::optional<int32_t>& max_new = r.input.params.max_new_tokens;
  return (max_new && r.num_output() + r.in_flight >= *max_new) || r.planned_len() > options_.context_length;
}

void Scheduler::promote_prefilled() {
  // With overlap scheduling a request whose prefill was planned but has not completed decodes next with its
  // first token pending, as SGLang merges the last prefill batch into the running batch before its results.
  for (uint64_t id : prefilling_) {
    Request& r = *requests_.at(id);
    RADIXLM_CHECK(r.in_flight > 0, "request {} is prefilling with no token pending", id);
    r.state = RequestState::kRunning;
    running_.push_back(id);
  }
  prefilling_.clear();
}

std::vector<PlannedSequence> Scheduler::form_decode() {
  // Every running request needs a KV slot for the token it feeds. When the pool cannot give one even after
  // evicting, the newest request is retracted (perhaps the one asking), and the rest try again.
  bool retracted_any = false;
  for (size_t i = 0; i < running_.size();) {
    Request& r = *requests_.at(running_[i]);
    if (certain_to_finish(r) || reserve_pages(r.row, r.kv_tokens + 1)) {
      ++i;
      continue;
    }
    if (running_.size() == 1 && chunked_ && !chunk_planned_) {
      // The request mid chunked prefill holds pages but got no chunk this step: it goes back to waiting.
      retract(*requests_.at(*chunked_));
      retracted_any = true;
      continue;
    }
    if (running_.size() == 1 && prefilling_.empty() && !chunked_) {
      if (r.in_flight > 0) break;  // its pending token comes back first, then it finishes as below
      // Alone and still out of pages: the pool cannot hold more of this request.
      r.finish = FinishReason{FinishKind::kLength, -1, "", ""};
      finish_request(r, update_for(r));
      const uint64_t id = r.id;
      running_.clear();
      requests_.erase(id);
      break;
    }
    if (running_.size() == 1) break;  // pages are held by this step's prefill; decode waits a step
    retract(*requests_.at(running_.back()));
    retracted_any = true;
  }
  if (retracted_any) {
    int64_t decoded = 0, max_new = 0;
    for (uint64_t id : running_) {
      const Request& r = *requests_.at(id);
      decoded += r.num_output();
      max_new += r.num_output() + remaining_decode_estimate(r);
    }
    new_token_ratio_ = std::min(1.0, static_cast<double>(decoded + kRetractDecodeSteps * static_cast<int64_t>(running_.size())) /
                                         static_cast<double>(std::max<int64_t>(max_new, 1)));
  } else {
    new_token_ratio_ = std::max(new_token_ratio_ - new_token_ratio_decay_, min_new_token_ratio_);
  }
  std::vector<PlannedSequence> out;
  for (uint64_t id : running_) {
    Request& r = *requests_.at(id);
    if (certain_to_finish(r)) continue;
    if (static_cast<int64_t>(r.row.pages.size()) * options_.page_size > r.kv_tokens) out.push_back(plan_for(r, 1, false));
  }
  return out;
}

BatchPlan Scheduler::schedule() {
  apply_aborts();
  promote_prefilled();
  BatchPlan plan;
  plan.seqs = form_prefill();
  if (plan.seqs.empty() || options_.enable_mixed_chunk) {
    std::vector<PlannedSequence> decode = form_decode();
    plan.seqs.insert(plan.seqs.end(), std::make_move_iterator(decode.begin()), std::make_move_iterator(decode.end()));
  }
  if (requests_.empty()) new_token_ratio_ = init_new_token_ratio_;
  for (const PlannedSequence& s : plan.seqs) {
    (s.is_prefill ? counters_.prefill_tokens : counters_.decode_tokens) += static_cast<int64_t>(s.tokens.size());
  }
  if (!plan.empty()) ++counters_.steps;
  if (options_.check_integrity_every_step) {
    const Status status = check_integrity();
    RADIXLM_CHECK(status.ok(), "after schedule(): {}", status.to_string());
  }
  return plan;
}

void Scheduler::accept_token(Request& r, const SampledToken& sampled, RequestUpdate& update) {
  const int32_t token = sampled.token_id;
  r.tokens.push_back(token);
  record_output_token(r.sampling, token);
  update.new_tokens.push_back(token);
  update.new_samples.push_back(sampled);
  const TokenFinish token_finish =
      check_token_finish(r.input.params, r.num_output(), token, options_.eos_token_ids);
  if (r.decoder) {
    const std::string piece = r.decoder->feed(token);
    const std::string emitted = r.stop_matcher ? std::string(r.stop_matcher->append(piece)) : piece;
    r.text += emitted;
    update.new_text += emitted;
  }
  if (token_finish.kind == TokenFinishKind::kLength) {
    r.finish = FinishReason{FinishKind::kLength, -1, "", ""};
  } else if (token_finish.kind == TokenFinishKind::kStopToken) {
    r.finish = FinishReason{FinishKind::kStopToken, token_finish.matched_token, "", ""};
  } else if (r.stop_matcher && r.stop_matcher->stopped()) {
    r.finish = FinishReason{FinishKind::kStopString, -1, r.stop_matcher->matched_string(), ""};
  } else if (static_cast<int64_t>(r.tokens.size()) > options_.context_length) {
    r.finish = FinishReason{FinishKind::kLength, -1, "", ""};  // the next token would have no position
  }
}

void Scheduler::complete(const BatchPlan& plan, std::span<const SampledToken> sampled) {
  RADIXLM_CHECK(static_cast<int64_t>(sampled.size()) == plan.num_sampled(), "{} samples for {} sampling rows",
                sampled.size(), plan.num_sampled());
  size_t next = 0;
  std::vector<uint64_t> finished;
  for (const PlannedSequence& seq : plan.seqs) {
    const SampledToken* token = seq.samples ? &sampled[next++] : nullptr;
    const auto it = requests_.find(seq.request_id);
    if (it == requests_.end()) continue;  // finished or aborted while this step ran (overlap scheduling)
    Request& r = *it->second;
    if (token == nullptr) {
      // A prefill chunk: its KV becomes shareable now, and stays locked for the request's next chunk
      // (unless a retraction already gave its pages to the cache).
      if (r.state == RequestState::kPrefilling) cache_->cache_unfinished(r.input.cache_namespace, computed(r), r.row);
      continue;
    }
    RADIXLM_CHECK(r.in_flight > 0, "request {}: a sampled token that no plan asked for", r.id);
    --r.in_flight;
    if (seq.is_prefill && r.state == RequestState::kPrefilling) {
      erase_id(prefilling_, r.id);
      r.state = RequestState::kRunning;
      running_.push_back(r.id);
    }
    RequestUpdate& update = update_for(r);
    if (r.input.params.max_new_tokens && *r.input.params.max_new_tokens == 0) {
      r.finish = FinishReason{FinishKind::kLength, -1, "", ""};  // prompt logits only
    } else {
      accept_token(r, *token, update);
    }
    update.completion_tokens = r.num_output();
    if (r.finish.kind != FinishKind::kNone) {
      finish_request(r, update);
      erase_id(running_, r.id);
      erase_id(waiting_, r.id);  // retracted while its token was pending
      finished.push_back(r.id);
    }
  }
  for (uint64_t id : finished) requests_.erase(id);
  if (options_.check_integrity_every_step) {
    const Status status = check_integrity();
    RADIXLM_CHECK(status.ok(), "after complete(): {}", status.to_string());
  }
}

std::vector<uint64_t> Scheduler::running_ids() const {
  std::vector<uint64_t> ids = running_;
  ids.insert(ids.end(), prefilling_.begin(), prefilling_.end());
  if (chunked_) ids.push_back(*chunked_);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<uint64_t> Scheduler::waiting_ids() const {
  std::vector<uint64_t> ids = waiting_;
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<uint64_t> Scheduler::retracted_ids() const {
  std::vector<uint64_t> ids;
  for (uint64_t id : waiting_) {
    if (requests_.at(id)->retracted) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

Status Scheduler::check_integrity() const {
  std::vector<std::span<const int32_t>> owned;
  for (const auto& [id, r] : requests_) {
    if (r->state == RequestState::kWaiting && (!r->row.pages.empty() || r->row.node != kRootNode)) {
      return make_error(StatusCode::kInternal, "waiting request {} holds pages", id);
    }
    owned.push_back(r->row.own_pages(options_.page_size));
  }
  RADIXLM_RETURN_IF_ERROR(check_page_integrity(pool_, *cache_, owned));
  if (const auto* radix = dynamic_cast<const RadixCache*>(cache_.get())) RADIXLM_RETURN_IF_ERROR(radix->check_structure());
  return {};
}

}  // namespace radixlm
