// Tool calls written by a model, parsed back into OpenAI's tool_calls, for the formats the
// DeepSeek, Qwen and Llama chat templates define.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace jing::chat {

// The markers of the call formats (DeepSeek's are single tokens in its vocabulary), shared by the
// parsers and the grammar that forces a call.
namespace markers {
inline constexpr std::string_view kCallsBegin = "<｜tool▁calls▁begin｜>", kCallsEnd = "<｜tool▁calls▁end｜>";
inline constexpr std::string_view kCallBegin = "<｜tool▁call▁begin｜>", kCallEnd = "<｜tool▁call▁end｜>", kSep = "<｜tool▁sep｜>";
inline constexpr std::string_view kHermesOpen = "<tool_call>", kHermesClose = "</tool_call>";
}  // namespace markers

struct ToolCall {
  std::string name;
  std::string arguments;  // a JSON text, as OpenAI's API carries it
};

struct ParsedContent {
  std::string content;  // what remains for the user
  std::vector<ToolCall> calls;
};

// Recognizes DeepSeek R1 / V3.1 (<｜tool▁calls▁begin｜>...), Qwen/Hermes (<tool_call>{...}</tool_call>)
// and Llama 3.1 ({"name": ..., "parameters": ...}) calls. Text without calls is returned unchanged.
ParsedContent parse_tool_calls(const std::string& text);

}  // namespace jing::chat
