#pragma once
// radixlm's tokenizer: encodes and decodes exactly as Hugging Face `tokenizers` does with the same files, and
// streams decoded text token by token without ever cutting a UTF-8 character.
//
//   auto tok = tokenizer::Tokenizer::load("/models/Llama-3.2-3B-Instruct");  // Expected<Tokenizer>
//   std::vector<int32_t> ids = tok->encode("Hello", /*add_special_tokens=*/true);
//   std::string text = tok->decode(ids, /*skip_special_tokens=*/true);
//
// A Tokenizer is immutable after loading and safe to use from many threads at once.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace radixlm::tokenizer {

// Which files a directory is loaded from. kAuto: tokenizer.json; else vocab.json + merges.txt (GPT-2-style
// byte-level BPE); else tokenizer.model (SentencePiece). tokenizer_config.json adds its added/special tokens
// and names the bos/eos tokens in every case.
enum class TokenizerSource { kAuto, kTokenizerJson, kVocabMerges, kSentencePiece };

struct LoadOptions {
  TokenizerSource source = TokenizerSource::kAuto;
};

struct TokenizerImpl;

class Tokenizer {
 public:
  static Expected<Tokenizer> load(const std::string& directory, const LoadOptions& options = {});
  // From file contents (tests and fuzzers); `tokenizer_config_json` may be empty.
  static Expected<Tokenizer> from_json(std::string_view tokenizer_json, std::string_view tokenizer_config_json = {});

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Invalid UTF-8 in `text` is first replaced by U+FFFD (one per maximal invalid subpart, like Rust's
  // String::from_utf8_lossy), so any byte string encodes.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;

  // Ids the tokenizer does not know are dropped, as HF does. `spaces_between_special_tokens` is SGLang's
  // sampling parameter; like transformers' fast tokenizers (which SGLang always uses), the decoded text does
  // not depend on it: the decoder chain sees special tokens inline, as HF's does.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens,
                     bool spaces_between_special_tokens = true) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;
  // Number of distinct ids (model vocabulary plus added tokens), as HF's get_vocab_size(True).
  size_t vocab_size() const;
  bool is_special(int32_t id) const;

  // From tokenizer_config.json; empty when it names none.
  const std::string& bos_token() const;
  const std::string& eos_token() const;

  const TokenizerImpl& impl() const { return *impl_; }

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerImpl> impl);
  std::unique_ptr<TokenizerImpl> impl_;
};

struct DetokenizeOptions {
  bool skip_special_tokens = true;
  bool spaces_between_special_tokens = true;
};

// Streaming decode of one sequence. feed() returns the text that became final with this token; finish()
// returns what was still held back. The concatenation of everything returned equals
// tokenizer.decode(all ids fed), and no returned piece ends inside a UTF-8 character.
//
// Like SGLang's detokenizer it decodes a short window [prefix_offset, end) and emits the part past
// read_offset, so each step costs a few tokens, not the whole sequence. Unlike it, a window that starts
// mid-sequence is decoded as a continuation (no SentencePiece leading-space removal, no Strip at its start),
// so each window's text is exactly its tokens' share of the full decode. It holds text back while the bytes
// of a byte-level window end in an unfinished UTF-8 sequence (checked on the bytes themselves, so a genuine
// U+FFFD or an invalid byte does not stall the stream), inside a run of byte-fallback tokens (a later byte
// can still turn the whole run into replacement characters), or in a character a final Strip decoder would
// remove if the text ended there.
class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, DetokenizeOptions options = {});

  std::string feed(int32_t id);
  std::string finish();

 private:
  std::string decode_window(size_t begin, size_t end, bool final) const;
  bool stable_to_emit() const;
  bool ends_inside_character() const;

  const Tokenizer* tokenizer_;
  DetokenizeOptions options_;
  std::vector<int32_t> ids_;  // kept ids (special tokens already dropped when skipping them)
  size_t prefix_offset_ = 0, read_offset_ = 0;
  size_t dropped_ = 0;  // ids removed from the front of ids_ to bound memory
};

}  // namespace radixlm::tokenizer
