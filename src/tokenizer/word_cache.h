#pragma once
// A bounded, thread-safe cache from a word to its token ids. Encoding is dominated by repeated words, and
// HF tokenizers keeps the same kind of cache. Sharded so concurrent encodes rarely meet on one lock.

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/vocab_map.h"

namespace radixlm::tokenizer {

class WordCache {
 public:
  // Words longer than this are not cached (they rarely repeat and would crowd out the short ones).
  static constexpr size_t kMaxWordBytes = 256;

  bool lookup(std::string_view word, std::vector<int32_t>& out) const {
    if (word.size() > kMaxWordBytes) return false;
    const size_t h = StringHash{}(word);
    const Shard& shard = shards_[h % kShards];
    std::lock_guard lock(shard.mutex);
    auto it = shard.map.find(word);
    if (it == shard.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }

  void store(std::string_view word, const int32_t* ids, size_t count) const {
    if (word.size() > kMaxWordBytes) return;
    const size_t h = StringHash{}(word);
    Shard& shard = shards_[h % kShards];
    std::lock_guard lock(shard.mutex);
    // Once full the cache keeps what it has, like HF's: no eviction bookkeeping on the hot path.
    if (shard.map.size() >= kEntriesPerShard) return;
    shard.map.emplace(std::string(word), std::vector<int32_t>(ids, ids + count));
  }

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kEntriesPerShard = 4096;
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace radixlm::tokenizer
