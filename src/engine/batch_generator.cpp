#include "engine/batch_generator.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <limits>

#include "cache/sequence_pages.h"

namespace radixlm {
namespace {

using Clock = std::chrono::steady_clock;

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// The first index of the largest value, as torch.argmax picks among equal maxima. The maximum is found
// first with independent lanes (which vectorizes: over a 128K vocabulary this is not free), then its index.
int32_t greedy_token(const float* logits, int64_t vocab) {
  float lanes[16];
  std::fill(std::begin(lanes), std::end(lanes), -std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 16 <= vocab; i += 16) {
    for (int k = 0; k < 16; ++k) lanes[k] = std::max(lanes[k], logits[i + k]);
  }
  float best = *std::max_element(std::begin(lanes), std::end(lanes));
  for (; i < vocab; ++i) best = std::max(best, logits[i]);
  const float* found = std::find(logits, logits + vocab, best);
  return found == logits + vocab ? 0 : static_cast<int32_t>(found - logits);  // all NaN: nothing is largest
}

// One sequence's progress through generate().
struct Sequence {
  explicit Sequence(int32_t page_size) : pages(page_size) {}
  SequencePages pages;
  int64_t kv_tokens = 0;     // tokens whose K/V are in the cache
  int32_t next_token = -1;   // the token the next decode step feeds
  bool finished = false;
};

// Gives every sequence's pages back on every way out of generate().
struct PageReleaser {
  PagePool& pool;
  std::vector<Sequence>& sequences;
  ~PageReleaser() {
    for (Sequence& seq : sequences) seq.pages.release(pool);
  }
};

Status check_request(const std::vector<std::vector<int32_t>>& prompts, const GenerateOptions& options,
                     const ModelConfig& config) {
  if (options.temperature != 0.0) {
    return make_error(StatusCode::kUnsupported,
                      "temperature {} asks for sampling, which arrives with the batch engine; only greedy "
                      "decoding (temperature 0) is available now",
                      options.temperature);
  }
  if (options.max_new_tokens < 0) {
    return make_error(StatusCode::kInvalidArgument, "max_new_tokens must be >= 0, got {}", options.max_new_tokens);
  }
  if (prompts.empty()) return make_error(StatusCode::kInvalidArgument, "no prompts given");
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) return make_error(StatusCode::kInvalidArgument, "prompt {} is empty", i);
    for (int32_t id : prompts[i]) {
      if (id < 0 || id >= config.vocab_size) {
        return make_error(StatusCode::kInvalidArgument, "prompt {}: token id {} is outside the vocabulary [0, {})",
                          i, id, config.vocab_size);
      }
    }
    if (static_cast<int64_t>(prompts[i].size()) > config.max_position_embeddings) {
      return make_error(StatusCode::kInvalidArgument, "prompt {} has {} tokens, more than the context length {}", i,
                        prompts[i].size(), config.max_position_embeddings);
    }
  }
  return {};
}

}  // namespace

BatchGenerator::BatchGenerator(Model& model, Backend& backend, int32_t page_size, int32_t num_pages)
    : model_(model), backend_(backend), page_size_(page_size), pool_(num_pages) {
  RADIXLM_CHECK(page_size > 0 && num_pages >= 0);
  const KvCacheShape shape = model.kv_cache_shape();
  const Shape kv_shape{int64_t{num_pages} * page_size, shape.num_kv_heads, shape.head_dim};
  for (int64_t layer = 0; layer < shape.num_layers; ++layer) {
    kv_cache_.push_back({backend.alloc(backend.activation_dtype(), kv_shape),
                         backend.alloc(backend.activation_dtype(), kv_shape)});
  }
}

int64_t BatchGenerator::pages_needed(const std::vector<std::vector<int32_t>>& prompts, int32_t max_new_tokens,
                                     int32_t page_size, int64_t context_length) {
  int64_t pages = 0;
  // The last generated token is never fed back, so it needs no KV slot.
  for (const auto& prompt : prompts) {
    const int64_t tokens = static_cast<int64_t>(prompt.size()) + std::max(max_new_tokens - 1, 0);
    pages += pages_for_tokens(std::min(tokens, std::max<int64_t>(context_length, static_cast<int64_t>(prompt.size()))),
                              page_size);
  }
  return pages;
}

Expected<std::vector<GenerateOutput>> BatchGenerator::generate(const std::vector<std::vector<int32_t>>& prompts,
                                                               const GenerateOptions& options) {
  const ModelConfig& config = model_.config();
  RADIXLM_RETURN_IF_ERROR(check_request(prompts, options, config));
  timing_ = {};
  const int64_t vocab = config.vocab_size;
  const int64_t context = config.max_position_embeddings;
  std::vector<GenerateOutput> outputs(prompts.size());
  std::vector<Sequence> sequences(prompts.size(), Sequence(page_size_));
  PageReleaser releaser{pool_, sequences};

  // Records a generated token and decides whether the sequence is done.
  auto accept = [&](size_t s, int32_t token) {
    outputs[s].output_ids.push_back(token);
    const bool is_eos = !options.ignore_eos && std::find(options.eos_token_ids.begin(), options.eos_token_ids.end(),
                                                         token) != options.eos_token_ids.end();
    if (is_eos) {
      outputs[s].finish_reason = "stop";
    } else if (static_cast<int32_t>(outputs[s].output_ids.size()) >= options.max_new_tokens ||
               sequences[s].kv_tokens + 1 > context) {
      outputs[s].finish_reason = "length";
    } else {
      sequences[s].next_token = token;
      return;
    }
    sequences[s].finished = true;
  };

  // Describes one step: `feeds[s]` are sequence s's new tokens (empty: not in this step).
  auto make_batch = [&](const std::vector<std::vector<int32_t>>& feeds, bool every_row) -> Expected<ForwardBatch> {
    ForwardBatch batch;
    batch.page_size = page_size_;
    batch.query_start = {0};
    batch.page_table_start = {0};
    for (size_t s = 0; s < feeds.size(); ++s) {
      if (feeds[s].empty()) continue;
      Sequence& seq = sequences[s];
      RADIXLM_RETURN_IF_ERROR(seq.pages.reserve(pool_, seq.kv_tokens + static_cast<int64_t>(feeds[s].size())));
      for (int32_t token : feeds[s]) {
        if (every_row) batch.logit_rows.push_back(batch.num_tokens());
        batch.token_ids.push_back(token);
        batch.positions.push_back(static_cast<int32_t>(seq.kv_tokens));
        batch.kv_slots.push_back(seq.pages.slot(seq.kv_tokens));
        ++seq.kv_tokens;
      }
      if (!every_row) batch.logit_rows.push_back(batch.num_tokens() - 1);
      batch.query_start.push_back(batch.num_tokens());
      batch.kv_length.push_back(static_cast<int32_t>(seq.kv_tokens));
      batch.page_table.insert(batch.page_table.end(), seq.pages.pages().begin(), seq.pages.pages().end());
      batch.page_table_start.push_back(static_cast<int32_t>(batch.page_table.size()));
    }
    return batch;
  };

  auto run = [&](const ForwardBatch& batch) {
    Tensor logits = model_.forward(batch, kv_cache_);
    std::vector<float> host(static_cast<size_t>(logits.view.numel()));
    backend_.copy_to_host_f32(logits, host.data());
    return host;
  };

  // Prefill: every prompt in one step.
  auto start = Clock::now();
  RADIXLM_ASSIGN_OR_RETURN(ForwardBatch prefill, make_batch(prompts, options.return_prompt_logits));
  std::vector<float> logits = run(prefill);
  timing_.prefill_tokens = prefill.num_tokens();
  size_t row = 0;
  for (size_t s = 0; s < prompts.size(); ++s) {
    if (options.return_prompt_logits) {
      for (size_t i = 0; i < prompts[s].size(); ++i, ++row) {
        outputs[s].prompt_logits.emplace_back(logits.begin() + static_cast<int64_t>(row) * vocab,
                                              logits.begin() + static_cast<int64_t>(row + 1) * vocab);
      }
    } else {
      ++row;
    }
    if (options.max_new_tokens == 0) {
      sequences[s].finished = true;
      outputs[s].finish_reason = "length";
    } else {
      accept(s, greedy_token(logits.data() + static_cast<int64_t>(row - 1) * vocab, vocab));
    }
  }
  timing_.prefill_ms = elapsed_ms(start);

  // Decode: every unfinished sequence advances one token per step.
  start = Clock::now();
  while (true) {
    std::vector<std::vector<int32_t>> feeds(prompts.size());
    std::vector<size_t> active;
    for (size_t s = 0; s < prompts.size(); ++s) {
      if (!sequences[s].finished) {
        feeds[s] = {sequences[s].next_token};
        active.push_back(s);
      }
    }
    if (active.empty()) break;
    RADIXLM_ASSIGN_OR_RETURN(ForwardBatch step, make_batch(feeds, /*every_row=*/false));
    logits = run(step);
    for (size_t r = 0; r < active.size(); ++r) accept(active[r], greedy_token(logits.data() + static_cast<int64_t>(r) * vocab, vocab));
    ++timing_.decode_steps;
    timing_.decode_tokens += static_cast<int64_t>(active.size());
  }
  timing_.decode_ms = elapsed_ms(start);
  return outputs;
}

}  // namespace radixlm
