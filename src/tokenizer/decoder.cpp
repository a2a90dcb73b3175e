#include "tokenizer/decoder.h"

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/unicode_text.h"

namespace radixlm::tokenizer {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

void byte_level(std::vector<std::string>& tokens) {
  // Every token maps back to bytes through the alphabet; a token with a character outside it (an added
  // token such as "<|im_start|>" is inside it; one with a plain space is not) contributes its UTF-8 as is.
  std::string bytes;
  for (const auto& token : tokens) {
    if (auto raw = byte_level_to_bytes(token)) {
      bytes += *raw;
    } else {
      bytes += token;
    }
  }
  tokens.assign(1, to_valid_utf8(bytes));
}

void byte_fallback(std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  std::string run;
  size_t run_tokens = 0;
  auto flush = [&] {
    if (run_tokens == 0) return;
    if (is_valid_utf8(run)) {
      out.push_back(run);
    } else {
      for (size_t i = 0; i < run_tokens; ++i) out.emplace_back("\xEF\xBF\xBD");
    }
    run.clear();
    run_tokens = 0;
  };
  for (auto& token : tokens) {
    if (is_byte_fallback_token(token)) {
      run += static_cast<char>(hex_value(token[3]) * 16 + hex_value(token[4]));
      ++run_tokens;
    } else {
      flush();
      out.push_back(std::move(token));
    }
  }
  flush();
  tokens = std::move(out);
}

void strip(const Decoder& d, std::vector<std::string>& tokens) {
  // The content is one character; strip up to `start` of it from the front and `stop` from the back.
  for (auto& token : tokens) {
    size_t begin = 0, end = token.size();
    for (size_t i = 0; i < d.strip_start && token.compare(begin, d.content.size(), d.content) == 0; ++i) {
      begin += d.content.size();
    }
    for (size_t i = 0; i < d.strip_stop && end >= begin + d.content.size() &&
                       token.compare(end - d.content.size(), d.content.size(), d.content) == 0;
         ++i) {
      end -= d.content.size();
    }
    token = token.substr(begin, end - begin);
  }
}

void metaspace(const Decoder& d, std::vector<std::string>& tokens) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string out;
    const std::string& token = tokens[i];
    size_t pos = 0;
    while (pos < token.size()) {
      if (token.compare(pos, d.content.size(), d.content) == 0) {
        // HF drops every replacement character of the first token, not only a leading one.
        if (i != 0 || d.prepend_scheme == PrependScheme::kNever) out += ' ';
        pos += d.content.size();
      } else {
        const size_t start = pos;
        next_code_point(token, pos);
        out.append(token, start, pos - start);
      }
    }
    tokens[i] = std::move(out);
  }
}

std::string replace_string(const std::string& text, std::string_view from, std::string_view to) {
  std::string out;
  size_t last = 0;
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + from.size())) {
    out.append(text, last, pos - last);
    out.append(to);
    last = pos + from.size();
  }
  out.append(text, last);
  return out;
}

void word_piece(const Decoder& d, std::vector<std::string>& tokens) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string& token = tokens[i];
    if (i != 0 || d.continuation) {
      if (token.compare(0, d.content.size(), d.content) == 0) {
        token.erase(0, d.content.size());
      } else {
        token = " " + token;
      }
    }
    if (d.cleanup) {
      static const std::pair<const char*, const char*> kCleanups[] = {
          {" .", "."},       {" ?", "?"},     {" !", "!"},     {" ,", ","},     {" ' ", "'"},    {" n't", "n't"},
          {" 'm", "'m"},     {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
      for (const auto& [from, to] : kCleanups) token = replace_string(token, from, to);
    }
  }
}

void run(const Decoder& d, std::vector<std::string>& tokens) {
  switch (d.kind) {
    case Decoder::Kind::kByteLevel: byte_level(tokens); break;
    case Decoder::Kind::kMetaspace: metaspace(d, tokens); break;
    case Decoder::Kind::kByteFallback: byte_fallback(tokens); break;
    case Decoder::Kind::kFuse: {
      std::string joined;
      for (const auto& t : tokens) joined += t;
      tokens.assign(1, std::move(joined));
      break;
    }
    case Decoder::Kind::kStrip: strip(d, tokens); break;
    case Decoder::Kind::kReplace:
      for (auto& t : tokens) t = replace_all(*d.pattern, t, d.content);
      break;
    case Decoder::Kind::kWordPiece: word_piece(d, tokens); break;
    case Decoder::Kind::kSequence:
      for (const auto& child : d.children) run(child, tokens);
      break;
  }
}

}  // namespace

bool is_byte_fallback_token(std::string_view token) {
  return token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>' && hex_value(token[3]) >= 0 &&
         hex_value(token[4]) >= 0;
}

std::string apply_decoder(const Decoder* decoder, std::vector<std::string>& tokens, bool continuation) {
  if (decoder == nullptr) {
    // No decoder: HF joins the tokens with spaces.
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 || continuation) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  run(*decoder, tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

namespace {

// `whole_text`: an earlier step (Fuse, ByteLevel) already joined the tokens into one string.
void adjust_for_streaming(Decoder& d, bool continuation, bool keep_stop, bool& whole_text) {
  switch (d.kind) {
    case Decoder::Kind::kSequence:
      for (auto& child : d.children) adjust_for_streaming(child, continuation, keep_stop, whole_text);
      return;
    case Decoder::Kind::kFuse:
    case Decoder::Kind::kByteLevel: whole_text = true; return;
    case Decoder::Kind::kStrip:
      if (whole_text) {
        if (!keep_stop) d.strip_stop = 0;
        if (continuation) d.strip_start = 0;
      }
      return;
    case Decoder::Kind::kMetaspace:
      if (continuation) d.prepend_scheme = PrependScheme::kNever;
      return;
    case Decoder::Kind::kWordPiece:
      if (continuation) d.continuation = true;
      return;
    default: return;
  }
}

void find_trailing_strip(const Decoder& d, bool& whole_text, std::string& out) {
  if (d.kind == Decoder::Kind::kSequence) {
    for (const auto& child : d.children) find_trailing_strip(child, whole_text, out);
  } else if (d.kind == Decoder::Kind::kFuse || d.kind == Decoder::Kind::kByteLevel) {
    whole_text = true;
  } else if (d.kind == Decoder::Kind::kStrip && whole_text && d.strip_stop > 0) {
    out = d.content;
  }
}

}  // namespace

Decoder streaming_variant(const Decoder& decoder, bool continuation, bool keep_stop) {
  Decoder copy = decoder;
  bool whole_text = false;
  adjust_for_streaming(copy, continuation, keep_stop, whole_text);
  return copy;
}

std::string trailing_strip(const Decoder& decoder) {
  std::string out;
  bool whole_text = false;
  find_trailing_strip(decoder, whole_text, out);
  return out;
}

Expected<Decoder> parse_decoder(const nlohmann::json& spec) {
  RADIXLM_ASSIGN_OR_RETURN(std::string type, json_string(spec, "type"));
  Decoder d;
  if (type == "ByteLevel") {
    d.kind = Decoder::Kind::kByteLevel;
  } else if (type == "Metaspace") {
    d.kind = Decoder::Kind::kMetaspace;
    d.content = json_string_or(spec, "replacement", "\xE2\x96\x81");
    if (d.content.empty()) return make_error(StatusCode::kCorruptData, "Metaspace replacement is empty");
    RADIXLM_ASSIGN_OR_RETURN(d.prepend_scheme, parse_prepend_scheme(spec));
  } else if (type == "ByteFallback") {
    d.kind = Decoder::Kind::kByteFallback;
  } else if (type == "Fuse") {
    d.kind = Decoder::Kind::kFuse;
  } else if (type == "Strip") {
    d.kind = Decoder::Kind::kStrip;
    RADIXLM_ASSIGN_OR_RETURN(d.content, json_string(spec, "content"));
    const auto start = spec.value("start", nlohmann::json(0));
    const auto stop = spec.value("stop", nlohmann::json(0));
    if (!start.is_number_unsigned() || !stop.is_number_unsigned()) {
      return make_error(StatusCode::kCorruptData, "Strip decoder start/stop must be non-negative integers");
    }
    d.strip_start = start.get<size_t>();
    d.strip_stop = stop.get<size_t>();
    if (d.content.empty()) return make_error(StatusCode::kCorruptData, "Strip decoder content is empty");
  } else if (type == "Replace") {
    d.kind = Decoder::Kind::kReplace;
    RADIXLM_ASSIGN_OR_RETURN(Regex pattern, parse_pattern(spec));
    d.pattern = std::make_shared<Regex>(std::move(pattern));
    RADIXLM_ASSIGN_OR_RETURN(d.content, json_string(spec, "content"));
  } else if (type == "WordPiece") {
    d.kind = Decoder::Kind::kWordPiece;
    d.content = json_string_or(spec, "prefix", "##");
    d.cleanup = json_bool_or(spec, "cleanup", true);
  } else if (type == "Sequence") {
    d.kind = Decoder::Kind::kSequence;
    RADIXLM_ASSIGN_OR_RETURN(const nlohmann::json* list, json_array(spec, "decoders"));
    for (const auto& child : *list) {
      RADIXLM_ASSIGN_OR_RETURN(Decoder c, parse_decoder(child));
      d.children.push_back(std::move(c));
    }
  } else {
    return make_error(StatusCode::kUnsupported, "decoder type '{}' is not supported", type);
  }
  return d;
}

}  // namespace radixlm::tokenizer
