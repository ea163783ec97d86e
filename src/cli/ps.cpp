// `jing ps`: models a running `jing serve` holds in memory (asks its /api/ps, like `ollama ps`).
#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/error.h"
#include "gguf/summary.h"
#include "store/http.h"

namespace jing::cli {
namespace {

Registrar reg([](CLI::App& app) {
  auto* cmd = app.add_subcommand("ps", "List the models a running `jing serve` has loaded (JING_HOST, default 127.0.0.1:11434)");
  cmd->callback([] {
    const char* env = std::getenv("JING_HOST");
    std::string host = env && *env ? env : "127.0.0.1:11434";
    if (host.rfind("http", 0) != 0) host = "http://" + host;
    store::HttpResponse r;
    try {
      r = store::http_get(host + "/api/ps", {});
    } catch (const Error&) {
      throw Error("could not connect to a running jing serve at " + host);
    }
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (r.status != 200 || !j.is_object()) throw Error("unexpected reply from " + host + " (HTTP " + std::to_string(r.status) + ")");
    fmt::print("{:<40} {:>12} {:<10} {}\n", "NAME", "SIZE", "PROCESSOR", "UNTIL");
    for (const auto& m : j.value("models", nlohmann::json::array())) {
      // Ollama's PROCESSOR column: the share of the model in GPU memory.
      const auto size = m.value("size", uint64_t{0}), vram = m.value("size_vram", uint64_t{0});
      const int gpu = size ? static_cast<int>(std::min<uint64_t>(100, (vram * 100 + size / 2) / size)) : 0;
      const std::string where = gpu == 0 ? "100% CPU" : gpu == 100 ? "100% GPU" : fmt::format("{}%/{}% CPU/GPU", 100 - gpu, gpu);
      fmt::print("{:<40} {:>12} {:<10} {}\n", m.value("name", ""), gguf::format_bytes(size), where, m.value("expires_at", ""));
      // Several GPUs: each one's share on its own line.
      const auto gpus = m.value("gpus", nlohmann::json::array());
      if (gpus.size() > 1)
        for (const auto& g : gpus)
          fmt::print("{:<40} {:>12} {}\n", "", gguf::format_bytes(g.value("size_vram", uint64_t{0})), g.value("name", ""));
    }
  });
});

}  // namespace
}  // namespace jing::cli
