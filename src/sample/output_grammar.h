// A grammar applied to what a model generates, with R1's reasoning left free: when the prompt
// opened a <think> block, the grammar starts once "</think>" has been generated. The server's
// scheduler and `jing run` share it.
#pragma once
#include <memory>
#include <string>

#include "sample/grammar_matcher.h"
#include "tokenizer/tokenizer.h"

namespace jing::sample {

class OutputGrammar {
 public:
  OutputGrammar(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenIndex> tokens, bool after_think)
      : matcher_(std::move(grammar), std::move(tokens)), waiting_(after_think) {}

  // The matcher to mask the next token with; nullptr while the reasoning block is still open.
  GrammarMatcher* active() { return waiting_ ? nullptr : &matcher_; }
  // After a token was sampled: false when the grammar cannot take it. Text is decoded only while
  // waiting for "</think>" (the token's text, not its index spelling: the marker may be a control token).
  bool accept(int32_t token, const tok::Tokenizer& tok) {
    if (!waiting_) return matcher_.accept(token);
    recent_ += tok.decode({token});
    if (recent_.find("</think>") != std::string::npos) waiting_ = false;
    if (recent_.size() > 32) recent_.erase(0, recent_.size() - 32);
    return true;
  }

 private:
  GrammarMatcher matcher_;
  bool waiting_;
  std::string recent_;  // the last bytes generated, to see "</think>" across tokens
};

}  // namespace jing::sample
