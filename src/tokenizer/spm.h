// SentencePiece-style BPE (tokenizer.ggml.model = llama, the Llama-2 family): spaces become
// U+2581, the highest-scoring merges apply first, and characters outside the vocabulary fall
// back to <0xXX> byte tokens.
#pragma once
#include "tokenizer/vocab.h"

namespace jing::tok {

class SentencePiece : public VocabTokenizer {
 public:
  explicit SentencePiece(Vocab vocab);
  std::vector<Token> encode(std::string_view text, bool add_special, bool parse_special) const override;
  std::string decode(const std::vector<Token>& ids) const override;

 private:
  void encode_text(std::string_view text, bool first, std::vector<Token>& out) const;
  Token byte_tokens_[256];
};

}  // namespace jing::tok
