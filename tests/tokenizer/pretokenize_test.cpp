// Every tokenizer.ggml.pre name llama.cpp's converters write for byte-level BPE models (the list in
// its llama-vocab.cpp) compiles to a regex list that splits text into pieces covering it exactly.
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "tokenizer/pretokenize.h"

TEST(PreTokenizer, EveryKnownFamilyCompilesAndCoversTheText) {
  const char* names[] = {"default", "gpt-2", "phi-2", "roberta-bpe", "mpt", "olmo", "jais", "llama-bpe", "llama3",
                         "llama-v3", "falcon3", "pixtral", "smaug-bpe", "dbrx", "qwen2", "deepseek-r1-qwen", "stablelm2",
                         "megrez", "deepseek-v3", "deepseek-llm", "deepseek-coder", "starcoder", "refact", "command-r",
                         "smollm", "exaone", "falcon"};
  const std::string text = "Hello, world!  It's 12345 \xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\n\n\tcode(x) \xE2\x88\x91 end   ";
  for (const char* name : names) {
    jing::tok::PreTokenizer pre(name);
    std::string joined;
    for (auto piece : pre.split(text)) {
      EXPECT_FALSE(piece.empty()) << name;
      joined += piece;
    }
    EXPECT_EQ(joined, text) << name;
  }
  EXPECT_THROW(jing::tok::PreTokenizer("no-such-family"), jing::Error);
}
