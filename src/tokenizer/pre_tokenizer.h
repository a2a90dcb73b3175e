#pragma once
// Pre-tokenizers: cut each normalized span into the words the model encodes one by one (HF tokenizers'
// `pre_tokenizer` section).

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"
#include "tokenizer/piece.h"
#include "tokenizer/regex.h"

namespace radixlm::tokenizer {

// What happens to the text a pattern matches (HF's SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

enum class PrependScheme { kAlways, kFirst, kNever };

struct PreTokenizer {
  enum class Kind {
    kSplit, kByteLevel, kMetaspace, kWhitespace, kWhitespaceSplit, kDigits, kPunctuation, kSequence
  };
  Kind kind = Kind::kSequence;
  std::shared_ptr<Regex> pattern;  // kSplit; kByteLevel with use_regex
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;  // kByteLevel
  bool individual_digits = false;  // kDigits
  std::string replacement;  // kMetaspace, as UTF-8
  PrependScheme prepend_scheme = PrependScheme::kAlways;
  bool split = true;  // kMetaspace
  std::vector<PreTokenizer> children;  // kSequence
};

Expected<PreTokenizer> parse_pre_tokenizer(const nlohmann::json& spec);
Expected<PrependScheme> parse_prepend_scheme(const nlohmann::json& spec);

// Replaces `pieces` (ordinary text only) by the pieces the pre-tokenizer cuts them into. Empty pieces vanish.
void apply_pre_tokenizer(const PreTokenizer& pre_tokenizer, std::vector<Piece>& pieces);

// The regex GPT-2's ByteLevel pre-tokenizer uses when use_regex is on.
extern const char* const kGpt2SplitPattern;

}  // namespace radixlm::tokenizer
