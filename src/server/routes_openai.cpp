// OpenAI's API: /v1/chat/completions, /v1/completions, /v1/models, /v1/embeddings.
#include <cmath>
#include <set>

#include "chat/tool_calls.h"
#include "chat/tool_stream.h"
#include "server/completion.h"
#include "server/routes.h"
#include "store/store.h"

namespace jing::server {

json usage_json(const runtime::RequestResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"total_tokens", r.prompt_tokens + r.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", r.cached_tokens}}}};
}

namespace {

std::string finish_reason(const runtime::RequestResult& r, bool tool_calls) {
  if (r.finish_reason == "length") return "length";  // a call may be cut short: say so
  return tool_calls ? "tool_calls" : "stop";
}

json logprob_entry(const LoadedModel& lm, const runtime::TokenEvent& e) {
  auto piece = [&](int32_t id) { return lm.tok->decode({id}); };
  json top = json::array();
  for (const auto& t : e.top) top.push_back({{"token", piece(t.token)}, {"logprob", t.logprob}});
  return {{"token", piece(e.token)}, {"logprob", e.logprob.logprob}, {"top_logprobs", top}};
}

json tool_calls_json(const std::vector<chat::ToolCall>& calls) {
  json arr = json::array();
  for (size_t i = 0; i < calls.size(); ++i)
    arr.push_back({{"index", i}, {"id", random_id("call_")}, {"type", "function"}, {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}});
  return arr;
}

void chat_completions(ServerContext& ctx, const HttpRequest& req, HttpResponder& out) {
  GenerationSpec spec = parse_openai_chat(parse_body(req.body));
  Prepared p = prepare(ctx, spec, &out);
  const std::string id = random_id("chatcmpl-");
  const int64_t created = unix_now();
  const std::string model = spec.model.empty() ? p.lm->name : spec.model;
  auto chunk = [&](json delta, json finish, json logprobs = nullptr, json timings = nullptr) {
    json c = {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model},
              {"choices", json::array({{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", std::move(logprobs)}, {"finish_reason", std::move(finish)}}})}};
    if (!timings.is_null()) c["timings"] = std::move(timings);
    return "data: " + c.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
  };
  std::string content, reasoning;
  json logprobs = json::array();
  if (spec.stream) {
    if (!out.begin_stream(200, "text/event-stream")) return;
    out.chunk(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
    // With tools, calls are parsed as they are written and sent as delta.tool_calls fragments.
    chat::ToolCallStream tool_stream(p.tool_format);
    auto send = [&](const chat::ToolStreamOut& o, json lp) {
      bool ok = true;
      if (!o.content.empty()) ok = out.chunk(chunk({{"content", o.content}}, nullptr, std::move(lp)));
      for (const auto& c : o.calls) {
        json call = {{"index", c.index}, {"function", {{"arguments", c.arguments}}}};
        if (!c.name.empty()) call = {{"index", c.index}, {"id", random_id("call_")}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}};
        ok = ok && out.chunk(chunk({{"tool_calls", json::array({call})}}, nullptr));
      }
      return ok;
    };
    auto result = drive(p, out, [&](const Delta& d) {
      json lp = nullptr;
      if (d.event && spec.top_logprobs >= 0 && d.event->token >= 0) lp = {{"content", json::array({logprob_entry(*p.lm, *d.event)})}};
      bool ok = true;
      if (!d.reasoning.empty()) ok = out.chunk(chunk({{"reasoning_content", d.reasoning}}, nullptr, lp)), lp = nullptr;
      if (!d.content.empty()) {
        if (p.buffer_for_tools) ok = ok && send(tool_stream.push(d.content), std::move(lp));
        else ok = ok && out.chunk(chunk({{"content", d.content}}, nullptr, lp));
      }
      return ok;
    });
    bool calls = false;
    if (p.buffer_for_tools) {
      send(tool_stream.finish(), nullptr);
      calls = tool_stream.calls() > 0;
    }
    if (result.finish_reason == "error") {
      json err = {{"error", {{"message", result.error}, {"type", "server_error"}}}};
      out.chunk("data: " + err.dump() + "\n\n");
    }
    // The last chunk carries llama-server's "timings" (the chat page shows tokens per second).
    if (spec.include_usage) {
      out.chunk(chunk(json::object(), finish_reason(result, calls)));
      json u = {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model}, {"choices", json::array()},
                {"usage", usage_json(result)}, {"timings", timings_json(result)}};
      out.chunk("data: " + u.dump() + "\n\n");
    } else {
      out.chunk(chunk(json::object(), finish_reason(result, calls), nullptr, timings_json(result)));
    }
    out.chunk("data: [DONE]\n\n");
    out.end_stream();
    return;
  }
  auto result = drive(p, out, [&](const Delta& d) {
    reasoning += d.reasoning;
    content += d.content;
    if (d.event && spec.top_logprobs >= 0 && d.event->token >= 0) logprobs.push_back(logprob_entry(*p.lm, *d.event));
    return true;
  });
  if (result.finish_reason == "error") throw ApiError(500, result.error, "server_error");
  json message = {{"role", "assistant"}, {"content", content}};
  bool calls = false;
  if (p.buffer_for_tools) {
    auto parsed = chat::parse_tool_calls(content);
    if (!parsed.calls.empty()) {
      message["content"] = parsed.content.empty() ? json(nullptr) : json(parsed.content);
      message["tool_calls"] = tool_calls_json(parsed.calls);
      calls = true;
    }
  }
  if (!reasoning.empty()) message["reasoning_content"] = reasoning;
  json choice = {{"index", 0}, {"message", message}, {"logprobs", nullptr}, {"finish_reason", finish_reason(result, calls)}};
  if (spec.top_logprobs >= 0) choice["logprobs"] = {{"content", logprobs}};
  send_json(out, 200, {{"id", id}, {"object", "chat.completion"}, {"created", created}, {"model", model},
                       {"choices", json::array({choice})}, {"usage", usage_json(result)}});
}

void completions(ServerContext& ctx, const HttpRequest& req, HttpResponder& out) {
  GenerationSpec spec = parse_openai_completion(parse_body(req.body));
  spec.raw = true;
  Prepared p = prepare(ctx, spec, &out);
  const std::string id = random_id("cmpl-");
  const int64_t created = unix_now();
  const std::string model = spec.model.empty() ? p.lm->name : spec.model;
  auto body = [&](const std::string& text, json finish) {
    return json{{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model},
                {"choices", json::array({{{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", std::move(finish)}}})}};
  };
  if (spec.stream) {
    if (!out.begin_stream(200, "text/event-stream")) return;
    auto result = drive(p, out, [&](const Delta& d) {
      return d.content.empty() || out.chunk("data: " + body(d.content, nullptr).dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n");
    });
    out.chunk("data: " + body("", result.finish_reason == "length" ? "length" : "stop").dump() + "\n\n");
    out.chunk("data: [DONE]\n\n");
    out.end_stream();
    return;
  }
  std::string text;
  auto result = drive(p, out, [&](const Delta& d) {
    text += d.content;
    return true;
  });
  if (result.finish_reason == "error") throw ApiError(500, result.error, "server_error");
  json b = body(text, result.finish_reason == "length" ? "length" : "stop");
  b["usage"] = usage_json(result);
  send_json(out, 200, b);
}

void models(ServerContext& ctx, const HttpRequest&, HttpResponder& out) {
  json data = json::array();
  std::set<std::string> seen;
  for (const auto& lm : ctx.models->loaded()) {
    data.push_back({{"id", lm->name}, {"object", "model"}, {"created", lm->created_unix}, {"owned_by", "jing"}});
    seen.insert(lm->name);
  }
  if (ctx.opts.model.empty())
    for (const auto& e : store::Store::open_default().list())
      if (!seen.count(e.name)) data.push_back({{"id", e.name}, {"object", "model"}, {"created", e.modified}, {"owned_by", "jing"}});
  send_json(out, 200, {{"object", "list"}, {"data", data}});
}

void embeddings(ServerContext& ctx, const HttpRequest& req, HttpResponder& out) {
  json body = parse_body(req.body);
  auto inputs = parse_embedding_inputs(body, "input");
  std::string model = body.contains("model") && body["model"].is_string() ? body["model"].get<std::string>() : "";
  auto lm = ctx.models->get(model);
  json data = json::array();
  int tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto r = std::make_shared<runtime::Request>();
    r->prompt = lm->tok->encode(inputs[i], true, false);
    if (static_cast<int>(r->prompt.size()) >= lm->model->n_ctx()) throw ApiError(400, "input " + std::to_string(i) + " is longer than the context");
    r->embedding = true;
    Prepared p;
    p.lm = lm;
    p.req = r;
    admit(p);
    auto result = drive(p, out, [](const Delta&) { return true; });
    if (result.finish_reason != "stop") throw ApiError(500, result.error.empty() ? "embedding failed" : result.error, "server_error");
    tokens += result.prompt_tokens;
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", result.embedding}});
  }
  send_json(out, 200, {{"object", "list"}, {"data", data}, {"model", model.empty() ? lm->name : model}, {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
}

}  // namespace

void add_openai_routes(Routes& r) {
  r[{"POST", "/v1/chat/completions"}] = chat_completions;
  r[{"POST", "/chat/completions"}] = chat_completions;
  r[{"POST", "/v1/completions"}] = completions;
  r[{"POST", "/completions"}] = completions;
  r[{"GET", "/v1/models"}] = models;
  r[{"GET", "/models"}] = models;
  r[{"POST", "/v1/embeddings"}] = embeddings;
  r[{"POST", "/embeddings"}] = embeddings;
}

}  // namespace jing::server
