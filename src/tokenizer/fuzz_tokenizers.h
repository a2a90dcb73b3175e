#pragma once
// Small tokenizers built in code for the fuzzers (which get no fixture paths): a byte-level BPE like
// Llama-3's and a SentencePiece-style BPE with byte fallback like Llama-2's, each with added tokens.

#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_text.h"

namespace radixlm::tokenizer::fuzz {

inline std::string byte_level_tokenizer_json() {
  nlohmann::json vocab = nlohmann::json::object();
  int next = 0;
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    append_utf8(ch, byte_to_char(static_cast<unsigned char>(b)));
    vocab[ch] = next++;
  }
  const char* merges[] = {"Ġ t", "h e", "Ġt he", "Ġ a", "i n", "Ġ s", "e r", "Ġ Ġ", "ĠĠ ĠĠ", "Ċ Ċ", "Ã ©"};
  for (const char* m : merges) {
    std::string s = m;
    const size_t space = s.find(' ');
    vocab[s.substr(0, space) + s.substr(space + 1)] = next++;
  }
  nlohmann::json j;
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"ignore_merges", true}};
  j["normalizer"] = {{"type", "NFC"}};
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern",
          {{"Regex", R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
         {"behavior", "Isolated"},
         {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", {{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}},
                                     {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                         {"special_tokens", {{"<bos>", {{"id", "<bos>"}, {"ids", {next}}, {"tokens", {"<bos>"}}}}}}};
  j["decoder"] = {{"type", "ByteLevel"}};
  j["added_tokens"] = {
      {{"id", next}, {"content", "<bos>"}, {"special", true}, {"normalized", false}},
      {{"id", next + 1}, {"content", "<|eot|>"}, {"special", true}, {"normalized", false}, {"rstrip", true}},
      {{"id", next + 2}, {"content", "word"}, {"special", false}, {"normalized", true}, {"single_word", true}}};
  return j.dump();
}

inline std::string byte_fallback_tokenizer_json() {
  nlohmann::json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  int next = 3;
  char name[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = next++;
  }
  const char* pieces[] = {"\xE2\x96\x81", "a", "b", "c", "e", "h", "t", " ", "\xE2\x96\x81t", "he", "\xE2\x96\x81the",
                          "\xE2\x96\x81\xE2\x96\x81", "\xC3\xA9"};
  for (const char* p : pieces) vocab[p] = next++;
  nlohmann::json j;
  j["model"] = {{"type", "BPE"},
                {"vocab", vocab},
                {"merges", {"\xE2\x96\x81 t", "h e", "\xE2\x96\x81t he", "\xE2\x96\x81 \xE2\x96\x81"}},
                {"unk_token", "<unk>"},
                {"byte_fallback", true},
                {"fuse_unk", true}};
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"},
                        {"split", false}};
  j["decoder"] = {{"type", "Sequence"},
                  {"decoders",
                   {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                    {{"type", "ByteFallback"}},
                    {{"type", "Fuse"}},
                    {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 1}}}}};
  j["added_tokens"] = {{{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
                       {{"id", 2}, {"content", "</s>"}, {"special", true}, {"normalized", false}}};
  return j.dump();
}

}  // namespace radixlm::tokenizer::fuzz
