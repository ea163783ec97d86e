// `jing perplexity MODEL FILE.txt [-c 128] [--max-tokens N]`.
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cli/command.h"
#include "common/error.h"
#include "common/file.h"
#include "model/model.h"
#include "runtime/perplexity.h"
#include "store/resolve.h"
#include "tokenizer/tokenizer.h"

namespace jing::cli {
namespace {

Registrar reg([](CLI::App& app) {
  struct Opts {
    std::string model, file;
    int window = 512, max_tokens = 0, threads = 0;
    GpuFlags gpu;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("perplexity", "Perplexity of a model over a text file (non-overlapping windows)");
  cmd->add_option("model", o->model, "GGUF file or model name")->required();
  cmd->add_option("file", o->file, "Text file")->required();
  cmd->add_option("-c,--ctx-size", o->window, "Window size in tokens")->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--max-tokens", o->max_tokens, "Use only the first N tokens of the text");
  cmd->add_option("-t,--threads", o->threads, "Threads");
  add_gpu_flags(cmd, o->gpu);
  cmd->callback([o] {
    model::ModelOptions mo;
    mo.n_ctx = o->window;
    mo.n_threads = o->threads;
    mo.n_batch = o->window;
    apply_gpu_flags(o->gpu, mo);
    auto m = model::Model::load(store::resolve_model(o->model), mo);
    auto tok = tok::Tokenizer::from_gguf(m->file());
    auto ids = tok->encode(read_text_file(o->file), false, false);
    if (o->max_tokens > 0 && static_cast<int>(ids.size()) > o->max_tokens) ids.resize(static_cast<size_t>(o->max_tokens));
    auto r = runtime::perplexity(*m, ids, o->window, [](int w, double p) { fmt::print(stderr, "[{}] {:.4f}\n", w, p); });
    fmt::print("perplexity: {:.4f} over {} tokens in {} windows of {}\n", r.ppl, r.scored, r.windows, o->window);
  });
});

}  // namespace
}  // namespace jing::cli
