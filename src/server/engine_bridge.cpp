#include "server/engine_bridge.h"

#include <chrono>
#include <map>
#include <mutex>

#include "server/metrics.h"
#include "server/request_registry.h"

namespace radixlm::server {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One exchange's requests in flight. Kept alive by the streams' listeners and the tasks they post; the streams
// are released once every request has finished, which breaks the stream -> listener -> generation cycle.
class Generation {
 public:
  Generation(ServingContext& context, std::shared_ptr<ResponseChannel> channel, GenerationCallbacks callbacks,
             std::vector<std::shared_ptr<RequestStream>> streams, std::vector<std::string> registry_keys,
             double started_at)
      : context_(context),
        channel_(std::move(channel)),
        callbacks_(std::move(callbacks)),
        registry_keys_(std::move(registry_keys)),
        started_at_(started_at),
        streams_(std::move(streams)),
        progress_(streams_.size()),
        outputs_(streams_.size()) {
    for (const auto& stream : streams_) engine_ids_.push_back(stream->id());
  }

  const std::shared_ptr<ResponseChannel>& channel() const { return channel_; }
  const std::vector<uint64_t>& engine_ids() const { return engine_ids_; }

  // Takes every chunk request `index` has ready. Runs on the channel's strand; after a disconnect also on
  // the thread that noticed it, hence the lock. Callbacks are skipped once the client is gone: nobody reads
  // them, but the requests still have to finish so their metrics and rid are accounted for.
  void drain(size_t index) {
    std::lock_guard lock(mutex_);
    if (done_) return;
    const bool deliver = !channel_->disconnected();
    while (std::optional<StreamChunk> chunk = streams_[index]->try_next()) {
      observe(index, *chunk);
      if (deliver && callbacks_.on_chunk) callbacks_.on_chunk(index, *chunk);
      if (chunk->finished) break;
    }
    if (finished_ < streams_.size()) return;
    done_ = true;
    if (context_.registry != nullptr) {
      for (const std::string& key : registry_keys_) context_.registry->remove(key);
    }
    if (deliver && callbacks_.on_done) callbacks_.on_done(std::move(outputs_));
    streams_.clear();
    callbacks_ = {};  // release whatever the route captured
  }

  void drain_all() {
    for (size_t i = 0; i < progress_.size(); ++i) drain(i);
  }

 private:
  struct Progress {
    bool finished = false;
    bool seen_token = false;
    double last_token_at = 0.0;
  };

  void observe(size_t index, StreamChunk& chunk) {
    Progress& p = progress_[index];
    if (p.finished) return;
    const double now = now_s();
    ServerMetrics* metrics = context_.metrics;
    const int64_t tokens = static_cast<int64_t>(chunk.token_ids.size());
    if (tokens > 0) {
      if (metrics != nullptr) {
        if (!p.seen_token) {
          metrics->observe_time_to_first_token(now - started_at_);
        } else {
          metrics->observe_inter_token_latency(now - p.last_token_at, tokens);
        }
      }
      p.seen_token = true;
      p.last_token_at = now;
    }
    if (!chunk.finished) return;
    p.finished = true;
    ++finished_;
    if (!chunk.output.has_value()) {
      // The engine always attaches the output to its final chunk; stay whole if it ever does not.
      EngineOutput output;
      output.id = streams_[index]->id();
      output.finish_reason = "abort";
      output.abort_message = "the request ended without an output";
      chunk.output = std::move(output);
    }
    const EngineOutput& out = *chunk.output;
    outputs_[index] = out;
    if (metrics != nullptr) {
      metrics->observe_finished_request(out.prompt_tokens, out.completion_tokens, out.cached_tokens, now - started_at_,
                                        out.finish_reason == "abort");
    }
  }

  ServingContext& context_;
  std::shared_ptr<ResponseChannel> channel_;
  GenerationCallbacks callbacks_;
  std::vector<std::string> registry_keys_;
  std::vector<uint64_t> engine_ids_;
  const double started_at_;

  std::mutex mutex_;
  std::vector<std::shared_ptr<RequestStream>> streams_;
  std::vector<Progress> progress_;
  std::vector<EngineOutput> outputs_;
  size_t finished_ = 0;
  bool done_ = false;
};

}  // namespace

Status start_generation(ServingContext& context, std::shared_ptr<ResponseChannel> channel,
                        std::vector<EngineRequest> requests, const std::string& rid, GenerationCallbacks callbacks) {
  std::vector<std::string> rids(requests.size(), rid);
  return start_generation(context, std::move(channel), std::move(requests), rids, std::move(callbacks));
}

Status start_generation(ServingContext& context, std::shared_ptr<ResponseChannel> channel,
                        std::vector<EngineRequest> requests, const std::vector<std::string>& rids,
                        GenerationCallbacks callbacks) {
  const double started_at = now_s();
  if (context.engine == nullptr) return make_error(StatusCode::kInternal, "the server has no engine");
  if (requests.empty()) return make_error(StatusCode::kInvalidArgument, "no requests to generate");
  if (rids.size() != requests.size()) {
    return make_error(StatusCode::kInternal, "{} rids for {} requests", rids.size(), requests.size());
  }
  // Refuse a live rid before anything runs (the registration below catches a concurrent duplicate).
  if (context.registry != nullptr) {
    for (const std::string& rid : rids) {
      if (!rid.empty() && context.registry->contains(rid)) {
        return make_error(StatusCode::kInvalidArgument, "Duplicate request ID: a request with rid '{}' is still running",
                          rid);
      }
    }
  }

  Engine& engine = *context.engine;
  std::vector<std::shared_ptr<RequestStream>> streams;
  auto abort_submitted = [&] {
    for (const auto& stream : streams) engine.abort(stream->id());
  };
  for (size_t i = 0; i < requests.size(); ++i) {
    Expected<std::shared_ptr<RequestStream>> stream = engine.submit(std::move(requests[i]));
    if (!stream.ok()) {
      abort_submitted();
      return stream.status();
    }
    streams.push_back(std::move(*stream));
  }

  std::vector<std::string> registry_keys;
  if (context.registry != nullptr) {
    std::map<std::string, std::vector<uint64_t>> groups;
    for (size_t i = 0; i < streams.size(); ++i) groups[rids[i]].push_back(streams[i]->id());
    for (auto& [rid, ids] : groups) {
      Expected<std::string> key = context.registry->add(rid, std::move(ids));
      if (!key.ok()) {
        for (const std::string& added : registry_keys) context.registry->remove(added);
        abort_submitted();
        return key.status();
      }
      registry_keys.push_back(std::move(*key));
    }
  }

  auto generation = std::make_shared<Generation>(context, channel, std::move(callbacks), streams,
                                                 std::move(registry_keys), started_at);
  // A client that goes away aborts its requests; their final chunks are drained here and by the listeners
  // below (the channel may no longer run posted tasks once the client is gone).
  std::weak_ptr<Generation> weak = generation;
  Engine* engine_ptr = context.engine;
  channel->on_disconnect([weak, engine_ptr] {
    std::shared_ptr<Generation> g = weak.lock();
    if (!g) return;
    for (uint64_t id : g->engine_ids()) engine_ptr->abort(id);
    g->drain_all();
  });
  for (size_t i = 0; i < streams.size(); ++i) {
    streams[i]->set_listener([generation, i] {
      if (generation->channel()->disconnected()) {
        generation->drain(i);
      } else {
        generation->channel()->post([generation, i] { generation->drain(i); });
      }
    });
  }
  return {};
}

}  // namespace radixlm::server
