#include "chat/tool_calls.h"

#include "common/json_depth.h"

namespace jing::chat {

namespace {

using namespace markers;

// Model output is parsed as JSON only when it nests no deeper than request bodies may: a deep
// value would overflow the stack when copied (a discarded result reads as "not JSON").
nlohmann::ordered_json parse_json(const std::string& text) {
  if (!json_depth_within(text)) return nlohmann::ordered_json(nlohmann::ordered_json::value_t::discarded);
  return nlohmann::ordered_json::parse(text, nullptr, false);
}

std::string trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t\r\n"));
  s.erase(s.find_last_not_of(" \t\r\n") + 1);
  return s;
}

// Arguments as compact JSON when they parse, else verbatim.
// (A JSON string holding JSON, as templates render string-typed arguments, is unwrapped.)
std::string normalize_args(const std::string& raw) {
  auto j = parse_json(raw);
  if (j.is_discarded()) return trim(raw);
  if (j.is_string()) {
    auto inner = parse_json(j.get<std::string>());
    if (!inner.is_discarded() && inner.is_object()) return inner.dump();
  }
  return j.dump();
}

bool parse_deepseek(const std::string& text, ParsedContent& out) {
  auto begin = text.find(kCallsBegin);
  if (begin == std::string::npos) return false;
  out.content = trim(text.substr(0, begin));
  size_t at = begin + kCallsBegin.size();
  while (true) {
    auto cb = text.find(kCallBegin, at);
    if (cb == std::string::npos) break;
    auto ce = text.find(kCallEnd, cb);
    std::string call = text.substr(cb + kCallBegin.size(), (ce == std::string::npos ? text.size() : ce) - cb - kCallBegin.size());
    auto sep = call.find(kSep);
    if (sep == std::string::npos) break;
    std::string head = trim(call.substr(0, sep)), rest = call.substr(sep + kSep.size());
    ToolCall tc;
    if (head == "function") {  // R1: function<sep>NAME\n```json\nARGS\n```
      auto nl = rest.find('\n');
      tc.name = trim(rest.substr(0, nl));
      std::string args = nl == std::string::npos ? "" : rest.substr(nl + 1);
      auto fence = args.find("```");
      if (fence != std::string::npos) {
        auto body = args.find('\n', fence);
        auto close = args.find("```", body == std::string::npos ? fence + 3 : body);
        args = body == std::string::npos ? "" : args.substr(body + 1, (close == std::string::npos ? args.size() : close) - body - 1);
      }
      tc.arguments = normalize_args(args);
    } else {  // V3.1: NAME<sep>ARGS
      tc.name = head;
      tc.arguments = normalize_args(rest);
    }
    if (!tc.name.empty()) out.calls.push_back(tc);
    if (ce == std::string::npos) break;
    at = ce + kCallEnd.size();
  }
  return !out.calls.empty();
}

bool parse_hermes(const std::string& text, ParsedContent& out) {
  const std::string_view open = kHermesOpen, close = kHermesClose;
  auto first = text.find(open);
  if (first == std::string::npos) return false;
  out.content = trim(text.substr(0, first));
  for (size_t at = first; (at = text.find(open, at)) != std::string::npos;) {
    auto end = text.find(close, at);
    std::string body = text.substr(at + open.size(), (end == std::string::npos ? text.size() : end) - at - open.size());
    auto j = parse_json(trim(body));
    if (j.is_object() && j.contains("name") && j["name"].is_string()) {
      const auto& args = j.contains("arguments") ? j["arguments"] : j.value("parameters", nlohmann::ordered_json::object());
      out.calls.push_back({j["name"].get<std::string>(), normalize_args(args.dump())});
    }
    if (end == std::string::npos) break;
    at = end + close.size();
  }
  return !out.calls.empty();
}

bool parse_llama_json(const std::string& text, ParsedContent& out) {
  std::string t = trim(text);
  if (t.rfind("<|python_tag|>", 0) == 0) t = trim(t.substr(14));
  if (t.empty() || t[0] != '{') return false;
  auto j = parse_json(t);
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || !(j.contains("parameters") || j.contains("arguments"))) return false;
  const auto& args = j.contains("parameters") ? j["parameters"] : j["arguments"];
  out.calls.push_back({j["name"].get<std::string>(), normalize_args(args.dump())});
  out.content.clear();
  return true;
}

}  // namespace

ParsedContent parse_tool_calls(const std::string& text) {
  ParsedContent out;
  if (parse_deepseek(text, out) || parse_hermes(text, out) || parse_llama_json(text, out)) return out;
  return {text, {}};
}

}  // namespace jing::chat
