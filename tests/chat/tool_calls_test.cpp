// Tool calls in the shapes the fixture templates render them come back as the same calls.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "chat/template.h"
#include "chat/tool_calls.h"
#include "test_support.h"

using namespace jing;
using json = nlohmann::ordered_json;

// Render the fixture conversation with a tool call through each family's template, cut out the
// assistant's turn, and parse it back: the call's name and arguments must survive.
TEST(ToolCalls, RoundTripThroughTheFixtureTemplates) {
  auto dir = test::fixtures_dir();
  if (dir.empty()) GTEST_SKIP() << "fixtures not found";
  auto convs = json::parse(test::read_file(dir / "templates/conversations.json"));
  json conv;
  for (auto& c : convs)
    for (auto& m : c["messages"])
      if (m.contains("tool_calls")) conv = c;
  ASSERT_FALSE(conv.is_null());
  json call;
  json upto = json::array();
  for (auto& m : conv["messages"]) {
    upto.push_back(m);
    if (m.contains("tool_calls")) {
      call = m["tool_calls"][0]["function"];
      break;
    }
  }
  int parsed = 0;
  for (const char* name : {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", "Qwen-Qwen2.5-7B-Instruct.jinja", "deepseek-ai-DeepSeek-V3.1.jinja"}) {
    SCOPED_TRACE(name);
    std::string src = test::read_file(dir / "templates" / name);
    json before = upto;
    before.erase(before.size() - 1);
    std::string a = chat::ChatTemplate(src, "<s>", "</s>").render(before, conv.value("tools", json()), true);
    std::string b = chat::ChatTemplate(src, "<s>", "</s>").render(upto, conv.value("tools", json()), false);
    size_t common = 0;  // the assistant's turn starts where the two renderings part
    while (common < a.size() && common < b.size() && a[common] == b[common]) ++common;
    while (common > 0 && b[common - 1] != '>') --common;  // back to a tag boundary
    auto p = chat::parse_tool_calls(b.substr(common));
    ASSERT_EQ(p.calls.size(), 1u);
    EXPECT_EQ(p.calls[0].name, call["name"].get<std::string>());
    auto args = call["arguments"].is_string() ? json::parse(call["arguments"].get<std::string>()) : call["arguments"];
    EXPECT_EQ(json::parse(p.calls[0].arguments), args);
    ++parsed;
  }
  EXPECT_EQ(parsed, 3);
  auto plain = chat::parse_tool_calls("Just an answer.");
  EXPECT_TRUE(plain.calls.empty());
  EXPECT_EQ(plain.content, "Just an answer.");
  auto llama = chat::parse_tool_calls(R"({"name": "get_weather", "parameters": {"city": "Paris"}})");
  ASSERT_EQ(llama.calls.size(), 1u);
  EXPECT_EQ(llama.calls[0].arguments, R"({"city":"Paris"})");
}
