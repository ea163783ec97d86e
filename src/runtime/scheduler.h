// Continuous batching over one loaded model: N slots (cache sequences), one worker thread.
// Every step batches each active slot's work — the next chunk of a prompt, or one token of a
// generation — into a single forward call; new requests join between steps; a request whose
// client went away is dropped within one step; a finished slot keeps its cache so the next
// request sharing its prefix (a chat's next turn) skips recomputing it.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "model/model.h"
#include "runtime/generate.h"
#include "sample/output_grammar.h"
#include "sample/sampler.h"
#include "tokenizer/tokenizer.h"

namespace jing::runtime {

struct TokenEvent {
  std::string text;                                // whole UTF-8 characters (stop strings removed)
  int32_t token = -1;
  sample::TokenLogprob logprob{};
  std::vector<sample::TokenLogprob> top;
};

struct RequestResult {
  bool done = false;
  std::string finish_reason;  // "stop", "length", "cancelled", "error"
  std::string error;
  int prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
  double queue_seconds = 0, prompt_seconds = 0, generate_seconds = 0;
  std::vector<float> embedding;
};

// One request's state, shared by the HTTP thread (reads events) and the worker (writes them).
class Request {
 public:
  std::vector<int32_t> prompt;
  sample::SamplingParams sampling;
  int max_tokens = -1;
  std::vector<std::string> stop;
  int top_logprobs = -1;  // -1: no logprobs
  bool embedding = false;
  // Structured output: generated text must follow this grammar; with grammar_after_think it
  // starts to apply only once the reasoning block closes ("</think>"), so a reasoning model thinks first.
  std::shared_ptr<const sample::Grammar> grammar;
  bool grammar_after_think = false;

  // Blocks until events or the end arrive (or timeout); returns false when nothing is left.
  bool wait(std::vector<TokenEvent>& out, RequestResult& result, int timeout_ms = 1000);
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  // Worker side.
  void emit(TokenEvent e);
  void finish(RequestResult r);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<TokenEvent> events_;
  std::optional<RequestResult> result_;
  std::atomic<bool> cancelled_{false};
};

struct SlotInfo {
  int id;
  bool busy;
  int n_past;        // tokens in the cache
  int n_decoded;
  int n_prompt;
};

struct SchedulerStats {
  uint64_t requests = 0, prompt_tokens = 0, generated_tokens = 0;
  double prompt_seconds = 0, generate_seconds = 0;
  int busy_slots = 0, queued = 0;
};

class Scheduler {
 public:
  Scheduler(std::shared_ptr<model::Model> m, std::shared_ptr<tok::Tokenizer> tok, int max_queue = 64, int n_batch = 512);
  ~Scheduler();

  // Queues a request; returns false when the queue is full (the caller answers 503).
  bool submit(std::shared_ptr<Request> r);
  std::vector<SlotInfo> slots() const;
  SchedulerStats stats() const;
  bool idle() const;
  void stop();  // cancels everything and joins the worker

 private:
  struct Slot {
    int id = 0;
    std::shared_ptr<Request> req;
    std::vector<int32_t> cached;  // tokens the cache holds for this sequence
    size_t prompt_pos = 0;        // prompt tokens fed so far
    std::unique_ptr<sample::Sampler> sampler;
    std::unique_ptr<tok::StreamDecoder> decoder;
    std::unique_ptr<StopMatcher> stops;
    std::unique_ptr<sample::OutputGrammar> grammar;
    int32_t next = -1;            // sampled, not yet fed
    int generated = 0;
    double t_start = 0, t_prompt_done = 0, t_queued = 0;
    RequestResult result;
  };
  void loop();
  void start(Slot& s, std::shared_ptr<Request> r, double queued_at);
  void finish(Slot& s, const std::string& reason);
  void run_embedding(Slot& s);
  bool after_logits(Slot& s, int32_t token);  // the slot's sampled token; returns false when the slot finished

  std::shared_ptr<model::Model> model_;
  std::shared_ptr<tok::Tokenizer> tok_;
  std::shared_ptr<const sample::TokenIndex> token_index_;  // for grammars; built on first use (worker thread)
  int max_queue_, n_batch_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::shared_ptr<Request>, double>> queue_;
  std::vector<Slot> slots_;
  SchedulerStats stats_;
  bool stopping_ = false;
  std::thread worker_;
};

double now_seconds();

}  // namespace jing::runtime
