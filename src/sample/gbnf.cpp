#include "sample/gbnf.h"

#include <algorithm>
#include <cctype>
#include <map>

namespace jing::sample {

bool Grammar::matches(const GrammarElement& e, uint32_t cp) const {
  bool in = false;
  for (uint32_t i = e.first; i < e.first + e.count && !in; ++i) in = ranges[i].first <= cp && cp <= ranges[i].second;
  return e.negated ? !in && cp < kTokenBase : in;
}

bool Grammar::may_match(const GrammarElement& e, uint32_t lo, uint32_t hi) const {
  if (!e.negated) {
    for (uint32_t i = e.first; i < e.first + e.count; ++i)
      if (ranges[i].first <= hi && lo <= ranges[i].second) return true;
    return false;
  }
  // Negated: some text point of [lo, hi] lies outside every range. Walk the gaps in order.
  if (lo >= kTokenBase) return false;
  hi = std::min(hi, kTokenBase - 1);
  std::vector<std::pair<uint32_t, uint32_t>> r(ranges.begin() + e.first, ranges.begin() + e.first + e.count);
  std::sort(r.begin(), r.end());
  uint64_t next = lo;  // lowest point not yet known to be covered
  for (const auto& [a, b] : r) {
    if (a > next) break;
    next = std::max<uint64_t>(next, uint64_t{b} + 1);
  }
  return next <= hi;
}

std::string gbnf_literal(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') out += '\\', out += static_cast<char>(c);
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7F) {
      static const char* hex = "0123456789ABCDEF";
      out += "\\x", out += hex[c >> 4], out += hex[c & 15];
    } else out += static_cast<char>(c);
  }
  return out + "\"";
}

namespace {

// The parsed form before flattening: a rule is alternatives of items.
struct Item {
  bool ref = false;
  uint32_t rule = 0;
  bool negated = false;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
};
using Sequence = std::vector<Item>;
Item ref(uint32_t rule) { return Item{true, rule, false, {}}; }

constexpr int kMaxRepeat = 1000;  // {m,n} bounds: each bound unrolls into items or rules
constexpr int kMaxNesting = 256;  // ( ) groups: the parser recurses once per level

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Grammar run(std::string_view root_rule) {
    skip_space();
    while (pos_ < s_.size()) {
      std::string name = ident();
      if (name.empty()) fail("expected a rule name");
      skip_space();
      if (s_.substr(pos_, 3) != "::=") fail("expected '::=' after '" + name + "'");
      pos_ += 3;
      const uint32_t id = rule_id(name);
      if (defined_[id]) fail("rule '" + name + "' is defined twice");
      defined_[id] = true;
      alts_[id] = alternatives(0);
    }
    for (size_t i = 0; i < names_.size(); ++i)
      if (!defined_[i]) throw GrammarError("grammar: rule '" + names_[i] + "' is used but not defined");
    auto root = ids_.find(std::string(root_rule));
    if (root == ids_.end()) throw GrammarError("grammar: no '" + std::string(root_rule) + "' rule");
    check_left_recursion();
    return flatten(root->second);
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
  std::map<std::string, uint32_t> ids_;
  std::vector<std::string> names_;
  std::vector<std::vector<Sequence>> alts_;
  std::vector<bool> defined_;

  [[noreturn]] void fail(const std::string& what) const {
    const size_t line = 1 + static_cast<size_t>(std::count(s_.begin(), s_.begin() + static_cast<long>(std::min(pos_, s_.size())), '\n'));
    throw GrammarError("grammar, line " + std::to_string(line) + ": " + what);
  }

  uint32_t rule_id(const std::string& name) {
    auto [it, fresh] = ids_.emplace(name, static_cast<uint32_t>(names_.size()));
    if (fresh) {
      names_.push_back(name);
      alts_.emplace_back();
      defined_.push_back(false);
    }
    return it->second;
  }
  uint32_t new_rule(const std::string& base, std::vector<Sequence> alts) {
    const uint32_t id = rule_id(base + "_" + std::to_string(names_.size()));
    alts_[id] = std::move(alts);
    defined_[id] = true;
    return id;
  }

  static bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; }
  void skip_space() {
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else {
        break;
      }
    }
  }
  std::string ident() {
    const size_t start = pos_;
    while (pos_ < s_.size() && word_char(s_[pos_])) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }
  // Whether a new rule definition (`name ::=`) starts here: where the previous rule ends.
  bool at_definition() const {
    size_t p = pos_;
    while (p < s_.size() && word_char(s_[p])) ++p;
    if (p == pos_) return false;
    while (p < s_.size() && (s_[p] == ' ' || s_[p] == '\t')) ++p;
    return s_.substr(p, 3) == "::=";
  }

  std::vector<Sequence> alternatives(int depth) {
    if (depth > kMaxNesting) fail("groups nested deeper than " + std::to_string(kMaxNesting));
    std::vector<Sequence> out;
    out.push_back(sequence(depth));
    while (pos_ < s_.size() && s_[pos_] == '|') {
      ++pos_;
      out.push_back(sequence(depth));
    }
    return out;
  }

  Sequence sequence(int depth) {
    Sequence seq;
    while (true) {
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] == '|' || s_[pos_] == ')' || at_definition()) break;
      const size_t before = seq.size();
      atom(seq, depth);
      skip_space();
      if (pos_ < s_.size() && (s_[pos_] == '*' || s_[pos_] == '+' || s_[pos_] == '?' || s_[pos_] == '{')) {
        if (seq.size() == before) fail("a repetition needs something to repeat");
        repetition(seq, before);
      }
    }
    if (depth == 0 && pos_ < s_.size() && s_[pos_] == ')') fail("unbalanced ')'");
    return seq;
  }

  // One literal, class, `.`, reference or group, appended to seq (a literal adds one item per character).
  void atom(Sequence& seq, int depth) {
    const char c = s_[pos_];
    if (c == '"') {
      ++pos_;
      Sequence chars;
      while (true) {
        if (pos_ >= s_.size()) fail("unterminated string literal");
        if (s_[pos_] == '"') break;
        const uint32_t cp = character();
        chars.push_back(Item{false, 0, false, {{cp, cp}}});
      }
      ++pos_;
      if (chars.empty()) return;
      if (chars.size() == 1) { seq.push_back(chars[0]); return; }
      // A multi-character literal stays one item for the repetition operators: make it a rule.
      seq.push_back(ref(new_rule("literal", {std::move(chars)})));
    } else if (c == '[') {
      ++pos_;
      Item item;
      if (pos_ < s_.size() && s_[pos_] == '^') item.negated = true, ++pos_;
      while (true) {
        if (pos_ >= s_.size()) fail("unterminated character class");
        if (s_[pos_] == ']') break;
        const uint32_t lo = character();
        uint32_t hi = lo;
        if (pos_ + 1 < s_.size() && s_[pos_] == '-' && s_[pos_ + 1] != ']') {
          ++pos_;
          hi = character();
          if (hi < lo) fail("character range out of order");
        }
        item.ranges.emplace_back(lo, hi);
      }
      ++pos_;
      seq.push_back(std::move(item));
    } else if (c == '.') {
      ++pos_;
      seq.push_back(Item{false, 0, true, {}});  // any character: the complement of nothing
    } else if (c == '(') {
      ++pos_;
      auto alts = alternatives(depth + 1);
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != ')') fail("expected ')'");
      ++pos_;
      seq.push_back(ref(new_rule("group", std::move(alts))));
    } else if (c == '<' && s_.substr(pos_, 2) == "<[") {  // <[id]>: one token
      pos_ += 2;
      const int id = number_upto(1 << 18);
      if (s_.substr(pos_, 2) != "]>") fail("expected ']>' after a token id");
      pos_ += 2;
      const uint32_t cp = kTokenBase + static_cast<uint32_t>(id);
      seq.push_back(Item{false, 0, false, {{cp, cp}}});
    } else if (word_char(c)) {
      seq.push_back(ref(rule_id(ident())));
    } else {
      fail(std::string("unexpected '") + c + "'");
    }
  }

  int number_upto(long limit) {
    const size_t start = pos_;
    long v = 0;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_])) && v <= limit) v = v * 10 + (s_[pos_++] - '0');
    if (pos_ == start) fail("expected a number");
    if (v > limit) fail("number above " + std::to_string(limit));
    return static_cast<int>(v);
  }
  int number() {
    skip_space();
    const size_t start = pos_;
    long v = 0;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_])) && v <= kMaxRepeat) v = v * 10 + (s_[pos_++] - '0');
    if (pos_ == start) fail("expected a number");
    if (v > kMaxRepeat) fail("repetition bound above " + std::to_string(kMaxRepeat));
    skip_space();
    return static_cast<int>(v);
  }

  // Replaces the item at seq[at] (the last one) by its repetition.
  void repetition(Sequence& seq, size_t at) {
    const Item x = seq[at];
    seq.resize(at);
    int min = 0, max = -1;
    const char op = s_[pos_++];
    if (op == '+') min = 1;
    else if (op == '?') max = 1;
    else if (op == '{') {
      min = number();
      max = min;
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        skip_space();
        max = (pos_ < s_.size() && s_[pos_] == '}') ? -1 : number();
      }
      if (pos_ >= s_.size() || s_[pos_] != '}') fail("expected '}'");
      ++pos_;
      if (max >= 0 && max < min) fail("repetition {m,n} with n < m");
    }
    for (int i = 0; i < min; ++i) seq.push_back(x);
    if (max < 0) {
      // x* as a right-recursive rule: star ::= x star | (empty). The matcher's stacks stay flat.
      const uint32_t star = rule_id("repeat_" + std::to_string(names_.size()));
      alts_[star] = {Sequence{x, ref(star)}, Sequence{}};
      defined_[star] = true;
      seq.push_back(ref(star));
    } else if (max > min) {
      // Up to k more as nested optionals: opt_k ::= x opt_(k-1) | (empty).
      uint32_t inner = new_rule("optional", {Sequence{x}, Sequence{}});
      for (int k = 2; k <= max - min; ++k) inner = new_rule("optional", {Sequence{x, ref(inner)}, Sequence{}});
      seq.push_back(ref(inner));
    }
  }

  // One character of a literal or class: UTF-8 text or an escape.
  uint32_t character() {
    const unsigned char c = static_cast<unsigned char>(s_[pos_]);
    if (c == '\\') {
      if (++pos_ >= s_.size()) fail("dangling '\\'");
      const char e = s_[pos_++];
      switch (e) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case 'x': return hex(2);
        case 'u': return hex(4);
        case 'U': return hex(8);
        case '\\': case '"': case '[': case ']': case '-': case '/': case '^': case '.': case '(': case ')': case '|':
          return static_cast<unsigned char>(e);
        default: fail(std::string("unknown escape '\\") + e + "'");
      }
    }
    const int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || pos_ + static_cast<size_t>(len) > s_.size()) fail("invalid UTF-8");
    uint32_t cp = len == 1 ? c : (c & (0x7Fu >> len));
    for (int i = 1; i < len; ++i) {
      const unsigned char b = static_cast<unsigned char>(s_[pos_ + static_cast<size_t>(i)]);
      if ((b & 0xC0) != 0x80) fail("invalid UTF-8");
      cp = (cp << 6) | (b & 0x3F);
    }
    pos_ += static_cast<size_t>(len);
    return cp;
  }
  uint32_t hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i, ++pos_) {
      if (pos_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[pos_]))) fail("bad hex escape");
      const char h = static_cast<char>(std::tolower(static_cast<unsigned char>(s_[pos_])));
      v = v * 16 + static_cast<uint32_t>(h <= '9' ? h - '0' : h - 'a' + 10);
    }
    if (v > 0x10FFFF) fail("code point beyond U+10FFFF");
    return v;
  }

  // A rule that can reach itself before consuming a character would make the matcher's stacks grow
  // without end. Refused here, with the rule's name.
  void check_left_recursion() const {
    const size_t n = alts_.size();
    std::vector<bool> nullable(n, false);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        for (const auto& seq : alts_[r]) {
          const bool all = std::all_of(seq.begin(), seq.end(), [&](const Item& i) { return i.ref && nullable[i.rule]; });
          if (all) { nullable[r] = true, changed = true; break; }
        }
      }
    }
    std::vector<std::vector<uint32_t>> leftmost(n);
    for (size_t r = 0; r < n; ++r)
      for (const auto& seq : alts_[r])
        for (const Item& i : seq) {
          if (!i.ref) break;
          leftmost[r].push_back(i.rule);
          if (!nullable[i.rule]) break;
        }
    // Depth-first with an explicit stack (a chain of many rules must not exhaust the call stack).
    std::vector<int> mark(n, 0);  // 0 new, 1 on the path, 2 done
    std::vector<std::pair<uint32_t, size_t>> path;  // rule, next edge to follow
    for (uint32_t start = 0; start < n; ++start) {
      if (mark[start]) continue;
      mark[start] = 1;
      path.emplace_back(start, 0);
      while (!path.empty()) {
        auto& [r, edge] = path.back();
        if (edge == leftmost[r].size()) {
          mark[r] = 2;
          path.pop_back();
          continue;
        }
        const uint32_t next = leftmost[r][edge++];
        if (mark[next] == 1) throw GrammarError("grammar: rule '" + names_[next] + "' is left-recursive");
        if (mark[next] == 0) mark[next] = 1, path.emplace_back(next, 0);
      }
    }
  }

  Grammar flatten(uint32_t root) const {
    Grammar g;
    g.root = root;
    g.names = names_;
    g.rules.resize(alts_.size());
    for (size_t r = 0; r < alts_.size(); ++r)
      for (const auto& seq : alts_[r]) {
        g.rules[r].push_back(static_cast<uint32_t>(g.elements.size()));
        for (const Item& i : seq) {
          GrammarElement e;
          if (i.ref) {
            e.kind = GrammarElement::RuleRef;
            e.rule = i.rule;
          } else {
            e.kind = GrammarElement::Chars;
            e.negated = i.negated;
            e.first = static_cast<uint32_t>(g.ranges.size());
            e.count = static_cast<uint32_t>(i.ranges.size());
            g.ranges.insert(g.ranges.end(), i.ranges.begin(), i.ranges.end());
          }
          g.elements.push_back(e);
        }
        g.elements.push_back(GrammarElement{});  // End
      }
    return g;
  }
};

}  // namespace

Grammar parse_gbnf(std::string_view text, std::string_view root_rule) { return Parser(text).run(root_rule); }

}  // namespace jing::sample
