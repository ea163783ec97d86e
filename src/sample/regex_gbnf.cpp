#include "sample/regex_gbnf.h"

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <utility>
#include <vector>

namespace jing::sample {

namespace {

// A GBNF class member for one code point (escaped where GBNF needs it).
std::string class_char(uint32_t c) {
  char buf[16];
  if (c == ']' || c == '[' || c == '\\' || c == '-' || c == '^' || c == '"' || c < 0x20 || c == 0x7F) {
    std::snprintf(buf, sizeof buf, "\\x%02X", c);
    return c < 0x100 ? buf : (std::snprintf(buf, sizeof buf, "\\u%04X", c), buf);
  }
  std::string out;
  if (c < 0x80) out += static_cast<char>(c);
  else if (c < 0x800) out += static_cast<char>(0xC0 | (c >> 6)), out += static_cast<char>(0x80 | (c & 63));
  else if (c < 0x10000) out += static_cast<char>(0xE0 | (c >> 12)), out += static_cast<char>(0x80 | ((c >> 6) & 63)), out += static_cast<char>(0x80 | (c & 63));
  else out += static_cast<char>(0xF0 | (c >> 18)), out += static_cast<char>(0x80 | ((c >> 12) & 63)), out += static_cast<char>(0x80 | ((c >> 6) & 63)), out += static_cast<char>(0x80 | (c & 63));
  return out;
}

// What JSON needs escaped is left out of every class: the grammar writes plain characters only.
constexpr const char* kNoEscapes = "\\x00-\\x1F\\x22\\x5C\\x7F";

class Translator {
 public:
  Translator(const std::string& p, const std::string& plain) : p_(p), plain_(plain) {}

  std::string run() {
    bool head = false, tail = false;
    if (!p_.empty() && p_[0] == '^') head = true, ++i_;
    std::string body = alternatives(0);
    if (i_ != p_.size()) unsupported("unbalanced ')'");
    if (body.size() >= 2 && body.compare(body.size() - 2, 2, "$ ") == 0) tail = true, body.resize(body.size() - 2);
    return (head ? "" : plain_ + "* ") + "(" + body + ")" + (tail ? "" : " " + plain_ + "*");
  }

 private:
  const std::string& p_;
  std::string plain_;
  size_t i_ = 0;

  [[noreturn]] void unsupported(const std::string& what) const {
    throw std::invalid_argument("pattern /" + p_ + "/: " + what + " is not supported");
  }

  std::string alternatives(int depth) {
    if (depth > 64) unsupported("nesting deeper than 64");
    std::string out = sequence(depth);
    while (i_ < p_.size() && p_[i_] == '|') {
      ++i_;
      out += " | " + sequence(depth);
    }
    return out;
  }

  std::string sequence(int depth) {
    std::string out;
    while (i_ < p_.size() && p_[i_] != '|' && p_[i_] != ')') {
      if (p_[i_] == '$' && i_ + 1 == p_.size()) {  // the end anchor: marked for run()
        ++i_;
        out += "$ ";
        break;
      }
      std::string atom_text = atom(depth);
      atom_text += quantifier();
      out += atom_text + " ";
    }
    if (out.empty()) out = "\"\" ";
    return out;
  }

  std::string quantifier() {
    if (i_ >= p_.size()) return "";
    std::string q;
    const char c = p_[i_];
    if (c == '*' || c == '+' || c == '?') q = std::string(1, c), ++i_;
    else if (c == '{') {
      const size_t close = p_.find('}', i_);
      if (close == std::string::npos) unsupported("'{' without '}'");
      q = p_.substr(i_, close - i_ + 1);
      for (char d : q.substr(1, q.size() - 2))
        if (!std::isdigit(static_cast<unsigned char>(d)) && d != ',') unsupported("the quantifier " + q);
      i_ = close + 1;
    }
    if (!q.empty() && i_ < p_.size() && p_[i_] == '?') ++i_;  // lazy: the same strings
    if (!q.empty() && i_ < p_.size() && (p_[i_] == '*' || p_[i_] == '+' || p_[i_] == '{')) unsupported("a possessive or double quantifier");
    return q;
  }

  uint32_t utf8() {  // one code point of the pattern
    const unsigned char c = static_cast<unsigned char>(p_[i_]);
    const int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    uint32_t cp = len == 1 ? c : c & (0x7Fu >> len);
    for (int k = 1; k < len && i_ + static_cast<size_t>(k) < p_.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(p_[i_ + static_cast<size_t>(k)]) & 63);
    i_ += static_cast<size_t>(len);
    return cp;
  }

  // \d \w \s and friends as class contents; 0 when the escape is a plain character.
  static const char* shorthand(char c) {
    switch (c) {
      case 'd': return "0-9";
      case 'w': return "a-zA-Z0-9_";
      case 's': return " ";  // tab and newline would need escapes in JSON
      default: return nullptr;
    }
  }

  uint32_t escaped_char() {  // after a backslash
    const char e = p_[i_];
    if (std::isalnum(static_cast<unsigned char>(e))) {
      ++i_;
      switch (e) {
        case 'n': return '\n';
        case 't': return '\t';
        case 'r': return '\r';
        default: unsupported(std::string("the escape \\") + e);
      }
    }
    return utf8();
  }

  std::string atom(int depth) {
    const char c = p_[i_];
    if (c == '(') {
      ++i_;
      if (p_.compare(i_, 2, "?:") == 0) i_ += 2;
      else if (i_ < p_.size() && p_[i_] == '?') unsupported("a look-around or named group");
      std::string inner = alternatives(depth + 1);
      if (i_ >= p_.size() || p_[i_] != ')') unsupported("an unclosed '('");
      ++i_;
      return "(" + inner + ")";
    }
    if (c == '[') return char_class();
    if (c == '.') {
      ++i_;
      return plain_;
    }
    if (c == '^' || c == '$') unsupported("an anchor inside the pattern");
    if (c == '*' || c == '+' || c == '?' || c == '{') unsupported("a quantifier with nothing to repeat");
    if (c == '\\') {
      if (++i_ >= p_.size()) unsupported("a trailing '\\'");
      const char e = p_[i_];
      if (const char* sh = shorthand(e)) return ++i_, "[" + std::string(sh) + "]";
      if (e == 'D' || e == 'W' || e == 'S') {
        ++i_;
        return "[^" + std::string(shorthand(static_cast<char>(std::tolower(e)))) + kNoEscapes + "]";
      }
      if (std::isdigit(static_cast<unsigned char>(e))) unsupported("a back-reference");
      if (e == 'b' || e == 'B') unsupported("a word boundary");
      return literal(escaped_char());
    }
    return literal(utf8());
  }

  std::string literal(uint32_t cp) {
    if (cp == '"' || cp == '\\' || cp < 0x20 || cp == 0x7F) unsupported("a character JSON writes escaped");
    return "[" + class_char(cp) + "]";
  }

  std::string char_class() {
    ++i_;  // [
    bool negated = false;
    if (i_ < p_.size() && p_[i_] == '^') negated = true, ++i_;
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    bool first = true;
    while (i_ < p_.size() && (p_[i_] != ']' || first)) {
      first = false;
      uint32_t lo;
      if (p_[i_] == '\\') {
        if (++i_ >= p_.size()) break;
        const char e = p_[i_];
        if (e == 'd' || e == 'w' || e == 's') {
          ++i_;
          if (e == 'd' || e == 'w') ranges.emplace_back('0', '9');
          if (e == 'w') ranges.emplace_back('a', 'z'), ranges.emplace_back('A', 'Z'), ranges.emplace_back('_', '_');
          if (e == 's') ranges.emplace_back(' ', ' ');
          continue;
        }
        if (e == 'D' || e == 'W' || e == 'S') unsupported("\\D, \\W or \\S inside a class");
        lo = escaped_char();
      } else {
        lo = utf8();
      }
      uint32_t hi = lo;
      if (i_ + 1 < p_.size() && p_[i_] == '-' && p_[i_ + 1] != ']') {
        ++i_;
        if (p_[i_] == '\\') ++i_, hi = escaped_char();
        else hi = utf8();
        if (hi < lo) unsupported("a range out of order");
      }
      ranges.emplace_back(lo, hi);
    }
    if (i_ >= p_.size()) unsupported("an unclosed '['");
    ++i_;  // ]
    std::string members;
    if (negated) {
      for (const auto& [lo, hi] : ranges) members += class_char(lo) + (hi != lo ? "-" + class_char(hi) : "");
      return "[^" + members + kNoEscapes + "]";
    }
    // Characters JSON writes escaped are cut out of the ranges: the grammar writes plain ones only.
    for (auto [lo, hi] : ranges) {
      for (const auto& [xlo, xhi] : {std::pair<uint32_t, uint32_t>{0x00, 0x1F}, {0x22, 0x22}, {0x5C, 0x5C}, {0x7F, 0x7F}}) {
        if (hi < xlo || lo > xhi) continue;
        if (lo < xlo) members += class_char(lo) + (xlo - 1 != lo ? "-" + class_char(xlo - 1) : "");
        lo = xhi + 1;
        if (lo > hi) break;
      }
      if (lo <= hi) members += class_char(lo) + (hi != lo ? "-" + class_char(hi) : "");
    }
    if (members.empty()) unsupported("a class of characters JSON writes escaped");
    return "[" + members + "]";
  }
};

}  // namespace

std::string regex_to_gbnf(const std::string& pattern, const std::string& plain_char) {
  return Translator(pattern, plain_char).run();
}

}  // namespace jing::sample
