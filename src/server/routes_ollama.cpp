// Ollama's API: /api/chat, /api/generate (NDJSON streams with "thinking"), /api/embed,
// /api/tags, /api/show, /api/ps, /api/pull, /api/delete, /api/copy, /api/version.
#include <csignal>

#include "chat/tool_calls.h"
#include "gguf/summary.h"
#include "server/completion.h"
#include "server/routes.h"
#include "store/download.h"
#include "store/pull.h"
#include "store/store.h"

namespace jing::server {

json model_details(const LoadedModel& lm) {
  auto s = gguf::summarize(lm.model->file());
  return {{"parent_model", ""}, {"format", "gguf"}, {"family", s.architecture}, {"families", json::array({s.architecture})},
          {"parameter_size", gguf::format_parameters(s.parameters)}, {"quantization_level", s.file_type.empty() ? s.dominant_type : s.file_type}};
}

namespace {

// Ollama carries arguments as an object; a call whose arguments never became one (cut off by
// num_predict) is left out rather than sent as something that is not JSON.
void add_call(json& calls, const chat::ToolCall& c) {
  json args = parse_json_or_discarded(c.arguments);
  if (args.is_object()) calls.push_back({{"function", {{"name", c.name}, {"arguments", std::move(args)}}}});
}


// Ollama's names always carry a tag, and Open WebUI adds ":latest" to a name without one before
// it looks the name up in /api/tags: a model served under a bare name (--model, --alias) is
// listed with ":latest" so that the lookup finds it.
std::string tagged(const std::string& name) { return name.find(':') == std::string::npos ? name + ":latest" : name; }

int64_t ns(double seconds) { return static_cast<int64_t>(seconds * 1e9); }

json details_of(const gguf::ModelSummary& s) {
  return {{"parent_model", ""}, {"format", "gguf"}, {"family", s.architecture}, {"families", json::array({s.architecture})},
          {"parameter_size", gguf::format_parameters(s.parameters)}, {"quantization_level", s.file_type.empty() ? s.dominant_type : s.file_type}};
}

std::string model_field(const json& b) {
  for (const char* k : {"model", "name"})
    if (b.contains(k) && b[k].is_string()) return b[k].get<std::string>();
  throw ApiError(400, "'model' is required");
}

// The final object of a chat/generate reply: Ollama's timing fields in nanoseconds.
json timings(const runtime::RequestResult& r, const LoadedModel& lm, double started) {
  return {{"done_reason", r.finish_reason == "length" ? "length" : "stop"},
          {"total_duration", ns(runtime::now_seconds() - started)},
          {"load_duration", ns(std::max(0.0, lm.loaded_at > started ? lm.load_seconds : 0.0))},
          {"prompt_eval_count", r.prompt_tokens},
          {"prompt_eval_duration", ns(r.prompt_seconds)},
          {"eval_count", r.completion_tokens},
          {"eval_duration", ns(r.generate_seconds)}};
}

void generate_like(ServerContext& ctx, const HttpRequest& req, HttpResponder& out, bool chat) {
  const double started = runtime::now_seconds();
  json body = parse_body(req.body);
  GenerationSpec spec = chat ? parse_ollama_chat(body) : parse_ollama_generate(body);
  // An empty generate request loads the model (Ollama clients use it to preload).
  if (!chat && spec.prompt.empty()) {
    auto lm = ctx.models->get(spec.model, spec.keep_alive_seconds);
    send_json(out, 200, {{"model", spec.model}, {"created_at", iso8601_now()}, {"response", ""}, {"done", true}, {"done_reason", "load"}});
    return;
  }
  const bool want_thinking = !spec.think.has_value() || *spec.think;
  Prepared p = prepare(ctx, spec, &out);
  auto object = [&](const std::string& content, const std::string& thinking, bool done) {
    json o = {{"model", spec.model}, {"created_at", iso8601_now()}};
    if (chat) {
      o["message"] = {{"role", "assistant"}, {"content", content}};
      if (!thinking.empty()) o["message"]["thinking"] = thinking;
    } else {
      o["response"] = content;
      if (!thinking.empty()) o["thinking"] = thinking;
    }
    o["done"] = done;
    return o;
  };
  std::string content, thinking;
  if (spec.stream) {
    if (!out.begin_stream(200, "application/x-ndjson")) return;
    auto result = drive(p, out, [&](const Delta& d) {
      std::string th = want_thinking ? d.reasoning : "";
      if (p.buffer_for_tools) {
        content += d.content;
        if (th.empty()) return true;
        return out.chunk(object("", th, false).dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
      }
      if (d.content.empty() && th.empty()) return true;
      return out.chunk(object(d.content, th, false).dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
    });
    json last = object("", "", true);
    if (p.buffer_for_tools) {
      auto parsed = chat::parse_tool_calls(content);
      last["message"]["content"] = parsed.content;
      if (!parsed.calls.empty()) {
        json calls = json::array();
        for (const auto& c : parsed.calls) add_call(calls, c);
        last["message"]["tool_calls"] = calls;
      }
    }
    if (result.finish_reason == "error") last["error"] = result.error;
    last.update(timings(result, *p.lm, started));
    out.chunk(last.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
    out.end_stream();
    return;
  }
  auto result = drive(p, out, [&](const Delta& d) {
    content += d.content;
    if (want_thinking) thinking += d.reasoning;
    return true;
  });
  if (result.finish_reason == "error") throw ApiError(500, result.error, "server_error");
  json o = object(content, thinking, true);
  if (chat && p.buffer_for_tools) {
    auto parsed = chat::parse_tool_calls(content);
    o["message"]["content"] = parsed.content;
    if (!parsed.calls.empty()) {
      json calls = json::array();
      for (const auto& c : parsed.calls) add_call(calls, c);
      o["message"]["tool_calls"] = calls;
    }
  }
  o.update(timings(result, *p.lm, started));
  send_json(out, 200, o);
}

void embed(ServerContext& ctx, const HttpRequest& req, HttpResponder& out) {
  const double started = runtime::now_seconds();
  json body = parse_body(req.body);
  std::string model = model_field(body);
  auto inputs = parse_embedding_inputs(body, "input");
  // Ollama truncates over-long inputs to the context unless told not to.
  bool truncate = true;
  if (body.contains("truncate") && !body["truncate"].is_null()) {
    if (!body["truncate"].is_boolean()) throw ApiError(400, "'truncate' must be a boolean");
    truncate = body["truncate"].get<bool>();
  }
  auto lm = ctx.models->get(model);
  json vecs = json::array();
  int tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Prepared p;
    p.lm = lm;
    p.req = std::make_shared<runtime::Request>();
    p.req->prompt = lm->tok->encode(inputs[i], true, false);
    const size_t limit = static_cast<size_t>(std::max(1, lm->model->n_ctx() - 1));
    if (p.req->prompt.size() > limit) {
      if (!truncate)
        throw ApiError(400, "input " + std::to_string(i) + " has " + std::to_string(p.req->prompt.size()) + " tokens, more than the context of " +
                                std::to_string(lm->model->n_ctx()) + " holds (send \"truncate\": true to cut it)");
      p.req->prompt.resize(limit);
    }
    if (p.req->prompt.empty()) throw ApiError(400, "input " + std::to_string(i) + " is empty");
    p.req->embedding = true;
    admit(p);
    auto r = drive(p, out, [](const Delta&) { return true; });
    if (r.finish_reason != "stop") throw ApiError(500, r.error.empty() ? "embedding failed" : r.error, "server_error");
    tokens += r.prompt_tokens;
    vecs.push_back(r.embedding);
  }
  send_json(out, 200, {{"model", model}, {"embeddings", vecs}, {"total_duration", ns(runtime::now_seconds() - started)},
                       {"load_duration", 0}, {"prompt_eval_count", tokens}});
}

void tags(ServerContext& ctx, const HttpRequest&, HttpResponder& out) {
  json models = json::array();
  for (const auto& e : store::Store::open_default().list()) {
    json details = {{"format", "gguf"}};
    try {
      details = details_of(gguf::summarize(gguf::File::open(e.model_path())));
    } catch (const std::exception&) {
    }
    std::string digest = e.manifest.contains("source") ? e.manifest["source"]["files"][0].value("sha256", "") : "";
    models.push_back({{"name", e.name}, {"model", e.name}, {"modified_at", iso8601_utc(static_cast<int64_t>(e.modified))}, {"size", e.size}, {"digest", digest}, {"details", details}});
  }
  // A server started with --model lists that model too.
  for (const auto& lm : ctx.models->loaded())
    if (lm->pinned)
      models.push_back({{"name", tagged(lm->name)}, {"model", tagged(lm->name)}, {"modified_at", iso8601_now()}, {"size", lm->size}, {"digest", ""}, {"details", model_details(*lm)}});
  send_json(out, 200, {{"models", models}});
}

void show(ServerContext& ctx, const HttpRequest& req, HttpResponder& out) {
  std::string name = model_field(parse_body(req.body));
  std::shared_ptr<LoadedModel> lm;
  try {
    // With --model the one model answers to any name when generating, but /api/show describes
    // only names that are it.
    if (ctx.models->has_pinned() && !ctx.models->names_pinned(name)) throw ApiError(404, "not the served model");
    lm = ctx.models->get(name);
  } catch (const ApiError& e) {
    throw ApiError(404, "model '" + name + "' not found", "not_found_error");
  }
  const auto& f = lm->model->file();
  auto s = gguf::summarize(f);
  json info = json::object();
  for (const auto& kv : f.metadata()) {
    if (kv.key.rfind("tokenizer.ggml.", 0) == 0 && kv.value.type == gguf::ValueType::ARRAY) continue;  // huge arrays
    if (kv.key == "tokenizer.chat_template") continue;
    const auto& v = kv.value;
    if (v.type == gguf::ValueType::STRING) info[kv.key] = v.as_string();
    else if (v.type == gguf::ValueType::BOOL) info[kv.key] = v.as_bool();
    else if (v.type == gguf::ValueType::FLOAT32 || v.type == gguf::ValueType::FLOAT64) info[kv.key] = v.as_float();
    else if (v.is_integer()) info[kv.key] = v.as_int();
  }
  info["general.parameter_count"] = s.parameters;
  json caps = json::array({"completion"});
  if (lm->tmpl.source.find("<think>") != std::string::npos || lm->tmpl.source.find("enable_thinking") != std::string::npos) caps.push_back("thinking");
  if (lm->tmpl.source.find("tools") != std::string::npos) caps.push_back("tools");
  caps.push_back("embedding");
  char params[256];
  std::snprintf(params, sizeof params, "temperature %g\ntop_p %g\ntop_k %d", lm->sampling.temperature, lm->sampling.top_p, lm->sampling.top_k);
  send_json(out, 200, {{"license", s.license}, {"modelfile", "FROM " + lm->path.string() + "\n"}, {"parameters", params},
                       {"template", lm->tmpl.source}, {"details", details_of(s)}, {"model_info", info}, {"capabilities", caps},
                       {"modified_at", iso8601_now()}});
}

void ps(ServerContext& ctx, const HttpRequest&, HttpResponder& out) {
  json models = json::array();
  for (const auto& lm : ctx.models->loaded()) {
    // A pinned model (--model) never expires: a date far ahead, as Ollama gives for keep_alive -1.
    const double left = lm->pinned ? 1e9 : std::max(0.0, lm->keep_alive - (runtime::now_seconds() - lm->last_used));
    const std::string expires = iso8601_utc(unix_now() + static_cast<int64_t>(std::min(left, 1e9)));
    json gpus = json::array();  // jing's addition: the VRAM share per GPU (a layer split holds several)
    for (const auto& [name, bytes] : lm->model->gpu_bytes_each()) gpus.push_back({{"name", name}, {"size_vram", bytes}});
    models.push_back({{"name", tagged(lm->name)}, {"model", tagged(lm->name)}, {"size", lm->size}, {"digest", ""}, {"details", model_details(*lm)},
                      {"expires_at", expires}, {"size_vram", lm->model->gpu_bytes()}, {"context_length", lm->model->n_ctx()}, {"gpus", gpus}});
  }
  send_json(out, 200, {{"models", models}});
}

void pull(ServerContext&, const HttpRequest& req, HttpResponder& out) {
  json body = parse_body(req.body);
  auto ref = store::parse_model_ref(model_field(body));
  const bool stream = !body.contains("stream") || !body["stream"].is_boolean() || body["stream"].get<bool>();
  auto st = store::Store::open_default();
  store::PullOptions opts;
  opts.progress_bars = false;
  if (!stream) {
    store::pull(st, ref, store::Hub(store::HubConfig::from_env()), opts);
    send_json(out, 200, {{"status", "success"}});
    return;
  }
  out.begin_stream(200, "application/x-ndjson");
  double last = 0;
  opts.on_event = [&](const store::PullEvent& e) {
    const double now = runtime::now_seconds();
    if (e.status.rfind("downloading", 0) == 0 && now - last < 0.2 && e.completed < e.total) return;
    last = now;
    json o = {{"status", e.status}};
    if (!e.file.empty()) o["digest"] = e.file;
    if (e.total) o["total"] = e.total, o["completed"] = e.completed;
    if (!out.chunk(o.dump() + "\n")) store::download_cancel_flag() = true;
  };
  try {
    store::pull(st, ref, store::Hub(store::HubConfig::from_env()), opts);
  } catch (const std::exception& e) {
    out.chunk(json{{"error", e.what()}}.dump() + "\n");
  }
  store::download_cancel_flag() = false;
  out.end_stream();
}

void remove_model(ServerContext& ctx, const HttpRequest& req, HttpResponder& out) {
  std::string name = model_field(parse_body(req.body));
  auto st = store::Store::open_default();
  auto ref = store::parse_model_ref(name);
  if (!st.find(ref)) throw ApiError(404, "model '" + name + "' not found", "not_found_error");
  ctx.models->unload(name);
  st.remove(ref);
  send_json(out, 200, json::object());
}

void copy(ServerContext&, const HttpRequest& req, HttpResponder& out) {
  json body = parse_body(req.body);
  if (!body.contains("source") || !body["source"].is_string() || !body.contains("destination") || !body["destination"].is_string())
    throw ApiError(400, "'source' and 'destination' are required");
  auto st = store::Store::open_default();
  auto src = store::parse_model_ref(body["source"].get<std::string>());
  if (!st.find(src)) throw ApiError(404, "model '" + body["source"].get<std::string>() + "' not found", "not_found_error");
  st.copy(src, store::parse_model_ref(body["destination"].get<std::string>()));
  send_json(out, 200, json::object());
}

}  // namespace

void add_ollama_routes(Routes& r) {
  r[{"GET", "/api/version"}] = [](ServerContext&, const HttpRequest&, HttpResponder& out) { send_json(out, 200, {{"version", "0.12.6"}}); };
  r[{"POST", "/api/chat"}] = [](ServerContext& c, const HttpRequest& q, HttpResponder& o) { generate_like(c, q, o, true); };
  r[{"POST", "/api/generate"}] = [](ServerContext& c, const HttpRequest& q, HttpResponder& o) { generate_like(c, q, o, false); };
  r[{"POST", "/api/embed"}] = embed;
  r[{"GET", "/api/tags"}] = tags;
  r[{"POST", "/api/show"}] = show;
  r[{"GET", "/api/ps"}] = ps;
  r[{"POST", "/api/pull"}] = pull;
  r[{"DELETE", "/api/delete"}] = remove_model;
  r[{"POST", "/api/copy"}] = copy;
}

}  // namespace jing::server
