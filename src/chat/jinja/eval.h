// Renders a parsed template against variables, with bounds on loops, output and recursion so a
// hostile template cannot hang or exhaust the process.
#pragma once
#include <string>
#include <unordered_map>

#include "chat/jinja/ast.h"

namespace jing::jinja {

struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
  Pos pos;
  // Positional argument i, or the keyword `name`, or `def`.
  Value get(size_t i, const char* name, Value def = Value()) const;
};

using Globals = std::unordered_map<std::string, Value>;

// Throws jing::Error with the template position on runtime errors and raise_exception().
std::string render(const Template& t, const Globals& globals);

// Built-in filters, tests and methods (builtins.cpp).
Value apply_filter(const std::string& name, const Value& input, CallArgs& a);
bool apply_test(const std::string& name, const Value& input, CallArgs& a);
Value call_method(const Value& obj, const std::string& name, CallArgs& a);  // str.strip(), dict.items(), ...
Value get_attr(const Value& obj, const std::string& name);                    // dict key or method
Value get_item(const Value& obj, const Value& key);
std::string html_escape(const std::string& s);  // markupsafe's escape
[[noreturn]] void runtime_error(Pos p, const std::string& msg);

}  // namespace jing::jinja
