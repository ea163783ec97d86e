#include "sample/grammar_matcher.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "tokenizer/tokenizer.h"

namespace jing::sample {

namespace {
// Limits that keep a pathological grammar from taking the server down (ambiguity can multiply
// stacks; deep nesting lengthens them). Beyond them the grammar is refused at that point.
constexpr size_t kMaxStacks = 4096, kMaxDepth = 2048;
}  // namespace

std::shared_ptr<const TokenIndex> TokenIndex::build(const tok::Tokenizer& tok) {
  auto index = std::make_shared<TokenIndex>();
  index->n_vocab = tok.n_vocab();
  index->text_of.resize(static_cast<size_t>(index->n_vocab));
  std::vector<int32_t> order;
  for (int32_t id = 0; id < index->n_vocab; ++id) {
    if (tok.is_eog(id)) { index->eog.push_back(id); continue; }  // never text, even when it has some
    std::string b = tok.is_control(id) ? std::string{static_cast<char>(0xF8), static_cast<char>(0x80 | (id >> 12 & 63)),
                                                     static_cast<char>(0x80 | (id >> 6 & 63)), static_cast<char>(0x80 | (id & 63))}
                                       : tok.decode({id});
    if (id >= (1 << 18)) continue;  // beyond what the spelling holds (no vocabulary is this large)
    if (b.empty()) continue;
    index->text_of[static_cast<size_t>(id)] = std::move(b);
    order.push_back(id);
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return index->text_of[static_cast<size_t>(a)] < index->text_of[static_cast<size_t>(b)]; });
  for (int32_t id : order) index->bytes.push_back(index->text_of[static_cast<size_t>(id)]), index->ids.push_back(id);
  return index;
}

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenIndex> tokens)
    : g_(std::move(grammar)), tokens_(std::move(tokens)) {
  std::vector<std::vector<uint32_t>> stacks;
  for (uint32_t alt : g_->rules[g_->root]) {
    std::vector<uint32_t> s;
    if (g_->elements[alt].kind != GrammarElement::End) s.push_back(alt);
    expand(s, stacks);
  }
  current_ = intern(std::move(stacks), 0, 0, 0);
}

// Brings a stack to a terminal on top (or empty: complete), replacing rule references by their
// alternatives; appends every result to out.
void GrammarMatcher::expand(std::vector<uint32_t>& stack, std::vector<std::vector<uint32_t>>& out) const {
  if (stack.size() > kMaxDepth) throw GrammarError("grammar: nesting deeper than " + std::to_string(kMaxDepth));
  if (out.size() > kMaxStacks) throw GrammarError("grammar: too ambiguous (more than " + std::to_string(kMaxStacks) + " parses at once)");
  if (stack.empty() || g_->elements[stack.back()].kind == GrammarElement::Chars) {
    out.push_back(stack);
    return;
  }
  const uint32_t pos = stack.back();
  const uint32_t rule = g_->elements[pos].rule;
  stack.pop_back();
  if (g_->elements[pos + 1].kind != GrammarElement::End) stack.push_back(pos + 1);  // what follows the reference
  const size_t base = stack.size();
  for (uint32_t alt : g_->rules[rule]) {
    if (g_->elements[alt].kind != GrammarElement::End) stack.push_back(alt);
    expand(stack, out);
    stack.resize(base);
  }
  // Restore the caller's stack (it is reused for the next alternative one level up).
  if (g_->elements[pos + 1].kind != GrammarElement::End) stack.pop_back();
  stack.push_back(pos);
}

int32_t GrammarMatcher::intern(std::vector<std::vector<uint32_t>> stacks, uint32_t partial, uint8_t left, uint8_t len) {
  if (stacks.empty()) return kDead;
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
  std::string key;
  auto put = [&](uint32_t v) { key.append(reinterpret_cast<const char*>(&v), sizeof v); };
  put(partial), put(left), put(len);
  for (const auto& s : stacks) {
    put(static_cast<uint32_t>(s.size()));
    for (uint32_t p : s) put(p);
  }
  auto [it, fresh] = ids_.emplace(std::move(key), static_cast<int32_t>(states_.size()));
  if (fresh) {
    State st;
    st.stacks = std::move(stacks);
    st.partial = partial;
    st.partial_left = left;
    st.partial_len = len;
    st.next.assign(256, kUnknown);
    states_.push_back(std::move(st));
  }
  return it->second;
}

int32_t GrammarMatcher::step(int32_t state, uint8_t byte) {
  int32_t& next = states_[static_cast<size_t>(state)].next[byte];
  if (next == kUnknown) {
    const int32_t computed = compute_step(state, byte);
    states_[static_cast<size_t>(state)].next[byte] = computed;  // states_ may have grown: index again
    return computed;
  }
  return next;
}

int32_t GrammarMatcher::compute_step(int32_t state, uint8_t b) {
  const State& st = states_[static_cast<size_t>(state)];
  uint32_t cp;
  uint8_t left, len;
  if (st.partial_left == 0) {
    if (b < 0x80) cp = b, left = 0, len = 1;
    else if (b >= 0xC2 && b <= 0xDF) cp = b & 0x1Fu, left = 1, len = 2;
    else if ((b >> 4) == 0xE) cp = b & 0x0Fu, left = 2, len = 3;
    else if (b >= 0xF0 && b <= 0xF4) cp = b & 0x07u, left = 3, len = 4;
    else if (b == 0xF8) cp = kTokenBase >> 18, left = 3, len = 5;  // a control token: kTokenBase + 18 bits of id
    else return kDead;  // not a lead byte
  } else {
    if ((b & 0xC0) != 0x80) return kDead;
    cp = (st.partial << 6) | (b & 0x3Fu);
    left = static_cast<uint8_t>(st.partial_left - 1);
    len = st.partial_len;
  }
  // The code points a character of this length may hold: shorter forms (overlong) are not UTF-8.
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000, kTokenBase};
  static constexpr uint32_t kMax[] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF, kTokenBase + (1u << 18) - 1};
  if (left > 0) {
    // Part of a character: alive while some terminal on top could still match what it becomes.
    const uint32_t lo = std::max(cp << (6 * left), kMin[len]), hi = std::min(cp << (6 * left) | ((1u << (6 * left)) - 1), kMax[len]);
    const bool alive = lo <= hi && std::any_of(st.stacks.begin(), st.stacks.end(), [&](const auto& s) {
      return !s.empty() && g_->may_match(g_->elements[s.back()], lo, hi);
    });
    if (!alive) return kDead;
    auto stacks = st.stacks;
    return intern(std::move(stacks), cp, left, len);
  }
  if (cp < kMin[len] || cp > kMax[len]) return kDead;
  std::vector<std::vector<uint32_t>> out;
  for (const auto& s : st.stacks) {
    if (s.empty() || !g_->matches(g_->elements[s.back()], cp)) continue;
    std::vector<uint32_t> n = s;
    const uint32_t pos = n.back();
    n.pop_back();
    if (g_->elements[pos + 1].kind != GrammarElement::End) n.push_back(pos + 1);
    expand(n, out);
  }
  return intern(std::move(out), 0, 0, 0);
}

int32_t GrammarMatcher::walk(int32_t state, std::string_view bytes) {
  for (char c : bytes) {
    if (state == kDead) break;
    state = step(state, static_cast<uint8_t>(c));
  }
  return state;
}

bool GrammarMatcher::complete(int32_t state) const {
  const State& st = states_[static_cast<size_t>(state)];
  return st.partial_left == 0 && !st.stacks.empty() && st.stacks.front().empty();  // sorted: empty first
}

const std::vector<uint64_t>& GrammarMatcher::allowed(int32_t state) {
  if (!states_[static_cast<size_t>(state)].allowed.empty()) return states_[static_cast<size_t>(state)].allowed;
  const TokenIndex& t = *tokens_;
  std::vector<uint64_t> bits((static_cast<size_t>(t.n_vocab) + 63) / 64, 0);
  auto set = [&](int32_t id) { bits[static_cast<size_t>(id) >> 6] |= uint64_t{1} << (id & 63); };
  if (complete(state))
    for (int32_t id : t.eog) set(id);
  // at[d]: the state after the first d bytes of the previous token; valid up to depth `alive`.
  std::vector<int32_t> at(1, state);
  size_t alive = 0;
  const std::string* prev = nullptr;
  for (size_t i = 0; i < t.bytes.size();) {
    const std::string& b = t.bytes[i];
    size_t d = 0;
    if (prev) {
      const size_t lim = std::min({alive, prev->size(), b.size()});
      while (d < lim && (*prev)[d] == b[d]) ++d;
    }
    if (at.size() < b.size() + 1) at.resize(b.size() + 1);
    size_t k = d;
    for (; k < b.size(); ++k) {
      at[k + 1] = step(at[k], static_cast<uint8_t>(b[k]));
      if (at[k + 1] == kDead) break;
    }
    prev = &b;
    if (k == b.size()) {
      set(t.ids[i]);
      alive = b.size();
      ++i;
      continue;
    }
    // Every token starting with b[0..k] is dead too: they are contiguous in sorted order.
    alive = k;
    const std::string_view dead(b.data(), k + 1);
    i = static_cast<size_t>(std::partition_point(t.bytes.begin() + static_cast<long>(i), t.bytes.end(),
                                                 [&](const std::string& s) { return std::string_view(s).substr(0, k + 1) == dead; }) -
                            t.bytes.begin());
  }
  states_[static_cast<size_t>(state)].allowed = std::move(bits);
  return states_[static_cast<size_t>(state)].allowed;
}

void GrammarMatcher::mask(float* logits, int n) {
  const auto& bits = allowed(current_);
  constexpr float kNo = -std::numeric_limits<float>::infinity();
  const int known = std::min(n, tokens_->n_vocab);
  for (int32_t id = 0; id < known; ++id)
    if (!(bits[static_cast<size_t>(id) >> 6] >> (id & 63) & 1)) logits[id] = kNo;
  for (int32_t id = known; id < n; ++id) logits[id] = kNo;  // padding: no token at all
}

bool GrammarMatcher::allows(int32_t token) {
  if (token < 0 || token >= tokens_->n_vocab) return false;
  if (std::find(tokens_->eog.begin(), tokens_->eog.end(), token) != tokens_->eog.end()) return complete(current_);
  const std::string& b = tokens_->text_of[static_cast<size_t>(token)];
  return !b.empty() && walk(current_, b) != kDead;
}

bool GrammarMatcher::accept(int32_t token) {
  if (!allows(token)) return false;
  const std::string& b = tokens_->text_of[static_cast<size_t>(token)];
  if (!b.empty() && std::find(tokens_->eog.begin(), tokens_->eog.end(), token) == tokens_->eog.end()) current_ = walk(current_, b);
  return true;
}

bool GrammarMatcher::accept_text(std::string_view text) {
  const int32_t next = walk(current_, text);
  if (next == kDead) return false;
  current_ = next;
  return true;
}

bool GrammarMatcher::complete() const { return complete(current_); }

bool GrammarMatcher::finished() const {
  const State& st = states_[static_cast<size_t>(current_)];
  return st.partial_left == 0 && std::all_of(st.stacks.begin(), st.stacks.end(), [](const auto& s) { return s.empty(); });
}

}  // namespace jing::sample
