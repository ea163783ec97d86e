// Rendering time grows linearly with the number of messages for every fixture template: a chat of
// 8,192 messages (the server's cap) takes at most ~8x (bounded at 24x) what 1,024 take. Once a
// list copy per loop iteration made it quadratic (16k messages: 5 s, 100k: minutes).
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "chat/template.h"
#include "test_support.h"

using namespace jing;
using json = nlohmann::ordered_json;

namespace {

json conversation(int n) {
  json m = json::array();
  m.push_back({{"role", "system"}, {"content", "You are helpful."}});
  for (int i = 1; i < n; ++i) m.push_back({{"role", i % 2 ? "user" : "assistant"}, {"content", "message number " + std::to_string(i)}});
  if (n % 2 == 1) m.push_back({{"role", "user"}, {"content", "last"}});
  return m;
}

double seconds_to_render(const chat::ChatTemplate& t, const json& msgs) {
  double best = 1e9;
  for (int rep = 0; rep < 3; ++rep) {  // best of three: other processes share the cores
    auto t0 = std::chrono::steady_clock::now();
    t.render(msgs, json(), true);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

TEST(ChatTemplateScaling, RenderingIsLinearInMessages) {
  auto dir = test::fixtures_dir();
  if (dir.empty()) GTEST_SKIP() << "fixtures not found";
  int checked = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "templates")) {
    if (e.path().extension() != ".jinja") continue;
    SCOPED_TRACE(e.path().filename().string());
    chat::ChatTemplate t(test::read_file(e.path()), "<s>", "</s>");
    const json small = conversation(1024), large = conversation(8192);
    try {
      t.render(small, json(), true);
    } catch (const std::exception&) {
      continue;  // a template that refuses this conversation shape (e.g. strict alternation rules)
    }
    const double ts = seconds_to_render(t, small), tl = seconds_to_render(t, large);
    std::printf("[template] %-55s 1k msgs %.1f ms, 8k msgs %.1f ms (x%.1f)\n", e.path().filename().c_str(), ts * 1e3, tl * 1e3, tl / ts);
    EXPECT_LT(tl, 24 * ts + 0.005);  // linear: ~8x; quadratic would be ~64x
    EXPECT_LT(tl, 2.0);
    ++checked;
  }
  EXPECT_GT(checked, 3);
}
