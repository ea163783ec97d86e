#include "store/pull.h"

#include <sys/statvfs.h>

#include "common/error.h"
#include "gguf/summary.h"
#include "store/download.h"
#include "store/progress.h"

namespace jing::store {

namespace fs = std::filesystem;

namespace {

uint64_t free_bytes(const fs::path& dir) {
  struct statvfs s {};
  if (statvfs(dir.c_str(), &s) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
}

std::string basename_of(const std::string& path) { return path.substr(path.rfind('/') + 1); }

}  // namespace

Entry pull(Store& store, const ModelRef& ref, const Hub& hub, const PullOptions& opts) {
  auto emit = [&](PullEvent e) {
    if (opts.on_event) opts.on_event(e);
  };
  ModelRef source = ref;
  if (ref.kind == ModelRef::Kind::Library) {
    auto target = library_target(ref);
    if (!target) throw Error("model '" + ref.display() + "' not found: not in the store and not a known model name");
    source = *target;
  }

  fs::create_directories(store.root());
  FileLock lock(store.lock_path(ref));  // a concurrent pull of the same model waits here, then finds it installed
  if (auto existing = store.find(ref)) {
    emit({"success", "", existing->size, existing->size});
    return *existing;
  }

  emit({"pulling manifest", "", 0, 0});
  auto files = hub.list_files(source.owner, source.repo);
  std::vector<RemoteFile> chosen;
  if (source.kind == ModelRef::Kind::HfFile) {
    for (const auto& f : files)
      if (f.path == source.file) chosen.push_back(f);
    if (chosen.empty()) throw Error("file '" + source.file + "' not found in hf.co/" + source.owner + "/" + source.repo);
    // Naming one part of a split model pulls every part.
    std::string base = basename_of(source.file);
    if (auto s = gguf::parse_split_name(base)) {
      std::string dir = source.file.substr(0, source.file.size() - base.size());
      chosen.clear();
      for (int i = 0; i < s->count; ++i) {
        std::string want = dir + gguf::split_path(s->prefix, i, s->count);
        bool found = false;
        for (const auto& f : files)
          if (f.path == want) chosen.push_back(f), found = true;
        if (!found) throw Error("part " + want + " of the split model is missing from the repository");
      }
    }
  } else {
    chosen = choose_files(files, source.quant);
  }

  std::string flat = ref.store_dir().string();
  for (auto& c : flat)
    if (c == '/') c = '+';
  fs::path staging = store.downloads_dir() / flat;
  fs::create_directories(staging);

  std::vector<std::string> headers;
  if (!hub.config().token.empty()) headers.push_back("Authorization: Bearer " + hub.config().token);
  std::vector<DownloadTask> tasks;
  uint64_t total = 0, have = 0;
  for (const auto& f : chosen) {
    DownloadTask t{hub.resolve_url(source.owner, source.repo, f.path), headers, f.size, f.sha256, staging / basename_of(f.path)};
    total += t.size;
    have += bytes_already_downloaded(t);
    tasks.push_back(std::move(t));
  }
  uint64_t need = total - have, avail = free_bytes(staging);
  if (need > avail)
    throw Error("not enough disk space in " + store.root().string() + ": " + ref.display() + " needs " + gguf::format_bytes(need) +
                " more, " + gguf::format_bytes(avail) + " free");

  std::vector<std::string> names;
  nlohmann::json sources = nlohmann::json::array();
  for (const auto& t : tasks) {
    std::string name = t.dest.filename().string();
    uint64_t already = bytes_already_downloaded(t);
    std::optional<ProgressBar> bar;
    if (opts.progress_bars) bar.emplace("pulling " + name, t.size, already);
    download(t, opts.connections, [&](uint64_t done) {
      if (bar) bar->update(done);
      emit({"downloading " + name, name, t.size, done});
    });
    if (bar) bar->finish();
    emit({"verifying sha256 digest", name, t.size, t.size});
    names.push_back(name);
    sources.push_back({{"url", t.url}, {"size", t.size}, {"sha256", t.sha256}});
  }

  nlohmann::json manifest{{"source", {{"endpoint", hub.config().endpoint}, {"repo", source.owner + "/" + source.repo}, {"files", sources}}},
                          {"quant", source.kind == ModelRef::Kind::HfQuant ? source.quant : ""}};
  emit({"writing manifest", "", 0, 0});
  Entry e = store.install(ref, staging, names, manifest);
  std::error_code ec;
  fs::remove_all(staging, ec);
  emit({"success", "", total, total});
  return e;
}

}  // namespace jing::store
