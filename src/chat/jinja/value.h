// Values of the template language: Python-like (None, bool, int, float, str, list, dict) plus
// Jinja's undefined and callables. Lists and dicts are shared by reference, as in Python.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace jing::jinja {

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<Value, Value>>;  // insertion-ordered, like Python dicts; keys of any kind
struct CallArgs;
using Function = std::function<Value(CallArgs&)>;

struct Value {
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Function };
  Kind kind = Kind::Undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::shared_ptr<std::string> s;
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;
  std::shared_ptr<Function> fn;
  bool is_namespace = false;  // namespace() objects accept attribute assignment
  bool is_generator = false;  // map/select/reject results: iterable, but Python cannot serialize or len() them
  bool is_safe = false;       // a Markup string (|safe, |escape): `+` HTML-escapes a plain string joined to it

  Value() = default;
  static Value none() { Value v; v.kind = Kind::None; return v; }
  Value(bool x) : kind(Kind::Bool), b(x) {}
  Value(int x) : kind(Kind::Int), i(x) {}
  Value(int64_t x) : kind(Kind::Int), i(x) {}
  Value(size_t x) : kind(Kind::Int), i(static_cast<int64_t>(x)) {}
  Value(double x) : kind(Kind::Float), f(x) {}
  Value(std::string x) : kind(Kind::String), s(std::make_shared<std::string>(std::move(x))) {}
  Value(const char* x) : Value(std::string(x)) {}
  Value(List x) : kind(Kind::List), list(std::make_shared<List>(std::move(x))) {}
  Value(Dict x) : kind(Kind::Dict), dict(std::make_shared<Dict>(std::move(x))) {}
  Value(Function x) : kind(Kind::Function), fn(std::make_shared<Function>(std::move(x))) {}

  bool defined() const { return kind != Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float; }
  bool truthy() const;
  double number() const { return kind == Kind::Float ? f : static_cast<double>(kind == Kind::Bool ? b : i); }
  // As an integer: floats truncated toward zero and saturated to int64 (NaN is 0), so a template's
  // 1e300 never reaches an out-of-range conversion.
  int64_t integer() const {
    if (kind != Kind::Float) return kind == Kind::Bool ? b : i;
    if (!(f == f)) return 0;
    if (f >= 9.2233720368547758e18) return INT64_MAX;
    if (f <= -9.2233720368547758e18) return INT64_MIN;
    return static_cast<int64_t>(f);
  }
  const std::string& str() const { return *s; }

  const Value* find(const std::string& key) const;  // dict lookup of a string key
  const Value* find_key(const Value& key) const;    // dict lookup of any key, Python's equality (1 == 1.0 == True)
  void set(const Value& key, Value v);              // dict insert or replace

  static Value from_json(const nlohmann::ordered_json& j);
};

// What {{ value }} prints: Python's str() (True, None, ['a', 1], {'k': 'v'}).
std::string to_string(const Value& v);
std::string repr(const Value& v);
// json.dumps(value, ensure_ascii=False, indent=indent) as transformers' tojson filter does.
std::string to_json(const Value& v, int indent = -1, int depth = 0);
bool equal(const Value& a, const Value& b);
const char* kind_name(Value::Kind k);

}  // namespace jing::jinja
