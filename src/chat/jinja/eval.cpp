#include "chat/jinja/eval.h"

#include <cmath>

#include "common/error.h"

namespace jing::jinja {

void runtime_error(Pos p, const std::string& msg) {
  throw Error("template error at line " + std::to_string(p.line) + ", column " + std::to_string(p.col) + ": " + msg);
}

Value CallArgs::get(size_t i, const char* name, Value def) const {
  for (const auto& [k, v] : kwargs)
    if (k == name) return v;
  return i < args.size() ? args[i] : def;
}

namespace {

constexpr size_t kMaxOutput = 16 << 20;
constexpr int64_t kMaxSteps = 5'000'000;
constexpr int kMaxDepth = 100;

struct BreakSignal {};
struct ContinueSignal {};

class Renderer {
 public:
  explicit Renderer(const Globals& g) { scopes_.push_back(g); }

  void run(const Body& body, std::string& out) {
    for (const auto& s : body) exec(*s, out);
  }

 private:
  std::vector<std::unordered_map<std::string, Value>> scopes_;
  int64_t steps_ = 0;
  int depth_ = 0;

  void tick(Pos p) {
    if (++steps_ > kMaxSteps) runtime_error(p, "template runs too long");
  }

  Value lookup(const std::string& n) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto f = it->find(n);
      if (f != it->end()) return f->second;
    }
    return Value();
  }
  void assign(const std::string& n, Value v) { scopes_.back()[n] = std::move(v); }

  void emit(std::string& out, const std::string& s, Pos p) {
    out += s;
    if (out.size() > kMaxOutput) runtime_error(p, "template output is too large");
  }

  void exec(const Stmt& s, std::string& out) {
    tick(s.pos);
    switch (s.kind) {
      case Stmt::Kind::Text: emit(out, s.text, s.pos); break;
      case Stmt::Kind::Output: emit(out, to_string(eval(*s.expr)), s.pos); break;
      case Stmt::Kind::If:
        for (size_t k = 0; k < s.bodies.size(); ++k) {
          if (k < s.conds.size() && !eval(*s.conds[k]).truthy()) continue;
          run(s.bodies[k], out);
          break;
        }
        break;
      case Stmt::Kind::For: exec_for(s, out); break;
      case Stmt::Kind::Set: {
        Value v = eval(*s.expr);
        if (s.target_obj) {
          Value obj = eval(*s.target_obj);
          if (obj.kind != Value::Kind::Dict || !obj.is_namespace) runtime_error(s.pos, "cannot assign an attribute of a non-namespace object");
          obj.set(s.attr, v);
        } else {
          unpack(s.targets, v, s.pos);
        }
        break;
      }
      case Stmt::Kind::SetBlock: {
        std::string captured;
        run(s.bodies[0], captured);
        Value v(captured);
        if (s.filter) v = apply_filter_chain(*s.filter, v);
        assign(s.targets[0], v);
        break;
      }
      case Stmt::Kind::Macro: assign(s.name, make_macro(s)); break;
      case Stmt::Kind::CallBlock: {
        const Stmt* self = &s;
        Renderer* r = this;
        Value caller(Function([r, self](CallArgs& a) {
          r->scopes_.emplace_back();
          for (size_t k = 0; k < self->params.size(); ++k) r->assign(self->params[k].first, a.get(k, self->params[k].first.c_str()));
          std::string o;
          r->run(self->bodies[0], o);
          r->scopes_.pop_back();
          return Value(o);
        }));
        scopes_.emplace_back();
        assign("caller", caller);
        Value v = eval(*s.expr);
        scopes_.pop_back();
        emit(out, to_string(v), s.pos);
        break;
      }
      case Stmt::Kind::FilterBlock: {
        std::string captured;
        run(s.bodies[0], captured);
        emit(out, to_string(apply_filter_chain(*s.filter, Value(captured))), s.pos);
        break;
      }
      case Stmt::Kind::Break: throw BreakSignal{};
      case Stmt::Kind::Continue: throw ContinueSignal{};
    }
  }

  // Applies a filter chain parsed with a null base to `v`.
  Value apply_filter_chain(const Expr& f, const Value& v) {
    Value base = f.args[0] ? apply_filter_chain(*f.args[0], v) : v;
    CallArgs a = collect_args(f, 1);
    return apply_filter(f.name, base, a);
  }

  void unpack(const std::vector<std::string>& names, const Value& v, Pos p) {
    if (names.size() == 1) return assign(names[0], v);
    if (v.kind != Value::Kind::List || v.list->size() != names.size())
      runtime_error(p, "cannot unpack " + std::string(kind_name(v.kind)) + " into " + std::to_string(names.size()) + " names");
    for (size_t k = 0; k < names.size(); ++k) assign(names[k], (*v.list)[k]);
  }

  void exec_for(const Stmt& s, std::string& out) {
    Value seq = eval(*s.expr);
    List items;
    if (seq.kind == Value::Kind::List) items = *seq.list;
    else if (seq.kind == Value::Kind::Dict)
      for (const auto& [k, v] : *seq.dict) items.push_back(k);
    else if (seq.kind == Value::Kind::String)
      for (char c : *seq.s) items.push_back(Value(std::string(1, c)));
    else if (seq.defined()) runtime_error(s.pos, std::string("cannot iterate over ") + kind_name(seq.kind));  // None too, as Python
    if (s.filter) {
      List kept;
      for (const auto& item : items) {
        scopes_.emplace_back();
        unpack(s.targets, item, s.pos);
        bool keep = eval(*s.filter).truthy();
        scopes_.pop_back();
        if (keep) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      if (s.bodies.size() > 1) run(s.bodies[1], out);
      return;
    }
    scopes_.emplace_back();
    const size_t n = items.size();
    for (size_t k = 0; k < n; ++k) {
      tick(s.pos);
      Dict loop{{"index", Value(static_cast<int64_t>(k + 1))},    {"index0", Value(static_cast<int64_t>(k))},
                {"revindex", Value(static_cast<int64_t>(n - k))}, {"revindex0", Value(static_cast<int64_t>(n - k - 1))},
                {"first", Value(k == 0)},                          {"last", Value(k + 1 == n)},
                {"length", Value(static_cast<int64_t>(n))},        {"previtem", k > 0 ? items[k - 1] : Value()},
                {"nextitem", k + 1 < n ? items[k + 1] : Value()}};
      Value loop_v(std::move(loop));
      loop_v.set("cycle", Value(Function([k](CallArgs& a) { return a.args.empty() ? Value() : a.args[k % a.args.size()]; })));
      assign("loop", loop_v);
      unpack(s.targets, items[k], s.pos);
      try {
        run(s.bodies[0], out);
      } catch (const BreakSignal&) {
        break;
      } catch (const ContinueSignal&) {
        continue;
      }
    }
    scopes_.pop_back();
  }

  Value make_macro(const Stmt& s) {
    const Stmt* self = &s;
    Renderer* r = this;
    return Value(Function([r, self](CallArgs& a) {
      if (++r->depth_ > kMaxDepth) runtime_error(self->pos, "macro recursion is too deep");
      r->scopes_.emplace_back();
      for (size_t k = 0; k < self->params.size(); ++k) {
        const auto& [name, def] = self->params[k];
        Value v = a.get(k, name.c_str());
        if (!v.defined() && def) v = r->eval(*def);
        r->assign(name, v);
      }
      std::string o;
      try {
        r->run(self->bodies[0], o);
      } catch (...) {
        r->scopes_.pop_back();
        --r->depth_;
        throw;
      }
      r->scopes_.pop_back();
      --r->depth_;
      return Value(o);
    }));
  }

  CallArgs collect_args(const Expr& e, size_t first) {
    CallArgs a;
    a.pos = e.pos;
    for (size_t k = first; k < e.args.size(); ++k) a.args.push_back(eval(*e.args[k]));
    for (const auto& [n, x] : e.kwargs) a.kwargs.emplace_back(n, eval(*x));
    return a;
  }

  Value eval(const Expr& e) {
    tick(e.pos);
    if (++depth_ > kMaxDepth * 4) runtime_error(e.pos, "expression is nested too deeply");
    struct Guard {
      int& d;
      ~Guard() { --d; }
    } guard{depth_};
    switch (e.kind) {
      case Expr::Kind::Literal: return e.value;
      case Expr::Kind::Name: return lookup(e.name);
      case Expr::Kind::Attr: return get_attr(defined_or_raise(*e.args[0]), e.name);
      case Expr::Kind::Index: return get_item(defined_or_raise(*e.args[0]), eval(*e.args[1]));
      case Expr::Kind::Slice: return slice(eval(*e.args[0]), e.args[1].get(), e.args[2].get(), e.args[3].get(), e.pos);
      case Expr::Kind::Call: {
        const Expr& callee = *e.args[0];
        if (callee.kind == Expr::Kind::Attr) {  // method call: obj.name(...)
          Value obj = eval(*callee.args[0]);
          Value attr = obj.kind == Value::Kind::Dict ? get_attr(obj, callee.name) : Value();
          CallArgs a = collect_args(e, 1);
          if (attr.kind == Value::Kind::Function) return (*attr.fn)(a);
          return call_method(obj, callee.name, a);
        }
        Value f = eval(callee);
        if (f.kind != Value::Kind::Function) runtime_error(e.pos, (callee.kind == Expr::Kind::Name ? "'" + callee.name + "'" : "value") + " is not callable");
        CallArgs a = collect_args(e, 1);
        return (*f.fn)(a);
      }
      case Expr::Kind::Filter: {
        Value in = eval(*e.args[0]);
        CallArgs a = collect_args(e, 1);
        return apply_filter(e.name, in, a);
      }
      case Expr::Kind::Test: {
        Value in = eval(*e.args[0]);
        CallArgs a = collect_args(e, 1);
        return Value(apply_test(e.name, in, a) != e.negated);
      }
      case Expr::Kind::Unary: {
        Value v = eval(*e.args[0]);
        if (!v.is_number() && v.kind != Value::Kind::Bool) runtime_error(e.pos, "unary " + e.name + " needs a number");
        if (e.name == "+") return v;
        return v.kind == Value::Kind::Float ? Value(-v.f) : Value(-v.integer());
      }
      case Expr::Kind::Not: return Value(!eval(*e.args[0]).truthy());
      case Expr::Kind::And: {
        Value l = eval(*e.args[0]);
        return l.truthy() ? eval(*e.args[1]) : l;
      }
      case Expr::Kind::Or: {
        Value l = eval(*e.args[0]);
        return l.truthy() ? l : eval(*e.args[1]);
      }
      case Expr::Kind::Cond: return eval(*e.args[0]).truthy() ? eval(*e.args[1]) : eval(*e.args[2]);
      case Expr::Kind::List: case Expr::Kind::Tuple: {
        List l;
        for (const auto& x : e.args) l.push_back(eval(*x));
        return Value(std::move(l));
      }
      case Expr::Kind::Dict: {
        Value d(Dict{});
        for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
          Value key = eval(*e.args[k]);
          d.set(key, eval(*e.args[k + 1]));
        }
        return d;
      }
      case Expr::Kind::Binary: return binary(e);
    }
    return Value();
  }

  // Jinja's Undefined prints as nothing, but looking inside it raises.
  Value defined_or_raise(const Expr& e) {
    Value v = eval(e);
    if (!v.defined()) runtime_error(e.pos, "UndefinedError: " + (e.kind == Expr::Kind::Name ? "'" + e.name + "'" : std::string("a value")) + " is undefined");
    return v;
  }

  Value slice(const Value& v, const Expr* a, const Expr* b, const Expr* c, Pos p) {
    auto idx = [&](const Expr* x, int64_t def) { return x ? eval(*x).integer() : def; };
    int64_t n = v.kind == Value::Kind::String ? static_cast<int64_t>(v.s->size()) : v.kind == Value::Kind::List ? static_cast<int64_t>(v.list->size()) : -1;
    if (n < 0) runtime_error(p, std::string("cannot slice ") + kind_name(v.kind));
    int64_t step = idx(c, 1);
    if (step == 0) runtime_error(p, "slice step cannot be zero");
    auto norm = [&](int64_t x, bool is_start) {
      if (x < 0) x += n;
      if (step > 0) return std::clamp<int64_t>(x, 0, n);
      return std::clamp<int64_t>(x, -1, n - 1);
      (void)is_start;
    };
    int64_t start = a ? norm(idx(a, 0), true) : (step > 0 ? 0 : n - 1);
    int64_t stop = b ? norm(idx(b, 0), false) : (step > 0 ? n : -1);
    if (v.kind == Value::Kind::String) {
      std::string out;
      for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) out += (*v.s)[static_cast<size_t>(k)];
      return Value(out);
    }
    List out;
    for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) out.push_back((*v.list)[static_cast<size_t>(k)]);
    return Value(std::move(out));
  }

  Value binary(const Expr& e) {
    const std::string& op = e.name;
    Value l = eval(*e.args[0]), r = eval(*e.args[1]);
    if (op == "==") return Value(equal(l, r));
    if (op == "!=") return Value(!equal(l, r));
    if (op == "in" || op == "not in") {
      bool found = false;
      if (r.kind == Value::Kind::String) found = l.is_string() && r.s->find(*l.s) != std::string::npos;
      else if (r.kind == Value::Kind::List) found = std::any_of(r.list->begin(), r.list->end(), [&](const Value& x) { return equal(x, l); });
      else if (r.kind == Value::Kind::Dict) found = r.find_key(l) != nullptr;
      else if (r.defined()) runtime_error(e.pos, std::string("TypeError: argument of type '") + kind_name(r.kind) + "' is not iterable");
      return Value(op == "in" ? found : !found);
    }
    if (op == "~") return Value(to_string(l) + to_string(r));
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      int c;
      if (l.is_string() && r.is_string()) c = l.s->compare(*r.s);
      else if ((l.is_number() || l.kind == Value::Kind::Bool) && (r.is_number() || r.kind == Value::Kind::Bool))
        c = l.number() < r.number() ? -1 : l.number() > r.number() ? 1 : 0;
      else runtime_error(e.pos, std::string("cannot compare ") + kind_name(l.kind) + " and " + kind_name(r.kind));
      return Value(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
    }
    if (op == "+") {
      if (l.is_string() && r.is_string() && (l.is_safe || r.is_safe)) {  // Markup + str escapes the str
        Value out((l.is_safe ? *l.s : html_escape(*l.s)) + (r.is_safe ? *r.s : html_escape(*r.s)));
        out.is_safe = true;
        return out;
      }
      if (l.is_string() && r.is_string()) return Value(*l.s + *r.s);
      if (l.kind == Value::Kind::List && r.kind == Value::Kind::List) {
        List out = *l.list;
        out.insert(out.end(), r.list->begin(), r.list->end());
        return Value(std::move(out));
      }
    }
    if (op == "*" && l.is_string() && r.kind == Value::Kind::Int) {
      std::string out;
      for (int64_t k = 0; k < std::min<int64_t>(r.i, 1 << 20); ++k) out += *l.s;
      return Value(out);
    }
    if (op == "%" && l.is_string()) {  // "%s" formatting of one value or a tuple
      List vals = r.kind == Value::Kind::List ? *r.list : List{r};
      std::string out;
      size_t vi = 0;
      for (size_t k = 0; k < l.s->size(); ++k) {
        char c = (*l.s)[k];
        if (c == '%' && k + 1 < l.s->size()) {
          char f = (*l.s)[++k];
          if (f == '%') out += '%';
          else if (vi < vals.size()) {
            const Value& x = vals[vi++];
            std::string s = f == 'r' ? repr(x) : to_string(x);
            out += l.is_safe && !x.is_safe ? html_escape(s) : s;  // Markup % args escapes the args
          }
        } else {
          out += c;
        }
      }
      Value result(out);
      result.is_safe = l.is_safe;
      return result;
    }
    const bool numeric = (l.is_number() || l.kind == Value::Kind::Bool) && (r.is_number() || r.kind == Value::Kind::Bool);
    if (!numeric) runtime_error(e.pos, "unsupported operand types for " + op + ": " + kind_name(l.kind) + " and " + kind_name(r.kind));
    const bool ints = l.kind != Value::Kind::Float && r.kind != Value::Kind::Float;
    const double a = l.number(), b = r.number();
    if (op == "+") return ints ? Value(static_cast<int64_t>(a + b)) : Value(a + b);
    if (op == "-") return ints ? Value(static_cast<int64_t>(a - b)) : Value(a - b);
    if (op == "*") return ints ? Value(static_cast<int64_t>(a * b)) : Value(a * b);
    if (op == "/") {
      if (b == 0) runtime_error(e.pos, "division by zero");
      return Value(a / b);
    }
    if (op == "//" || op == "%") {
      if (b == 0) runtime_error(e.pos, "division by zero");
      double q = std::floor(a / b);
      if (op == "//") return ints ? Value(static_cast<int64_t>(q)) : Value(q);
      return ints ? Value(static_cast<int64_t>(a - q * b)) : Value(a - q * b);
    }
    if (op == "**") return ints && b >= 0 ? Value(static_cast<int64_t>(std::pow(a, b))) : Value(std::pow(a, b));
    runtime_error(e.pos, "unknown operator " + op);
  }
};

}  // namespace

std::string render(const Template& t, const Globals& globals) {
  Renderer r(globals);
  std::string out;
  try {
    r.run(t.body, out);
  } catch (const BreakSignal&) {
  } catch (const ContinueSignal&) {
  }
  return out;
}

}  // namespace jing::jinja
