#include "chat/tool_grammar.h"

#include "sample/json_schema.h"

namespace jing::chat {

namespace {

using json = nlohmann::ordered_json;

std::string quoted(const std::string& s) {  // a GBNF literal
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') out += "\\n";
    else out += c;
  }
  return out + "\"";
}

}  // namespace

ToolFormat tool_format_of(std::string_view t) {
  if (t.find("tool▁calls▁begin") != std::string_view::npos)
    return t.find("```json") != std::string_view::npos ? ToolFormat::DeepSeekR1 : ToolFormat::DeepSeekV31;
  if (t.find("<tool_call>") != std::string_view::npos) return ToolFormat::Hermes;
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
      case ToolFormat::DeepSeekR1: alt = quoted("function") + " " + special("<｜tool▁sep｜>") + " " + quoted(name + "\n```json\n") + " " + args + " " + quoted("\n```"); break;
      case ToolFormat::DeepSeekV31: alt = quoted(name) + " " + special("<｜tool▁sep｜>") + " " + args; break;
      case ToolFormat::Hermes: alt = quoted("{\"name\": \"" + name + "\", \"arguments\": ") + " " + args + " " + quoted("}"); break;
      case ToolFormat::Llama3: alt = quoted("{\"name\": \"" + name + "\", \"parameters\": ") + " " + args + " " + quoted("}"); break;
    }
    calls += (calls.empty() ? "" : " | ") + ("(" + alt + ")");
  }
  if (calls.empty()) throw sample::SchemaError(only.empty() ? "no function in 'tools' to call" : "tool_choice names '" + only + "', which is not in 'tools'");
  std::string call, root;
  switch (format) {
    case ToolFormat::DeepSeekR1:
    case ToolFormat::DeepSeekV31:
      call = special("<｜tool▁call▁begin｜>") + " (" + calls + ") " + special("<｜tool▁call▁end｜>");
      root = special("<｜tool▁calls▁begin｜>") + " call" + (parallel ? " (\"\\n\"? call)*" : "") + " " + special("<｜tool▁calls▁end｜>");
      break;
    case ToolFormat::Hermes:
      call = quoted("<tool_call>\n") + " (" + calls + ") " + quoted("\n</tool_call>");
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
