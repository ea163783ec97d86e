#include "chat/reasoning.h"

#include <algorithm>

namespace jing::chat {

ReasoningParser::ReasoningParser(bool in_reasoning, std::string open_tag, std::string close_tag)
    : open_(std::move(open_tag)), close_(std::move(close_tag)), in_reasoning_(in_reasoning) {}

namespace {
// Length of the longest suffix of `s` that is a proper prefix of `tag` (text that may still
// become the tag once more arrives).
size_t partial_tag_suffix(const std::string& s, const std::string& tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (s.compare(s.size() - n, n, tag, 0, n) == 0) return n;
  return 0;
}
}  // namespace

TextDelta ReasoningParser::push(std::string_view text) {
  pending_ += text;
  TextDelta d;
  while (!pending_.empty()) {
    if (in_reasoning_) {
      auto at = pending_.find(close_);
      if (at == std::string::npos) {
        size_t keep = partial_tag_suffix(pending_, close_);
        d.reasoning += pending_.substr(0, pending_.size() - keep);
        pending_.erase(0, pending_.size() - keep);
        break;
      }
      d.reasoning += pending_.substr(0, at);
      pending_.erase(0, at + close_.size());
      in_reasoning_ = false;
      // R1 writes "</think>\n\n" before the answer: the blank lines belong to neither part.
      seen_content_ = false;
      continue;
    }
    if (!seen_content_) {
      // Leading whitespace before the answer (or before an opening tag) is dropped.
      size_t ws = pending_.find_first_not_of(" \t\r\n");
      if (ws == std::string::npos) {
        pending_.clear();
        break;
      }
      pending_.erase(0, ws);
      if (pending_.compare(0, std::min(pending_.size(), open_.size()), open_, 0, std::min(pending_.size(), open_.size())) == 0) {
        if (pending_.size() < open_.size()) break;  // may still become <think>
        pending_.erase(0, open_.size());
        in_reasoning_ = true;
        continue;
      }
      seen_content_ = true;
    }
    d.content += pending_;
    pending_.clear();
  }
  return d;
}

TextDelta ReasoningParser::finish() {
  TextDelta d;
  if (in_reasoning_) d.reasoning = pending_;  // the model never closed its thoughts
  else if (seen_content_ || pending_.find_first_not_of(" \t\r\n") != std::string::npos) d.content = pending_;
  pending_.clear();
  return d;
}

}  // namespace jing::chat
