// What the HTTP routes share: server options, the loaded models (loaded on demand by name,
// unloaded after keep_alive) and counters for /metrics.
#pragma once
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "chat/model_template.h"
#include "model/model.h"
#include "runtime/scheduler.h"
#include "sample/sampler.h"
#include "server/access.h"
#include "server/http.h"
#include "server/request.h"
#include "tokenizer/tokenizer.h"

namespace jing::server {

struct ServerOptions {
  HttpOptions http;
  AccessPolicy access;               // allowed origins (CORS) and Host names
  std::string model;                 // --model: served for every request (llama-server style)
  std::string alias;                 // -a/--alias: the name /v1/models reports
  model::ModelOptions model_opts;    // ctx, parallel slots, threads, batch, kv type
  std::vector<std::string> api_keys;
  std::optional<std::string> chat_template;
  std::string reasoning_format = "deepseek";
  sample::SamplingOverrides sampling;  // server-wide defaults (--temp, ...) over the GGUF's
  double keep_alive_seconds = 300;
  int max_queue = 64;
  bool metrics = false;
  bool webui = true;                  // the chat page at "/" (--no-webui turns it off)
};

struct LoadedModel {
  std::string name;
  std::filesystem::path path;
  std::shared_ptr<model::Model> model;
  std::shared_ptr<tok::Tokenizer> tok;
  chat::ModelTemplate tmpl;
  std::unique_ptr<runtime::Scheduler> scheduler;
  sample::SamplingParams sampling;   // GGUF defaults with the server's overrides
  double loaded_at = 0, load_seconds = 0;
  int64_t created_unix = 0;
  std::atomic<double> last_used{0};
  double keep_alive = 300;
  bool pinned = false;               // --model: never unloaded
  uint64_t size = 0;
};

class ModelManager {
 public:
  explicit ModelManager(const ServerOptions& opts);
  ~ModelManager();
  // The model a request names (the --model one when the server has one). Throws ApiError 404
  // for unknown names.
  std::shared_ptr<LoadedModel> get(const std::string& name, std::optional<double> keep_alive = std::nullopt);
  // Whether a name refers to the --model the server was started with (its alias, file name or
  // the name given at start, with or without ":latest").
  bool names_pinned(const std::string& name) const;
  bool has_pinned() const { return pinned_ != nullptr; }
  std::vector<std::shared_ptr<LoadedModel>> loaded();
  bool unload(const std::string& name);
  void stop_all();

 private:
  std::shared_ptr<LoadedModel> load(const std::string& name, const std::filesystem::path& path, bool pinned);
  void reaper();
  const ServerOptions& opts_;
  std::mutex mu_, load_mu_;
  std::map<std::string, std::shared_ptr<LoadedModel>> models_;
  std::shared_ptr<LoadedModel> pinned_;
  std::atomic<bool> stopping_{false};
  std::condition_variable cv_;
  std::thread reaper_;
};

struct ServerContext {
  ServerOptions opts;
  std::unique_ptr<ModelManager> models;
  std::atomic<uint64_t> http_requests{0};
  std::atomic<bool> shutting_down{false};
};

// Registers every route and returns the HTTP handler (auth, CORS preflight, errors).
Handler make_router(ServerContext& ctx);

}  // namespace jing::server
