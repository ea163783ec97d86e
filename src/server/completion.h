// The path every generating route shares: prompt from the spec (chat template or raw text),
// sampling merged over the model's defaults, the request queued on the model's scheduler, and
// its tokens read back as reasoning/content deltas while the client is still there.
#pragma once
#include <functional>

#include "chat/reasoning.h"
#include "chat/tool_grammar.h"
#include "server/context.h"

namespace jing::server {

// A request admitted to its model's queue. Admission happens before any response header is
// written, so a full queue is a clean 503 for streams too; a request dropped before drive() runs
// (the client's stream could not start) is cancelled so it does not run for no one.
struct Prepared {
  std::shared_ptr<LoadedModel> lm;
  std::shared_ptr<runtime::Request> req;
  bool split_reasoning = false;
  bool opened_think = false;
  bool buffer_for_tools = false;  // tools offered: content is parsed for calls
  chat::ToolFormat tool_format = chat::ToolFormat::Llama3;  // how this model's template writes calls
  bool driven = false;

  Prepared() = default;
  Prepared(Prepared&&) = default;
  Prepared& operator=(Prepared&&) = default;
  ~Prepared() {
    if (req && !driven) req->cancel();
  }
};

// Renders and tokenizes the prompt and admits the request (throws ApiError 400, 404, 503).
Prepared prepare(ServerContext& ctx, const GenerationSpec& spec, HttpResponder* out = nullptr);
// Queues p.req on its model's scheduler; ApiError 503 when the queue is full.
void admit(Prepared& p);
// Renders a chat for /apply-template and friends.
std::string render_chat(const LoadedModel& lm, const GenerationSpec& spec);

struct Delta {
  std::string reasoning, content;
  const runtime::TokenEvent* event = nullptr;  // the token behind the delta (logprobs), may be null
};

// Runs an admitted request. on_delta returns false to stop early (e.g. the client's write failed).
runtime::RequestResult drive(Prepared& p, HttpResponder& out, const std::function<bool(const Delta&)>& on_delta);

std::string iso8601_now();
// A time as "2026-01-02T03:04:05+00:00": a numeric offset, which Python's datetime.fromisoformat
// reads in every version (a "Z" suffix only from 3.11); Open WebUI parses /api/ps expires_at so.
std::string iso8601_utc(int64_t unix_seconds);
int64_t unix_now();
std::string random_id(const char* prefix);

}  // namespace jing::server
