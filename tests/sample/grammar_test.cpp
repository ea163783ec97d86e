// GBNF parsing, the grammar matcher (text acceptance, token masks against a token-by-token check on
// a real 150k vocabulary), and JSON Schema -> grammar.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>

#include <nlohmann/json.hpp>

#include "gguf/gguf.h"
#include "sample/gbnf.h"
#include "sample/grammar_matcher.h"
#include "sample/json_schema.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace jing::sample {
namespace {

using json = nlohmann::ordered_json;

// A toy vocabulary: every printable ASCII character, a few words, and an end token (id 0).
std::shared_ptr<const TokenIndex> toy_tokens() {
  auto t = std::make_shared<TokenIndex>();
  std::vector<std::string> words = {"<eos>"};
  for (char c = ' '; c <= '~'; ++c) words.push_back(std::string(1, c));
  for (const char* w : {"true", "false", "null", "\": ", "\",", "ab", "abc", "{\"", "é", "\xC3", "\xA9", "\n"}) words.push_back(w);
  t->n_vocab = static_cast<int>(words.size());
  t->eog = {0};
  t->text_of = words;
  t->text_of[0].clear();
  std::vector<int32_t> order;
  for (int32_t i = 1; i < t->n_vocab; ++i) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return words[static_cast<size_t>(a)] < words[static_cast<size_t>(b)]; });
  for (int32_t i : order) t->bytes.push_back(words[static_cast<size_t>(i)]), t->ids.push_back(i);
  return t;
}

bool accepts(const std::string& gbnf, const std::string& text) {
  GrammarMatcher m(std::make_shared<const Grammar>(parse_gbnf(gbnf)), toy_tokens());
  return m.accept_text(text) && m.complete();
}

TEST(Gbnf, AcceptsWhatTheGrammarSays) {
  const std::string g = R"(root ::= "a" [0-9]+ ("x" | "yz")? rest
rest ::= [^\n]{2,3} # two or three of anything but a newline
)";
  EXPECT_TRUE(accepts(g, "a1xzz"));
  EXPECT_TRUE(accepts(g, "a123yz..."));
  EXPECT_TRUE(accepts(g, "a9\xC3\xA9\xC3\xA9"));  // é is one character
  EXPECT_FALSE(accepts(g, "a1x"));                // rest needs two
  EXPECT_FALSE(accepts(g, "a1xzzzz"));            // at most three
  EXPECT_FALSE(accepts(g, "ax12"));
  EXPECT_FALSE(accepts(g, "a1y\n\n"));
  EXPECT_TRUE(accepts("root ::= \"\\\"\" [\\x41-\\u005A]* \"\\\"\"", "\"ABZ\""));
  EXPECT_TRUE(accepts("root ::= .*", "anything at all \n é"));
  EXPECT_FALSE(accepts("root ::= \"{\"", "\xC1\xBB"));          // overlong forms of "{" are not UTF-8
  EXPECT_FALSE(accepts("root ::= \"{\"", "\xE0\x81\xBB"));
  EXPECT_FALSE(accepts("root ::= .", "\xF8\x80\x80\x81"));     // a control token's spelling is no text
  EXPECT_TRUE(accepts("root ::= (\"ab\"){2} \"!\"", "abab!"));
  EXPECT_FALSE(accepts("root ::= (\"ab\"){2} \"!\"", "ab!"));
}

TEST(Gbnf, RecursionNestsAndMultiLineRulesParse) {
  const std::string g = R"g(
root ::=
  list
list ::= "(" ws (item (ws "," ws item)*)? ws ")"
item ::= list
       | [a-z]+
ws ::= " "*
)g";
  EXPECT_TRUE(accepts(g, "(a, (b, (c)), ())"));
  EXPECT_FALSE(accepts(g, "(a, (b)"));
}

TEST(Gbnf, BadGrammarsAreClearErrors) {
  auto error_of = [](const std::string& g) {
    try {
      parse_gbnf(g);
    } catch (const GrammarError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("root ::= undefined-rule").find("'undefined-rule' is used but not defined"), std::string::npos);
  EXPECT_NE(error_of("start ::= \"a\"").find("no 'root' rule"), std::string::npos);
  EXPECT_NE(error_of("root ::= root \"a\" | \"b\"").find("left-recursive"), std::string::npos);
  EXPECT_NE(error_of("root ::= x\nx ::= \"a\"? root").find("left-recursive"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"abc").find("unterminated string"), std::string::npos);
  EXPECT_NE(error_of("root ::= [a-").find("line 1"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"{5,2}").find("n < m"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"{0,99999}").find("bound"), std::string::npos);
  EXPECT_NE(error_of("root ::= (\"a\"").find("expected ')'"), std::string::npos);
}

TEST(GrammarMatcher, MaskFollowsTheGrammarOnToyTokens) {
  GrammarMatcher m(std::make_shared<const Grammar>(parse_gbnf("root ::= \"ab\" [c-d]* \"é\"")), toy_tokens());
  const auto toks = toy_tokens();
  auto allowed = [&]() {
    std::vector<float> logits(static_cast<size_t>(toks->n_vocab), 0.0f);
    m.mask(logits.data(), static_cast<int>(logits.size()));
    std::vector<std::string> out;
    for (int i = 0; i < toks->n_vocab; ++i)
      if (!std::isinf(logits[static_cast<size_t>(i)])) out.push_back(i == 0 ? "<eos>" : toks->text_of[static_cast<size_t>(i)]);
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(allowed(), (std::vector<std::string>{"a", "ab", "abc"}));  // "abc" = "ab" then "c"
  ASSERT_TRUE(m.accept(static_cast<int32_t>(std::find(toks->text_of.begin(), toks->text_of.end(), "ab") - toks->text_of.begin())));
  EXPECT_EQ(allowed(), (std::vector<std::string>{"c", "d", "\xC3", "é"}));  // a lead byte that may become é
  ASSERT_TRUE(m.accept_text("\xC3"));
  EXPECT_EQ(allowed(), (std::vector<std::string>{"\xA9"}));
  ASSERT_TRUE(m.accept_text("\xA9"));
  EXPECT_TRUE(m.complete());
  EXPECT_EQ(allowed(), (std::vector<std::string>{"<eos>"}));
  EXPECT_TRUE(m.finished());
}

// The mask of each state on the way through a JSON document equals asking token by token.
TEST(GrammarMatcher, MaskEqualsTokenByTokenCheckOnARealVocabulary) {
  JING_FIXTURE_OR_SKIP(vpath, "tokenizer/qwen3-vocab.gguf");
  auto f = gguf::File::open(vpath);
  auto tok = tok::Tokenizer::from_gguf(f);
  auto index = TokenIndex::build(*tok);
  const json schema = json::parse(R"({"type":"object","properties":{"name":{"type":"string"},"n":{"type":"integer"},
    "tags":{"type":"array","items":{"enum":["a","b c"]}},"when":{"type":"string","format":"date"}},"required":["name","n"]})");
  auto grammar = std::make_shared<const Grammar>(parse_gbnf(json_schema_to_gbnf(schema)));
  GrammarMatcher m(grammar, index);
  const std::string doc = R"({"name": "Zoë \"x\"", "n": -12, "tags": ["b c", "a"], "when": "2024-02-29"})";
  std::vector<float> logits(static_cast<size_t>(tok->n_vocab()) + 100);  // a model's padded vocabulary
  double worst_ms = 0;
  for (size_t pos = 0; pos <= doc.size(); pos += 7) {
    GrammarMatcher here(grammar, index);
    ASSERT_TRUE(here.accept_text(doc.substr(0, pos))) << "prefix " << pos;
    std::fill(logits.begin(), logits.end(), 0.0f);
    const auto t0 = std::chrono::steady_clock::now();
    here.mask(logits.data(), static_cast<int>(logits.size()));
    worst_ms = std::max(worst_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    size_t n_allowed = 0;
    GrammarMatcher probe(grammar, index);  // allows() leaves the state as it is
    probe.accept_text(doc.substr(0, pos));
    for (int32_t id = 0; id < tok->n_vocab(); ++id) {
      const bool allowed = !std::isinf(logits[static_cast<size_t>(id)]);
      n_allowed += allowed;
      ASSERT_EQ(allowed, probe.allows(id)) << "token " << id << " '" << tok->decode({id}) << "' after " << doc.substr(0, pos);
    }
    EXPECT_GT(n_allowed, 0u);
    for (size_t id = static_cast<size_t>(tok->n_vocab()); id < logits.size(); ++id) ASSERT_TRUE(std::isinf(logits[id])) << "padding id " << id;
  }
  EXPECT_TRUE(m.accept_text(doc));
  EXPECT_TRUE(m.complete());
  std::printf("[grammar] slowest first mask of a state over %d tokens: %.1f ms\n", tok->n_vocab(), worst_ms);
}

// What a constrained step costs on a 151k vocabulary: mask + accept per token while a random walk
// (a uniformly random allowed token each step, as a random-weight model samples) writes JSON.
TEST(GrammarMatcher, CostPerTokenOnAQwenVocabulary) {
  JING_FIXTURE_OR_SKIP(vpath, "tokenizer/qwen3-vocab.gguf");
  auto f = gguf::File::open(vpath);
  auto tok = tok::Tokenizer::from_gguf(f);
  auto index = TokenIndex::build(*tok);
  const json schema = json::parse(R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
    "tags":{"type":"array","items":{"type":"string"}},"address":{"type":"object","properties":{"city":{"type":"string"},"zip":{"type":"string"}},
    "required":["city","zip"]}},"required":["name","age","tags","address"]})");
  auto grammar = std::make_shared<const Grammar>(parse_gbnf(json_schema_to_gbnf(schema)));
  std::mt19937 rng(42);
  std::vector<float> logits(static_cast<size_t>(tok->n_vocab()));
  double total_ms = 0, worst_ms = 0;
  int steps = 0;
  for (int run = 0; run < 3; ++run) {
    GrammarMatcher m(grammar, index);
    for (int i = 0; i < 200 && !m.finished(); ++i, ++steps) {
      std::fill(logits.begin(), logits.end(), 0.0f);
      const auto t0 = std::chrono::steady_clock::now();
      m.mask(logits.data(), static_cast<int>(logits.size()));
      std::vector<int32_t> ok;
      for (int32_t id = 0; id < tok->n_vocab(); ++id)
        if (!std::isinf(logits[static_cast<size_t>(id)])) ok.push_back(id);
      ASSERT_FALSE(ok.empty());
      const auto t1 = std::chrono::steady_clock::now();
      const int32_t pick = ok[rng() % ok.size()];
      const auto t2 = std::chrono::steady_clock::now();
      ASSERT_TRUE(m.accept(pick));
      const double ms = std::chrono::duration<double, std::milli>(t1 - t0 + (std::chrono::steady_clock::now() - t2)).count();
      total_ms += ms, worst_ms = std::max(worst_ms, ms);
    }
  }
  std::printf("[grammar] JSON schema, %d steps over %d tokens: %.3f ms per token on average, worst %.1f ms\n", steps, tok->n_vocab(),
              total_ms / steps, worst_ms);
  EXPECT_LT(total_ms / steps, 20.0);  // a loose guard; the figure itself is in docs/PERFORMANCE.md
}

bool schema_accepts(const json& schema, const std::string& doc) {
  GrammarMatcher m(std::make_shared<const Grammar>(parse_gbnf(json_schema_to_gbnf(schema))), toy_tokens());
  return m.accept_text(doc) && m.complete();
}

TEST(JsonSchema, ObjectsWithRequiredAndOptionalProperties) {
  const json s = json::parse(R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},
                                 "required":["b"],"additionalProperties":false})");
  EXPECT_TRUE(schema_accepts(s, R"({"b": "x"})"));
  EXPECT_TRUE(schema_accepts(s, R"({"a": 1, "b": "x", "c": true})"));
  EXPECT_TRUE(schema_accepts(s, R"({"a":1,"b":"x"})"));
  EXPECT_TRUE(schema_accepts(s, "{\n  \"b\": \"x\",\n  \"c\": false\n}"));
  EXPECT_FALSE(schema_accepts(s, R"({"a": 1})"));               // b is required
  EXPECT_FALSE(schema_accepts(s, R"({"b": "x", "d": 1})"));     // no other keys
  EXPECT_FALSE(schema_accepts(s, R"({"b": 3})"));
  EXPECT_FALSE(schema_accepts(s, R"({, "b": "x"})"));
  EXPECT_FALSE(schema_accepts(s, R"({"a": 1.5, "b": "x"})"));   // integer
}

TEST(JsonSchema, ArraysEnumsConstFormatsRefsAndAnyOf) {
  const json s = json::parse(R"({"$defs":{"node":{"type":"object","properties":{"v":{"const":7},"kids":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["v"]}},
    "type":"object","properties":{
      "tree":{"$ref":"#/$defs/node"},
      "xs":{"type":"array","items":{"type":"number"},"minItems":1,"maxItems":3},
      "pick":{"enum":["red","green",3,null]},
      "when":{"type":"string","format":"date-time"},
      "id":{"type":"string","format":"uuid"},
      "either":{"anyOf":[{"type":"string","maxLength":2},{"type":"null"}]}},
    "required":["tree","xs","pick","when","id","either"]})");
  const std::string ok = R"({"tree": {"v": 7, "kids": [{"v": 7}, {"v": 7, "kids": []}]}, "xs": [1, -2.5e3], "pick": "green",)"
                         R"( "when": "2024-01-31T23:59:60Z", "id": "123e4567-e89b-12d3-a456-426614174000", "either": "ab"})";
  EXPECT_TRUE(schema_accepts(s, ok));
  auto with = [&](const std::string& from, const std::string& to) {
    std::string d = ok;
    d.replace(d.find(from), from.size(), to);
    return d;
  };
  EXPECT_TRUE(schema_accepts(s, with("\"green\"", "null")));
  EXPECT_TRUE(schema_accepts(s, with("\"ab\"", "null")));
  EXPECT_FALSE(schema_accepts(s, with("\"green\"", "\"blue\"")));
  EXPECT_FALSE(schema_accepts(s, with("\"ab\"", "\"abc\"")));                    // maxLength 2
  EXPECT_FALSE(schema_accepts(s, with("[1, -2.5e3]", "[]")));                   // minItems 1
  EXPECT_FALSE(schema_accepts(s, with("[1, -2.5e3]", "[1, 2, 3, 4]")));         // maxItems 3
  EXPECT_FALSE(schema_accepts(s, with("\"v\": 7, \"kids\": []", "\"v\": 8")));  // const
  EXPECT_FALSE(schema_accepts(s, with("2024-01-31", "2024-13-31")));
  EXPECT_FALSE(schema_accepts(s, with("426614174000", "42661417400")));
}

TEST(JsonSchema, PatternsAsGrammars) {
  auto ok = [](const char* pattern, const std::string& s) {
    return schema_accepts(json{{"type", "string"}, {"pattern", pattern}}, "\"" + s + "\"");
  };
  EXPECT_TRUE(ok("^[A-Z]{2}-\\d{3}$", "AB-123"));
  EXPECT_FALSE(ok("^[A-Z]{2}-\\d{3}$", "AB-12"));
  EXPECT_FALSE(ok("^[A-Z]{2}-\\d{3}$", "xAB-123"));
  EXPECT_TRUE(ok("ab+", "xxabbbyy"));  // unanchored: anywhere in the string
  EXPECT_FALSE(ok("ab+", "xxayy"));
  EXPECT_TRUE(ok("^(?:cat|dog)s?\\.$", "dogs."));
  EXPECT_FALSE(ok("^(?:cat|dog)s?\\.$", "cow."));
  EXPECT_TRUE(ok("^[^0-9]*$", "no digits é"));
  EXPECT_FALSE(ok("^[^0-9]*$", "one 1"));
  EXPECT_FALSE(ok("^[ -~]+$", "a\\\"b"));  // " and \ are in the range but never written raw
  EXPECT_TRUE(ok("^.{3}$", "éxx"));  // characters, not bytes
  EXPECT_FALSE(ok("^.{3}$", "éx"));
}

TEST(JsonSchema, UnsupportedKeywordsAreRefusedByName) {
  auto error_of = [](const char* schema) {
    try {
      json_schema_to_gbnf(json::parse(schema));
    } catch (const SchemaError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of(R"({"type":"string","pattern":"^(a)\\1$"})").find("back-reference"), std::string::npos);
  EXPECT_NE(error_of(R"({"type":"string","pattern":"(?=a)b"})").find("look-around"), std::string::npos);
  EXPECT_NE(error_of(R"({"type":"object","properties":{"n":{"type":"integer","minimum":3}}})").find("#/properties/n: 'minimum'"), std::string::npos);
  EXPECT_NE(error_of(R"({"$ref":"https://example.com/s.json"})").find("only local"), std::string::npos);
  EXPECT_NE(error_of(R"({"type":"objekt"})").find("unknown type"), std::string::npos);
  EXPECT_NE(error_of(R"({"type":"object","properties":{},"required":["x"]})").find("required"), std::string::npos);
  EXPECT_EQ(error_of(R"({"title":"T","description":"d","type":"object","properties":{"a":{"type":"string","default":"x"}}})"), "no error");
}

}  // namespace
}  // namespace jing::sample
