// Grammar-constrained decoding: which tokens may come next under a GBNF grammar.
//
// The matcher's state is the set of parse stacks (positions in the grammar still to match, innermost
// last) plus a partly received UTF-8 character. States are interned, and both the step over one byte
// and the allowed-token mask of a state are computed once and cached: generation keeps returning to
// the same few states (inside a JSON string every character leads back to the same one), so after
// the first visits a step costs a table lookup, not a walk over the 150k-token vocabulary. A new
// state's mask walks the vocabulary sorted by bytes, sharing the prefix with the previous token and
// skipping every token that starts with a dead prefix.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sample/gbnf.h"

namespace jing::tok {
class Tokenizer;
}

namespace jing::sample {

// The vocabulary as byte strings, sorted, for mask walks. A control token is spelled as the bytes
// F8 + its id in three continuation bytes, which no text has: the matcher reads that as the code
// point kTokenBase + id, so only a grammar's `<[id]>` admits it. End-of-generation tokens are
// allowed once the grammar is complete.
struct TokenIndex {
  int n_vocab = 0;
  std::vector<std::string> bytes;  // sorted
  std::vector<int32_t> ids;        // ids[i] has bytes[i]
  std::vector<int32_t> eog;
  std::vector<std::string> text_of;  // by id: the bytes (control tokens: their F8 spelling)
  // ~30 ms and ~10 MB for a 150k vocabulary: built once by whoever owns the tokenizer (the
  // scheduler, a chat session) and shared by every matcher.
  static std::shared_ptr<const TokenIndex> build(const tok::Tokenizer& tok);
};

class GrammarMatcher {
 public:
  GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenIndex> tokens);

  // Sets the logit of every token the grammar does not allow next to -infinity (n: the row's length,
  // the model's vocabulary, which may be padded past the tokenizer's).
  void mask(float* logits, int n);
  bool allows(int32_t token);
  // Moves past a token (or raw text); false, and no change, when the grammar does not allow it.
  bool accept(int32_t token);
  bool accept_text(std::string_view text);
  bool complete() const;  // the text so far is a whole sentence: the end may come now
  bool finished() const;  // nothing but the end may come

 private:
  struct State {
    std::vector<std::vector<uint32_t>> stacks;  // sorted, unique; an empty stack = complete
    uint32_t partial = 0;                        // code point bits received so far
    uint8_t partial_left = 0;                    // continuation bytes still to come
    uint8_t partial_len = 0;                     // bytes of the whole character (overlong forms are dead)
    std::vector<int32_t> next;                   // by byte: state, kDead, or kUnknown
    std::vector<uint64_t> allowed;               // token mask, once computed
  };
  static constexpr int32_t kDead = -1, kUnknown = -2;

  std::shared_ptr<const Grammar> g_;
  std::shared_ptr<const TokenIndex> tokens_;
  std::vector<State> states_;
  std::unordered_map<std::string, int32_t> ids_;
  int32_t current_ = 0;

  int32_t intern(std::vector<std::vector<uint32_t>> stacks, uint32_t partial, uint8_t left, uint8_t len);
  void expand(std::vector<uint32_t>& stack, std::vector<std::vector<uint32_t>>& out) const;
  int32_t step(int32_t state, uint8_t byte);
  int32_t compute_step(int32_t state, uint8_t byte);
  int32_t walk(int32_t state, std::string_view bytes);
  const std::vector<uint64_t>& allowed(int32_t state);
  bool complete(int32_t state) const;
};

}  // namespace jing::sample
