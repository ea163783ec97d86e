// Recursive-descent parser for the Jinja2 subset chat templates use (tokens from lexer.h). Operator
// precedence follows Jinja: if-else < or < and < not < comparisons/in/is < + - < ~ < * / // % <
// ** < unary - < postfix (. [] () | filters).
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "chat/jinja/lexer.h"
#include "common/error.h"

namespace jing::jinja {
namespace {

class Parser {
 public:
  explicit Parser(std::vector<Chunk> chunks) : chunks_(std::move(chunks)) {}

  Template parse_all() {
    Template t;
    std::string stop;
    t.body = parse_body({}, stop);
    return t;
  }

 private:
  // Statement tokens of the current {% %} chunk.
  std::vector<Tok> toks_;
  size_t at_ = 0;
  std::vector<Chunk> chunks_;
  size_t ci_ = 0;
  int depth_ = 0;

  const Tok& peek(size_t k = 0) const { return toks_[std::min(at_ + k, toks_.size() - 1)]; }
  bool is_op(const std::string& op, size_t k = 0) const { return peek(k).t == Tok::T::Op && peek(k).v == op; }
  bool is_name(const std::string& n, size_t k = 0) const { return peek(k).t == Tok::T::Name && peek(k).v == n; }
  Tok next() { return toks_[std::min(at_++, toks_.size() - 1)]; }
  void expect_op(const std::string& op) {
    if (!is_op(op)) fail(peek().pos, "expected '" + op + "', found '" + peek().v + "'");
    ++at_;
  }
  std::string expect_name() {
    if (peek().t != Tok::T::Name) fail(peek().pos, "expected a name, found '" + peek().v + "'");
    return next().v;
  }
  void expect_end() {
    if (peek().t != Tok::T::End) fail(peek().pos, "unexpected '" + peek().v + "'");
  }

  // Parses statements until a {% name %} in `stops`; returns with that tag's tokens loaded.
  Body parse_body(const std::vector<std::string>& stops, std::string& stopped_at) {
    if (++depth_ > 200) fail(ci_ < chunks_.size() ? chunks_[ci_].pos : Pos{}, "blocks nested too deeply");
    Body body;
    while (ci_ < chunks_.size()) {
      const Chunk& c = chunks_[ci_++];
      if (c.k == Chunk::K::Text) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Text;
        s->text = c.body;
        s->pos = c.pos;
        body.push_back(std::move(s));
        continue;
      }
      toks_ = lex(c.body, c.pos);
      at_ = 0;
      if (c.k == Chunk::K::Expr) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Output;
        s->pos = c.pos;
        s->expr = parse_expr();
        expect_end();
        body.push_back(std::move(s));
        continue;
      }
      if (peek().t != Tok::T::Name) fail(c.pos, "expected a statement name");
      const std::string kw = peek().v;
      for (const auto& stop : stops)
        if (kw == stop) {
          ++at_;
          stopped_at = kw;
          --depth_;
          return body;
        }
      ++at_;
      body.push_back(parse_statement(kw, c.pos));
    }
    if (!stops.empty()) fail(chunks_.empty() ? Pos{} : chunks_.back().pos, "missing {% " + stops.front() + " %}");
    --depth_;
    return body;
  }

  StmtPtr parse_statement(const std::string& kw, Pos pos) {
    auto s = std::make_unique<Stmt>();
    s->pos = pos;
    std::string stop;
    if (kw == "if") {
      s->kind = Stmt::Kind::If;
      s->conds.push_back(parse_expr());
      expect_end();
      while (true) {
        s->bodies.push_back(parse_body({"elif", "else", "endif"}, stop));
        if (stop == "elif") {
          s->conds.push_back(parse_expr());
          expect_end();
        } else if (stop == "else") {
          expect_end();
          s->bodies.push_back(parse_body({"endif"}, stop));
          break;
        } else {
          break;
        }
      }
    } else if (kw == "for") {
      s->kind = Stmt::Kind::For;
      s->targets.push_back(expect_name());
      while (is_op(",")) {
        ++at_;
        s->targets.push_back(expect_name());
      }
      if (!is_name("in")) fail(peek().pos, "expected 'in'");
      ++at_;
      s->expr = parse_or_cond(false);
      if (is_name("if")) {
        ++at_;
        s->filter = parse_or();
      }
      if (is_name("recursive")) fail(peek().pos, "recursive loops are not supported");
      expect_end();
      s->bodies.push_back(parse_body({"else", "endfor"}, stop));
      if (stop == "else") {
        expect_end();
        s->bodies.push_back(parse_body({"endfor"}, stop));
      }
    } else if (kw == "set") {
      std::string first = expect_name();
      if (is_op(".")) {
        ++at_;
        s->kind = Stmt::Kind::Set;
        auto obj = std::make_unique<Expr>();
        obj->kind = Expr::Kind::Name;
        obj->name = first;
        obj->pos = pos;
        s->target_obj = std::move(obj);
        s->attr = expect_name();
      } else {
        s->targets.push_back(first);
        while (is_op(",")) {
          ++at_;
          s->targets.push_back(expect_name());
        }
      }
      if (is_op("=")) {
        ++at_;
        s->kind = Stmt::Kind::Set;
        s->expr = parse_expr();
        expect_end();
      } else {
        s->kind = Stmt::Kind::SetBlock;
        if (is_op("|")) s->filter = parse_filter_chain(nullptr);
        expect_end();
        s->bodies.push_back(parse_body({"endset"}, stop));
      }
    } else if (kw == "macro") {
      s->kind = Stmt::Kind::Macro;
      s->name = expect_name();
      parse_params(s->params);
      expect_end();
      s->bodies.push_back(parse_body({"endmacro"}, stop));
    } else if (kw == "call") {
      s->kind = Stmt::Kind::CallBlock;
      if (is_op("(")) parse_params(s->params);
      s->expr = parse_expr();
      expect_end();
      s->bodies.push_back(parse_body({"endcall"}, stop));
    } else if (kw == "filter") {
      s->kind = Stmt::Kind::FilterBlock;
      s->filter = parse_filter_chain(nullptr, /*leading_bar=*/false);
      expect_end();
      s->bodies.push_back(parse_body({"endfilter"}, stop));
    } else if (kw == "break" || kw == "continue") {
      s->kind = kw == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue;
      expect_end();
    } else if (kw == "generation" || kw == "endgeneration") {
      s->kind = Stmt::Kind::Text;  // transformers' assistant-mask markers render nothing
      expect_end();
    } else {
      fail(pos, "unknown statement '" + kw + "'");
    }
    return s;
  }

  void parse_params(std::vector<std::pair<std::string, ExprPtr>>& params) {
    expect_op("(");
    while (!is_op(")")) {
      std::string n = expect_name();
      ExprPtr def;
      if (is_op("=")) {
        ++at_;
        def = parse_expr();
      }
      params.emplace_back(n, std::move(def));
      if (!is_op(",")) break;
      ++at_;
    }
    expect_op(")");
  }

  ExprPtr make(Expr::Kind k, Pos p) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->pos = p;
    return e;
  }

  ExprPtr parse_expr() {
    if (++depth_ > 200) fail(peek().pos, "expression nested too deeply");
    auto e = parse_or_cond(true);
    --depth_;
    return e;
  }

  // Tuples without parentheses ("a, b") are allowed only where Jinja allows them (set, for).
  ExprPtr parse_or_cond(bool allow_cond) {
    auto e = parse_or();
    if (allow_cond && is_name("if")) {
      Pos p = peek().pos;
      ++at_;
      auto c = make(Expr::Kind::Cond, p);
      auto test = parse_or();
      ExprPtr other;
      if (is_name("else")) {
        ++at_;
        other = parse_or_cond(true);
      } else {
        other = make(Expr::Kind::Literal, p);  // undefined
      }
      c->args.push_back(std::move(test));
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(other));
      return c;
    }
    return e;
  }

  ExprPtr parse_or() {
    auto e = parse_and();
    while (is_name("or")) {
      auto o = make(Expr::Kind::Or, next().pos);
      o->args.push_back(std::move(e));
      o->args.push_back(parse_and());
      e = std::move(o);
    }
    return e;
  }
  ExprPtr parse_and() {
    auto e = parse_not();
    while (is_name("and")) {
      auto o = make(Expr::Kind::And, next().pos);
      o->args.push_back(std::move(e));
      o->args.push_back(parse_not());
      e = std::move(o);
    }
    return e;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      auto o = make(Expr::Kind::Not, next().pos);
      o->args.push_back(parse_not());
      return o;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    auto e = parse_math1();
    while (true) {
      std::string op;
      Pos p = peek().pos;
      if (peek().t == Tok::T::Op && (peek().v == "==" || peek().v == "!=" || peek().v == "<" || peek().v == ">" || peek().v == "<=" || peek().v == ">=")) {
        op = next().v;
      } else if (is_name("in")) {
        ++at_;
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        at_ += 2;
        op = "not in";
      } else {
        break;
      }
      auto b = make(Expr::Kind::Binary, p);
      b->name = op;
      b->args.push_back(std::move(e));
      b->args.push_back(parse_math1());
      e = std::move(b);
    }
    return e;
  }
  ExprPtr binary(ExprPtr l, const std::string& op, Pos p, ExprPtr r) {
    auto b = make(Expr::Kind::Binary, p);
    b->name = op;
    b->args.push_back(std::move(l));
    b->args.push_back(std::move(r));
    return b;
  }
  ExprPtr parse_math1() {
    auto e = parse_concat();
    while (is_op("+") || is_op("-")) {
      Tok t = next();
      e = binary(std::move(e), t.v, t.pos, parse_concat());
    }
    return e;
  }
  ExprPtr parse_concat() {
    auto e = parse_math2();
    while (is_op("~")) {
      Tok t = next();
      e = binary(std::move(e), "~", t.pos, parse_math2());
    }
    return e;
  }
  ExprPtr parse_math2() {
    auto e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      Tok t = next();
      e = binary(std::move(e), t.v, t.pos, parse_pow());
    }
    return e;
  }
  ExprPtr parse_pow() {
    auto e = parse_unary();
    while (is_op("**")) {
      Tok t = next();
      e = binary(std::move(e), "**", t.pos, parse_unary());
    }
    return e;
  }
  ExprPtr parse_unary() {
    if (is_op("-") || is_op("+")) {
      Tok t = next();
      auto u = make(Expr::Kind::Unary, t.pos);
      u->name = t.v;
      u->args.push_back(parse_unary());
      return u;
    }
    return parse_filters(parse_postfix(parse_primary()));
  }

  ExprPtr parse_primary() {
    Tok t = next();
    switch (t.t) {
      case Tok::T::Int: {
        auto e = make(Expr::Kind::Literal, t.pos);
        errno = 0;
        long long v = std::strtoll(t.v.c_str(), nullptr, 10);
        e->value = errno == ERANGE ? Value(std::strtod(t.v.c_str(), nullptr)) : Value(static_cast<int64_t>(v));
        return e;
      }
      case Tok::T::Float: {
        auto e = make(Expr::Kind::Literal, t.pos);
        e->value = Value(std::strtod(t.v.c_str(), nullptr));
        return e;
      }
      case Tok::T::Str: {
        auto e = make(Expr::Kind::Literal, t.pos);
        std::string s = t.v;
        while (peek().t == Tok::T::Str) s += next().v;  // adjacent literals concatenate
        e->value = Value(s);
        return e;
      }
      case Tok::T::Name: {
        auto e = make(Expr::Kind::Literal, t.pos);
        if (t.v == "true" || t.v == "True") e->value = Value(true);
        else if (t.v == "false" || t.v == "False") e->value = Value(false);
        else if (t.v == "none" || t.v == "None") e->value = Value::none();
        else {
          e->kind = Expr::Kind::Name;
          e->name = t.v;
        }
        return e;
      }
      case Tok::T::Op: {
        if (t.v == "(") {
          if (is_op(")")) {
            ++at_;
            return make(Expr::Kind::Tuple, t.pos);
          }
          auto e = parse_expr();
          if (is_op(",")) {
            auto tup = make(Expr::Kind::Tuple, t.pos);
            tup->args.push_back(std::move(e));
            while (is_op(",")) {
              ++at_;
              if (is_op(")")) break;
              tup->args.push_back(parse_expr());
            }
            e = std::move(tup);
          }
          expect_op(")");
          return e;
        }
        if (t.v == "[") {
          auto l = make(Expr::Kind::List, t.pos);
          while (!is_op("]")) {
            l->args.push_back(parse_expr());
            if (!is_op(",")) break;
            ++at_;
          }
          expect_op("]");
          return l;
        }
        if (t.v == "{") {
          auto d = make(Expr::Kind::Dict, t.pos);
          while (!is_op("}")) {
            d->args.push_back(parse_expr());
            expect_op(":");
            d->args.push_back(parse_expr());
            if (!is_op(",")) break;
            ++at_;
          }
          expect_op("}");
          return d;
        }
        break;
      }
      case Tok::T::End: fail(t.pos, "unexpected end of expression");
    }
    fail(t.pos, "unexpected '" + t.v + "'");
  }

  void parse_call_args(Expr& call) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().t == Tok::T::Name && is_op("=", 1)) {
        std::string k = next().v;
        ++at_;
        call.kwargs.emplace_back(k, parse_expr());
      } else {
        call.args.push_back(parse_expr());
      }
      if (!is_op(",")) break;
      ++at_;
    }
    expect_op(")");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        Pos p = next().pos;
        auto a = make(Expr::Kind::Attr, p);
        if (peek().t == Tok::T::Int) a->name = next().v;
        else a->name = expect_name();
        a->args.push_back(std::move(e));
        e = std::move(a);
      } else if (is_op("[")) {
        Pos p = next().pos;
        ExprPtr parts[3];
        bool slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!is_op(":") && !is_op("]")) parts[k] = parse_expr();
          if (is_op(":") && k < 2) {
            ++at_;
            slice = true;
          } else {
            break;
          }
        }
        expect_op("]");
        if (!slice && !parts[0]) fail(p, "empty subscript");
        auto x = make(slice ? Expr::Kind::Slice : Expr::Kind::Index, p);
        x->args.push_back(std::move(e));
        for (auto& part : parts) x->args.push_back(part ? std::move(part) : nullptr);
        e = std::move(x);
      } else if (is_op("(")) {
        auto c = make(Expr::Kind::Call, peek().pos);
        c->args.push_back(std::move(e));
        parse_call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  // A chain of "| name(args)" filters applied to `base` (nullptr: the block's content).
  ExprPtr parse_filter_chain(ExprPtr base, bool leading_bar = true) {
    bool first = true;
    while ((first && !leading_bar) || is_op("|")) {
      if (!(first && !leading_bar)) ++at_;
      first = false;
      auto f = make(Expr::Kind::Filter, peek().pos);
      f->name = expect_name();
      f->args.push_back(std::move(base));
      if (is_op("(")) parse_call_args(*f);
      base = std::move(f);
    }
    return base;
  }

  ExprPtr parse_filters(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        e = parse_filter_chain(std::move(e));
      } else if (is_name("is")) {
        auto t = make(Expr::Kind::Test, next().pos);
        if (is_name("not")) {
          ++at_;
          t->negated = true;
        }
        t->name = expect_name();
        t->args.push_back(std::move(e));
        if (is_op("(")) {
          parse_call_args(*t);
        } else if (peek().t == Tok::T::Str || peek().t == Tok::T::Int || peek().t == Tok::T::Float ||
                   (peek().t == Tok::T::Name && !is_name("and") && !is_name("or") && !is_name("else") && !is_name("if") &&
                    !is_name("is") && !is_name("in") && !is_name("not"))) {
          t->args.push_back(parse_primary());  // "is divisibleby 3", "is sameas none"
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }
};

}  // namespace

Template parse(const std::string& source) {
  Parser p(split_source(source));
  return p.parse_all();
}

}  // namespace jing::jinja
