#include "engine/engine.h"

#include <chrono>
#include <cstdlib>
#include <limits>
#include <string_view>

#include <spdlog/spdlog.h>

#include "sampling/cpu_row_sampler.h"
#include "sampling/sample_batch.h"

namespace radixlm {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

std::vector<EngineRequest> expand_parallel_samples(EngineRequest request) {
  const int32_t n = request.params.n;
  if (n < 1 || n > kMaxSamplesPerRequest) return {std::move(request)};
  std::vector<EngineRequest> copies;
  copies.reserve(static_cast<size_t>(n));
  request.params.n = 1;
  for (int32_t i = 0; i < n; ++i) {
    EngineRequest copy = request;
    if (copy.params.seed) copy.params.seed = *copy.params.seed + static_cast<uint64_t>(i);
    copies.push_back(std::move(copy));
  }
  return copies;
}

Expected<std::unique_ptr<Engine>> Engine::create(Model& model, Backend& backend, const EngineOptions& options,
                                                 TextDecoderFactory decoders) {
  EngineOptions resolved = options;
  if (resolved.scheduler.context_length <= 0) resolved.scheduler.context_length = model.config().max_position_embeddings;
  resolved.scheduler.eos_token_ids = resolved.eos_token_ids;
  // The engine enforces --max-queued-requests in submit(), synchronously and over the inbox too; the
  // scheduler's own check would only refuse late (a retraction can grow its queue past the limit).
  SchedulerOptions scheduler_options = resolved.scheduler;
  scheduler_options.max_queued_requests = -1;
  RADIXLM_ASSIGN_OR_RETURN(std::unique_ptr<Scheduler> scheduler, Scheduler::create(scheduler_options, std::move(decoders)));
  return std::unique_ptr<Engine>(new Engine(model, backend, resolved, std::move(scheduler)));
}

Engine::Engine(Model& model, Backend& backend, const EngineOptions& options, std::unique_ptr<Scheduler> scheduler)
    : model_(model),
      backend_(backend),
      options_(options),
      scheduler_(std::move(scheduler)),
      runner_(model, backend, scheduler_->page_pool().num_pages(), options.scheduler.page_size, options.runner),
      metrics_(options.decode_log_interval),
      overlap_(!options.disable_overlap_schedule) {
  runner_.capture_cuda_graphs();
  publish_snapshot();
}

Engine::~Engine() { stop(); }

Expected<RequestInput> Engine::prepare(EngineRequest request, uint64_t id) const {
  const int64_t vocab = model_.config().vocab_size;
  if (request.input_ids.empty()) return make_error(StatusCode::kInvalidArgument, "request {}: empty prompt", id);
  for (int32_t token : request.input_ids) {
    if (token < 0 || token >= vocab) {
      return make_error(StatusCode::kInvalidArgument, "request {}: token id {} is outside the vocabulary [0, {})", id,
                        token, vocab);
    }
  }
  apply_sampling_defaults(request.params, options_.sampling_defaults);
  RADIXLM_RETURN_IF_ERROR(validate_sampling_params(request.params, vocab));
  if (request.params.return_logprob &&
      request.params.logprob_start_len >= static_cast<int64_t>(request.input_ids.size())) {
    return make_error(StatusCode::kInvalidArgument,
                      "request {}: logprob_start_len {} must be smaller than the prompt length {}", id,
                      request.params.logprob_start_len, request.input_ids.size());
  }
  if (request.params.n != 1) {
    return make_error(StatusCode::kInvalidArgument,
                      "request {}: n = {}: the engine runs one sample per request; submit the requests of "
                      "expand_parallel_samples() instead",
                      id, request.params.n);
  }
  RequestInput input;
  input.id = id;
  input.prompt = std::move(request.input_ids);
  input.params = std::move(request.params);
  input.cache_namespace = std::move(request.cache_namespace);
  input.priority = request.priority;
  input.return_prompt_logits = request.return_prompt_logits;
  return input;
}

Expected<std::shared_ptr<RequestStream>> Engine::submit(EngineRequest request) {
  return post(std::move(request), /*enforce_queue_limit=*/true);
}

Expected<std::shared_ptr<RequestStream>> Engine::post(EngineRequest request, bool enforce_queue_limit) {
  const uint64_t id = next_id_.fetch_add(1);
  RADIXLM_ASSIGN_OR_RETURN(RequestInput input, prepare(std::move(request), id));
  auto stream = std::make_shared<RequestStream>(id);
  {
    std::lock_guard lock(inbox_mutex_);
    if (!accepting_) return make_error(StatusCode::kResourceExhausted, "the engine is shutting down");
    const int64_t limit = options_.scheduler.max_queued_requests;
    const int64_t queued = static_cast<int64_t>(inbox_.size()) + scheduler_waiting_;
    if (enforce_queue_limit && limit >= 0 && queued >= limit) {
      return make_error(StatusCode::kResourceExhausted,
                        "the request queue is full ({} requests waiting, --max-queued-requests {})", queued, limit);
    }
    inbox_.push_back(Pending{std::move(input), stream, now_s()});
  }
  inbox_ready_.notify_one();
  return stream;
}

void Engine::abort(uint64_t id) {
  {
    std::lock_guard lock(inbox_mutex_);
    aborts_.push_back(id);
  }
  inbox_ready_.notify_one();
}

Engine::Tracking Engine::track(const Pending& p) const {
  Tracking t;
  t.stream = p.stream;
  t.submitted_at = p.submitted_at;
  const SamplingParams& params = p.input.params;
  t.return_logprob = params.return_logprob;
  t.prompt_len = static_cast<int64_t>(p.input.prompt.size());
  t.return_prompt_logits = p.input.return_prompt_logits;
  if (params.return_logprob) {
    const int64_t start = params.logprob_start_len < 0 ? t.prompt_len - 1 : params.logprob_start_len;
    // The token at `start` has no logprob (SGLang's None); each later one comes from the row before it.
    t.input_logprobs.push_back(SampledToken{p.input.prompt[static_cast<size_t>(start)],
                                            std::numeric_limits<float>::quiet_NaN(), {}});
    t.next_input_logprob_pos = start;
    t.logprob_temperature = effective_temperature(params);
    t.top_logprobs_num = params.top_logprobs_num;
  }
  return t;
}

void Engine::record_prompt_rows(const PlannedSequence& seq, StepLogits& logits, size_t s) {
  Tracking& t = tracking_.at(seq.request_id);
  const Request* request = scheduler_->find(seq.request_id);
  RADIXLM_CHECK(request != nullptr, "planned request {} is gone", seq.request_id);
  for (int64_t r = 0; r < logits.num_rows[s]; ++r) {
    const int64_t pos = seq.start + r;
    if (pos >= t.prompt_len) break;  // only prompt positions
    const float* row = logits.row(logits.first_row[s] + r);
    const std::span<const float> span(row, static_cast<size_t>(logits.vocab));
    if (t.return_prompt_logits && pos == static_cast<int64_t>(t.prompt_logits.size())) {
      t.prompt_logits.emplace_back(row, row + logits.vocab);
    }
    // Positions are taken in order once: a prefill redone after a retraction adds nothing twice.
    if (pos == t.next_input_logprob_pos && pos + 1 < t.prompt_len) {
      const int32_t next = request->tokens[static_cast<size_t>(pos + 1)];
      SampledToken entry{next, token_logprob(span, next, t.logprob_temperature), {}};
      if (t.top_logprobs_num > 0) entry.top_logprobs = top_logprobs(span, t.top_logprobs_num, t.logprob_temperature);
      t.input_logprobs.push_back(std::move(entry));
      ++t.next_input_logprob_pos;
    }
  }
}

void Engine::take_inbox() {
  std::vector<Pending> pending;
  std::vector<uint64_t> aborts;
  {
    std::lock_guard lock(inbox_mutex_);
    pending.swap(inbox_);
    aborts.swap(aborts_);
    scheduler_waiting_ += static_cast<int64_t>(pending.size());  // in transit: still counted as queued
  }
  for (Pending& p : pending) {
    const uint64_t id = p.input.id;
    Tracking tracking = track(p);
    const Status status = scheduler_->submit(std::move(p.input));
    if (!status.ok()) {
      EngineOutput output;
      output.id = id;
      output.finish_reason = "abort";
      output.abort_message = status.to_string();
      StreamChunk chunk;
      chunk.finished = true;
      chunk.output = std::move(output);
      p.stream->push(std::move(chunk));
      continue;
    }
    tracking_.emplace(id, std::move(tracking));
  }
  for (uint64_t id : aborts) scheduler_->abort(id);
  publish_snapshot();
}

void Engine::publish_snapshot() {
  EngineSnapshot s;
  const PagePool& pool = scheduler_->page_pool();
  const int64_t page = options_.scheduler.page_size;
  s.num_running_reqs = static_cast<int64_t>(scheduler_->running_ids().size());
  const auto waiting = static_cast<int64_t>(scheduler_->waiting_ids().size());
  s.max_total_num_tokens = int64_t{pool.num_pages()} * page;
  s.num_used_tokens = (int64_t{pool.num_pages()} - pool.num_free() - scheduler_->cache().evictable_pages()) * page;
  s.token_usage = s.max_total_num_tokens > 0
                      ? static_cast<double>(s.num_used_tokens) / static_cast<double>(s.max_total_num_tokens)
                      : 0.0;
  s.max_running_requests = options_.scheduler.max_running_requests;
  s.context_length = options_.scheduler.context_length;
  s.page_size = page;
  metrics_.fill(s);
  std::lock_guard lock(inbox_mutex_);
  scheduler_waiting_ = waiting;
  published_ = s;
}

EngineSnapshot Engine::snapshot() const {
  std::lock_guard lock(inbox_mutex_);
  EngineSnapshot s = published_;
  s.num_queue_reqs = static_cast<int64_t>(inbox_.size()) + scheduler_waiting_;
  return s;
}

void Engine::log_prefill(const BatchPlan& plan, int64_t cached_tokens) {
  int64_t seqs = 0, tokens = 0;
  for (const PlannedSequence& s : plan.seqs) {
    if (!s.is_prefill) continue;
    ++seqs;
    tokens += static_cast<int64_t>(s.tokens.size());
  }
  if (seqs == 0) return;
  const EngineSnapshot s = snapshot();
  // #running-req: the requests already decoding, as SGLang's running batch before this prefill joins it.
  spdlog::info(prefill_log_line(seqs, tokens, cached_tokens, s.token_usage, s.num_running_reqs - seqs,
                                s.num_queue_reqs));
}

// Output tokens of a planned request that steps before this one are still choosing (overlap scheduling).
static int64_t pending_before(const Request& request) { return std::max<int32_t>(request.in_flight - 1, 0); }

// A step whose every sampled row takes the plain argmax (greedy, no logit processor that could move it, no
// logprobs) and that wants no prompt logits: the runner argmaxes on the device and reads back only ids.
// Rows of requests that finished while the plan waited (overlap scheduling) are computed and ignored.
static bool plain_greedy_step(const BatchPlan& plan, const Scheduler& scheduler) {
  for (const PlannedSequence& seq : plan.seqs) {
    if (seq.prompt_logits) return false;
    if (!seq.samples) continue;
    const Request* request = scheduler.find(seq.request_id);
    if (request == nullptr) continue;
    const SamplingParams& p = request->input.params;
    if (!is_greedy(p) || p.return_logprob || p.frequency_penalty != 0.0 || p.presence_penalty != 0.0 ||
        p.repetition_penalty != 1.0 || !p.logit_bias.empty() ||
        request->sampling.num_generated + pending_before(*request) < p.min_new_tokens) {
      return false;
    }
  }
  return true;
}

// A step whose logits must come to the host: prompt logits (input logprobs, return_prompt_logits), or a
// row the row sampler does not take (too many top logprobs). RADIXLM_HOST_SAMPLING=1 sends every step
// there, to compare the host sampler (src/sampling) with the device's.
static bool host_logits_step(const BatchPlan& plan, const Scheduler& scheduler) {
  static const bool host_only = [] {
    const char* env = std::getenv("RADIXLM_HOST_SAMPLING");
    return env != nullptr && std::string_view(env) == "1";
  }();
  if (host_only) return true;
  for (const PlannedSequence& seq : plan.seqs) {
    if (seq.prompt_logits) return true;
    if (!seq.samples) continue;
    const Request* request = scheduler.find(seq.request_id);
    if (request != nullptr && !row_sampler_supports(request->input.params)) return true;
  }
  return false;
}

// Whether forming the step's sampling rows needs the ids of tokens still pending (penalties).
static bool reads_pending_ids(const BatchPlan& plan, const Scheduler& scheduler) {
  for (const PlannedSequence& seq : plan.seqs) {
    const Request* request = seq.samples ? scheduler.find(seq.request_id) : nullptr;
    if (request != nullptr && pending_before(*request) > 0 && sampling_reads_output_ids(request->input.params)) {
      return true;
    }
  }
  return false;
}

void Engine::launch_plan(const BatchPlan& plan) {
  const double start = now_s();
  const bool host = host_logits_step(plan, *scheduler_);
  // The host path reads every sampled request's state, and penalties read the pending ids: both wait for
  // the step in flight to complete first (its planned rows still resolve their future tokens on the device).
  while (!in_flight_.empty() && (host || reads_pending_ids(plan, *scheduler_))) finish_step();
  if (host) {
    run_on_host(plan);
    return;
  }
  if (plain_greedy_step(plan, *scheduler_)) {
    runner_.launch_step(plan, nullptr);
  } else {
    SampleRowsRequest request;
    const int64_t vocab = model_.config().vocab_size;
    SamplingParams unused_row;  // a sequence that does not sample (a prefill chunk) or whose request is gone
    unused_row.temperature = 0.0;
    for (const PlannedSequence& seq : plan.seqs) {
      const Request* r = seq.samples ? scheduler_->find(seq.request_id) : nullptr;
      if (r != nullptr) {
        add_sample_row(request, r->input.params, r->sampling, options_.eos_token_ids, vocab, pending_before(*r));
      } else {
        add_sample_row(request, unused_row, SamplingState{}, {}, vocab);
      }
    }
    runner_.launch_step(plan, &request);
  }
  stats_.forward_s += now_s() - start;
  if (!in_flight_.empty()) ++stats_.overlapped_steps;
  in_flight_.push_back(plan);
  in_flight_count_.store(static_cast<int32_t>(in_flight_.size()));
}

void Engine::finish_step() {
  RADIXLM_CHECK(!in_flight_.empty(), "finish_step with no step in flight");
  const double start = now_s();
  const std::vector<SampledRow> rows = runner_.wait_step();
  stats_.forward_s += now_s() - start;
  const BatchPlan plan = std::move(in_flight_.front());
  in_flight_.pop_front();
  in_flight_count_.store(static_cast<int32_t>(in_flight_.size()));
  std::vector<SampledToken> sampled;
  for (size_t s = 0; s < plan.seqs.size(); ++s) {
    if (plan.seqs[s].samples) sampled.push_back(to_sampled_token(rows[s]));
  }
  scheduler_->complete(plan, sampled);
  deliver(scheduler_->take_updates());
}

void Engine::run_on_host(const BatchPlan& plan) {
  double start = now_s();
  StepLogits logits = runner_.run(plan);
  stats_.forward_s += now_s() - start;
  start = now_s();
  std::vector<SamplingRow> rows;
  std::vector<bool> live;  // per sampled sequence: its request is still there
  for (size_t s = 0; s < plan.seqs.size(); ++s) {
    const PlannedSequence& seq = plan.seqs[s];
    if (seq.prompt_logits) record_prompt_rows(seq, logits, s);  // before sampling changes the last row
    if (!seq.samples) continue;
    const Request* request = scheduler_->find(seq.request_id);
    live.push_back(request != nullptr);
    if (request == nullptr) continue;  // finished while this plan waited: its row is ignored
    const int64_t last = logits.first_row[s] + logits.num_rows[s] - 1;
    rows.push_back(SamplingRow{std::span<float>(logits.row(last), static_cast<size_t>(logits.vocab)),
                               &request->input.params, &request->sampling});
  }
  const std::vector<SampledToken> live_sampled = sample_batch(rows, options_.eos_token_ids);
  std::vector<SampledToken> sampled;
  size_t next = 0;
  for (const bool is_live : live) sampled.push_back(is_live ? live_sampled[next++] : SampledToken{});
  stats_.sampling_s += now_s() - start;
  scheduler_->complete(plan, sampled);
  deliver(scheduler_->take_updates());
}

void Engine::deliver(std::vector<RequestUpdate> updates) {
  const double now = now_s();
  // A client that sees its request finish must see the server's state after it (get_server_info, /metrics):
  // finished requests are counted and the snapshot published before any stream hears of them.
  bool any_finished = false;
  for (const RequestUpdate& u : updates) {
    if (!u.finished || !tracking_.contains(u.id)) continue;
    metrics_.on_finished(u.prompt_tokens, u.completion_tokens, u.cached_tokens);
    any_finished = true;
  }
  if (any_finished) publish_snapshot();
  for (RequestUpdate& u : updates) {
    const auto it = tracking_.find(u.id);
    if (it == tracking_.end()) continue;
    Tracking& t = it->second;
    if (!u.new_tokens.empty() && t.first_token_at < 0) t.first_token_at = now;
    StreamChunk chunk;
    chunk.token_ids = u.new_tokens;
    if (t.return_logprob && !t.input_logprobs_sent && (!u.new_tokens.empty() || u.finished)) {
      chunk.input_token_logprobs = t.input_logprobs;  // complete once the prompt is through
      t.input_logprobs_sent = true;
    }
    if (t.return_logprob) {
      chunk.logprobs = u.new_samples;
      t.logprobs.insert(t.logprobs.end(), u.new_samples.begin(), u.new_samples.end());
    }
    chunk.text = std::move(u.new_text);
    chunk.finished = u.finished;
    if (u.finished) {
      EngineOutput out;
      out.id = u.id;
      out.output_ids = std::move(u.output_ids);
      out.text = std::move(u.text);
      out.finish_reason = finish_reason_type(u.finish);
      if (u.finish.kind == FinishKind::kStopToken) out.matched_token = u.finish.matched_token;
      if (u.finish.kind == FinishKind::kStopString) out.matched_string = u.finish.matched_string;
      out.abort_message = u.finish.message;
      out.prompt_tokens = u.prompt_tokens;
      out.completion_tokens = u.completion_tokens;
      out.cached_tokens = u.cached_tokens;
      out.time_to_first_token_s = t.first_token_at < 0 ? 0.0 : t.first_token_at - t.submitted_at;
      out.e2e_latency_s = now - t.submitted_at;
      out.output_logprobs = std::move(t.logprobs);
      out.prompt_logits = std::move(t.prompt_logits);
      out.input_token_logprobs = std::move(t.input_logprobs);
      chunk.output = std::move(out);
    }
    t.stream->push(std::move(chunk));
    if (u.finished) tracking_.erase(it);
  }
}

void Engine::step() {
  std::lock_guard lock(step_mutex_);
  step_locked();
}

void Engine::step_locked() {
  take_inbox();
  const double start = now_s();
  const BatchPlan plan = scheduler_->schedule();
  // New admissions (a first chunk, or a retracted request coming back): their cached prefix, and for the hit
  // rate the first admission of each request.
  int64_t admitted_cached = 0;
  for (const PlannedSequence& seq : plan.seqs) {
    if (!seq.is_prefill) continue;
    const Request* request = scheduler_->find(seq.request_id);
    const auto it = tracking_.find(seq.request_id);
    if (request == nullptr || it == tracking_.end() || it->second.admission_seen == request->admission) continue;
    Tracking& t = it->second;
    t.admission_seen = request->admission;
    admitted_cached += seq.start;
    if (!t.admitted) {
      t.admitted = true;
      metrics_.on_admitted(t.prompt_len, request->cached_tokens);
    }
  }
  publish_snapshot();
  log_prefill(plan, admitted_cached);
  deliver(scheduler_->take_updates());  // aborts
  if (plan.empty()) {
    // Nothing new to run: the step in flight (if any) completes now.
    while (!in_flight_.empty()) finish_step();
    publish_snapshot();
  } else {
    run_step(plan, start);
  }
#ifndef NDEBUG
  // Debug builds check the page accounting whenever the engine goes idle (DESIGN §4).
  if (scheduler_->idle() && in_flight_.empty()) {
    const Status status = scheduler_->check_integrity();
    RADIXLM_CHECK(status.ok(), "engine idle: {}", status.to_string());
  }
#endif
}

void Engine::run_step(const BatchPlan& plan, double start) {
  launch_plan(plan);
  // With overlap scheduling the step before this one completes now, while this one runs; without, this one.
  while (in_flight_.size() > (overlap_ ? 1u : 0u)) finish_step();
  ++stats_.steps;
  int64_t decoded = 0;
  for (const PlannedSequence& s : plan.seqs) {
    (s.is_prefill ? stats_.prefill_tokens : stats_.decode_tokens) += static_cast<int64_t>(s.tokens.size());
    if (!s.is_prefill) ++decoded;
  }
  const bool log_decode = decoded > 0 && metrics_.on_decode_step(start, now_s(), decoded);
  publish_snapshot();
  if (log_decode) {
    const EngineSnapshot s = snapshot();
    spdlog::info(decode_log_line(decoded, s.num_used_tokens, s.token_usage, s.gen_throughput, s.num_queue_reqs));
  }
}

bool Engine::idle() const {
  std::lock_guard lock(inbox_mutex_);
  return inbox_.empty() && aborts_.empty() && scheduler_->idle() && in_flight_count_.load() == 0;
}

void Engine::loop() {
  while (!stop_requested_.load()) {
    {
      std::unique_lock lock(inbox_mutex_);
      inbox_ready_.wait(lock, [this] {
        return stop_requested_.load() || !inbox_.empty() || !aborts_.empty() || !scheduler_->idle() ||
               in_flight_count_.load() > 0;
      });
    }
    if (stop_requested_.load()) break;
    step();
  }
}

void Engine::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(inbox_mutex_);
    accepting_ = true;
  }
  stop_requested_ = false;
  thread_ = std::thread([this] { loop(); });
}

void Engine::stop() {
  {
    std::lock_guard lock(inbox_mutex_);
    stop_requested_ = true;
    accepting_ = false;
  }
  inbox_ready_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(step_mutex_);
  abort_everything("the engine stopped before the request finished");
}

Status Engine::flush_cache() {
  std::lock_guard lock(step_mutex_);  // between two steps, whichever thread runs them
  while (!in_flight_.empty()) finish_step();  // rows of finished requests: nothing to keep, but pages to settle
  {
    std::lock_guard inbox_lock(inbox_mutex_);
    if (!inbox_.empty() || !scheduler_->idle()) {
      return make_error(StatusCode::kInvalidArgument,
                        "Cache not flushed because there are pending requests ({} running, {} waiting)",
                        scheduler_->running_ids().size(), inbox_.size() + scheduler_->waiting_ids().size());
    }
  }
  scheduler_->cache().flush();
  publish_snapshot();
  spdlog::info("Cache flushed successfully!");
  return {};
}

void Engine::abort_everything(const std::string& message) {
  // The loop is not running: this thread owns the scheduler. The step in flight completes first; posted
  // requests are taken in, so they get their abort chunk like the rest.
  while (!in_flight_.empty()) finish_step();
  take_inbox();
  if (scheduler_->idle()) return;
  for (const auto& [id, tracking] : tracking_) scheduler_->abort(id, message);
  const BatchPlan plan = scheduler_->schedule();  // applies the aborts; nothing is left to plan
  RADIXLM_CHECK(plan.empty(), "a plan of {} sequences after aborting everything", plan.seqs.size());
  publish_snapshot();
  deliver(scheduler_->take_updates());
}

Expected<std::vector<EngineOutput>> Engine::generate(const std::vector<EngineRequest>& given) {
  // Validate everything first, so a bad request fails the call before any runs.
  std::vector<EngineRequest> requests;
  for (size_t i = 0; i < given.size(); ++i) {
    for (EngineRequest& sample : expand_parallel_samples(given[i])) {
      auto checked = prepare(sample, next_id_.load());
      if (!checked.ok()) return make_error(checked.status().code(), "request {}: {}", i, checked.status().message());
      requests.push_back(std::move(sample));
    }
  }
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const EngineRequest& request : requests) {
    RADIXLM_ASSIGN_OR_RETURN(std::shared_ptr<RequestStream> stream, post(request, /*enforce_queue_limit=*/false));
    streams.push_back(std::move(stream));
  }
  if (!thread_.joinable()) {
    while (!idle()) step();
  }
  std::vector<EngineOutput> outputs;
  for (size_t i = 0; i < streams.size(); ++i) {
    std::optional<EngineOutput> final;
    while (auto chunk = streams[i]->next()) {
      if (chunk->finished) final = std::move(chunk->output);
    }
    RADIXLM_CHECK(final.has_value(), "request {} ended without an output", i);
    if (final->finish_reason == "abort" && !final->abort_message.empty() && final->output_ids.empty() &&
        final->prompt_tokens == 0) {
      return make_error(StatusCode::kResourceExhausted, "request {}: {}", i, final->abort_message);
    }
    outputs.push_back(std::move(*final));
  }
  return outputs;
}

}  // namespace radixlm
