// libFuzzer target: tokenizing arbitrary bytes (special tokens on and off) and decoding arbitrary
// ids must never crash; every id produced must be in the vocabulary.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/error.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace {
std::unique_ptr<jing::tok::Tokenizer> load(const char* rel) {
  const char* dir = std::getenv("JING_FIXTURES");
  if (!dir) return nullptr;
  static std::vector<std::unique_ptr<jing::gguf::File>> keep;
  try {
    keep.push_back(std::make_unique<jing::gguf::File>(jing::gguf::File::open(std::string(dir) + "/" + rel)));
    return jing::tok::Tokenizer::from_gguf(*keep.back());
  } catch (const jing::Error&) {
    return nullptr;
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto qwen = load("tokenizer/qwen3-vocab.gguf");
  static auto deepseek = load("tokenizer/deepseek_v3-vocab.gguf");
  if (!qwen || !deepseek || size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  for (auto* tok : {qwen.get(), deepseek.get()}) {
    auto ids = tok->encode(text, data[0] & 1, data[0] & 2);
    for (auto id : ids)
      if (id < 0 || id >= tok->n_vocab()) std::abort();
    std::vector<int32_t> raw;
    for (size_t i = 0; i + 4 <= size && raw.size() < 64; i += 4) raw.push_back(static_cast<int32_t>(data[i] | data[i + 1] << 8 | data[i + 2] << 16) % (tok->n_vocab() + 10));
    jing::tok::StreamDecoder sd(*tok);
    for (auto id : raw) (void)sd.push(id);
    (void)sd.flush();
    (void)tok->decode(raw);
  }
  return 0;
}
