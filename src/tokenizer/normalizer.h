#pragma once
// Normalizers: text -> text rewrites applied before pre-tokenization (HF tokenizers' `normalizer` section).
// radixlm keeps no offsets, so a normalizer is a plain function on a UTF-8 string.

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"
#include "tokenizer/regex.h"

namespace radixlm::tokenizer {

struct Normalizer {
  enum class Kind { kNfc, kNfd, kNfkc, kNfkd, kLowercase, kStrip, kReplace, kPrepend, kSequence };
  Kind kind = Kind::kSequence;
  bool strip_left = false, strip_right = false;  // kStrip
  std::string content;                            // kReplace: replacement; kPrepend: prefix
  std::shared_ptr<Regex> pattern;                 // kReplace
  std::vector<Normalizer> children;               // kSequence
};

Expected<Normalizer> parse_normalizer(const nlohmann::json& spec);
void apply_normalizer(const Normalizer& normalizer, std::string& text);

}  // namespace radixlm::tokenizer
