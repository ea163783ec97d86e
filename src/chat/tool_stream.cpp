#include "chat/tool_stream.h"

#include <regex>

#include "chat/tool_calls.h"

namespace jing::chat {

namespace {

using namespace markers;

// How many bytes at the end of text could begin marker (held back until the next text decides).
size_t partial_suffix(std::string_view text, std::string_view marker) {
  for (size_t n = std::min(text.size(), marker.size() - 1); n > 0; --n)
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  return 0;
}

void skip_space(std::string& b) { b.erase(0, std::min(b.size(), b.find_first_not_of(" \t\r\n"))); }

}  // namespace

ToolStreamOut ToolCallStream::push(std::string_view text) {
  ToolStreamOut out;
  if (format_ == ToolFormat::Llama3) {  // bare JSON: nothing tells a call from content until the end
    held_ += text;
    return out;
  }
  buf_ += text;
  while (step(out)) {
  }
  return out;
}

ToolStreamOut ToolCallStream::finish() {
  ToolStreamOut out;
  if (format_ == ToolFormat::Llama3) {
    auto parsed = parse_tool_calls(held_);
    out.content = parsed.content;
    for (auto& c : parsed.calls) out.calls.push_back({n_calls_++, c.name, c.arguments});
    return out;
  }
  if (state_ == State::Content) out.content = buf_;  // a partial marker that never completed
  buf_.clear();
  return out;
}

bool ToolCallStream::step(ToolStreamOut& out) {
  const bool deepseek = format_ == ToolFormat::DeepSeekR1 || format_ == ToolFormat::DeepSeekV31;
  switch (state_) {
    case State::Content: {
      const std::string_view open = deepseek ? kCallsBegin : kHermesOpen;
      const size_t at = buf_.find(open);
      if (at == std::string::npos) {
        const size_t keep = partial_suffix(buf_, open);
        out.content += buf_.substr(0, buf_.size() - keep);
        buf_.erase(0, buf_.size() - keep);
        return false;
      }
      out.content += buf_.substr(0, at);
      buf_.erase(0, at + open.size());
      state_ = deepseek ? State::CallsOpen : State::HermesHead;
      return true;
    }
    case State::CallsOpen: {  // DeepSeek: the next call, or the end of the calls
      skip_space(buf_);
      if (buf_.rfind(kCallBegin, 0) == 0) {
        buf_.erase(0, kCallBegin.size());
        state_ = State::Name;
        return true;
      }
      if (buf_.rfind(kCallsEnd, 0) == 0) {
        buf_.erase(0, kCallsEnd.size());
        state_ = State::Content;
        return true;
      }
      return false;
    }
    case State::Name: {  // R1: function<sep>NAME\n ; V3.1: NAME<sep>
      std::string name;
      if (format_ == ToolFormat::DeepSeekR1) {
        const size_t sep = buf_.find(kSep);
        const size_t nl = sep == std::string::npos ? std::string::npos : buf_.find('\n', sep);
        if (nl == std::string::npos) return false;
        name = buf_.substr(sep + kSep.size(), nl - sep - kSep.size());
        buf_.erase(0, nl + 1);
      } else {
        const size_t sep = buf_.find(kSep);
        if (sep == std::string::npos) return false;
        name = buf_.substr(0, sep);
        buf_.erase(0, sep + kSep.size());
      }
      out.calls.push_back({n_calls_++, name, ""});
      state_ = format_ == ToolFormat::DeepSeekR1 ? State::ArgsOpen : State::Args;
      return true;
    }
    case State::ArgsOpen: {  // R1: ```json\n
      const size_t nl = buf_.find('\n');
      if (nl == std::string::npos) return false;
      buf_.erase(0, nl + 1);
      state_ = State::Args;
      return true;
    }
    case State::Args: {  // until "\n```" (R1) or the call's end marker (V3.1)
      const std::string_view end = format_ == ToolFormat::DeepSeekR1 ? std::string_view("\n```") : kCallEnd;
      const size_t at = buf_.find(end);
      const size_t n = at != std::string::npos ? at : buf_.size() - partial_suffix(buf_, end);
      if (n > 0) out.calls.push_back({n_calls_ - 1, "", buf_.substr(0, n)});
      buf_.erase(0, n);
      if (at == std::string::npos) return false;
      buf_.erase(0, end.size());
      state_ = State::AfterArgs;
      return true;
    }
    case State::AfterArgs: {  // R1: the call's end marker after the fence
      if (format_ == ToolFormat::DeepSeekV31) {
        state_ = State::CallsOpen;
        return true;
      }
      const size_t at = buf_.find(kCallEnd);
      if (at == std::string::npos) return false;
      buf_.erase(0, at + kCallEnd.size());
      state_ = State::CallsOpen;
      return true;
    }
    case State::HermesHead: {  // {"name": "NAME", "arguments": — then the arguments' value
      static const std::regex head(R"re(^\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"(?:arguments|parameters)"\s*:\s*)re");
      std::smatch m;
      if (!std::regex_search(buf_, m, head)) {
        if (buf_.size() > 4096) {  // not a call this parser knows: show it as it is
          out.content += std::string(kHermesOpen) + buf_;
          buf_.clear();
          state_ = State::Content;
        }
        return false;
      }
      out.calls.push_back({n_calls_++, m[1].str(), ""});
      buf_.erase(0, static_cast<size_t>(m.length(0)));
      depth_ = 0, in_string_ = false, escaped_ = false;
      state_ = State::HermesTail;
      return true;
    }
    case State::HermesTail: {  // the arguments' JSON value, then "}" and </tool_call>
      if (depth_ >= 0) {
        size_t i = 0;
        for (; i < buf_.size() && depth_ >= 0; ++i) {
          const char c = buf_[i];
          if (in_string_) {
            if (escaped_) escaped_ = false;
            else if (c == '\\') escaped_ = true;
            else if (c == '"') in_string_ = false;
          } else if (c == '"') in_string_ = true;
          else if (c == '{' || c == '[') ++depth_;
          else if (c == '}' || c == ']') {
            if (--depth_ == 0) { ++i; depth_ = -1; break; }
          }
        }
        if (i > 0) out.calls.push_back({n_calls_ - 1, "", buf_.substr(0, i)});
        buf_.erase(0, i);
        if (depth_ >= 0) return false;
      }
      const size_t at = buf_.find(kHermesClose);
      if (at == std::string::npos) return false;
      buf_.erase(0, at + kHermesClose.size());
      state_ = State::Content;
      return true;
    }
  }
  return false;
}

}  // namespace jing::chat
