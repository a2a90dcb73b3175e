// Builds a tokenizer from HF tokenizers' tokenizer.json, and the finishing step every loader shares.

#include <nlohmann/json.hpp>

#include "tokenizer/json_fields.h"
#include "tokenizer/tokenizer_impl.h"

namespace radixlm::tokenizer {
namespace {

Expected<int32_t> parse_id(const nlohmann::json& value, const std::string& what) {
  if (!value.is_number_integer()) return make_error(StatusCode::kCorruptData, "{}: id is not an integer", what);
  const auto id = value.get<int64_t>();
  if (id < 0 || id > kMaxTokenId) {
    return make_error(StatusCode::kOutOfRange, "{}: id {} is outside [0, {}]", what, id, kMaxTokenId);
  }
  return static_cast<int32_t>(id);
}

Expected<VocabMap> parse_vocab_object(const nlohmann::json& vocab) {
  if (!vocab.is_object()) return make_error(StatusCode::kCorruptData, "model.vocab is not an object");
  VocabMap map;
  map.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    RADIXLM_ASSIGN_OR_RETURN(int32_t id, parse_id(it.value(), "vocab entry '" + it.key() + "'"));
    map.emplace(it.key(), id);
  }
  return map;
}

Expected<std::vector<std::pair<std::string, std::string>>> parse_merges(const nlohmann::json& merges) {
  if (!merges.is_array()) return make_error(StatusCode::kCorruptData, "model.merges is not a list");
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& m = merges[i];
    if (m.is_string()) {
      const std::string& line = m.get_ref<const std::string&>();
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        return make_error(StatusCode::kCorruptData, "merge {} ('{}') is not two tokens separated by a space", i,
                          line);
      }
      out.emplace_back(line.substr(0, space), line.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return make_error(StatusCode::kCorruptData, "merge {} is neither \"a b\" nor [a, b]", i);
    }
  }
  return out;
}

std::optional<std::string> optional_string(const nlohmann::json& object, const char* key) {
  if (!object.contains(key) || !object[key].is_string()) return std::nullopt;
  return object[key].get<std::string>();
}

Status parse_model(const nlohmann::json& model, TokenizerImpl& impl) {
  if (!model.is_object()) return make_error(StatusCode::kCorruptData, "'model' is missing or not an object");
  // Files written before the model got a "type" field are BPE.
  const std::string type = json_string_or(model, "type", model.contains("merges") ? "BPE" : "");
  if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0) {
    return make_error(StatusCode::kUnsupported, "BPE dropout makes encoding random; radixlm does not apply it");
  }
  if (type == "BPE") {
    BpeConfig config;
    if (!model.contains("vocab")) return make_error(StatusCode::kCorruptData, "model.vocab is missing");
    RADIXLM_ASSIGN_OR_RETURN(config.vocab, parse_vocab_object(model["vocab"]));
    if (model.contains("merges")) {
      RADIXLM_ASSIGN_OR_RETURN(config.merges, parse_merges(model["merges"]));
    }
    config.unk_token = optional_string(model, "unk_token");
    config.continuing_subword_prefix = optional_string(model, "continuing_subword_prefix").value_or("");
    config.end_of_word_suffix = optional_string(model, "end_of_word_suffix").value_or("");
    config.fuse_unk = json_bool_or(model, "fuse_unk", false);
    config.byte_fallback = json_bool_or(model, "byte_fallback", false);
    config.ignore_merges = json_bool_or(model, "ignore_merges", false);
    auto bpe = BpeModel::build(std::move(config));
    if (!bpe.ok()) return bpe.status().with_context("model");
    impl.bpe = std::move(bpe).value();
    return Status::ok_status();
  }
  if (type == "Unigram") {
    UnigramConfig config;
    RADIXLM_ASSIGN_OR_RETURN(const nlohmann::json* vocab, json_array(model, "vocab"));
    if (static_cast<int64_t>(vocab->size()) > kMaxTokenId) {
      return make_error(StatusCode::kOutOfRange, "Unigram vocabulary has {} pieces", vocab->size());
    }
    for (const auto& entry : *vocab) {
      if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() || !entry[1].is_number()) {
        return make_error(StatusCode::kCorruptData, "Unigram vocab entries must be [piece, score]");
      }
      config.pieces.emplace_back(entry[0].get<std::string>(), entry[1].get<double>());
    }
    if (model.contains("unk_id") && !model["unk_id"].is_null()) {
      RADIXLM_ASSIGN_OR_RETURN(config.unk_id, parse_id(model["unk_id"], "model.unk_id"));
    }
    config.byte_fallback = json_bool_or(model, "byte_fallback", false);
    auto unigram = UnigramModel::build(std::move(config));
    if (!unigram.ok()) return unigram.status().with_context("model");
    impl.unigram = std::move(unigram).value();
    return Status::ok_status();
  }
  return make_error(StatusCode::kUnsupported, "model type '{}' is not supported (BPE and Unigram are)", type);
}

Expected<AddedToken> parse_added_token(const nlohmann::json& entry, std::optional<int32_t> id) {
  AddedToken token;
  if (!entry.is_object()) return make_error(StatusCode::kCorruptData, "added token is not an object");
  if (id) {
    token.id = *id;
  } else {
    if (!entry.contains("id")) return make_error(StatusCode::kCorruptData, "added token has no id");
    RADIXLM_ASSIGN_OR_RETURN(token.id, parse_id(entry["id"], "added token"));
  }
  RADIXLM_ASSIGN_OR_RETURN(token.content, json_string(entry, "content"));
  if (token.content.empty()) return make_error(StatusCode::kCorruptData, "added token {} is empty", token.id);
  token.special = json_bool_or(entry, "special", false);
  token.lstrip = json_bool_or(entry, "lstrip", false);
  token.rstrip = json_bool_or(entry, "rstrip", false);
  token.single_word = json_bool_or(entry, "single_word", false);
  token.normalized = json_bool_or(entry, "normalized", !token.special);
  return token;
}

// tokenizer_config.json names tokens as a string or as {"content": ...}.
std::string config_token(const nlohmann::json& config, const char* key) {
  if (!config.contains(key)) return {};
  const auto& value = config[key];
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object()) return json_string_or(value, "content", "");
  return {};
}

bool decoder_has(const Decoder& d, Decoder::Kind kind) {
  if (d.kind == kind) return true;
  for (const auto& child : d.children) {
    if (decoder_has(child, kind)) return true;
  }
  return false;
}

}  // namespace

Expected<std::unique_ptr<TokenizerImpl>> build_from_tokenizer_json(std::string_view json_text) {
  auto root = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return make_error(StatusCode::kCorruptData, "not valid JSON (truncated or corrupt)");
  if (!root.is_object()) return make_error(StatusCode::kCorruptData, "top level is not a JSON object");
  auto impl = std::make_unique<TokenizerImpl>();
  try {
    RADIXLM_RETURN_IF_ERROR(parse_model(root.contains("model") ? root["model"] : nlohmann::json(), *impl));
    if (root.contains("normalizer") && !root["normalizer"].is_null()) {
      auto n = parse_normalizer(root["normalizer"]);
      if (!n.ok()) return n.status().with_context("normalizer");
      impl->normalizer = std::move(n).value();
    }
    if (root.contains("pre_tokenizer") && !root["pre_tokenizer"].is_null()) {
      auto p = parse_pre_tokenizer(root["pre_tokenizer"]);
      if (!p.ok()) return p.status().with_context("pre_tokenizer");
      impl->pre_tokenizer = std::move(p).value();
    }
    if (root.contains("post_processor") && !root["post_processor"].is_null()) {
      auto p = parse_post_processor(root["post_processor"]);
      if (!p.ok()) return p.status().with_context("post_processor");
      impl->post_processor = std::move(p).value();
    }
    if (root.contains("decoder") && !root["decoder"].is_null()) {
      auto d = parse_decoder(root["decoder"]);
      if (!d.ok()) return d.status().with_context("decoder");
      impl->decoder = std::move(d).value();
    }
    if (root.contains("added_tokens")) {
      RADIXLM_ASSIGN_OR_RETURN(const nlohmann::json* list, json_array(root, "added_tokens"));
      for (const auto& entry : *list) {
        RADIXLM_ASSIGN_OR_RETURN(AddedToken token, parse_added_token(entry, std::nullopt));
        impl->added_tokens.push_back(std::move(token));
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return make_error(StatusCode::kCorruptData, "unexpected JSON shape: {}", e.what());
  }
  return impl;
}

Status finish_tokenizer(TokenizerImpl& impl, const nlohmann::json& config) {
  try {
    // transformers adds tokenizer_config.json's added tokens that tokenizer.json lacks.
    if (config.contains("added_tokens_decoder") && config["added_tokens_decoder"].is_object()) {
      for (auto it = config["added_tokens_decoder"].begin(); it != config["added_tokens_decoder"].end(); ++it) {
        int64_t id = -1;
        const std::string& key = it.key();
        if (key.empty() || key.size() > 9 || key.find_first_not_of("0123456789") != std::string::npos) {
          return make_error(StatusCode::kCorruptData, "tokenizer_config.json: added token id '{}' is not a number",
                            key);
        }
        id = std::stoll(key);
        if (id > kMaxTokenId) return make_error(StatusCode::kOutOfRange, "added token id {} is too large", id);
        RADIXLM_ASSIGN_OR_RETURN(AddedToken token, parse_added_token(it.value(), static_cast<int32_t>(id)));
        bool present = false;
        for (const auto& existing : impl.added_tokens) present = present || existing.id == token.id;
        if (!present) impl.added_tokens.push_back(std::move(token));
      }
    }
    impl.bos_token = config_token(config, "bos_token");
    impl.eos_token = config_token(config, "eos_token");
  } catch (const nlohmann::json::exception& e) {
    return make_error(StatusCode::kCorruptData, "tokenizer_config.json: unexpected JSON shape: {}", e.what());
  }

  // id <-> token tables: the model's vocabulary, then added tokens on top (HF looks added tokens up first).
  int64_t max_id = -1;
  size_t count = 0;
  auto note_id = [&](int32_t id) {
    max_id = std::max<int64_t>(max_id, id);
    ++count;
  };
  if (impl.bpe) {
    for (const auto& [token, id] : impl.bpe->vocab()) note_id(id);
  } else if (impl.unigram) {
    for (size_t id = 0; id < impl.unigram->pieces().size(); ++id) note_id(static_cast<int32_t>(id));
  } else if (impl.sentencepiece) {
    for (int32_t id = 0; id < impl.sentencepiece->piece_count(); ++id) note_id(id);
  }
  for (const auto& token : impl.added_tokens) note_id(token.id);
  if (max_id >= static_cast<int64_t>(4 * count + 4096)) {
    return make_error(StatusCode::kOutOfRange, "token ids are too sparse: largest id {} for {} tokens", max_id, count);
  }
  const auto table_size = static_cast<size_t>(max_id + 1);
  impl.id_to_token.assign(table_size, {});
  impl.has_token.assign(table_size, 0);
  impl.special.assign(table_size, 0);
  impl.byte_fallback.assign(table_size, 0);
  auto set_token = [&](int32_t id, const std::string& token) {
    impl.id_to_token[static_cast<size_t>(id)] = token;
    impl.has_token[static_cast<size_t>(id)] = 1;
  };
  if (impl.bpe) {
    for (const auto& [token, id] : impl.bpe->vocab()) {
      set_token(id, token);
      impl.token_to_id.emplace(token, id);
    }
  } else if (impl.unigram) {
    for (size_t id = 0; id < impl.unigram->pieces().size(); ++id) {
      set_token(static_cast<int32_t>(id), impl.unigram->pieces()[id].first);
      impl.token_to_id.emplace(impl.unigram->pieces()[id].first, static_cast<int32_t>(id));
    }
  } else if (impl.sentencepiece) {
    for (int32_t id = 0; id < impl.sentencepiece->piece_count(); ++id) {
      set_token(id, impl.sentencepiece->id_to_piece(id));
      impl.token_to_id.emplace(impl.sentencepiece->id_to_piece(id), id);
    }
  }
  std::unordered_set<std::string> special_contents;
  for (const auto& token : impl.added_tokens) {
    set_token(token.id, token.content);
    impl.token_to_id[token.content] = token.id;
    if (token.special) special_contents.insert(token.content);
  }
  if (impl.decoder) {
    impl.stream_first_decoder = streaming_variant(*impl.decoder, /*continuation=*/false, /*keep_stop=*/false);
    impl.stream_continuation_decoder = streaming_variant(*impl.decoder, true, false);
    impl.final_continuation_decoder = streaming_variant(*impl.decoder, true, true);
    impl.stream_hold_suffix = trailing_strip(*impl.decoder);
  }
  impl.decoder_has_byte_level = impl.decoder && decoder_has(*impl.decoder, Decoder::Kind::kByteLevel);
  impl.decoder_has_byte_fallback = impl.decoder && decoder_has(*impl.decoder, Decoder::Kind::kByteFallback);
  impl.distinct_ids = 0;
  for (size_t id = 0; id < table_size; ++id) {
    if (!impl.has_token[id]) continue;
    ++impl.distinct_ids;
    impl.special[id] = special_contents.count(impl.id_to_token[id]) > 0;
    impl.byte_fallback[id] = impl.decoder_has_byte_fallback && is_byte_fallback_token(impl.id_to_token[id]);
  }

  // Matchers: normalized tokens are looked for by their normalized content.
  impl.raw_matcher = TokenMatcher();
  impl.normalized_matcher = TokenMatcher();
  for (size_t i = 0; i < impl.added_tokens.size(); ++i) {
    const AddedToken& token = impl.added_tokens[i];
    if (token.normalized) {
      std::string content = token.content;
      if (impl.normalizer) apply_normalizer(*impl.normalizer, content);
      impl.normalized_matcher.add(content, i);
    } else {
      impl.raw_matcher.add(token.content, i);
    }
  }
  return Status::ok_status();
}

}  // namespace radixlm::tokenizer
