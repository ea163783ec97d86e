// The parsed form of a template: statements holding expressions, each remembering where it
// stood in the source so errors can name line and column.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "chat/jinja/value.h"

namespace jing::jinja {

struct Pos {
  int line = 1, col = 1;
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind { Literal, Name, Attr, Index, Slice, Call, Filter, Test, Unary, Binary, And, Or, Not, Cond, List, Dict, Tuple };
  Kind kind;
  Pos pos;
  Value value;                  // Literal
  std::string name;             // Name, Attr, Filter, Test, Unary/Binary operator
  std::vector<ExprPtr> args;    // operands / call arguments / elements (dict: key, value pairs)
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;         // "is not"
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind { Text, Output, If, For, Set, SetBlock, Macro, CallBlock, Break, Continue, FilterBlock };
  Kind kind;
  Pos pos;
  std::string text;                        // Text
  ExprPtr expr;                            // Output, Set value, For iterable, If conditions are in conds
  std::vector<ExprPtr> conds;              // If: one per branch (else has none)
  std::vector<Body> bodies;                // If branches; For: body, else; Macro/SetBlock: body
  std::vector<std::string> targets;        // For loop variables / Set names
  ExprPtr target_obj;                      // Set ns.attr: the namespace expression
  std::string attr;                        //   and the attribute
  ExprPtr filter;                          // For ... if filter; FilterBlock/SetBlock filter call
  std::string name;                        // Macro name
  std::vector<std::pair<std::string, ExprPtr>> params;  // Macro parameters with defaults
};

struct Template {
  Body body;
};

// Parses a template with Hugging Face's settings (trim_blocks, lstrip_blocks; one trailing
// newline dropped). Throws jing::Error "line L, column C: ..." on syntax errors.
Template parse(const std::string& source);

}  // namespace jing::jinja
