// `jing template` renders a fixture conversation exactly as transformers did.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "test_support.h"

using json = nlohmann::ordered_json;

TEST(TemplateCli, RendersLikeTransformersAndReportsRaises) {
  JING_FIXTURE_OR_SKIP(vocab, "tokenizer/qwen3-vocab.gguf");
  JING_FIXTURE_OR_SKIP(expected_path, "templates/qwen3.tokenizer_config.jinja.expected.json");
  JING_FIXTURE_OR_SKIP(convs_path, "templates/conversations.json");
  auto expected = json::parse(jing::test::read_file(expected_path));
  auto convs = json::parse(jing::test::read_file(convs_path));
  jing::test::TempDir tmp;
  int checked = 0;
  for (auto& c : expected["cases"]) {
    if (c.contains("error")) continue;
    json conv;
    for (auto& x : convs)
      if (x["name"] == c["conversation"]) conv = x;
    std::ofstream(tmp / "m.json") << conv.dump();
    std::vector<std::string> args = {"template", vocab.string(), "--messages", (tmp / "m.json").string()};
    if (c["add_generation_prompt"].get<bool>()) args.push_back("--add-generation-prompt");
    auto r = jing::test::run_jing(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, c["rendered"].get<std::string>()) << c["conversation"];
    ++checked;
  }
  EXPECT_GT(checked, 10);
  std::ofstream(tmp / "raise.jinja") << "{{ raise_exception('Only user and assistant roles are supported!') }}";
  auto r = jing::test::run_jing({"template", vocab.string(), "--messages", (tmp / "m.json").string(), "--chat-template-file",
                                 (tmp / "raise.jinja").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("Only user and assistant roles are supported!"), std::string::npos) << r.err;
}
