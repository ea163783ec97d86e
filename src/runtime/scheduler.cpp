#include "runtime/scheduler.h"

#include <chrono>
#include <cmath>

#include "common/error.h"

namespace jing::runtime {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool Request::wait(std::vector<TokenEvent>& out, RequestResult& result, int timeout_ms) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return !events_.empty() || result_.has_value(); });
  while (!events_.empty()) {
    out.push_back(std::move(events_.front()));
    events_.pop_front();
  }
  if (result_) result = *result_;
  return !(result_.has_value() && out.empty());
}

void Request::emit(TokenEvent e) {
  {
    std::lock_guard lk(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

void Request::finish(RequestResult r) {
  {
    std::lock_guard lk(mu_);
    r.done = true;
    result_ = std::move(r);
  }
  cv_.notify_all();
}

Scheduler::Scheduler(std::shared_ptr<model::Model> m, std::shared_ptr<tok::Tokenizer> tok, int max_queue, int n_batch)
    : model_(std::move(m)), tok_(std::move(tok)), max_queue_(max_queue), n_batch_(std::max(1, n_batch)) {
  slots_.resize(static_cast<size_t>(model_->n_seq()));
  for (size_t i = 0; i < slots_.size(); ++i) slots_[i].id = static_cast<int>(i);
  worker_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

bool Scheduler::submit(std::shared_ptr<Request> r) {
  {
    std::lock_guard lk(mu_);
    if (stopping_ || static_cast<int>(queue_.size()) >= max_queue_) return false;
    queue_.emplace_back(std::move(r), now_seconds());
  }
  cv_.notify_all();
  return true;
}

std::vector<SlotInfo> Scheduler::slots() const {
  std::lock_guard lk(mu_);
  std::vector<SlotInfo> out;
  for (const auto& s : slots_)
    out.push_back({s.id, s.req != nullptr, static_cast<int>(s.cached.size()), s.generated, s.req ? static_cast<int>(s.req->prompt.size()) : 0});
  return out;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lk(mu_);
  SchedulerStats st = stats_;
  st.queued = static_cast<int>(queue_.size());
  st.busy_slots = 0;
  for (const auto& s : slots_) st.busy_slots += s.req != nullptr;
  return st;
}

bool Scheduler::idle() const {
  auto st = stats();
  return st.busy_slots == 0 && st.queued == 0;
}

void Scheduler::start(Slot& s, std::shared_ptr<Request> r, double queued_at) {
  s.req = std::move(r);
  s.t_queued = queued_at;
  s.t_start = now_seconds();
  s.result = RequestResult{};
  s.result.queue_seconds = s.t_start - queued_at;
  s.generated = 0;
  s.next = -1;
  const auto& prompt = s.req->prompt;
  // Prompt-prefix reuse: keep what this slot's cache shares with the new prompt.
  size_t common = 0;
  while (common < s.cached.size() && common < prompt.size() && s.cached[common] == prompt[common]) ++common;
  if (common == prompt.size() && common > 0) --common;  // recompute the last token for its logits
  if (s.req->embedding) common = 0;
  model_->kv_truncate(s.id, static_cast<int>(common));
  s.cached.resize(common);
  s.prompt_pos = common;
  s.result.cached_tokens = static_cast<int>(common);
  s.result.prompt_tokens = static_cast<int>(prompt.size());
  s.sampler = std::make_unique<sample::Sampler>(s.req->sampling, model_->n_vocab());
  for (int32_t t : prompt) s.sampler->accept(t);
  s.decoder = std::make_unique<tok::StreamDecoder>(*tok_);
  s.stops = std::make_unique<StopMatcher>(s.req->stop);
  s.grammar.reset();
  if (s.req->grammar) {
    if (!token_index_) token_index_ = sample::TokenIndex::build(*tok_);  // the first constrained request pays
    s.grammar = std::make_unique<sample::OutputGrammar>(s.req->grammar, token_index_, s.req->grammar_after_think);
  }
}

void Scheduler::finish(Slot& s, const std::string& reason) {
  if (reason != "cancelled" && reason != "error" && s.decoder) {
    bool stopped = false;
    std::string tail = s.stops->push(s.decoder->flush(), stopped);
    if (!stopped) tail += s.stops->flush();
    if (!tail.empty()) s.req->emit({tail, -1, {}, {}});
  }
  s.result.finish_reason = reason;
  s.result.completion_tokens = s.generated;
  const double t = now_seconds();
  s.result.prompt_seconds = (s.t_prompt_done > 0 ? s.t_prompt_done : t) - s.t_start;
  s.result.generate_seconds = s.t_prompt_done > 0 ? t - s.t_prompt_done : 0;
  {
    std::lock_guard lk(mu_);
    stats_.requests++;
    stats_.prompt_tokens += static_cast<uint64_t>(s.result.prompt_tokens - s.result.cached_tokens);
    stats_.generated_tokens += static_cast<uint64_t>(s.generated);
    stats_.prompt_seconds += s.result.prompt_seconds;
    stats_.generate_seconds += s.result.generate_seconds;
  }
  s.req->finish(s.result);
  std::lock_guard lk(mu_);
  s.req.reset();
  s.t_prompt_done = 0;
}

void Scheduler::run_embedding(Slot& s) {
  const auto& prompt = s.req->prompt;
  const int n_embd = model_->n_embd();
  std::vector<double> sum(static_cast<size_t>(n_embd), 0.0);
  for (size_t i = 0; i < prompt.size(); i += static_cast<size_t>(n_batch_)) {
    model::Batch b;
    for (size_t k = i; k < std::min(prompt.size(), i + static_cast<size_t>(n_batch_)); ++k)
      b.add(prompt[k], static_cast<int>(k), s.id, true);
    auto h = model_->forward(b, model::Output::Embeddings);
    for (size_t r = 0; r < b.size(); ++r)
      for (int d = 0; d < n_embd; ++d) sum[static_cast<size_t>(d)] += h[r * static_cast<size_t>(n_embd) + static_cast<size_t>(d)];
  }
  // Mean over tokens, then L2-normalized (as llama.cpp's and Ollama's embeddings are).
  double norm = 0;
  for (auto& v : sum) v /= static_cast<double>(prompt.size()), norm += v * v;
  norm = std::sqrt(norm);
  s.result.embedding.resize(static_cast<size_t>(n_embd));
  for (int d = 0; d < n_embd; ++d) s.result.embedding[static_cast<size_t>(d)] = static_cast<float>(norm > 0 ? sum[static_cast<size_t>(d)] / norm : 0);
  model_->kv_clear(s.id);
  s.cached.clear();
  s.t_prompt_done = now_seconds();
  finish(s, "stop");
}

bool Scheduler::after_logits(Slot& s, int32_t t) {
  Request& r = *s.req;
  if (s.grammar && (t < 0 || !s.grammar->accept(t, *tok_))) {  // no token can continue the grammar
    finish(s, "stop");
    return false;
  }
  s.sampler->accept(t);
  if (tok_->is_eog(t)) {
    finish(s, "stop");
    return false;
  }
  ++s.generated;
  TokenEvent e;
  e.token = t;
  if (r.top_logprobs >= 0) {
    e.logprob = s.sampler->chosen_logprob();
    e.top = s.sampler->top_logprobs(r.top_logprobs);
  }
  bool stopped = false;
  e.text = s.stops->push(s.decoder->push(t), stopped);
  r.emit(std::move(e));
  if (stopped) {
    finish(s, "stop");
    return false;
  }
  if ((r.max_tokens >= 0 && s.generated >= r.max_tokens) || static_cast<int>(s.cached.size()) + 1 >= model_->n_ctx()) {
    finish(s, "length");
    return false;
  }
  s.next = t;
  return true;
}

void Scheduler::loop() {
  while (true) {
    // Take new requests into free slots: prefer the free slot sharing the longest prefix.
    {
      std::unique_lock lk(mu_);
      bool any_busy = false;
      for (const auto& s : slots_) any_busy |= s.req != nullptr;
      if (!any_busy && queue_.empty()) cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;
      while (!queue_.empty()) {
        auto [req, queued_at] = queue_.front();
        if (req->cancelled()) {
          queue_.pop_front();
          RequestResult rr;
          rr.finish_reason = "cancelled";
          req->finish(rr);
          continue;
        }
        Slot* best = nullptr;
        size_t best_common = 0;
        for (auto& s : slots_) {
          if (s.req) continue;
          size_t c = 0;
          while (c < s.cached.size() && c < req->prompt.size() && s.cached[c] == req->prompt[c]) ++c;
          if (!best || c > best_common) best = &s, best_common = c;
        }
        if (!best) break;
        queue_.pop_front();
        lk.unlock();
        start(*best, req, queued_at);
        lk.lock();
      }
    }

    // Drop requests whose clients left; run embeddings on their own.
    for (auto& s : slots_) {
      if (!s.req) continue;
      if (s.req->cancelled()) finish(s, "cancelled");
      else if (s.req->embedding) {
        try {
          run_embedding(s);
        } catch (const std::exception& e) {
          s.result.error = e.what();
          finish(s, "error");
        }
      }
    }

    // One batch: prompt chunks (sharing n_batch) and one token per generating slot.
    model::Batch batch;
    std::vector<std::pair<Slot*, size_t>> wants;  // slot, index among logits rows
    int budget = n_batch_;
    for (auto& s : slots_)
      if (s.req && s.next >= 0) {
        batch.add(s.next, static_cast<int>(s.cached.size()), s.id, true);
        s.cached.push_back(s.next);
        s.next = -1;
        wants.emplace_back(&s, 0);
        --budget;
      }
    for (auto& s : slots_) {
      if (!s.req || s.prompt_pos >= s.req->prompt.size() || budget <= 0) continue;
      const auto& p = s.req->prompt;
      if (static_cast<int>(p.size()) >= model_->n_ctx()) {
        s.result.error = "the prompt has " + std::to_string(p.size()) + " tokens but the context holds " + std::to_string(model_->n_ctx());
        finish(s, "error");
        continue;
      }
      size_t take = std::min(p.size() - s.prompt_pos, static_cast<size_t>(budget));
      for (size_t k = 0; k < take; ++k) {
        const size_t i = s.prompt_pos + k;
        const bool last = i + 1 == p.size();
        batch.add(p[i], static_cast<int>(i), s.id, last);
        s.cached.push_back(p[i]);
        if (last) wants.emplace_back(&s, 0);
      }
      s.prompt_pos += take;
      budget -= static_cast<int>(take);
    }
    if (batch.size() == 0) continue;

    std::vector<float> logits;
    try {
      logits = model_->forward(batch);
    } catch (const std::exception& e) {
      for (auto& [s, _] : wants) {
        s->result.error = e.what();
        finish(*s, "error");
      }
      continue;
    }
    // Logit rows come in batch order of the tokens that asked for them.
    std::vector<Slot*> order;
    for (size_t i = 0; i < batch.size(); ++i)
      if (batch.want_logits[i]) order.push_back(&slots_[static_cast<size_t>(batch.seq[i])]);
    const int V = model_->n_vocab();
    // Each slot samples from its own row with its own sampler (and grammar), so the slots of a
    // step sample in parallel; what follows (events, stops, finishing) stays in order here.
    std::vector<int32_t> picked(order.size(), -1);
    const int n_rows = static_cast<int>(order.size());
#pragma omp parallel for schedule(dynamic) if (n_rows > 2)
    for (int row = 0; row < n_rows; ++row) {
      Slot& s = *order[static_cast<size_t>(row)];
      if (s.req) picked[static_cast<size_t>(row)] = s.sampler->sample(logits.data() + static_cast<size_t>(row) * static_cast<size_t>(V),
                                                                      s.grammar ? s.grammar->active() : nullptr);
    }
    for (size_t row = 0; row < order.size(); ++row) {
      Slot& s = *order[row];
      if (!s.req) continue;
      if (s.t_prompt_done == 0) s.t_prompt_done = now_seconds();
      after_logits(s, picked[row]);
    }
  }
  // Shutting down: every request still held or queued ends as cancelled.
  for (auto& s : slots_)
    if (s.req) finish(s, "cancelled");
  std::lock_guard lk(mu_);
  for (auto& [req, _] : queue_) {
    RequestResult rr;
    rr.finish_reason = "cancelled";
    rr.done = true;
    req->finish(rr);
  }
  queue_.clear();
}

}  // namespace jing::runtime
