#include "server/completion.h"

#include <chrono>
#include <ctime>
#include <random>

#include "common/error.h"
#include "sample/json_schema.h"

namespace jing::server {

std::string iso8601_now() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  char out[96];
  std::snprintf(out, sizeof out, "%s.%06lldZ", buf, static_cast<long long>(us));
  return out;
}

std::string iso8601_utc(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
  return buf;
}

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static const char* hex = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += hex[rng() & 15];
  return id;
}

std::string render_chat(const LoadedModel& lm, const GenerationSpec& spec) {
  // Thinking stays on unless the client turns it off (llama-server and Ollama do the same).
  json extra = {{"enable_thinking", spec.think.value_or(true)}};
  try {
    return lm.tmpl.make().render(spec.messages, spec.tools, true, extra);
  } catch (const Error& e) {
    throw ApiError(400, e.what());
  }
}

void admit(Prepared& p) {
  if (!p.lm->scheduler->submit(p.req)) {
    p.req.reset();
    throw ApiError(503, "the server is busy: every slot is taken and the queue is full", "unavailable_error");
  }
}

Prepared prepare(ServerContext& ctx, const GenerationSpec& spec, HttpResponder* out) {
  Prepared p;
  p.lm = ctx.models->get(spec.model, spec.keep_alive_seconds);
  std::string prompt;
  if (spec.chat) {
    prompt = render_chat(*p.lm, spec);
  } else if (spec.raw) {
    prompt = spec.prompt;
  } else {  // Ollama generate: the prompt as one user turn through the template
    GenerationSpec chat = spec;
    chat.messages = json::array();
    if (!spec.system.empty()) chat.messages.push_back({{"role", "system"}, {"content", spec.system}});
    chat.messages.push_back({{"role", "user"}, {"content", spec.prompt}});
    prompt = render_chat(*p.lm, chat);
  }
  const std::string format = spec.reasoning_format.empty() ? ctx.opts.reasoning_format : spec.reasoning_format;
  p.split_reasoning = !spec.raw && format != "none";
  const auto tail = prompt.substr(prompt.size() > 16 ? prompt.size() - 16 : 0);
  p.opened_think = tail.find("<think>") != std::string::npos && tail.find("</think>") == std::string::npos;
  p.buffer_for_tools = !spec.tools.is_null();
  p.tool_format = chat::tool_format_of(p.lm->tmpl.source);
  std::shared_ptr<const sample::Grammar> grammar = spec.grammar;
  if (!spec.tools.is_null() && (spec.tool_choice == "required" || spec.tool_choice == "function")) {
    // A call is forced: a grammar of this model's call format, its functions and their parameters.
    if (grammar) throw ApiError(400, "a forced tool call and a response format both constrain the output; send one");
    const auto& tok = *p.lm->tok;
    auto special = [&](const std::string& text) {
      const auto id = tok.find_token(text);
      return id && tok.is_control(*id) ? "<[" + std::to_string(*id) + "]>" : sample::gbnf_literal(text);
    };
    try {
      grammar = std::make_shared<const sample::Grammar>(sample::parse_gbnf(
          chat::tool_call_gbnf(p.tool_format, spec.tools, spec.tool_choice_name, spec.parallel_tool_calls, special)));
    } catch (const sample::SchemaError& e) {
      throw ApiError(400, std::string("tools: ") + e.what());
    } catch (const sample::GrammarError& e) {
      throw ApiError(400, std::string("tools: ") + e.what());
    }
  }

  // No token is anywhere near this long: a prompt this size cannot fit, and tokenizing it would
  // only keep a thread busy.
  if (prompt.size() > static_cast<size_t>(p.lm->model->n_ctx()) * 512)
    throw ApiError(400, "the prompt (" + std::to_string(prompt.size()) + " bytes) is far longer than the context of " +
                            std::to_string(p.lm->model->n_ctx()) + " tokens holds");
  if (out && out->client_gone()) throw ApiError(499, "the client went away", "cancelled");
  auto r = std::make_shared<runtime::Request>();
  r->prompt = p.lm->tok->encode(prompt, true, true);
  if (r->prompt.empty()) throw ApiError(400, "the prompt is empty");
  if (static_cast<int>(r->prompt.size()) >= p.lm->model->n_ctx())
    throw ApiError(400, "the prompt has " + std::to_string(r->prompt.size()) + " tokens, more than the context of " +
                            std::to_string(p.lm->model->n_ctx()) + " holds (start the server with a larger --ctx-size)");
  r->sampling = p.lm->sampling;
  spec.overrides.apply(r->sampling);
  const auto& s = spec.sampling;
  r->sampling.typical_p = s.typical_p;
  r->sampling.frequency_penalty = s.frequency_penalty;
  r->sampling.presence_penalty = s.presence_penalty;
  r->sampling.repeat_last_n = s.repeat_last_n;
  r->sampling.logit_bias = s.logit_bias;
  r->max_tokens = spec.max_tokens;
  r->stop = spec.stop;
  r->top_logprobs = spec.top_logprobs;
  r->grammar = grammar;
  r->grammar_after_think = p.opened_think;  // R1 thinks first; the format applies to the answer
  if (out && out->client_gone()) throw ApiError(499, "the client went away", "cancelled");  // nobody to answer
  p.req = r;
  admit(p);
  return p;
}

runtime::RequestResult drive(Prepared& p, HttpResponder& out, const std::function<bool(const Delta&)>& on_delta) {
  p.driven = true;
  chat::ReasoningParser parser(p.opened_think);
  runtime::RequestResult result;
  bool cancelled = false;
  std::vector<runtime::TokenEvent> events;
  while (true) {
    events.clear();
    bool more = p.req->wait(events, result, 20);  // short: a client that left is noticed within ~20 ms
    // Events that queued up while this thread was busy go out as one delta (one SSE chunk),
    // unless per-token logprobs were asked for.
    const bool per_token = p.req->top_logprobs >= 0;
    for (size_t k = 0; k < events.size(); ++k) {
      Delta d;
      d.event = &events[k];
      std::string text = events[k].text;
      while (!per_token && k + 1 < events.size()) text += events[++k].text;
      if (p.split_reasoning) {
        auto td = parser.push(text);
        d.reasoning = std::move(td.reasoning);
        d.content = std::move(td.content);
      } else {
        d.content = std::move(text);
      }
      if (!cancelled && !on_delta(d)) cancelled = true;
    }
    if (cancelled || out.client_gone()) {
      p.req->cancel();  // the scheduler frees the slot within one step
      cancelled = true;
    }
    if (!more || result.done) break;
  }
  while (!result.done) {  // after a cancel, wait for the scheduler to let go
    events.clear();
    p.req->wait(events, result, 50);
  }
  if (p.split_reasoning && !cancelled) {
    auto td = parser.finish();
    if (!td.empty()) {
      Delta d;
      d.reasoning = std::move(td.reasoning);
      d.content = std::move(td.content);
      on_delta(d);
    }
  }
  p.lm->last_used = runtime::now_seconds();
  return result;
}

}  // namespace jing::server
