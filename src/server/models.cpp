#include "server/context.h"

#include <cstdio>
#include <ctime>

#include "common/error.h"
#include "runtime/memory_plan.h"
#include "runtime/session.h"
#include "store/name.h"
#include "store/resolve.h"
#include "store/store.h"

namespace jing::server {

ModelManager::ModelManager(const ServerOptions& opts) : opts_(opts) {
  if (!opts.model.empty()) {
    auto path = store::resolve_model(opts.model, {.pull_if_missing = true});
    std::string name = !opts.alias.empty() ? opts.alias : path.filename().string();
    pinned_ = load(name, path, true);
  }
  reaper_ = std::thread([this] { reaper(); });
}

ModelManager::~ModelManager() { stop_all(); }

void ModelManager::stop_all() {
  if (stopping_.exchange(true)) return;
  cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
  std::lock_guard lk(mu_);
  for (auto& [_, m] : models_) m->scheduler->stop();
  if (pinned_) pinned_->scheduler->stop();
}

std::shared_ptr<LoadedModel> ModelManager::load(const std::string& name, const std::filesystem::path& path, bool pinned) {
  auto lm = std::make_shared<LoadedModel>();
  const double t0 = runtime::now_seconds();
  lm->name = name;
  lm->path = path;
  lm->model = model::Model::load(path, opts_.model_opts);
  lm->tok = tok::Tokenizer::from_gguf(lm->model->file());
  lm->tmpl = chat::model_template(lm->model->file(), opts_.chat_template);
  lm->tmpl.make();  // fails now on a template that does not parse
  lm->sampling = runtime::default_sampling(lm->model->file());
  opts_.sampling.apply(lm->sampling);
  lm->scheduler = std::make_unique<runtime::Scheduler>(lm->model, lm->tok, opts_.max_queue, opts_.model_opts.n_batch);
  lm->loaded_at = runtime::now_seconds();
  lm->created_unix = static_cast<int64_t>(std::time(nullptr));
  lm->load_seconds = lm->loaded_at - t0;
  lm->last_used = lm->loaded_at;
  lm->keep_alive = opts_.keep_alive_seconds;
  lm->pinned = pinned;
  lm->size = lm->model->file().total_file_size();
  std::fprintf(stderr, "loaded %s (%s) in %.2fs: %d slot(s) of %d tokens, peak RSS %s\n", name.c_str(), path.string().c_str(), lm->load_seconds,
               lm->model->n_seq(), lm->model->n_ctx(), runtime::format_gib(runtime::peak_rss_bytes()).c_str());
  return lm;
}

namespace {

// The store's name for a model: "tiny" and "tiny:latest" are one model, loaded once and listed
// once by /api/ps (Open WebUI matches its entries to /api/tags by this name).
std::string canonical(const std::string& name) {
  try {
    return store::parse_model_ref(name).display();
  } catch (const Error&) {
    return name;  // not a model name: the store lookup answers 404
  }
}

}  // namespace

std::shared_ptr<LoadedModel> ModelManager::get(const std::string& requested, std::optional<double> keep_alive) {
  if (pinned_) {
    pinned_->last_used = runtime::now_seconds();
    return pinned_;  // like llama-server: one model, whatever the request names
  }
  if (requested.empty()) throw ApiError(400, "'model' is required");
  const std::string name = canonical(requested);
  std::shared_ptr<LoadedModel> lm;
  {
    std::lock_guard lk(mu_);
    auto it = models_.find(name);
    if (it != models_.end()) lm = it->second;
  }
  if (!lm) {
    std::lock_guard load_lock(load_mu_);  // one load at a time; a second request for it waits
    {
      std::lock_guard lk(mu_);
      auto it = models_.find(name);
      if (it != models_.end()) lm = it->second;
    }
    if (!lm) {
      // Names resolve through the store only: a client's name is never opened as a path, and
      // the answer for an unknown name says nothing about the filesystem.
      auto path = store::find_stored_model(name);
      if (!path) throw ApiError(404, "model '" + requested + "' not found, try pulling it first", "not_found_error");
      lm = load(name, *path, false);
      std::lock_guard lk(mu_);
      models_[name] = lm;
    }
  }
  lm->last_used = runtime::now_seconds();
  if (keep_alive) lm->keep_alive = *keep_alive;
  return lm;
}

bool ModelManager::names_pinned(const std::string& name) const {
  if (!pinned_) return false;
  auto bare = [](std::string n) {
    if (n.size() > 7 && n.ends_with(":latest")) n.resize(n.size() - 7);
    return n;
  };
  const std::string n = bare(name);
  return n == bare(pinned_->name) || n == pinned_->path.filename().string() || n == bare(opts_.model) ||
         (!opts_.alias.empty() && n == bare(opts_.alias));
}

std::vector<std::shared_ptr<LoadedModel>> ModelManager::loaded() {
  std::lock_guard lk(mu_);
  std::vector<std::shared_ptr<LoadedModel>> out;
  if (pinned_) out.push_back(pinned_);
  for (auto& [_, m] : models_) out.push_back(m);
  return out;
}

bool ModelManager::unload(const std::string& name) {
  std::shared_ptr<LoadedModel> lm;
  {
    std::lock_guard lk(mu_);
    auto it = models_.find(canonical(name));
    if (it == models_.end()) return false;
    lm = it->second;
    models_.erase(it);
  }
  lm->scheduler->stop();
  return true;
}

void ModelManager::reaper() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    cv_.wait_for(lk, std::chrono::seconds(1));
    const double now = runtime::now_seconds();
    for (auto it = models_.begin(); it != models_.end();) {
      auto& m = it->second;
      if (m->scheduler->idle() && now - m->last_used > m->keep_alive && m.use_count() == 1) {
        std::fprintf(stderr, "unloading %s after %.0fs idle\n", m->name.c_str(), now - m->last_used);
        m->scheduler->stop();
        it = models_.erase(it);
      } else {
        ++it;
      }
    }
  }
}

}  // namespace jing::server
