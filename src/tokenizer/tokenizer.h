// Tokenizers built from GGUF metadata (tokenizer.ggml.*): byte-level BPE with each family's
// pre-tokenizer, and SentencePiece-style. (Contract shared by model, run, server; implemented here.)
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"

namespace jing::tok {

using Token = int32_t;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Throws jing::Error when the file has no (or an unsupported) tokenizer.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file);

  // add_special: BOS/EOS as the metadata asks (tokenizer.ggml.add_bos_token ...).
  // parse_special: text of special/added tokens ("<｜User｜>") becomes those tokens.
  virtual std::vector<Token> encode(std::string_view text, bool add_special, bool parse_special) const = 0;
  // Concatenated bytes of the tokens (special tokens rendered as their text).
  virtual std::string decode(const std::vector<Token>& ids) const = 0;
  virtual std::string token_text(Token id) const = 0;  // the vocabulary string as stored
  virtual int n_vocab() const = 0;
  virtual Token bos() const = 0;  // -1 when none
  virtual Token eos() const = 0;
  virtual bool is_eog(Token id) const = 0;  // end of generation: EOS, EOT, <|im_end|>, ...
  virtual bool is_control(Token id) const = 0;  // not text: control, unknown and unused tokens
  virtual std::optional<Token> find_token(std::string_view text) const = 0;  // exact vocabulary entry
};

// Turns a token stream into text that never splits a UTF-8 character across chunks.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(tok) {}
  std::string push(Token id);  // whole characters ready so far (may be empty)
  std::string flush();         // whatever is left (invalid bytes become U+FFFD)

 private:
  const Tokenizer& tok_;
  std::string pending_;
};

}  // namespace jing::tok
