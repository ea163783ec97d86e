#include "tokenizer/vocab.h"

#include <algorithm>

#include "common/error.h"

namespace jing::tok {

Vocab Vocab::from_gguf(const gguf::File& f) {
  Vocab v;
  v.model = f.get_string("tokenizer.ggml.model").value_or("");
  if (v.model.empty()) throw Error("the model file has no tokenizer (tokenizer.ggml.model is missing)");
  v.pre = f.get_string("tokenizer.ggml.pre").value_or("default");
  const gguf::Array* tokens = f.get_array("tokenizer.ggml.tokens");
  if (!tokens || tokens->items.empty()) throw Error("the model file has no tokenizer.ggml.tokens");
  v.tokens.reserve(tokens->items.size());
  for (const auto& t : tokens->items) v.tokens.push_back(t.as_string());
  const size_t n = v.tokens.size();
  v.types.assign(n, TokenType::Normal);
  if (const gguf::Array* types = f.get_array("tokenizer.ggml.token_type")) {
    if (types->items.size() != n) throw Error("tokenizer.ggml.token_type has " + std::to_string(types->items.size()) + " entries for " + std::to_string(n) + " tokens");
    for (size_t i = 0; i < n; ++i) v.types[i] = static_cast<TokenType>(types->items[i].as_int());
  }
  if (const gguf::Array* scores = f.get_array("tokenizer.ggml.scores"))
    for (const auto& s : scores->items) v.scores.push_back(static_cast<float>(s.as_float()));
  if (const gguf::Array* merges = f.get_array("tokenizer.ggml.merges"))
    for (const auto& m : merges->items) v.merges.push_back(m.as_string());
  v.ids.reserve(n);
  for (size_t i = 0; i < n; ++i) v.ids.emplace(v.tokens[i], static_cast<Token>(i));

  auto id = [&](const char* key) -> Token {
    auto x = f.get_int(key);
    if (!x || *x < 0 || *x >= static_cast<int64_t>(n)) return -1;
    return static_cast<Token>(*x);
  };
  v.bos = id("tokenizer.ggml.bos_token_id");
  v.eos = id("tokenizer.ggml.eos_token_id");
  v.eot = id("tokenizer.ggml.eot_token_id");
  v.unk = id("tokenizer.ggml.unknown_token_id");
  v.pad = id("tokenizer.ggml.padding_token_id");
  v.add_bos = f.get_bool("tokenizer.ggml.add_bos_token").value_or(v.model == "llama");
  v.add_eos = f.get_bool("tokenizer.ggml.add_eos_token").value_or(false);

  // End of generation: EOS, EOT, and the end-of-turn markers chat families use.
  for (Token t : {v.eos, v.eot, id("tokenizer.ggml.eom_token_id")})
    if (t >= 0) v.eog.push_back(t);
  for (const char* text : {"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|endoftext|>", "<｜end▁of▁sentence｜>", "<|end|>", "<end_of_turn>"})
    if (auto t = v.find(text); t && v.is_special(*t) && std::find(v.eog.begin(), v.eog.end(), *t) == v.eog.end()) v.eog.push_back(*t);
  return v;
}

std::optional<Token> Vocab::find(std::string_view text) const {
  auto it = ids.find(std::string(text));
  if (it == ids.end()) return std::nullopt;
  return it->second;
}

}  // namespace jing::tok
