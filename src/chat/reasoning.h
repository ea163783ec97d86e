// Splits generated text into reasoning (<think>...</think>) and content, incrementally.
#pragma once
#include <string>
#include <string_view>

namespace jing::chat {

struct TextDelta {
  std::string reasoning;
  std::string content;
  bool empty() const { return reasoning.empty() && content.empty(); }
};

class ReasoningParser {
 public:
  // in_reasoning: the prompt already opened <think> (R1's newer templates end with "<think>\n").
  explicit ReasoningParser(bool in_reasoning = false, std::string open_tag = "<think>",
                           std::string close_tag = "</think>");
  TextDelta push(std::string_view text);  // text held back only while it may be part of a tag
  TextDelta finish();                     // flushes; an unclosed think block stays reasoning

 private:
  std::string open_, close_, pending_;
  bool in_reasoning_;
  bool seen_content_ = false;
};

}  // namespace jing::chat
