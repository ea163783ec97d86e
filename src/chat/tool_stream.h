// Tool calls parsed while they are generated, for streamed answers: content before a call streams
// as content; each call is announced (index, id, name) as soon as its name is complete, and its
// arguments follow in fragments as the model writes them, so a client sees OpenAI's
// delta.tool_calls. DeepSeek (R1 and V3.1) and Hermes/Qwen calls stream this way; Llama 3's bare
// JSON is held back and parsed whole at the end.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "chat/tool_grammar.h"

namespace jing::chat {

struct ToolCallDelta {
  size_t index = 0;
  std::string name;       // set on the first delta of a call only
  std::string arguments;  // the next fragment of the arguments' JSON text
};

struct ToolStreamOut {
  std::string content;
  std::vector<ToolCallDelta> calls;
};

class ToolCallStream {
 public:
  explicit ToolCallStream(ToolFormat format) : format_(format) {}
  ToolStreamOut push(std::string_view text);
  ToolStreamOut finish();  // end of generation: what was held back
  size_t calls() const { return n_calls_; }

 private:
  enum class State { Content, CallsOpen, Name, ArgsOpen, Args, AfterArgs, HermesHead, HermesTail };
  ToolFormat format_;
  State state_ = State::Content;
  std::string buf_;        // received, not yet consumed
  std::string held_;       // Llama 3: the whole answer, parsed at the end
  size_t n_calls_ = 0;
  int depth_ = 0;          // Hermes: JSON nesting inside the arguments
  bool in_string_ = false, escaped_ = false;
  bool step(ToolStreamOut& out);  // consumes what it can; false when it needs more text
};

}  // namespace jing::chat
