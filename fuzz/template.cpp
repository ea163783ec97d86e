// libFuzzer target: any template text is parsed and rendered against a small conversation; errors
// must be jing::Error, never a crash, hang or sanitizer report (output, loops and depth are bounded).
#include <cstddef>
#include <cstdint>
#include <string>

#include "chat/template.h"
#include "common/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto messages = nlohmann::ordered_json::parse(
      R"([{"role":"system","content":"sys"},{"role":"user","content":"Hi 鲸"},{"role":"assistant","content":"<think>x</think>ok","tool_calls":[{"type":"function","function":{"name":"f","arguments":{"a":1}}}]},{"role":"tool","content":"42"}])");
  static const auto tools = nlohmann::ordered_json::parse(R"([{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}])");
  try {
    jing::chat::ChatTemplate t(std::string(reinterpret_cast<const char*>(data), size), "<s>", "</s>");
    (void)t.render(messages, tools, true);
  } catch (const jing::Error&) {
  }
  return 0;
}
