// Splitting generated text into reasoning and content must not depend on how it is chunked.
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include "chat/reasoning.h"
#include "test_support.h"

using namespace jing;

namespace {

chat::TextDelta run(const std::string& text, bool opened, std::mt19937& rng, bool random_chunks) {
  chat::ReasoningParser p(opened);
  chat::TextDelta all;
  size_t i = 0;
  while (i < text.size()) {
    size_t n = random_chunks ? 1 + rng() % 7 : text.size();
    auto d = p.push(std::string_view(text).substr(i, std::min(n, text.size() - i)));
    all.reasoning += d.reasoning;
    all.content += d.content;
    i += n;
  }
  auto d = p.finish();
  all.reasoning += d.reasoning;
  all.content += d.content;
  return all;
}

}  // namespace

TEST(ReasoningParser, FixtureAssistantTurnsSplitTheSameWayInAnyChunking) {
  JING_FIXTURE_OR_SKIP(path, "templates/conversations.json");
  auto convs = nlohmann::json::parse(test::read_file(path));
  std::mt19937 rng(42);
  int checked = 0;
  for (auto& c : convs)
    for (auto& m : c["messages"]) {
      if (m["role"] != "assistant" || !m["content"].is_string()) continue;
      const std::string text = m["content"];
      auto whole = run(text, false, rng, false);
      auto close = text.find("</think>");
      if (close != std::string::npos) {
        auto open = text.find("<think>");
        std::string inner = text.substr(open + 7, close - open - 7);
        EXPECT_EQ(whole.reasoning, inner);
        std::string after = text.substr(close + 8);
        after.erase(0, after.find_first_not_of(" \t\r\n"));
        EXPECT_EQ(whole.content, after);
      } else {
        EXPECT_EQ(whole.reasoning, "");
      }
      for (int k = 0; k < 20; ++k) {
        auto chunked = run(text, false, rng, true);
        ASSERT_EQ(chunked.reasoning, whole.reasoning);
        ASSERT_EQ(chunked.content, whole.content);
      }
      ++checked;
    }
  EXPECT_GT(checked, 2);
}

TEST(ReasoningParser, PromptOpenedThinkAndUnclosedThoughts) {
  std::mt19937 rng(1);
  auto a = run("\nI should add.\n</think>\n\n2", true, rng, true);
  EXPECT_EQ(a.reasoning, "\nI should add.\n");
  EXPECT_EQ(a.content, "2");
  auto b = run("<think>still thinking when the tokens ran out", false, rng, true);
  EXPECT_EQ(b.reasoning, "still thinking when the tokens ran out");
  EXPECT_EQ(b.content, "");
  auto c = run("No reasoning at all. <think> is just text here", false, rng, true);
  EXPECT_EQ(c.reasoning, "");
  EXPECT_EQ(c.content, "No reasoning at all. <think> is just text here");
  auto d = run("<thi", false, rng, false);  // a partial tag at the very end is content
  EXPECT_EQ(d.content, "<thi");
}
