// Byte-level BPE (GPT-2 style, tokenizer.ggml.model = gpt2): text is split by the family's
// pre-tokenizer, each piece's bytes are mapped to printable characters, and merges apply in rank order.
#pragma once
#include <array>
#include <unordered_map>

#include "tokenizer/pretokenize.h"
#include "tokenizer/vocab.h"

namespace jing::tok {

class ByteLevelBpe : public VocabTokenizer {
 public:
  explicit ByteLevelBpe(Vocab vocab);
  std::vector<Token> encode(std::string_view text, bool add_special, bool parse_special) const override;
  std::string decode(const std::vector<Token>& ids) const override;

 private:
  void encode_piece(std::string_view piece, std::vector<Token>& out) const;
  void encode_text(std::string_view text, std::vector<Token>& out) const;
  bool always_matched(Token t) const;

  PreTokenizer pre_;
  struct Merge {
    int rank;
    Token result;
  };
  std::unordered_map<uint64_t, Merge> merges_;       // (left id << 32 | right id) -> merge
  std::vector<Token> byte_token_;                    // the token of each single byte
  std::vector<std::string> piece_bytes_;             // token id -> the bytes it stands for
  std::vector<Token> specials_;                      // matched in text, longest first
  std::array<std::vector<Token>, 256> specials_by_first_;  // the same, by first byte
};

// GPT-2's reversible map from bytes to printable code points.
const std::string& byte_to_unicode(uint8_t b);

}  // namespace jing::tok
