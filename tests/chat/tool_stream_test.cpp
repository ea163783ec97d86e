// Tool calls parsed while streamed: any split of the text gives the same calls as parsing it whole.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "chat/tool_calls.h"
#include "chat/tool_stream.h"

namespace jing::chat {
namespace {

struct Reassembled {
  std::string content;
  std::vector<ToolCall> calls;
};

Reassembled stream_in_pieces(ToolFormat f, const std::string& text, unsigned seed) {
  ToolCallStream s(f);
  Reassembled r;
  auto take = [&](const ToolStreamOut& o) {
    r.content += o.content;
    for (const auto& d : o.calls) {
      if (d.index == r.calls.size()) r.calls.push_back({d.name, ""});
      ASSERT_LT(d.index, r.calls.size());
      if (!d.name.empty()) EXPECT_EQ(r.calls[d.index].name, d.name);
      r.calls[d.index].arguments += d.arguments;
    }
  };
  std::mt19937 rng(seed);
  for (size_t i = 0; i < text.size();) {
    const size_t n = std::min<size_t>(text.size() - i, 1 + rng() % 7);
    take(s.push(std::string_view(text).substr(i, n)));
    i += n;
  }
  take(s.finish());
  return r;
}

void expect_same_as_whole(ToolFormat f, const std::string& text) {
  const ParsedContent whole = parse_tool_calls(text);
  ASSERT_FALSE(whole.calls.empty());
  for (unsigned seed = 0; seed < 20; ++seed) {
    const Reassembled r = stream_in_pieces(f, text, seed);
    ASSERT_EQ(r.calls.size(), whole.calls.size()) << "seed " << seed;
    for (size_t i = 0; i < r.calls.size(); ++i) {
      EXPECT_EQ(r.calls[i].name, whole.calls[i].name);
      EXPECT_EQ(nlohmann::json::parse(r.calls[i].arguments), nlohmann::json::parse(whole.calls[i].arguments)) << r.calls[i].arguments;
    }
    EXPECT_EQ(r.content.find_first_not_of(" \n"), whole.content.empty() ? std::string::npos : 0u);
  }
}

TEST(ToolCallStream, DeepSeekR1CallsStreamAsTheyAreWritten) {
  expect_same_as_whole(ToolFormat::DeepSeekR1,
                       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\", \"n\": [1, {\"x\": \"}\"}]}\n```"
                       "<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{\"tz\": \"CET\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>");
}

TEST(ToolCallStream, DeepSeekV31Calls) {
  expect_same_as_whole(ToolFormat::DeepSeekV31,
                       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{\"tz\": \"<｜x\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>");
}

TEST(ToolCallStream, HermesCallsAfterContent) {
  expect_same_as_whole(ToolFormat::Hermes,
                       "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo \\\"N\\\" {\", \"deep\": {\"a\": [1, 2]}}}\n</tool_call>\n"
                       "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>");
  const Reassembled r = stream_in_pieces(ToolFormat::Hermes, "Let me look.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>", 1);
  EXPECT_EQ(r.content, "Let me look.\n");
}

TEST(ToolCallStream, TextWithoutCallsIsAllContent) {
  for (ToolFormat f : {ToolFormat::DeepSeekR1, ToolFormat::Hermes, ToolFormat::Llama3}) {
    const Reassembled r = stream_in_pieces(f, "Plain answer with < and <tool and <｜tool▁calls", 3);
    EXPECT_EQ(r.content, "Plain answer with < and <tool and <｜tool▁calls");
    EXPECT_TRUE(r.calls.empty());
  }
}

}  // namespace
}  // namespace jing::chat
