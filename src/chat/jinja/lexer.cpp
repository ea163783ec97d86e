// Lexing of Jinja2 chat templates (lexer.h).
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "chat/jinja/lexer.h"
#include "common/error.h"

namespace jing::jinja {

[[noreturn]] void fail(Pos p, const std::string& msg) {
  throw Error("template error at line " + std::to_string(p.line) + ", column " + std::to_string(p.col) + ": " + msg);
}

std::vector<Chunk> split_source(std::string src) {
  if (!src.empty() && src.back() == '\n') src.pop_back();  // keep_trailing_newline=False
  if (!src.empty() && src.back() == '\r') src.pop_back();
  std::vector<Chunk> out;
  size_t i = 0;
  int line = 1, col = 1;
  auto advance_to = [&](size_t to) {
    for (; i < to && i < src.size(); ++i) {
      if (src[i] == '\n') ++line, col = 1;
      else ++col;
    }
  };
  bool trim_next = false, strip_newline = false;
  while (i < src.size()) {
    size_t open = src.find('{', i);
    while (open != std::string::npos && open + 1 < src.size() && src[open + 1] != '{' && src[open + 1] != '%' && src[open + 1] != '#')
      open = src.find('{', open + 1);
    if (open + 1 >= src.size()) open = std::string::npos;
    std::string text = src.substr(i, open == std::string::npos ? std::string::npos : open - i);
    Pos text_pos{line, col};
    if (strip_newline && !text.empty()) {  // trim_blocks: one newline after a block tag
      if (text[0] == '\n') text.erase(0, 1);
      else if (text.size() > 1 && text[0] == '\r' && text[1] == '\n') text.erase(0, 2);
    }
    if (trim_next) text.erase(0, text.find_first_not_of(" \t\r\n") == std::string::npos ? text.size() : text.find_first_not_of(" \t\r\n"));
    trim_next = strip_newline = false;
    if (open == std::string::npos) {
      if (!text.empty()) out.push_back({Chunk::K::Text, text, text_pos});
      break;
    }
    const char kind = src[open + 1];
    const bool minus_left = open + 2 < src.size() && src[open + 2] == '-';
    const bool plus_left = open + 2 < src.size() && src[open + 2] == '+';
    if (minus_left) {
      text.erase(text.find_last_not_of(" \t\r\n") == std::string::npos ? 0 : text.find_last_not_of(" \t\r\n") + 1);
    } else if ((kind == '%' || kind == '#') && !plus_left) {
      // lstrip_blocks: spaces and tabs between a line start and a block tag go.
      size_t ws = 0;
      while (ws < open && (src[open - ws - 1] == ' ' || src[open - ws - 1] == '\t')) ++ws;
      if ((ws == open || src[open - ws - 1] == '\n') && ws <= text.size()) text.erase(text.size() - ws);
    }
    if (!text.empty()) out.push_back({Chunk::K::Text, text, text_pos});
    advance_to(open);
    const std::string close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    size_t body_start = open + 2 + ((minus_left || plus_left) ? 1 : 0);
    size_t end = src.find(close, body_start);
    if (kind == '{') {
      // "}}" inside a string or dict literal would end early; find the first close outside quotes.
      char quote = 0;
      int braces = 0;
      for (end = body_start; end + 1 < src.size(); ++end) {
        char c = src[end];
        if (quote) {
          if (c == '\\') ++end;
          else if (c == quote) quote = 0;
        } else if (c == '\'' || c == '"') quote = c;
        else if (c == '{') ++braces;
        else if (c == '}' && braces > 0) --braces;
        else if (c == '}' && src[end + 1] == '}') break;
      }
      if (end + 1 >= src.size()) end = std::string::npos;
    }
    if (end == std::string::npos) fail({line, col}, std::string("unclosed ") + (kind == '{' ? "'{{'" : kind == '%' ? "'{%'" : "comment"));
    bool minus_right = end > body_start && src[end - 1] == '-';
    std::string body = src.substr(body_start, end - body_start - (minus_right ? 1 : 0));
    Pos body_pos{line, col + static_cast<int>(body_start - open)};
    if (kind == '{') out.push_back({Chunk::K::Expr, body, body_pos});
    else if (kind == '%') out.push_back({Chunk::K::Stmt, body, body_pos});
    advance_to(end + 2);
    trim_next = minus_right;
    strip_newline = kind != '{' && !minus_right;
  }
  return out;
}

std::vector<Tok> lex(const std::string& s, Pos start) {
  std::vector<Tok> out;
  size_t i = 0;
  Pos p = start;
  auto step = [&](size_t n) {
    for (size_t k = 0; k < n && i < s.size(); ++k, ++i) {
      if (s[i] == '\n') ++p.line, p.col = 1;
      else ++p.col;
    }
  };
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      step(1);
      continue;
    }
    Pos at = p;
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out.push_back({Tok::T::Name, s.substr(i, j - i), at});
      step(j - i);
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      bool is_float = false;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      if (j + 1 < s.size() && s[j] == '.' && std::isdigit(static_cast<unsigned char>(s[j + 1]))) {
        is_float = true;
        ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      }
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
        if (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) {
          is_float = true;
          j = k;
          while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
        }
      }
      std::string num = s.substr(i, j - i);
      std::erase(num, '_');
      out.push_back({is_float ? Tok::T::Float : Tok::T::Int, num, at});
      step(j - i);
    } else if (c == '\'' || c == '"') {
      std::string v;
      size_t j = i + 1;
      while (j < s.size() && s[j] != c) {
        if (s[j] == '\\' && j + 1 < s.size()) {
          char e = s[++j];
          switch (e) {
            case 'n': v += '\n'; break;
            case 't': v += '\t'; break;
            case 'r': v += '\r'; break;
            case '\\': v += '\\'; break;
            case '\'': v += '\''; break;
            case '"': v += '"'; break;
            default: v += '\\', v += e;
          }
          ++j;
        } else {
          v += s[j++];
        }
      }
      if (j >= s.size()) fail(at, "unterminated string");
      out.push_back({Tok::T::Str, v, at});
      step(j + 1 - i);
    } else {
      static const char* ops[] = {"==", "!=", "<=", ">=", "//", "**", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "~",
                                  "+",  "-",  "*",  "/",  "%",  "<",  ">",  "=", nullptr};
      std::string op;
      for (int k = 0; ops[k]; ++k)
        if (s.compare(i, std::strlen(ops[k]), ops[k]) == 0) {
          op = ops[k];
          break;
        }
      if (op.empty()) fail(at, std::string("unexpected character '") + c + "'");
      out.push_back({Tok::T::Op, op, at});
      step(op.size());
    }
  }
  out.push_back({Tok::T::End, "", p});
  return out;
}

}  // namespace jing::jinja
