// Every rendering in the fixtures (transformers' apply_chat_template) must be byte-exact, and
// templates that raise must raise.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "chat/template.h"
#include "test_support.h"

using namespace jing;
using json = nlohmann::ordered_json;

TEST(ChatTemplateFixtures, EveryRenderingIsByteExact) {
  auto dir = test::fixtures_dir();
  if (dir.empty()) GTEST_SKIP() << "fixtures not found";
  auto conversations = json::parse(test::read_file(dir / "templates/conversations.json"));
  std::map<std::string, json> by_name;
  for (auto& c : conversations) by_name[c["name"].get<std::string>()] = c;
  int total = 0, passed = 0, files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "templates")) {
    if (!e.path().string().ends_with(".expected.json")) continue;
    ++files;
    auto expected = json::parse(test::read_file(e.path()));
    std::string tmpl_file = expected["template"];
    std::string source = test::read_file(dir / "templates" / tmpl_file);
    int file_pass = 0, file_total = 0;
    for (auto& c : expected["cases"]) {
      ++total, ++file_total;
      const json& conv = by_name.at(c["conversation"].get<std::string>());
      std::string bos = c["bos_token"].is_string() ? c["bos_token"].get<std::string>() : "";
      std::string eos = c["eos_token"].is_string() ? c["eos_token"].get<std::string>() : "";
      json tools = conv.contains("tools") ? conv["tools"] : json();
      std::string got, error;
      try {
        chat::ChatTemplate t(source, bos, eos);
        got = t.render_as_given(conv["messages"], tools, c["add_generation_prompt"].get<bool>());
      } catch (const std::exception& ex) {
        error = ex.what();
      }
      SCOPED_TRACE(tmpl_file + " / " + c["conversation"].get<std::string>() + " / agp=" + (c["add_generation_prompt"].get<bool>() ? "1" : "0"));
      if (c.contains("error")) {
        EXPECT_FALSE(error.empty()) << "expected the template to raise: " << c["error"];
        if (!error.empty()) ++passed, ++file_pass;
      } else {
        EXPECT_EQ(error, "");
        EXPECT_EQ(got, c["rendered"].get<std::string>());
        if (error.empty() && got == c["rendered"].get<std::string>()) ++passed, ++file_pass;
      }
    }
    std::printf("[template] %-48s %d/%d\n", tmpl_file.c_str(), file_pass, file_total);
  }
  std::printf("[template] total %d/%d byte-exact\n", passed, total);
  EXPECT_GE(files, 10);
  EXPECT_EQ(passed, total);
}

TEST(ChatTemplate, SyntaxErrorsNameLineAndColumn) {
  try {
    chat::ChatTemplate t("line one\n{% if x %}\n{{ 1 + }}\n{% endif %}", "", "");
    FAIL() << "expected a syntax error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
  }
  EXPECT_ANY_THROW(chat::ChatTemplate("{% for x in y %}", "", ""));
  EXPECT_ANY_THROW(chat::ChatTemplate("{{ 'unterminated }}", "", ""));
}

TEST(ChatTemplate, PythonSemanticsTemplatesRelyOn) {
  auto r = [](const std::string& src, json extra = json::object()) {
    return chat::ChatTemplate(src, "<s>", "</s>").render(json::array(), json(), false, extra);
  };
  EXPECT_EQ(r("{{ [1, 'a', none, true] }}"), "[1, 'a', None, True]");
  EXPECT_EQ(r("{{ {'a': 1}|tojson }}|{{ 'é\"'|tojson }}"), "{\"a\": 1}|\"é\\\"\"");
  EXPECT_EQ(r("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"), "6");
  EXPECT_EQ(r("{% for x in [1,2,3] %}{% if x == 2 %}{% continue %}{% endif %}{{ loop.index }}{{ 'L' if loop.last }}{% endfor %}"), "13L");
  EXPECT_EQ(r("{{ 'a b  c'.split() }}{{ ' x '.strip() }}{{ 'abc'[::-1] }}{{ 'abcdef'[1:3] }}"), "['a', 'b', 'c']xcbabc");
  EXPECT_EQ(r("{% macro m(a, b='B') %}{{ a }}{{ b }}{% endmacro %}{{ m('A') }}{{ m('x', b='y') }}"), "ABxy");
  EXPECT_EQ(r("{{ x is defined }}{{ x | default('d') }}", json{{"x", nullptr}}), "TrueNone");
  EXPECT_THROW(r("{{ raise_exception('no') }}"), std::exception);
}

// render() parses a tool call's string arguments into an object, but not text nested deeper than
// the request parser accepts (a value that deep would overflow the stack when copied).
TEST(ChatTemplate, ToolCallArgumentsParsedUnlessNestedTooDeep) {
  auto render_args = [](const std::string& args) {
    json messages = json::array({{{"role", "assistant"}, {"content", ""},
                                  {"tool_calls", json::array({{{"type", "function"}, {"function", {{"name", "f"}, {"arguments", args}}}}})}}});
    return chat::ChatTemplate("{{ messages[0].tool_calls[0].function.arguments is string }}", "", "").render(messages, json(), false);
  };
  EXPECT_EQ(render_args("{\"a\": [1]}"), "False");
  EXPECT_EQ(render_args("not json"), "True");
  EXPECT_EQ(render_args("[1, 2]"), "True");  // only objects
  EXPECT_EQ(render_args("{\"a\": " + std::string(100000, '[') + std::string(100000, ']') + "}"), "True");
}
