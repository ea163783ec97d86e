// GBNF grammars (llama.cpp's notation for constrained sampling), compiled to flat rules.
//
//   root   ::= "{" ws pair ("," ws pair)* "}"      # literals, [a-z] / [^"\\] classes, `.`,
//   pair   ::= [a-z]+ ":" ws [0-9]{1,3}           # ( ) groups, | alternatives, * + ? {m,n}
//
// `<[123]>` is one token by id, for tokens that are not text (DeepSeek's <｜tool▁calls▁begin｜>):
// it matches the code point kTokenBase + id, which no text has and no negated class or `.` matches.
//
// Every repetition and group becomes a rule of its own, so a compiled rule is a list of
// alternatives, each a sequence of terminals (code-point sets) and rule references ending in End.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jing::sample {

struct GrammarError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr uint32_t kTokenBase = 5u << 18;  // 0x140000: past Unicode, a multiple of 2^18 (see the matcher)

struct GrammarElement {
  enum Kind : uint8_t { End, Chars, RuleRef } kind = End;
  bool negated = false;   // Chars: matches code points NOT in the ranges
  uint32_t rule = 0;      // RuleRef: index into Grammar::rules
  uint32_t first = 0;     // Chars: ranges [first, first + count) of Grammar::ranges
  uint32_t count = 0;
};

struct Grammar {
  std::vector<GrammarElement> elements;                 // every alternative's sequence, End-terminated
  std::vector<std::pair<uint32_t, uint32_t>> ranges;    // inclusive code-point ranges of Chars elements
  std::vector<std::vector<uint32_t>> rules;             // rule -> start index of each alternative
  std::vector<std::string> names;                       // rule -> name (generated ones: "name_3")
  uint32_t root = 0;

  bool matches(const GrammarElement& e, uint32_t cp) const;
  // Whether some code point in [lo, hi] matches (a partly received UTF-8 character).
  bool may_match(const GrammarElement& e, uint32_t lo, uint32_t hi) const;
};

// A GBNF string literal that matches exactly this text (quotes, escapes).
std::string gbnf_literal(std::string_view text);

// Throws GrammarError naming the line and what is wrong: syntax, an undefined rule, no `root_rule`,
// left recursion (which a stack-based matcher cannot run).
Grammar parse_gbnf(std::string_view text, std::string_view root_rule = "root");

}  // namespace jing::sample
