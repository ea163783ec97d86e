// Grammars that make a model call a tool in its own chat format (tool_choice "required" or a named
// function): the call's markers as the family's template writes them, the function's name, and
// arguments that follow the function's JSON schema.
#pragma once
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace jing::chat {

enum class ToolFormat {
  DeepSeekR1,   // <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>...
  DeepSeekV31,  // <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>...
  Hermes,       // <tool_call>\n{"name": NAME, "arguments": ARGS}\n</tool_call> (Qwen)
  Llama3,       // {"name": NAME, "parameters": ARGS} (Llama 3.1)
};

// The format a chat template writes tool calls in (Llama 3's JSON when it shows none of the others).
ToolFormat tool_format_of(std::string_view template_source);

// GBNF (root rule `root`) for one call, or one or more when parallel, to the OpenAI-style `tools`
// (only the function `only` when it is not empty). `special` spells a marker: `<[id]>` for a token
// that is not text, else a literal. Throws sample::SchemaError for a parameter schema it cannot use.
std::string tool_call_gbnf(ToolFormat format, const nlohmann::ordered_json& tools, const std::string& only, bool parallel,
                           const std::function<std::string(const std::string&)>& special);

}  // namespace jing::chat
