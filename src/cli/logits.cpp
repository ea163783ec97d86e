// `jing logits MODEL --ids 1,2,3 --out FILE.f32`: the logits of every position, raw float32.
#include <cstdio>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cli/command.h"
#include "common/error.h"
#include "model/model.h"
#include "store/resolve.h"

namespace jing::cli {
namespace {

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::string tok;
  std::stringstream ss(s);
  while (std::getline(ss, tok, ',')) {
    size_t used = 0;
    try {
      ids.push_back(std::stoi(tok, &used));
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != tok.size()) throw Error("--ids: '" + tok + "' is not a token id");
  }
  return ids;
}

Registrar reg([](CLI::App& app) {
  struct Opts {
    std::string model, ids, out;
    int threads = 0;
    GpuFlags gpu;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("logits", "Write the logits of every position of a token sequence as raw float32");
  cmd->add_option("model", o->model, "GGUF file or model name")->required();
  cmd->add_option("--ids", o->ids, "Comma-separated token ids")->required();
  cmd->add_option("--out", o->out, "Output file ([n_tokens][n_vocab] little-endian float32)")->required();
  cmd->add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  add_gpu_flags(cmd, o->gpu);
  cmd->callback([o] {
    auto ids = parse_ids(o->ids);
    if (ids.empty()) throw Error("--ids is empty");
    model::ModelOptions mo;
    mo.n_ctx = static_cast<int>(ids.size());
    mo.n_threads = o->threads;
    apply_gpu_flags(o->gpu, mo);
    auto m = model::Model::load(store::resolve_model(o->model), mo);
    model::Batch b;
    for (size_t i = 0; i < ids.size(); ++i) b.add(ids[i], static_cast<int32_t>(i), 0, true);
    auto logits = m->forward(b);
    std::ofstream out(o->out, std::ios::binary);
    out.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
    if (!out) throw Error("cannot write " + o->out);
    fmt::print(stderr, "wrote {} x {} logits to {}\n", ids.size(), m->n_vocab(), o->out);
  });
});

}  // namespace
}  // namespace jing::cli
