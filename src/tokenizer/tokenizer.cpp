#include "tokenizer/tokenizer.h"

#include "common/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/spm.h"

namespace jing::tok {

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  Vocab v = Vocab::from_gguf(file);
  if (v.model == "gpt2") return std::make_unique<ByteLevelBpe>(std::move(v));
  if (v.model == "llama") return std::make_unique<SentencePiece>(std::move(v));
  throw Error("tokenizer model '" + v.model + "' is not supported (gpt2 and llama are)");
}

// Emits the longest prefix of pending bytes that ends on a whole UTF-8 character.
std::string StreamDecoder::push(Token id) {
  pending_ += tok_.decode({id});
  size_t cut = pending_.size();
  // Walk back over a trailing incomplete sequence (at most 3 bytes).
  for (size_t back = 1; back <= 3 && back <= pending_.size(); ++back) {
    const auto c = static_cast<unsigned char>(pending_[pending_.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (need > back) cut = pending_.size() - back;
    break;
  }
  std::string ready = pending_.substr(0, cut);
  pending_.erase(0, cut);
  return ready;
}

std::string StreamDecoder::flush() {
  std::string out;
  for (size_t i = 0; i < pending_.size(); ++i) out += "\xEF\xBF\xBD";  // bytes that never formed a character
  pending_.clear();
  return out;
}

}  // namespace jing::tok
