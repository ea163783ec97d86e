// The model store commands: pull, list, rm, cp (like ollama's).
#include <csignal>
#include <ctime>

#include <fmt/format.h>

#include "cli/command.h"
#include "common/error.h"
#include "gguf/summary.h"
#include "store/download.h"
#include "store/pull.h"
#include "store/store.h"

namespace jing::cli {
namespace {

std::string ago(int64_t t) {
  int64_t d = std::time(nullptr) - t;
  if (d < 60) return "Less than a minute ago";
  if (d < 3600) return fmt::format("{} minute{} ago", d / 60, d / 60 == 1 ? "" : "s");
  if (d < 86400) return fmt::format("{} hour{} ago", d / 3600, d / 3600 == 1 ? "" : "s");
  return fmt::format("{} day{} ago", d / 86400, d / 86400 == 1 ? "" : "s");
}

Registrar pull_cmd([](CLI::App& app) {
  auto name = std::make_shared<std::string>();
  auto connections = std::make_shared<int>(4);
  auto* cmd = app.add_subcommand("pull", "Download a model: NAME[:TAG], hf.co/OWNER/REPO[:QUANT] or hf.co/OWNER/REPO/FILE.gguf");
  cmd->add_option("model", *name, "Model name")->required();
  cmd->add_option("--connections", *connections, "Parallel connections for large files")->check(CLI::Range(1, 16));
  cmd->callback([name, connections] {
    // Ctrl-C stops the transfer and keeps the partial file for a resume.
    std::signal(SIGINT, [](int) { store::download_cancel_flag() = true; });
    auto ref = store::parse_model_ref(*name);
    auto st = store::Store::open_default();
    store::PullOptions opts;
    opts.connections = *connections;
    auto e = store::pull(st, ref, store::Hub(store::HubConfig::from_env()), opts);
    fmt::print("{} ({}) ready: {}\n", e.name, gguf::format_bytes(e.size), e.model_path().string());
  });
});

Registrar list_cmd([](CLI::App& app) {
  auto* cmd = app.add_subcommand("list", "List the models in the store")->alias("ls");
  cmd->callback([] {
    auto entries = store::Store::open_default().list();
    fmt::print("{:<56} {:>12} {:<10} {}\n", "NAME", "SIZE", "QUANT", "MODIFIED");
    for (const auto& e : entries) fmt::print("{:<56} {:>12} {:<10} {}\n", e.name, gguf::format_bytes(e.size), e.quant, ago(e.modified));
  });
});

Registrar rm_cmd([](CLI::App& app) {
  auto names = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand("rm", "Remove models from the store");
  cmd->add_option("model", *names, "Model names")->required();
  cmd->callback([names] {
    auto st = store::Store::open_default();
    for (const auto& n : *names) {
      auto ref = store::parse_model_ref(n);
      st.remove(ref);
      fmt::print("deleted '{}'\n", ref.display());
    }
  });
});

Registrar cp_cmd([](CLI::App& app) {
  auto src = std::make_shared<std::string>(), dst = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("cp", "Copy a model to a new name");
  cmd->add_option("source", *src, "Existing model")->required();
  cmd->add_option("destination", *dst, "New name (NAME[:TAG])")->required();
  cmd->callback([src, dst] {
    auto st = store::Store::open_default();
    auto e = st.copy(store::parse_model_ref(*src), store::parse_model_ref(*dst));
    fmt::print("copied '{}' to '{}'\n", store::parse_model_ref(*src).display(), e.name);
  });
});

}  // namespace
}  // namespace jing::cli
