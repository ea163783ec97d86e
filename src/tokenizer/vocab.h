// The vocabulary as GGUF stores it (tokenizer.ggml.*): token strings, their types, merges,
// special token ids and the add-BOS/EOS flags.
#pragma once
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace jing::tok {

enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct Vocab {
  std::string model;  // "gpt2", "llama", ...
  std::string pre;    // pre-tokenizer name
  std::vector<std::string> tokens;
  std::vector<TokenType> types;
  std::vector<float> scores;
  std::vector<std::string> merges;
  std::unordered_map<std::string, Token> ids;
  Token bos = -1, eos = -1, eot = -1, unk = -1, pad = -1;
  bool add_bos = false, add_eos = false;
  std::vector<Token> eog;  // every id that ends generation

  static Vocab from_gguf(const gguf::File& f);
  std::optional<Token> find(std::string_view text) const;
  bool is_special(Token id) const {  // matched in text only when asked (control) or always (user-defined)
    auto t = types[static_cast<size_t>(id)];
    return t == TokenType::Control || t == TokenType::UserDefined;
  }
};

// What every tokenizer answers straight from its vocabulary.
class VocabTokenizer : public Tokenizer {
 public:
  explicit VocabTokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}
  std::string token_text(Token id) const override { return vocab_.tokens.at(static_cast<size_t>(id)); }
  int n_vocab() const override { return static_cast<int>(vocab_.tokens.size()); }
  Token bos() const override { return vocab_.bos; }
  Token eos() const override { return vocab_.eos; }
  bool is_eog(Token id) const override { return std::find(vocab_.eog.begin(), vocab_.eog.end(), id) != vocab_.eog.end(); }
  std::optional<Token> find_token(std::string_view text) const override { return vocab_.find(text); }
  bool is_control(Token id) const override {
    const auto t = vocab_.types.at(static_cast<size_t>(id));
    return t == TokenType::Control || t == TokenType::Unknown || t == TokenType::Unused;
  }
  const Vocab& vocab() const { return vocab_; }

 protected:
  Vocab vocab_;
};

}  // namespace jing::tok
