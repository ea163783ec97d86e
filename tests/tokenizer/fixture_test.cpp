// Tokenizations made by Hugging Face tokenizers (fixtures): every line must match exactly.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "gguf/gguf.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

using namespace jing;

namespace {

void check_file(const std::string& vocab, const std::string& jsonl) {
  JING_FIXTURE_OR_SKIP(vpath, "tokenizer/" + vocab);
  JING_FIXTURE_OR_SKIP(jpath, "tokenizer/" + jsonl);
  auto f = gguf::File::open(vpath);
  auto tok = tok::Tokenizer::from_gguf(f);
  std::ifstream in(jpath);
  std::string line;
  int n = 0, ok_ids = 0, ok_special = 0, ok_add = 0, ok_decoded = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    const std::string text = j["text"];
    auto ids = tok->encode(text, false, false);
    auto ids_special = tok->encode(text, false, true);
    auto ids_add = tok->encode(text, true, true);
    auto decoded = tok->decode(j["ids_with_special"].get<std::vector<int32_t>>());
    ok_ids += ids == j["ids"].get<std::vector<int32_t>>();
    ok_special += ids_special == j["ids_with_special"].get<std::vector<int32_t>>();
    ok_add += ids_add == j["ids_add_special"].get<std::vector<int32_t>>();
    ok_decoded += decoded == j["decoded"].get<std::string>();
    EXPECT_EQ(ids, j["ids"].get<std::vector<int32_t>>()) << "ids of " << nlohmann::json(text).dump();
    EXPECT_EQ(ids_special, j["ids_with_special"].get<std::vector<int32_t>>()) << "ids_with_special of " << nlohmann::json(text).dump();
    EXPECT_EQ(ids_add, j["ids_add_special"].get<std::vector<int32_t>>()) << "ids_add_special of " << nlohmann::json(text).dump();
    EXPECT_EQ(decoded, j["decoded"].get<std::string>()) << "decoding of " << nlohmann::json(text).dump();
    ++n;
  }
  std::printf("[tokenizer] %s: ids %d/%d, ids_with_special %d/%d, ids_add_special %d/%d, decoded %d/%d\n", vocab.c_str(), ok_ids, n,
              ok_special, n, ok_add, n, ok_decoded, n);
  EXPECT_GT(n, 100);
}

}  // namespace

TEST(TokenizerFixtures, Qwen) { check_file("qwen3-vocab.gguf", "qwen3.jsonl"); }
TEST(TokenizerFixtures, DeepSeekV3) { check_file("deepseek_v3-vocab.gguf", "deepseek_v3.jsonl"); }
