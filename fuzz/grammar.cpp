// libFuzzer target: a GBNF grammar (first byte even) or a JSON schema (odd) from a request is
// compiled, then a matcher walks the bytes after the first NUL and computes masks over a small
// vocabulary. Errors must be GrammarError/SchemaError, never a crash, hang or sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/json_depth.h"
#include "sample/gbnf.h"
#include "sample/grammar_matcher.h"
#include "sample/json_schema.h"

namespace {
std::shared_ptr<const jing::sample::TokenIndex> toy_index() {
  auto t = std::make_shared<jing::sample::TokenIndex>();
  const char* words[] = {"", "{", "}", "\"", ":", ",", " ", "\n", "a", "ab", "1", "true", "null", "[", "]", "\xC3\xA9", "\xC3", "\xF8\x80\x80\x85"};
  for (const char* w : words) t->text_of.push_back(w);
  t->n_vocab = static_cast<int>(t->text_of.size());
  t->eog = {0};
  std::vector<int32_t> order;
  for (int32_t i = 1; i < t->n_vocab; ++i) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return t->text_of[a] < t->text_of[b]; });
  for (int32_t i : order) t->bytes.push_back(t->text_of[i]), t->ids.push_back(i);
  return t;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const auto index = toy_index();
  const std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t nul = in.find('\0');
  const std::string spec = in.substr(0, nul), text = nul == std::string::npos ? "" : in.substr(nul + 1);
  try {
    std::string gbnf = spec;
    if (data[0] & 1) {
      if (!jing::json_depth_within(spec)) return 0;  // the server refuses these before parsing
      auto schema = nlohmann::ordered_json::parse(spec, nullptr, false);
      if (schema.is_discarded()) return 0;
      gbnf = jing::sample::json_schema_to_gbnf(schema);
    }
    auto grammar = std::make_shared<const jing::sample::Grammar>(jing::sample::parse_gbnf(gbnf));
    jing::sample::GrammarMatcher m(grammar, index);
    std::vector<float> logits(static_cast<size_t>(index->n_vocab) + 2);
    m.mask(logits.data(), static_cast<int>(logits.size()));
    for (size_t i = 0; i < text.size() && i < 256; ++i) {
      if (!m.accept_text(text.substr(i, 1))) break;
      if (i % 16 == 0) m.mask(logits.data(), static_cast<int>(logits.size()));
    }
    (void)m.complete();
  } catch (const jing::sample::GrammarError&) {
  } catch (const jing::sample::SchemaError&) {
  }
  return 0;
}
