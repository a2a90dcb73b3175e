#pragma once
// The engine (DESIGN §3): the scheduler, the model runner and sampling in one loop. Requests come in through
// submit() from any thread (validated there, then posted to the inbox) and their outputs go out through
// RequestStream objects; start() runs the loop on its own scheduler thread. generate() is the offline API:
// it runs the same loop on the calling thread until every request is done.
//
// Overlap scheduling (DESIGN §3, SGLang's default; --disable-overlap-schedule turns it off): each iteration
// plans step N+1 and launches it (the runner queues it on the device and returns) before it waits for step
// N's tokens, completes N in the scheduler and streams its outputs, so that host work hides behind the
// device's. A step whose logits must come to the host (prompt logits), or whose sampling rows read pending
// token ids (penalties), first waits for the step in flight.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "engine/engine_metrics.h"
#include "engine/model_runner.h"
#include "engine/request_stream.h"
#include "models/model.h"
#include "sampling/sampler.h"
#include "sampling/sampling_params.h"
#include "scheduler/scheduler.h"

namespace radixlm {

struct EngineOptions {
  // context_length 0 takes the model's max_position_embeddings; eos ids come from eos_token_ids below.
  SchedulerOptions scheduler;
  SamplingDefaults sampling_defaults;  // generation_config.json's
  std::vector<int32_t> eos_token_ids;  // generation_config.json's, else config.json's
  ModelRunnerOptions runner;           // CUDA graph flags
  int32_t decode_log_interval = 40;    // --decode-log-interval: a "Decode batch." log line every this many decode steps
  bool disable_overlap_schedule = false;  // --disable-overlap-schedule
};

struct EngineRequest {
  std::vector<int32_t> input_ids;
  SamplingParams params;  // as the client sent them: the engine applies the model's defaults and validates
  std::string cache_namespace;
  int32_t priority = 0;
  bool return_prompt_logits = false;
};

// Parallel sampling (SGLang's and OpenAI's `n`): the n requests that stand for one request with n samples,
// each with n = 1. A seeded request's copy i gets seed + i (wrapping), so the samples differ from each other
// and the whole set is reproducible; unseeded copies differ by the engine's per-request seeds. Copies share
// the prompt, so all but the first usually find it in the prefix cache. An n outside [1, max] comes back as
// one unchanged request, for validation to refuse.
std::vector<EngineRequest> expand_parallel_samples(EngineRequest request);

struct EngineStats {
  int64_t steps = 0;
  int64_t prefill_tokens = 0;
  int64_t decode_tokens = 0;
  double forward_s = 0.0;
  double sampling_s = 0.0;
  int64_t overlapped_steps = 0;  // launched while the step before was still in flight
};

class Engine {
 public:
  static Expected<std::unique_ptr<Engine>> create(Model& model, Backend& backend, const EngineOptions& options,
                                                  TextDecoderFactory decoders = nullptr);
  ~Engine();

  // Offline: runs every request to completion (on this thread unless start() was called) and returns the
  // outputs in request order; a request with n > 1 gives n consecutive outputs (its samples in seed order,
  // see expand_parallel_samples), so the result has the sum of the requests' n. A bad request fails the
  // whole call before anything runs. --max-queued-requests does not apply: the whole batch is known up front.
  Expected<std::vector<EngineOutput>> generate(const std::vector<EngineRequest>& requests);

  // Streaming, one sample per request: n != 1 is refused (the caller expands it with
  // expand_parallel_samples and submits each). Bad input is an error here, and so is a full queue: when the requests waiting to run (posted
  // but not yet taken by the scheduler, plus its waiting queue; running ones do not count) have reached
  // --max-queued-requests, submit fails at once with kResourceExhausted ("the request queue is full"). A
  // request the scheduler refuses later gets a final "abort" chunk with the reason. After stop() (until the
  // next start()) submit fails with kResourceExhausted too: the engine takes no new work while shutting down.
  Expected<std::shared_ptr<RequestStream>> submit(EngineRequest request);
  // Finishes a request with "abort" at the loop's next iteration, whatever its state.
  void abort(uint64_t id);

  void start();
  // Stops the loop thread, then finishes every request still in flight (posted, waiting or running) with a
  // final "abort" chunk, so no stream is left hanging. Without a loop thread it must be called from the
  // thread that drives step() (the destructor does).
  void stop();

  // One iteration of the loop; for tests and generate(). Not while the thread runs.
  void step();
  bool idle() const;

  // Load and throughput figures as of the end of the last step (the queue count is live), from any thread.
  EngineSnapshot snapshot() const;

  // Empties the prefix cache (SGLang's /flush_cache), from any thread, with or without the loop thread: it
  // runs between two steps. Refused with kInvalidArgument while any request is posted, waiting or running.
  Status flush_cache();

  const Scheduler& scheduler() const { return *scheduler_; }
  Scheduler& scheduler() { return *scheduler_; }
  const EngineStats& stats() const { return stats_; }

 private:
  struct Pending {
    RequestInput input;
    std::shared_ptr<RequestStream> stream;
    double submitted_at = 0.0;
  };
  struct Tracking {
    std::shared_ptr<RequestStream> stream;
    double submitted_at = 0.0;
    double first_token_at = -1.0;
    bool return_logprob = false;
    std::vector<SampledToken> logprobs;
    std::vector<std::vector<float>> prompt_logits;
    int64_t prompt_len = 0;
    bool return_prompt_logits = false;
    // Input logprobs (return_logprob): the entries so far, the prompt position whose row comes next, and
    // how they are computed.
    std::vector<SampledToken> input_logprobs;
    int64_t next_input_logprob_pos = -1;  // -1: none wanted
    double logprob_temperature = 1.0;
    int32_t top_logprobs_num = 0;
    bool input_logprobs_sent = false;
    bool admitted = false;             // counted in the cache hit rate
    uint64_t admission_seen = UINT64_MAX;  // the scheduler's admission number last seen prefilling
  };

  Engine(Model& model, Backend& backend, const EngineOptions& options, std::unique_ptr<Scheduler> scheduler);
  Expected<RequestInput> prepare(EngineRequest request, uint64_t id) const;
  Tracking track(const Pending& pending) const;
  void record_prompt_rows(const PlannedSequence& seq, StepLogits& logits, size_t s);
  Expected<std::shared_ptr<RequestStream>> post(EngineRequest request, bool enforce_queue_limit);
  void take_inbox();
  void run_step(const BatchPlan& plan, double start);
  void launch_plan(const BatchPlan& plan);
  void finish_step();  // waits for the oldest step in flight, completes it and delivers its outputs
  void run_on_host(const BatchPlan& plan);
  void deliver(std::vector<RequestUpdate> updates);
  void loop();
  void abort_everything(const std::string& message);
  // The snapshot and the scheduler's waiting queue (as submit() counts it); on the scheduler thread.
  void publish_snapshot();
  void log_prefill(const BatchPlan& plan, int64_t cached_tokens);
  void step_locked();

  Model& model_;
  Backend& backend_;
  EngineOptions options_;
  std::unique_ptr<Scheduler> scheduler_;
  ModelRunner runner_;
  std::map<uint64_t, Tracking> tracking_;
  EngineStats stats_;
  EngineMetrics metrics_;
  const bool overlap_;
  std::deque<BatchPlan> in_flight_;          // launched, not yet completed; on the stepping thread
  std::atomic<int32_t> in_flight_count_{0};  // its size, for idle() from any thread

  // step() and everything else that touches scheduler state from outside the loop (flush_cache, stop's
  // aborts) hold this, so they never interleave.
  std::mutex step_mutex_;

  mutable std::mutex inbox_mutex_;
  std::condition_variable inbox_ready_;
  std::vector<Pending> inbox_;
  std::vector<uint64_t> aborts_;
  int64_t scheduler_waiting_ = 0;  // under inbox_mutex_: the scheduler's waiting queue (plus requests in transit)
  bool accepting_ = true;          // under inbox_mutex_: false from stop() until start()
  EngineSnapshot published_;       // under inbox_mutex_
  std::atomic<uint64_t> next_id_{1};
  std::atomic<bool> stop_requested_{false};
  std::thread thread_;
};

}  // namespace radixlm
