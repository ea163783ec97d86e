// llama.cpp's 65 collected chat templates (tests/chat/wild_templates) x the fixture conversations,
// with and without the generation prompt: Jing's rendering must be byte-identical to Python jinja2's,
// rendered now by tests/chat/render_jinja2.py (configured as transformers does it), or raise where
// jinja2 raises. A tool call's string arguments may be rendered parsed as an object (Jing does that
// for templates that take objects): jinja2's rendering of the parsed form counts too. Templates
// jinja2 itself cannot parse are listed, not counted.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "chat/template.h"
#include "test_support.h"

using namespace jing;
using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

// Where two strings part, with a little context, for the failure message.
std::string first_difference(const std::string& got, const std::string& want) {
  size_t k = 0;
  while (k < got.size() && k < want.size() && got[k] == want[k]) ++k;
  auto around = [&](const std::string& s) { return json(s.substr(k > 40 ? k - 40 : 0, 100)).dump(); };
  return "byte " + std::to_string(k) + ": jing " + around(got) + " vs jinja2 " + around(want);
}

struct Tally {
  size_t templates = 0, unparsable = 0;
  std::vector<std::string> unparsable_paths;
  int counted = 0, identical = 0, identical_parsed = 0, errors_matched = 0;
  int passed() const { return identical + identical_parsed + errors_matched; }
};

std::vector<std::string> templates_in(const fs::path& dir) {
  std::vector<std::string> templates;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".jinja") templates.push_back(e.path().string());
  std::sort(templates.begin(), templates.end());
  return templates;
}

// Renders the templates (all in `dir`) x conversation x add_generation_prompt with jinja2 and with
// Jing and compares them. When python3-jinja2 is missing, Tally.templates stays 0.
Tally compare_with_jinja2(const fs::path& dir, const std::vector<std::string>& templates, const fs::path& conversations_path,
                          const std::vector<std::string>& flags = {}) {
  Tally t;
  const fs::path src = fs::path(JING_SOURCE_DIR) / "tests/chat";
  test::TempDir tmp;
  std::vector<std::string> args = {(src / "render_jinja2.py").string()};
  args.insert(args.end(), flags.begin(), flags.end());
  args.insert(args.end(), {(tmp / "ref.json").string(), conversations_path.string()});
  args.insert(args.end(), templates.begin(), templates.end());
  auto py = test::run_program("python3", args);
  if (py.exit_code == 77 || py.exit_code == 127) {
    std::printf("[jinja2] skipped: the reference needs python3 with jinja2 (Debian: python3-jinja2): %s\n", py.err.c_str());
    return t;
  }
  EXPECT_EQ(py.exit_code, 0) << py.err;
  if (py.exit_code != 0) return t;
  const json ref = json::parse(test::read_file(tmp / "ref.json"));
  const std::string bos = ref["bos_token"], eos = ref["eos_token"];

  std::map<std::string, json> conversations;
  for (const auto& c : json::parse(test::read_file(conversations_path))) conversations[c["name"].get<std::string>()] = c;

  for (const auto& [name, cases] : ref["templates"].items()) {
    ++t.templates;
    std::optional<chat::ChatTemplate> tmpl;
    std::string parse_error;
    try {
      tmpl.emplace(test::read_file(dir / name), bos, eos);
    } catch (const std::exception& e) {
      parse_error = e.what();
    }
    int ok = 0, shown = 0;
    for (const auto& c : cases) {
      ++t.counted;
      const json& conv = conversations.at(c["conversation"].get<std::string>());
      const bool agp = c["add_generation_prompt"].get<bool>();
      std::string got, error = parse_error;
      if (tmpl) try {
          got = tmpl->render(conv["messages"], conv.value("tools", json()), agp);
        } catch (const std::exception& e) {
          error = e.what();
        }
      bool all_raise = true, match = false, match_parsed = false;
      std::string want;
      for (const char* variant : {"as_sent", "object_arguments"}) {
        if (!c.contains(variant)) continue;
        const json& r = c[variant];
        if (r.contains("error")) continue;
        all_raise = false;
        if (want.empty()) want = r["rendered"];
        if (error.empty() && got == r["rendered"].get<std::string>()) (variant[0] == 'a' ? match : match_parsed) = true;
      }
      if (all_raise && !error.empty()) ++t.errors_matched, ++ok;
      else if (match) ++t.identical, ++ok;
      else if (match_parsed) ++t.identical_parsed, ++ok;
      else if (shown++ < 2) {
        const std::string where = name + " / " + c["conversation"].get<std::string>() + " / agp=" + (agp ? "1" : "0");
        if (all_raise) ADD_FAILURE() << where << ": jinja2 raises (" << c["as_sent"]["error"] << ") but jing rendered";
        else if (!error.empty()) ADD_FAILURE() << where << ": jing raised: " << error;
        else ADD_FAILURE() << where << ": " << first_difference(got, want);
      }
    }
    std::printf("[jinja2] %-58s %3d/%zu\n", name.c_str(), ok, cases.size());
  }
  for (const auto& [name, why] : ref["unparsable"].items()) {
    ++t.unparsable;
    t.unparsable_paths.push_back((dir / name).string());
    bool jing_parses = true;
    try {
      chat::ChatTemplate(test::read_file(dir / name), bos, eos);
    } catch (const std::exception&) {
      jing_parses = false;
    }
    std::printf("[jinja2] not counted, jinja2 cannot parse %s (%s): %s\n", name.c_str(), jing_parses ? "jing parses it" : "nor can jing",
                why.get<std::string>().c_str());
  }
  std::printf("[jinja2] jinja2 %s, %s%zu templates counted (%zu unparsable by jinja2): %d of %d renderings pass: %d identical as sent, "
              "%d identical with arguments parsed, %d errors where jinja2 raises\n",
              ref["jinja2"].get<std::string>().c_str(), flags.empty() ? "" : "with {% generation %} accepted: ", t.templates, t.unparsable, t.passed(), t.counted, t.identical, t.identical_parsed, t.errors_matched);
  return t;
}

}  // namespace

TEST(WildChatTemplates, EveryRenderingMatchesJinja2) {
  JING_FIXTURE_OR_SKIP(conversations, "templates/conversations.json");
  const fs::path dir = fs::path(JING_SOURCE_DIR) / "tests/chat/wild_templates";
  Tally t = compare_with_jinja2(dir, templates_in(dir), conversations);
  if (t.templates == 0 && !HasFailure()) GTEST_SKIP() << "python3-jinja2 is not installed";
  EXPECT_EQ(t.templates + t.unparsable, 65u);
  EXPECT_EQ(t.passed(), t.counted);
  EXPECT_GT(t.identical, t.counted / 2);
  // Not part of the count above: those jinja2 cannot parse because they use transformers'
  // {% generation %} block, rendered again with that block accepted.
  if (t.unparsable_paths.empty()) return;
  Tally g = compare_with_jinja2(dir, t.unparsable_paths, conversations, {"--generation"});
  EXPECT_EQ(g.passed(), g.counted);
  EXPECT_EQ(g.unparsable, 0u);
}

// Small templates written for one semantic each (integer dict keys, Markup concatenation, the
// immutable sandbox, iterating None, tool-call arguments as objects or strings).
TEST(WildChatTemplates, EngineCornerCasesMatchJinja2) {
  JING_FIXTURE_OR_SKIP(conversations, "templates/conversations.json");
  const fs::path dir = fs::path(JING_SOURCE_DIR) / "tests/chat/jinja2_cases";
  Tally t = compare_with_jinja2(dir, templates_in(dir), conversations);
  if (t.templates == 0 && !HasFailure()) GTEST_SKIP() << "python3-jinja2 is not installed";
  EXPECT_EQ(t.passed(), t.counted);
  EXPECT_GT(t.identical_parsed, 0);  // tool_arguments_items renders only with arguments parsed
  EXPECT_GT(t.errors_matched, 0);
}

// The fixture templates through render() as a server request takes it (string arguments parsed):
// the fixtures hold transformers' renderings of the arguments as sent only.
TEST(WildChatTemplates, FixtureTemplatesMatchJinja2WithArgumentsParsed) {
  JING_FIXTURE_OR_SKIP(conversations, "templates/conversations.json");
  Tally t = compare_with_jinja2(conversations.parent_path(), templates_in(conversations.parent_path()), conversations);
  if (t.templates == 0 && !HasFailure()) GTEST_SKIP() << "python3-jinja2 is not installed";
  EXPECT_GE(t.templates, 10u);
  EXPECT_EQ(t.passed(), t.counted);
  EXPECT_GT(t.identical_parsed, 0);
}
