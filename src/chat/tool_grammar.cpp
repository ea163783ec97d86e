#include "chat/tool_grammar.h"

#include "chat/tool_calls.h"
#include "sample/gbnf.h"
#include "sample/json_schema.h"

namespace jing::chat {

namespace {

using json = nlohmann::ordered_json;

}  // namespace

ToolFormat tool_format_of(std::string_view t) {
  if (t.find("tool▁calls▁begin") != std::string_view::npos)
    return t.find("```json") != std::string_view::npos ? ToolFormat::DeepSeekR1 : ToolFormat::DeepSeekV31;
  if (t.find(markers::kHermesOpen) != std::string_view::npos) return ToolFormat::Hermes;
  return ToolFormat::Llama3;
}

std::string tool_call_gbnf(ToolFormat format, const json& tools, const std::string& only, bool parallel,
                           const std::function<std::string(const std::string&)>& special) {
  sample::JsonSchemaRules rules;
  std::string calls;  // one alternative per function: its name, then its arguments
  for (const auto& t : tools) {
    const json& fn = t.contains("function") ? t["function"] : t;
    if (!fn.is_object() || !fn.contains("name") || !fn["name"].is_string()) continue;
    const std::string name = fn["name"].get<std::string>();
    if (!only.empty() && name != only) continue;
    const std::string args = rules.add(fn.contains("parameters") ? fn["parameters"] : json{{"type", "object"}});
    std::string alt;
    switch (format) {
      case ToolFormat::DeepSeekR1: alt = sample::gbnf_literal("function") + " " + special(std::string(markers::kSep)) + " " + sample::gbnf_literal(name + "\n```json\n") + " " + args + " " + sample::gbnf_literal("\n```"); break;
      case ToolFormat::DeepSeekV31: alt = sample::gbnf_literal(name) + " " + special(std::string(markers::kSep)) + " " + args; break;
      case ToolFormat::Hermes: alt = sample::gbnf_literal("{\"name\": \"" + name + "\", \"arguments\": ") + " " + args + " " + sample::gbnf_literal("}"); break;
      case ToolFormat::Llama3: alt = sample::gbnf_literal("{\"name\": \"" + name + "\", \"parameters\": ") + " " + args + " " + sample::gbnf_literal("}"); break;
    }
    calls += (calls.empty() ? "" : " | ") + ("(" + alt + ")");
  }
  if (calls.empty()) throw sample::SchemaError(only.empty() ? "no function in 'tools' to call" : "tool_choice names '" + only + "', which is not in 'tools'");
  std::string call, root;
  switch (format) {
    case ToolFormat::DeepSeekR1:
    case ToolFormat::DeepSeekV31:
      call = special(std::string(markers::kCallBegin)) + " (" + calls + ") " + special(std::string(markers::kCallEnd));
      root = special(std::string(markers::kCallsBegin)) + " call" + (parallel ? " (\"\\n\"? call)*" : "") + " " + special(std::string(markers::kCallsEnd));
      break;
    case ToolFormat::Hermes:
      call = sample::gbnf_literal("<tool_call>\n") + " (" + calls + ") " + sample::gbnf_literal("\n</tool_call>");
      root = std::string("call") + (parallel ? " (\"\\n\" call)*" : "");
      break;
    case ToolFormat::Llama3:
      call = "(" + calls + ")";
      root = "call";  // Llama 3.1 writes one call per turn
      break;
  }
  return "root ::= " + root + "\ncall ::= " + call + "\n" + rules.text();
}

}  // namespace jing::chat
