// Lexing of Jinja2 chat templates: the source split into text and tags (whitespace control as
// Jinja applies it), and a tag's inside into tokens. The parser (parser.cpp) reads the result.
#pragma once
#include <string>
#include <vector>

#include "chat/jinja/ast.h"

namespace jing::jinja {

struct Tok {
  enum class T { Name, Int, Float, Str, Op, End } t;
  std::string v;
  Pos pos;
};

// A text run, or the inside of a {{ }} or {% %} tag.
struct Chunk {
  enum class K { Text, Expr, Stmt } k;
  std::string body;  // text, or the inside of the tag
  Pos pos;           // where the body starts
};

// Splits the source into text and tags, applying whitespace control as Jinja does.
std::vector<Chunk> split_source(std::string src);
// The tokens of one tag's inside, which starts at `start`; the last is End.
std::vector<Tok> lex(const std::string& s, Pos start);

// A template error at p: "template error at line L, column C: msg".
[[noreturn]] void fail(Pos p, const std::string& msg);

}  // namespace jing::jinja
