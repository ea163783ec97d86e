// SentencePiece-style BPE (tokenizer.ggml.model = llama, the Llama-2 family): spaces become
// U+2581, the highest-scoring merges apply first, and characters outside the vocabulary fall
// back to <0xXX> byte tokens.
#pragma once
#include "tokenizer/vocab.h"

namespace jing::tok {

class SentencePiece : public Tokenizer {
 public:
  explicit SentencePiece(Vocab vocab);
  std::vector<Token> encode(std::string_view text, bool add_special, bool parse_special) const override;
  std::string decode(const std::vector<Token>& ids) const override;
  std::string token_text(Token id) const override { return vocab_.tokens.at(static_cast<size_t>(id)); }
  int n_vocab() const override { return static_cast<int>(vocab_.tokens.size()); }
  Token bos() const override { return vocab_.bos; }
  Token eos() const override { return vocab_.eos; }
  bool is_eog(Token id) const override;
  std::optional<Token> find_token(std::string_view text) const override { return vocab_.find(text); }

 private:
  void encode_text(std::string_view text, bool first, std::vector<Token>& out) const;
  Vocab vocab_;
  Token byte_tokens_[256];
};

}  // namespace jing::tok
