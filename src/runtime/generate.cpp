#include "runtime/generate.h"

#include <chrono>
#include <optional>

#include "common/error.h"
#include "sample/output_grammar.h"

namespace jing::runtime {

std::string StopMatcher::push(const std::string& text, bool& stopped) {
  held_ += text;
  stopped = false;
  size_t cut = std::string::npos;
  for (const auto& s : stops_) {
    if (s.empty()) continue;
    auto at = held_.find(s);
    if (at != std::string::npos && (cut == std::string::npos || at < cut)) cut = at;
  }
  if (cut != std::string::npos) {
    stopped = true;
    std::string out = held_.substr(0, cut);
    held_.clear();
    return out;
  }
  // Keep the longest tail that is a prefix of some stop string.
  size_t keep = 0;
  for (const auto& s : stops_)
    for (size_t n = std::min(s.size() - (s.empty() ? 0 : 1), held_.size()); n > keep; --n)
      if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopMatcher::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

std::vector<float> prefill(model::Model& m, int seq, const std::vector<int32_t>& tokens, int start_pos, int n_batch) {
  std::vector<float> logits;
  const int n = static_cast<int>(tokens.size());
  for (int i = 0; i < n; i += n_batch) {
    model::Batch b;
    const int end = std::min(n, i + n_batch);
    for (int k = i; k < end; ++k) b.add(tokens[static_cast<size_t>(k)], start_pos + k, seq, k == n - 1);
    auto out = m.forward(b);
    if (end == n) logits = std::move(out);
  }
  return logits;
}

GenerateStats generate(model::Model& m, const tok::Tokenizer& tok, int seq, const std::vector<int32_t>& prompt,
                       std::vector<int32_t>& cached, const GenerateParams& p, const std::function<bool(const std::string&)>& on_text) {
  using clock = std::chrono::steady_clock;
  GenerateStats st;
  if (prompt.empty()) throw Error("the prompt is empty");
  // Reuse the longest common prefix the cache holds (at least one token is recomputed for logits).
  size_t common = 0;
  while (common < cached.size() && common < prompt.size() && cached[common] == prompt[common]) ++common;
  if (common == prompt.size()) --common;
  m.kv_truncate(seq, static_cast<int>(common));
  cached.resize(common);
  if (static_cast<int>(prompt.size()) >= m.n_ctx())
    throw Error("the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " + std::to_string(m.n_ctx()) +
                " (raise --ctx-size)");

  auto t0 = clock::now();
  std::vector<int32_t> rest(prompt.begin() + static_cast<std::ptrdiff_t>(common), prompt.end());
  auto logits = prefill(m, seq, rest, static_cast<int>(common), p.n_batch);
  cached = prompt;
  st.cached_tokens = static_cast<int>(common);
  st.prompt_tokens = static_cast<int>(rest.size());
  auto t1 = clock::now();
  st.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();

  sample::Sampler sampler(p.sampling, m.n_vocab());
  for (int32_t t : prompt) sampler.accept(t);
  tok::StreamDecoder decoder(tok);
  StopMatcher stops(p.stop);
  st.finish_reason = "length";
  std::optional<sample::OutputGrammar> grammar;
  if (p.grammar) grammar.emplace(p.grammar, p.grammar_tokens ? p.grammar_tokens : sample::TokenIndex::build(tok), p.grammar_after_think);
  while (p.max_tokens < 0 || st.generated < p.max_tokens) {
    int32_t next = sampler.sample(logits.data(), grammar ? grammar->active() : nullptr);
    if (grammar && (next < 0 || !grammar->accept(next, tok))) {  // nothing can continue the grammar
      st.finish_reason = "stop";
      break;
    }
    sampler.accept(next);
    if (tok.is_eog(next)) {
      st.finish_reason = "stop";
      break;
    }
    ++st.generated;
    bool stopped = false;
    std::string text = stops.push(decoder.push(next), stopped);
    if (!text.empty() && !on_text(text)) {
      st.finish_reason = "cancelled";
      break;
    }
    if (stopped) {
      st.finish_reason = "stop";
      break;
    }
    if (m.kv_length(seq) >= m.n_ctx()) break;  // context full: stop with "length"
    model::Batch b;
    b.add(next, m.kv_length(seq), seq, true);
    logits = m.forward(b);
    cached.push_back(next);
  }
  if (st.finish_reason != "cancelled") {
    bool stopped = false;
    std::string tail = stops.push(decoder.flush(), stopped) + (stopped ? "" : stops.flush());
    if (!tail.empty()) on_text(tail);
  }
  st.generate_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return st;
}

}  // namespace jing::runtime
