// The streaming detokenizer never splits a UTF-8 character and loses no byte.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "gguf/gguf.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

using namespace jing;

static bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!n || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

TEST(StreamDecoder, EmitsWholeCharactersAndEverything) {
  JING_FIXTURE_OR_SKIP(vpath, "tokenizer/qwen3-vocab.gguf");
  JING_FIXTURE_OR_SKIP(jpath, "tokenizer/qwen3.jsonl");
  auto f = gguf::File::open(vpath);
  auto tok = tok::Tokenizer::from_gguf(f);
  std::ifstream in(jpath);
  std::string line;
  int split_tokens = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    auto ids = j["ids_with_special"].get<std::vector<int32_t>>();
    tok::StreamDecoder sd(*tok);
    std::string all;
    for (auto id : ids) {
      std::string chunk = sd.push(id);
      EXPECT_TRUE(valid_utf8(chunk)) << j["text"];
      if (!valid_utf8(tok->decode({id}))) ++split_tokens;  // a token that holds part of a character
      all += chunk;
    }
    all += sd.flush();
    EXPECT_EQ(all, j["decoded"].get<std::string>());
  }
  EXPECT_GT(split_tokens, 0) << "the fixture should exercise tokens that split characters";
}

TEST(StreamDecoder, IncompleteTailBecomesReplacementCharacter) {
  JING_FIXTURE_OR_SKIP(vpath, "tokenizer/qwen3-vocab.gguf");
  auto f = gguf::File::open(vpath);
  auto tok = tok::Tokenizer::from_gguf(f);
  auto ids = tok->encode("鲸", false, false);
  ASSERT_GT(ids.size(), 0u);
  tok::StreamDecoder sd(*tok);
  std::string out;
  for (size_t i = 0; i + 1 < ids.size(); ++i) out += sd.push(ids[i]);
  if (ids.size() > 1) {
    EXPECT_EQ(out, "");
    EXPECT_EQ(sd.flush().substr(0, 3), "\xEF\xBF\xBD");
  }
}

TEST(Tokenizer, SurvivesInvalidUtf8AndOddInput) {
  JING_FIXTURE_OR_SKIP(vpath, "tokenizer/deepseek_v3-vocab.gguf");
  auto f = gguf::File::open(vpath);
  auto tok = tok::Tokenizer::from_gguf(f);
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string s(static_cast<size_t>(rng() % 64), '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    auto ids = tok->encode(s, true, i % 2);
    for (auto id : ids) ASSERT_TRUE(id >= 0 && id < tok->n_vocab());
  }
  EXPECT_EQ(tok->decode({-5, 99999999}), "");
}
