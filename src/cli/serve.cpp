// `jing serve`: the OpenAI-, Ollama- and llama-server-compatible HTTP server. Takes
// llama-server's flag names; without --port it listens on 11434 like Ollama.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/command.h"
#include "common/error.h"
#include "common/file.h"
#include "server/context.h"
#include "server/request.h"

namespace jing::cli {
namespace {

std::atomic<int> g_signal{0};
extern "C" void on_signal(int s) { g_signal = s; }

Registrar reg([](CLI::App& app) {
  struct Opts {
    std::string model, host, alias, chat_template, chat_template_file, reasoning_format = "deepseek", ctk = "f16", ctv = "f16", hf;
    int port = -1, ctx = 4096, threads = 0, parallel = 4, batch = 512, ubatch = 512, max_queue = 64;
    int timeout = 600, header_timeout = 10, idle_timeout = 30, max_connections = 1024, threads_http = 0;
    std::vector<std::string> api_keys, cors_origins, allowed_hosts;
    sample::SamplingOverrides sampling;
    std::optional<int64_t> seed;  // llama-server's seeds may be negative
    GpuFlags gpu;
    bool jinja = true, metrics = false, cont_batching = true, no_cont_batching = false, no_webui = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("serve", "Serve models over OpenAI's, Ollama's and llama-server's HTTP APIs");
  cmd->add_option("-m,--model", o->model, "GGUF file or model name to serve for every request (default: load by name on demand)");
  cmd->add_option("--hf", o->hf, "Hugging Face repository OWNER/REPO[:QUANT] to serve (-hf)");
  cmd->add_option("--host", o->host, "Address to listen on (default: JING_HOST or 127.0.0.1)");
  cmd->add_option("--port", o->port, "Port (default: 11434, like Ollama)")->check(CLI::Range(0, 65535));
  cmd->add_option("-c,--ctx-size", o->ctx, "Context size per slot, in tokens")->check(CLI::Range(16, 1 << 22));
  add_gpu_flags(cmd, o->gpu);
  cmd->add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  cmd->add_option("--parallel", o->parallel, "Slots: sequences generated at once (-np)")->check(CLI::Range(1, 256));
  cmd->add_option("-b,--batch-size", o->batch, "Most tokens per forward step")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--ubatch-size", o->ubatch, "Physical batch size (-ub)")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--api-key", o->api_keys, "Require this API key (Bearer); may repeat");
  cmd->add_option("-a,--alias", o->alias, "Model name reported by /v1/models");
  cmd->add_flag("--jinja", o->jinja, "Use the model's Jinja chat template (always on)");
  cmd->add_option("--chat-template", o->chat_template, "Jinja chat template text to use instead of the model's");
  cmd->add_option("--chat-template-file", o->chat_template_file, "File with a Jinja chat template");
  cmd->add_option("--reasoning-format", o->reasoning_format, "deepseek: <think> text as reasoning_content; none: leave it in content")
      ->check(CLI::IsMember({"deepseek", "none", "auto", "deepseek-legacy"}));
  cmd->add_option("--temp", o->sampling.temperature, "Default temperature");
  cmd->add_option("--top-k", o->sampling.top_k, "Default top-k");
  cmd->add_option("--top-p", o->sampling.top_p, "Default top-p");
  cmd->add_option("--min-p", o->sampling.min_p, "Default min-p");
  cmd->add_option("--seed", o->seed, "Default seed");
  cmd->add_option("--cache-type-k", o->ctk, "K cache type: f16 or q8_0 (-ctk)")->check(CLI::IsMember({"f16", "q8_0", "f32"}));
  cmd->add_option("--cache-type-v", o->ctv, "V cache type: f16 or q8_0 (-ctv)")->check(CLI::IsMember({"f16", "q8_0", "f32"}));
  cmd->add_flag("--metrics", o->metrics, "Enable /metrics (Prometheus)");
  cmd->add_flag("--no-webui", o->no_webui, "Do not serve the chat page at /");
  cmd->add_flag("--cont-batching", o->cont_batching, "Continuous batching (always on)");
  cmd->add_flag("--no-cont-batching", o->no_cont_batching, "Accepted for compatibility; batching stays on");
  cmd->add_option("--timeout", o->timeout, "Seconds a request body or a response write may stall (llama-server's --timeout)")
      ->check(CLI::Range(1, 86400));
  cmd->add_option("--header-timeout", o->header_timeout, "Seconds from a request's first byte to the end of its headers")->check(CLI::Range(1, 3600));
  cmd->add_option("--idle-timeout", o->idle_timeout, "Seconds an idle keep-alive connection stays open")->check(CLI::Range(1, 86400));
  cmd->add_option("--max-connections", o->max_connections, "Open connections; beyond it the oldest idle one is closed")->check(CLI::Range(8, 1000000));
  cmd->add_option("--threads-http", o->threads_http, "Requests handled at once (default: max-queue + parallel + 32)")->check(CLI::Range(0, 4096));
  cmd->add_option("--cors-origins", o->cors_origins, "Web origins allowed to call the API, comma-separated, '*' for any (default: loopback pages; also JING_ORIGINS)")
      ->delimiter(',');
  cmd->add_option("--allowed-hosts", o->allowed_hosts, "Host names the server answers to besides loopback ones, '*' for any (also JING_ALLOWED_HOSTS)")
      ->delimiter(',');
  cmd->add_option("--max-queue", o->max_queue, "Requests waiting for a slot before new ones get 503")->check(CLI::Range(1, 100000));
  cmd->callback([o] {
    server::ServerContext ctx;
    auto& so = ctx.opts;
    so.model = !o->hf.empty() ? "hf.co/" + o->hf : o->model;
    so.alias = o->alias;
    const char* env_host = std::getenv("JING_HOST");
    std::string host = !o->host.empty() ? o->host : (env_host && *env_host ? env_host : "127.0.0.1");
    int port = o->port >= 0 ? o->port : 11434;
    if (auto colon = host.rfind(':'); o->port < 0 && colon != std::string::npos && host.find(']') == std::string::npos &&
                                      host.find(':') == colon) {  // JING_HOST=0.0.0.0:8080
      port = std::atoi(host.c_str() + colon + 1);
      host = host.substr(0, colon);
    }
    so.http.host = host;
    so.http.port = port;
    so.http.read_timeout_seconds = o->timeout;
    so.http.header_timeout_seconds = o->header_timeout;
    so.http.idle_timeout_seconds = o->idle_timeout;
    so.http.max_connections = o->max_connections;
    so.http.max_workers = o->threads_http > 0 ? o->threads_http : o->max_queue + o->parallel + 32;
    auto env_list = [](const char* name) {
      const char* v = std::getenv(name);
      return v ? server::split_list(v) : std::vector<std::string>{};
    };
    auto origins = o->cors_origins, hosts = o->allowed_hosts;
    for (auto& x : env_list("JING_ORIGINS")) origins.push_back(x);
    for (auto& x : env_list("JING_ALLOWED_HOSTS")) hosts.push_back(x);
    so.access = server::AccessPolicy::make(host, origins, hosts);
    so.model_opts.n_ctx = o->ctx;
    so.model_opts.n_seq = o->parallel;
    so.model_opts.n_threads = o->threads;
    so.model_opts.n_batch = o->batch;
    apply_gpu_flags(o->gpu, so.model_opts);
    so.model_opts.kv_type = o->ctk == "q8_0" && o->ctv == "q8_0" ? GgmlType::Q8_0 : o->ctk == "f32" ? GgmlType::F32 : GgmlType::F16;
    so.api_keys = o->api_keys;
    so.reasoning_format = o->reasoning_format == "none" ? "none" : "deepseek";
    so.metrics = o->metrics;
    so.webui = !o->no_webui;
    so.max_queue = o->max_queue;
    if (const char* ka = std::getenv("JING_KEEP_ALIVE"); ka && *ka) {
      try {
        if (auto d = server::parse_duration(server::json(std::string(ka)))) so.keep_alive_seconds = *d;
      } catch (const server::ApiError&) {
        throw Error("JING_KEEP_ALIVE must be a duration like 5m");
      }
    }
    if (!o->chat_template.empty()) so.chat_template = o->chat_template;
    if (!o->chat_template_file.empty()) {
      so.chat_template = read_text_file(o->chat_template_file);
    }
    so.sampling = o->sampling;
    if (o->seed) so.sampling.seed = static_cast<uint64_t>(*o->seed);
    ctx.models = std::make_unique<server::ModelManager>(so);
    server::HttpServer srv(so.http, server::make_router(ctx));
    srv.listen();
    std::fprintf(stderr, "jing serving on http://%s:%d (OpenAI /v1, Ollama /api, llama-server routes)\n", so.http.host.c_str(), srv.port());
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    std::thread watcher([&] {
      while (g_signal == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::fprintf(stderr, "shutting down: finishing open streams\n");
      ctx.shutting_down = true;
      srv.stop();              // no new connections; idle ones close
      ctx.models->stop_all();  // generation stops: each open stream ends with its final chunk
    });
    srv.serve();
    watcher.join();
  });
});

}  // namespace
}  // namespace jing::cli
