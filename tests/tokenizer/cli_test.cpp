// `jing tokenize` / `jing detokenize` give the fixture tokenizations.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "test_support.h"

TEST(TokenizeCli, JsonIdsMatchTheFixtureAndRoundTrip) {
  JING_FIXTURE_OR_SKIP(vocab, "tokenizer/qwen3-vocab.gguf");
  JING_FIXTURE_OR_SKIP(jsonl, "tokenizer/qwen3.jsonl");
  std::ifstream in(jsonl);
  std::string line;
  int checked = 0;
  while (std::getline(in, line) && checked < 4) {
    auto j = nlohmann::json::parse(line);
    const std::string text = j["text"];
    if (text.find("<|im_start|>") == std::string::npos && checked > 0) continue;
    auto plain = jing::test::run_jing({"tokenize", vocab.string(), text, "--json"});
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    EXPECT_EQ(nlohmann::json::parse(plain.out), j["ids"]) << text;
    auto special = jing::test::run_jing({"tokenize", vocab.string(), text, "--json", "--special"});
    EXPECT_EQ(nlohmann::json::parse(special.out), j["ids_add_special"]) << text;
    std::string ids;
    for (auto& id : j["ids_with_special"]) ids += (ids.empty() ? "" : ",") + std::to_string(id.get<int>());
    auto d = jing::test::run_jing({"detokenize", vocab.string(), ids});
    EXPECT_EQ(d.out, j["decoded"].get<std::string>());
    ++checked;
  }
  EXPECT_GE(checked, 2);
  auto bad = jing::test::run_jing({"detokenize", vocab.string(), "12,abc"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("not a token id"), std::string::npos);
}
