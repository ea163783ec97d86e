// Jinja's built-in filters and tests, and the Python str/dict/list methods templates call.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "chat/jinja/eval.h"

namespace jing::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string strip(const std::string& s, const Value& chars, bool left, bool right) {
  auto drop = [&](char c) { return chars.is_string() ? chars.s->find(c) != std::string::npos : is_space(c); };
  size_t a = 0, b = s.size();
  if (left)
    while (a < b && drop(s[a])) ++a;
  if (right)
    while (b > a && drop(s[b - 1])) --b;
  return s.substr(a, b - a);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string title(std::string s) {
  bool start = true;
  for (auto& c : s) {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      c = static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
      start = false;
    } else {
      start = true;
    }
  }
  return s;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to, int64_t count = -1) {
  if (from.empty()) return s;
  size_t at = 0;
  for (int64_t n = 0; (count < 0 || n < count) && (at = s.find(from, at)) != std::string::npos; ++n) {
    s.replace(at, from.size(), to);
    at += to.size();
  }
  return s;
}

List as_list(const Value& v) {
  if (v.kind == Value::Kind::List) return *v.list;
  List out;
  if (v.kind == Value::Kind::Dict)
    for (const auto& [k, _] : *v.dict) out.push_back(k);
  else if (v.is_string())
    for (char c : *v.s) out.push_back(Value(std::string(1, c)));
  return out;
}

Value items_of(const Value& v) {
  List out;
  if (v.kind == Value::Kind::Dict)
    for (const auto& [k, x] : *v.dict) out.push_back(Value(List{k, x}));
  return Value(std::move(out));
}

// Attribute paths like "function.name" used by map/selectattr.
Value attr_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    cur = get_attr(cur, path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return cur;
}

int compare_values(const Value& a, const Value& b) {
  if (a.is_string() && b.is_string()) return a.s->compare(*b.s);
  if (a.number() < b.number()) return -1;
  return a.number() > b.number() ? 1 : 0;
}

// Jinja's map/select/reject return Python generators; the flag keeps their limits visible.
Value generator(List items) {
  Value v(std::move(items));
  v.is_generator = true;
  return v;
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.kind == Value::Kind::Dict) {
    if (const Value* v = obj.find(name)) return *v;
    return Value();
  }
  if (obj.kind == Value::Kind::List && !name.empty() && std::isdigit(static_cast<unsigned char>(name[0])))
    return get_item(obj, Value(static_cast<int64_t>(std::strtoll(name.c_str(), nullptr, 10))));
  return Value();
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.kind == Value::Kind::Dict) {
    if (const Value* v = obj.find_key(key)) return *v;
    return Value();
  }
  if ((obj.kind == Value::Kind::List || obj.is_string()) && (key.kind == Value::Kind::Int || key.kind == Value::Kind::Bool)) {
    int64_t n = obj.is_string() ? static_cast<int64_t>(obj.s->size()) : static_cast<int64_t>(obj.list->size());
    int64_t k = key.kind == Value::Kind::Int ? key.i : key.b;
    if (k < 0) k += n;
    if (k < 0 || k >= n) return Value();
    return obj.is_string() ? Value(std::string(1, (*obj.s)[static_cast<size_t>(k)])) : (*obj.list)[static_cast<size_t>(k)];
  }
  return Value();
}

// A Markup string's own methods (and the filters that call them) return Markup.
Value keep_safe(const Value& from, Value result) {
  if (from.is_safe && result.is_string()) result.is_safe = true;
  return result;
}

Value call_method(const Value& obj, const std::string& name, CallArgs& a) {
  if (obj.is_safe) {
    Value plain = obj;
    plain.is_safe = false;
    return keep_safe(obj, call_method(plain, name, a));
  }
  if (obj.is_string()) {
    const std::string& s = *obj.s;
    if (name == "strip") return Value(strip(s, a.get(0, "chars"), true, true));
    if (name == "lstrip") return Value(strip(s, a.get(0, "chars"), true, false));
    if (name == "rstrip") return Value(strip(s, a.get(0, "chars"), false, true));
    if (name == "upper") return Value(upper(s));
    if (name == "lower") return Value(lower(s));
    if (name == "title") return Value(title(s));
    if (name == "capitalize") return Value(s.empty() ? s : upper(s.substr(0, 1)) + lower(s.substr(1)));
    if (name == "startswith" || name == "endswith") {
      Value p = a.get(0, "prefix");
      List options = p.kind == Value::Kind::List ? *p.list : List{p};
      for (const auto& o : options) {
        if (!o.is_string()) continue;
        const std::string& x = *o.s;
        if (name == "startswith" ? s.rfind(x, 0) == 0 : (s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0))
          return Value(true);
      }
      return Value(false);
    }
    if (name == "replace") {
      Value c = a.get(2, "count", Value(static_cast<int64_t>(-1)));
      return Value(replace_all(s, to_string(a.get(0, "old")), to_string(a.get(1, "new")), c.kind == Value::Kind::Int ? c.i : -1));
    }
    if (name == "find") {
      auto at = s.find(to_string(a.get(0, "sub")));
      return Value(at == std::string::npos ? static_cast<int64_t>(-1) : static_cast<int64_t>(at));
    }
    if (name == "count") {
      std::string sub = to_string(a.get(0, "sub"));
      int64_t n = 0;
      for (size_t at = 0; !sub.empty() && (at = s.find(sub, at)) != std::string::npos; at += sub.size()) ++n;
      return Value(n);
    }
    if (name == "split" || name == "rsplit") {
      Value sep = a.get(0, "sep");
      Value maxv = a.get(1, "maxsplit", Value(static_cast<int64_t>(-1)));
      int64_t maxsplit = maxv.kind == Value::Kind::Int ? maxv.i : -1;
      List out;
      if (!sep.is_string()) {  // whitespace split
        size_t k = 0;
        while (k < s.size()) {
          while (k < s.size() && is_space(s[k])) ++k;
          if (k >= s.size()) break;
          size_t e = k;
          while (e < s.size() && !is_space(s[e])) ++e;
          out.push_back(Value(s.substr(k, e - k)));
          k = e;
        }
        return Value(std::move(out));
      }
      const std::string& d = *sep.s;
      if (d.empty()) runtime_error(a.pos, "empty separator");
      if (name == "rsplit" && maxsplit >= 0) {
        std::string rest = s;
        List rev;
        for (int64_t n = 0; n < maxsplit; ++n) {
          size_t at = rest.rfind(d);
          if (at == std::string::npos) break;
          rev.push_back(Value(rest.substr(at + d.size())));
          rest = rest.substr(0, at);
        }
        rev.push_back(Value(rest));
        std::reverse(rev.begin(), rev.end());
        return Value(std::move(rev));
      }
      size_t start = 0;
      for (int64_t n = 0; maxsplit < 0 || n < maxsplit; ++n) {
        size_t at = s.find(d, start);
        if (at == std::string::npos) break;
        out.push_back(Value(s.substr(start, at - start)));
        start = at + d.size();
      }
      out.push_back(Value(s.substr(start)));
      return Value(std::move(out));
    }
    if (name == "join") {
      std::string out;
      List items = as_list(a.get(0, "iterable"));
      for (size_t k = 0; k < items.size(); ++k) out += (k ? s : "") + to_string(items[k]);
      return Value(out);
    }
    if (name == "format") {
      std::string out;
      size_t argi = 0;
      for (size_t k = 0; k < s.size(); ++k) {
        if (s[k] == '{' && k + 1 < s.size() && s[k + 1] == '}') {
          out += argi < a.args.size() ? to_string(a.args[argi++]) : "";
          ++k;
        } else {
          out += s[k];
        }
      }
      return Value(out);
    }
  }
  if (obj.kind == Value::Kind::Dict) {
    if (name == "items") return items_of(obj);
    if (name == "keys") return Value(as_list(obj));
    if (name == "values") {
      List out;
      for (const auto& [_, v] : *obj.dict) out.push_back(v);
      return Value(std::move(out));
    }
    if (name == "get") {
      Value k = a.get(0, "key");
      const Value* v = obj.find_key(k);
      return v ? *v : a.get(1, "default", Value::none());
    }
    if (name == "update" && obj.is_namespace) {
      Value other = a.get(0, "other");
      if (other.kind == Value::Kind::Dict)
        for (const auto& [k, v] : *other.dict) const_cast<Value&>(obj).set(k, v);
      return Value::none();
    }
  }
  if (obj.kind == Value::Kind::List) {
    // transformers renders in jinja2's immutable sandbox: lists cannot change.
    if (name == "append" || name == "pop" || name == "insert" || name == "extend" || name == "remove" || name == "clear" || name == "sort" || name == "reverse")
      runtime_error(a.pos, "SecurityError: access to attribute '" + name + "' of 'list' object is unsafe");
    if (name == "index") {
      Value x = a.get(0, "value");
      for (size_t k = 0; k < obj.list->size(); ++k)
        if (equal((*obj.list)[k], x)) return Value(static_cast<int64_t>(k));
      runtime_error(a.pos, "value is not in list");
    }
    if (name == "count") {
      Value x = a.get(0, "value");
      return Value(static_cast<int64_t>(std::count_if(obj.list->begin(), obj.list->end(), [&](const Value& v) { return equal(v, x); })));
    }
  }
  runtime_error(a.pos, std::string(kind_name(obj.kind)) + " has no method '" + name + "'");
}

Value apply_filter(const std::string& name, const Value& v, CallArgs& a) {
  if (v.is_safe && (name == "trim" || name == "upper" || name == "lower" || name == "capitalize")) {
    Value plain = v;
    plain.is_safe = false;
    return keep_safe(v, apply_filter(name, plain, a));
  }
  if (name == "trim") return Value(strip(to_string(v), a.get(0, "chars"), true, true));
  if (name == "tojson") {
    Value ind = a.get(0, "indent");
    try {
      return Value(to_json(v, ind.kind == Value::Kind::Int ? static_cast<int>(ind.i) : -1));
    } catch (const std::runtime_error& e) {
      runtime_error(a.pos, e.what());
    }
  }
  if (name == "length" || name == "count") {
    if (v.is_string()) {
      int64_t n = 0;  // characters, not bytes
      for (unsigned char c : *v.s) n += (c & 0xC0) != 0x80;
      return Value(n);
    }
    if (v.kind == Value::Kind::List && v.is_generator) runtime_error(a.pos, "TypeError: object of type 'generator' has no len()");
    if (v.kind == Value::Kind::List) return Value(static_cast<int64_t>(v.list->size()));
    if (v.kind == Value::Kind::Dict) return Value(static_cast<int64_t>(v.dict->size()));
    if (v.defined()) runtime_error(a.pos, std::string("TypeError: object of type '") + kind_name(v.kind) + "' has no len()");
    return Value(static_cast<int64_t>(0));
  }
  if (name == "upper") return Value(upper(to_string(v)));
  if (name == "lower") return Value(lower(to_string(v)));
  if (name == "title") return Value(title(to_string(v)));
  if (name == "capitalize") {
    std::string s = to_string(v);
    return Value(s.empty() ? s : upper(s.substr(0, 1)) + lower(s.substr(1)));
  }
  if (name == "replace") {
    Value c = a.get(2, "count", Value(static_cast<int64_t>(-1)));
    return Value(replace_all(to_string(v), to_string(a.get(0, "old")), to_string(a.get(1, "new")), c.kind == Value::Kind::Int ? c.i : -1));
  }
  if (name == "join") {
    std::string sep = a.args.empty() && a.kwargs.empty() ? "" : to_string(a.get(0, "d", Value("")));
    Value attr = a.get(1, "attribute");
    List items = as_list(v);
    std::string out;
    for (size_t k = 0; k < items.size(); ++k) out += (k ? sep : "") + to_string(attr.is_string() ? attr_path(items[k], *attr.s) : items[k]);
    return Value(out);
  }
  if (name == "first") {
    List l = as_list(v);
    return l.empty() ? Value() : l.front();
  }
  if (name == "last") {
    List l = as_list(v);
    return l.empty() ? Value() : l.back();
  }
  if (name == "default" || name == "d") {
    Value def = a.get(0, "default_value", Value(""));
    bool boolean = a.get(1, "boolean", Value(false)).truthy();
    return (!v.defined() || (boolean && !v.truthy())) ? def : v;
  }
  if (name == "items") {
    if (v.defined() && v.kind != Value::Kind::Dict) runtime_error(a.pos, "TypeError: Can only get item pairs from a mapping.");
    Value out = items_of(v);
    out.is_generator = true;  // jinja2's |items yields
    return out;
  }
  if (name == "list") return Value(as_list(v));
  if (name == "string") return Value(to_string(v));
  if (name == "safe" || name == "e" || name == "escape") {
    Value out(name == "safe" || v.is_safe ? to_string(v) : html_escape(to_string(v)));
    out.is_safe = true;
    return out;
  }
  if (name == "int") {
    if (v.is_number() || v.kind == Value::Kind::Bool) return Value(v.integer());
    try {
      return Value(static_cast<int64_t>(std::stoll(to_string(v))));
    } catch (const std::exception&) {
      return a.get(0, "default", Value(static_cast<int64_t>(0)));
    }
  }
  if (name == "float") {
    if (v.is_number() || v.kind == Value::Kind::Bool) return Value(v.number());
    try {
      return Value(std::stod(to_string(v)));
    } catch (const std::exception&) {
      return a.get(0, "default", Value(0.0));
    }
  }
  if (name == "abs") return v.kind == Value::Kind::Float ? Value(std::fabs(v.f)) : Value(static_cast<int64_t>(std::llabs(v.i)));
  if (name == "round") {
    Value p = a.get(0, "precision", Value(static_cast<int64_t>(0)));
    double m = std::pow(10.0, p.number());
    return Value(std::round(v.number() * m) / m);
  }
  if (name == "reverse") {
    if (v.is_string()) return Value(std::string(v.s->rbegin(), v.s->rend()));
    List l = as_list(v);
    std::reverse(l.begin(), l.end());
    return Value(std::move(l));
  }
  if (name == "unique") {
    List out;
    for (const auto& x : as_list(v))
      if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return equal(x, y); })) out.push_back(x);
    return Value(std::move(out));
  }
  if (name == "sort" || name == "dictsort") {
    List l = name == "dictsort" ? *items_of(v).list : as_list(v);
    Value attr = a.get(2, "attribute");
    const bool rev = a.get(1, "reverse", Value(false)).truthy();
    std::stable_sort(l.begin(), l.end(), [&](const Value& x, const Value& y) {
      const Value& kx = name == "dictsort" ? (*x.list)[0] : attr.is_string() ? attr_path(x, *attr.s) : x;
      const Value& ky = name == "dictsort" ? (*y.list)[0] : attr.is_string() ? attr_path(y, *attr.s) : y;
      int c = compare_values(kx, ky);
      return rev ? c > 0 : c < 0;
    });
    return Value(std::move(l));
  }
  if (name == "sum") {
    double s = 0;
    bool is_float = false;
    for (const auto& x : as_list(v)) s += x.number(), is_float |= x.kind == Value::Kind::Float;
    return is_float ? Value(s) : Value(static_cast<int64_t>(s));
  }
  if (name == "min" || name == "max") {
    List l = as_list(v);
    if (l.empty()) return Value();
    return *std::min_element(l.begin(), l.end(), [&](const Value& x, const Value& y) {
      return name == "min" ? compare_values(x, y) < 0 : compare_values(x, y) > 0;
    });
  }
  if (name == "indent") {
    int64_t width = a.get(0, "width", Value(static_cast<int64_t>(4))).integer();
    bool first = a.get(1, "first", Value(false)).truthy();
    std::string pad(static_cast<size_t>(std::clamp<int64_t>(width, 0, 1000)), ' '), s = to_string(v), out;
    for (size_t k = 0; k < s.size(); ++k) {
      out += s[k];
      if (s[k] == '\n' && k + 1 < s.size() && s[k + 1] != '\n') out += pad;
    }
    return Value(first ? pad + out : out);
  }
  if (name == "map") {
    Value attr = a.get(0, "attribute");
    List out;
    for (const auto& x : as_list(v)) {
      if (attr.is_string() && a.args.empty()) out.push_back(attr_path(x, *attr.s));
      else if (!a.args.empty() && a.args[0].is_string()) {  // map('filter', args...)
        CallArgs sub;
        sub.pos = a.pos;
        sub.args.assign(a.args.begin() + 1, a.args.end());
        out.push_back(apply_filter(*a.args[0].s, x, sub));
      } else {
        out.push_back(attr.is_string() ? attr_path(x, *attr.s) : x);
      }
    }
    return generator(std::move(out));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    const bool by_attr = name == "selectattr" || name == "rejectattr";
    const bool keep_true = name == "select" || name == "selectattr";
    size_t first_test_arg = by_attr ? 1 : 0;
    List out;
    for (const auto& x : as_list(v)) {
      Value subject = by_attr ? attr_path(x, to_string(a.args.empty() ? Value() : a.args[0])) : x;
      bool r;
      if (a.args.size() > first_test_arg) {
        CallArgs sub;
        sub.pos = a.pos;
        sub.args.assign(a.args.begin() + static_cast<std::ptrdiff_t>(first_test_arg) + 1, a.args.end());
        r = apply_test(to_string(a.args[first_test_arg]), subject, sub);
      } else {
        r = subject.truthy();
      }
      if (r == keep_true) out.push_back(x);
    }
    return generator(std::move(out));
  }
  if (name == "batch") {
    int64_t size = std::max<int64_t>(1, a.get(0, "linecount", Value(static_cast<int64_t>(1))).integer());
    List out, cur;
    for (const auto& x : as_list(v)) {
      cur.push_back(x);
      if (static_cast<int64_t>(cur.size()) == size) out.push_back(Value(cur)), cur.clear();
    }
    if (!cur.empty()) out.push_back(Value(cur));
    return Value(std::move(out));
  }
  if (name == "wordcount") return Value(static_cast<int64_t>(call_method(Value(to_string(v)), "split", a).list->size()));
  if (name == "center") {
    std::string s = to_string(v);
    int64_t w = a.get(0, "width", Value(static_cast<int64_t>(80))).integer();
    if (static_cast<int64_t>(s.size()) >= w) return Value(s);
    size_t left = static_cast<size_t>(w - static_cast<int64_t>(s.size())) / 2;
    return Value(std::string(left, ' ') + s + std::string(static_cast<size_t>(w) - s.size() - left, ' '));
  }
  runtime_error(a.pos, "unknown filter '" + name + "'");
}

bool apply_test(const std::string& name, const Value& v, CallArgs& a) {
  if (name == "defined") return v.defined();
  if (name == "undefined") return !v.defined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.kind == Value::Kind::Int;
  if (name == "float") return v.kind == Value::Kind::Float;
  if (name == "boolean") return v.kind == Value::Kind::Bool;
  if (name == "true") return v.kind == Value::Kind::Bool && v.b;
  if (name == "false") return v.kind == Value::Kind::Bool && !v.b;
  if (name == "mapping") return v.kind == Value::Kind::Dict;
  // Jinja's Undefined iterates as empty and has a length (0), so it passes both.
  if (name == "sequence" || name == "iterable") return v.kind == Value::Kind::List || v.is_string() || v.kind == Value::Kind::Dict || !v.defined();
  if (name == "callable") return v.kind == Value::Kind::Function;
  if (name == "odd") return v.kind == Value::Kind::Int && v.i % 2 != 0;
  if (name == "even") return v.kind == Value::Kind::Int && v.i % 2 == 0;
  if (name == "lower") return v.is_string() && lower(*v.s) == *v.s;
  if (name == "upper") return v.is_string() && upper(*v.s) == *v.s;
  if (name == "divisibleby") {
    int64_t d = a.get(0, "num").integer();
    return d != 0 && v.integer() % d == 0;
  }
  Value other = a.get(0, "other");
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return equal(v, other);
  if (name == "ne" || name == "!=") return !equal(v, other);
  if (name == "gt" || name == "greaterthan") return compare_values(v, other) > 0;
  if (name == "ge") return compare_values(v, other) >= 0;
  if (name == "lt" || name == "lessthan") return compare_values(v, other) < 0;
  if (name == "le") return compare_values(v, other) <= 0;
  if (name == "in") {
    if (other.kind == Value::Kind::List) return std::any_of(other.list->begin(), other.list->end(), [&](const Value& x) { return equal(x, v); });
    if (other.is_string()) return v.is_string() && other.s->find(*v.s) != std::string::npos;
    if (other.kind == Value::Kind::Dict) return other.find_key(v) != nullptr;
    return false;
  }
  runtime_error(a.pos, "unknown test '" + name + "'");
}

}  // namespace jing::jinja
