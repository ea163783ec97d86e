// llama-server's own endpoints: /health, /props, /metrics, /tokenize, /detokenize,
// /apply-template, /completion, /slots.
#include "server/completion.h"
#include "server/routes.h"

namespace jing::server {

json timings_json(const runtime::RequestResult& r) {
  const int prompt_n = r.prompt_tokens - r.cached_tokens;
  auto rate = [](int n, double seconds) { return seconds > 0 ? n / seconds : 0.0; };
  return {{"prompt_n", prompt_n}, {"prompt_ms", r.prompt_seconds * 1000}, {"prompt_per_second", rate(prompt_n, r.prompt_seconds)},
          {"predicted_n", r.completion_tokens}, {"predicted_ms", r.generate_seconds * 1000},
          {"predicted_per_second", rate(r.completion_tokens, r.generate_seconds)}};
}

namespace {

std::shared_ptr<LoadedModel> default_model(ServerContext& ctx, const json& body) {
  std::string name = body.contains("model") && body["model"].is_string() ? body["model"].get<std::string>() : "";
  if (name.empty()) {
    auto loaded = ctx.models->loaded();
    if (loaded.empty()) throw ApiError(400, "no model is loaded: name one with 'model'");
    return loaded.front();
  }
  return ctx.models->get(name);
}

void health(ServerContext&, const HttpRequest&, HttpResponder& out) { send_json(out, 200, {{"status", "ok"}}); }

void props(ServerContext& ctx, const HttpRequest&, HttpResponder& out) {
  json j = {{"total_slots", ctx.opts.model_opts.n_seq}, {"build_info", "jing 0.1.0"}};
  auto loaded = ctx.models->loaded();
  if (!loaded.empty()) {
    const auto& lm = *loaded.front();
    j["model_path"] = lm.path.string();
    j["chat_template"] = lm.tmpl.source;
    j["bos_token"] = lm.tmpl.bos;
    j["eos_token"] = lm.tmpl.eos;
    j["default_generation_settings"] = {{"n_ctx", lm.model->n_ctx()},
                                        {"params", {{"temperature", lm.sampling.temperature}, {"top_k", lm.sampling.top_k},
                                                    {"top_p", lm.sampling.top_p}, {"min_p", lm.sampling.min_p}}}};
  }
  send_json(out, 200, j);
}

void metrics(ServerContext& ctx, const HttpRequest&, HttpResponder& out) {
  if (!ctx.opts.metrics) throw ApiError(501, "metrics are off: start the server with --metrics", "not_supported_error");
  runtime::SchedulerStats total;
  for (const auto& lm : ctx.models->loaded()) {
    auto s = lm->scheduler->stats();
    total.requests += s.requests, total.prompt_tokens += s.prompt_tokens, total.generated_tokens += s.generated_tokens;
    total.prompt_seconds += s.prompt_seconds, total.generate_seconds += s.generate_seconds;
    total.busy_slots += s.busy_slots, total.queued += s.queued;
  }
  std::string m;
  auto metric = [&](const char* name, const char* type, const char* help, double v) {
    m += std::string("# HELP jing:") + name + " " + help + "\n# TYPE jing:" + name + " " + type + "\njing:" + name + " " + std::to_string(v) + "\n";
  };
  metric("prompt_tokens_total", "counter", "Prompt tokens processed.", static_cast<double>(total.prompt_tokens));
  metric("tokens_predicted_total", "counter", "Generated tokens.", static_cast<double>(total.generated_tokens));
  metric("prompt_seconds_total", "counter", "Prompt processing time.", total.prompt_seconds);
  metric("tokens_predicted_seconds_total", "counter", "Generation time.", total.generate_seconds);
  metric("requests_total", "counter", "Finished generation requests.", static_cast<double>(total.requests));
  metric("http_requests_total", "counter", "HTTP requests received.", static_cast<double>(ctx.http_requests.load()));
  metric("requests_processing", "gauge", "Busy slots.", total.busy_slots);
  metric("requests_deferred", "gauge", "Queued requests.", total.queued);
  out.send(200, "text/plain; version=0.0.4", m);
}

void tokenize(ServerContext& ctx, const HttpRequest& req, HttpResponder& out) {
  json body = parse_body(req.body);
  if (!body.contains("content") || !body["content"].is_string()) throw ApiError(400, "'content' must be a string");
  auto lm = default_model(ctx, body);
  const bool special = body.value("add_special", false), parse = body.value("parse_special", true);
  auto ids = lm->tok->encode(body["content"].get<std::string>(), special, parse);
  if (body.value("with_pieces", false)) {
    json arr = json::array();
    for (auto id : ids) arr.push_back({{"id", id}, {"piece", lm->tok->decode({id})}});
    send_json(out, 200, {{"tokens", arr}});
  } else {
    send_json(out, 200, {{"tokens", ids}});
  }
}

void detokenize(ServerContext& ctx, const HttpRequest& req, HttpResponder& out) {
  json body = parse_body(req.body);
  if (!body.contains("tokens") || !body["tokens"].is_array()) throw ApiError(400, "'tokens' must be an array of token ids");
  auto lm = default_model(ctx, body);
  std::vector<int32_t> ids;
  for (const auto& t : body["tokens"]) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= lm->tok->n_vocab()) throw ApiError(400, "'tokens' holds an invalid token id");
    ids.push_back(t.get<int32_t>());
  }
  send_json(out, 200, {{"content", lm->tok->decode(ids)}});
}

void apply_template(ServerContext& ctx, const HttpRequest& req, HttpResponder& out) {
  json body = parse_body(req.body);
  GenerationSpec spec = parse_openai_chat(body);
  auto lm = ctx.models->get(spec.model);
  send_json(out, 200, {{"prompt", render_chat(*lm, spec)}});
}

void completion(ServerContext& ctx, const HttpRequest& req, HttpResponder& out) {
  GenerationSpec spec = parse_llama_completion(parse_body(req.body));
  Prepared p = prepare(ctx, spec, &out);
  auto final_object = [&](const runtime::RequestResult& r, const std::string& content) {
    return json{{"content", content}, {"stop", true}, {"model", p.lm->name}, {"tokens_predicted", r.completion_tokens},
                {"tokens_evaluated", r.prompt_tokens}, {"tokens_cached", r.cached_tokens}, {"stop_type", r.finish_reason == "length" ? "limit" : "eos"},
                {"truncated", false},
                {"timings", timings_json(r)}};
  };
  if (spec.stream) {
    if (!out.begin_stream(200, "text/event-stream")) return;
    auto r = drive(p, out, [&](const Delta& d) {
      return d.content.empty() || out.chunk("data: " + json{{"content", d.content}, {"stop", false}}.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n");
    });
    out.chunk("data: " + final_object(r, "").dump() + "\n\n");
    out.end_stream();
    return;
  }
  std::string text;
  auto r = drive(p, out, [&](const Delta& d) {
    text += d.content;
    return true;
  });
  if (r.finish_reason == "error") throw ApiError(500, r.error, "server_error");
  send_json(out, 200, final_object(r, text));
}

void slots(ServerContext& ctx, const HttpRequest&, HttpResponder& out) {
  json arr = json::array();
  for (const auto& lm : ctx.models->loaded())
    for (const auto& s : lm->scheduler->slots())
      arr.push_back({{"id", s.id}, {"model", lm->name}, {"n_ctx", lm->model->n_ctx()}, {"is_processing", s.busy},
                     {"n_past", s.n_past}, {"n_decoded", s.n_decoded}, {"n_prompt_tokens", s.n_prompt}});
  send_json(out, 200, arr);
}

}  // namespace

void add_llama_routes(Routes& r) {
  r[{"GET", "/health"}] = health;
  r[{"GET", "/v1/health"}] = health;
  r[{"GET", "/props"}] = props;
  r[{"GET", "/metrics"}] = metrics;
  r[{"POST", "/tokenize"}] = tokenize;
  r[{"POST", "/detokenize"}] = detokenize;
  r[{"POST", "/apply-template"}] = apply_template;
  r[{"POST", "/completion"}] = completion;
  r[{"GET", "/slots"}] = slots;
}

}  // namespace jing::server
