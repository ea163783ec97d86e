// `jing bench MODEL -p 512 -n 128`: prompt (pp) and generation (tg) speed like llama-bench.
#include <chrono>
#include <cmath>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/error.h"
#include "cpu/matmul.h"
#include "gguf/summary.h"
#include "model/model.h"
#include "store/resolve.h"

namespace jing::cli {
namespace {

struct Result {
  std::string test;
  int n_prompt = 0, n_gen = 0;
  std::vector<double> seconds;
};

Registrar reg([](CLI::App& app) {
  struct Opts {
    std::string model, output = "md";
    std::vector<int> prompt{512}, gen{128};
    int threads = 0, reps = 5, batch = 512, parallel = 1;
    GpuFlags gpu;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("bench", "Measure prompt processing (pp) and generation (tg) tokens/s");
  cmd->add_option("model", o->model, "GGUF file or model name")->required();
  cmd->add_option("-p,--n-prompt", o->prompt, "Prompt lengths (0 skips)")->delimiter(',');
  cmd->add_option("-n,--n-gen", o->gen, "Generation lengths (0 skips)")->delimiter(',');
  cmd->add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  cmd->add_option("-r,--repetitions", o->reps, "Repetitions")->check(CLI::Range(1, 1000));
  cmd->add_option("-b,--batch-size", o->batch, "Prompt batch size");
  cmd->add_option("--n-parallel,--np", o->parallel,
                  "Sequences generating together (one token of each per step, each with its logits): tg reports their aggregate t/s, "
                  "what a server's batch of that many streams can reach")
      ->check(CLI::Range(1, 256));
  add_gpu_flags(cmd, o->gpu);
  cmd->add_option("-o,--output", o->output, "md or json")->check(CLI::IsMember({"md", "json"}));
  cmd->callback([o] {
    auto path = store::resolve_model(o->model);
    const int threads = o->threads > 0 ? o->threads : cpu::default_threads();
    int max_ctx = 16;
    for (int p : o->prompt) max_ctx = std::max(max_ctx, p + 1);
    for (int g : o->gen) max_ctx = std::max(max_ctx, g + 2);
    model::ModelOptions mo;
    mo.n_ctx = max_ctx;
    mo.n_seq = o->parallel;
    mo.n_threads = threads;
    mo.n_batch = o->batch;
    apply_gpu_flags(o->gpu, mo);
    auto m = model::Model::load(path, mo);
    const std::string backend = m->backend_name();
    std::mt19937 rng(1);
    auto token = [&] { return static_cast<int32_t>(rng() % static_cast<uint32_t>(m->n_vocab())); };
    std::vector<Result> results;
    auto run_pp = [&](int n) {
      m->kv_clear(0);
      model::Batch b;
      for (int i = 0; i < n; i += o->batch) {
        b.clear();
        for (int k = i; k < std::min(n, i + o->batch); ++k) b.add(token(), k, 0, k == n - 1);
        m->forward(b);
      }
    };
    auto run_tg = [&](int n) {
      for (int s = 0; s < o->parallel; ++s) m->kv_clear(s);
      for (int i = 0; i < n; ++i) {
        model::Batch b;
        for (int s = 0; s < o->parallel; ++s) b.add(token(), i, s, true);
        m->forward(b);
      }
    };
    using clock = std::chrono::steady_clock;
    for (int p : o->prompt) {
      if (p <= 0) continue;
      Result r{"pp" + std::to_string(p), p, 0, {}};
      run_pp(p);  // warm-up, as llama-bench does (first use of a size allocates and tunes)
      for (int k = 0; k < o->reps; ++k) {
        auto t0 = clock::now();
        run_pp(p);
        r.seconds.push_back(std::chrono::duration<double>(clock::now() - t0).count());
      }
      results.push_back(r);
    }
    for (int g : o->gen) {
      if (g <= 0) continue;
      Result r{"tg" + std::to_string(g) + (o->parallel > 1 ? " x" + std::to_string(o->parallel) : ""), 0, g * o->parallel, {}};
      run_tg(2);
      for (int k = 0; k < o->reps; ++k) {
        auto t0 = clock::now();
        run_tg(g);
        r.seconds.push_back(std::chrono::duration<double>(clock::now() - t0).count());
      }
      results.push_back(r);
    }
    auto s = gguf::summarize(m->file());
    const std::string type = s.architecture + " " + gguf::format_parameters(s.parameters) + " " + (s.file_type.empty() ? s.dominant_type : s.file_type);
    auto stats = [](const Result& r) {
      std::vector<double> ts;
      for (double sec : r.seconds) ts.push_back((r.n_prompt + r.n_gen) / sec);
      double mean = 0, var = 0;
      for (double x : ts) mean += x;
      mean /= ts.size();
      for (double x : ts) var += (x - mean) * (x - mean);
      return std::make_tuple(ts, mean, ts.size() > 1 ? std::sqrt(var / (ts.size() - 1)) : 0.0);
    };
    if (o->output == "json") {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& r : results) {
        auto [ts, mean, sd] = stats(r);
        double ns_mean = 0;
        for (double sec : r.seconds) ns_mean += sec * 1e9;
        ns_mean /= r.seconds.size();
        arr.push_back({{"build_commit", "jing"}, {"model_filename", path.string()}, {"model_type", type}, {"model_size", s.file_size},
                       {"model_n_params", s.parameters}, {"backends", backend}, {"n_gpu_layers", m->n_gpu_layers()}, {"n_threads", threads}, {"n_batch", o->batch},
                       {"type_k", "f16"}, {"type_v", "f16"}, {"n_prompt", r.n_prompt}, {"n_gen", r.n_gen}, {"avg_ns", ns_mean},
                       {"avg_ts", mean}, {"stddev_ts", sd}, {"samples_ts", ts}});
      }
      fmt::print("{}\n", arr.dump(2));
      return;
    }
    fmt::print("| {:<32} | {:>10} | {:>8} | {:<7} | {:>7} | {:>14} | {:>20} |\n", "model", "size", "params", "backend", m->backend_name() == "CPU" ? "threads" : "ngl", "test", "t/s");
    fmt::print("| {:-<32} | {:->10} | {:->8} | {:-<7} | {:->7} | {:->14} | {:->20} |\n", "", "", "", "", "", "", "");
    for (const auto& r : results) {
      auto [ts, mean, sd] = stats(r);
      fmt::print("| {:<32} | {:>10} | {:>8} | {:<7} | {:>7} | {:>14} | {:>20} |\n", type, gguf::format_bytes(s.file_size),
                 gguf::format_parameters(s.parameters), backend, backend == "CPU" ? threads : m->n_gpu_layers(), r.test, fmt::format("{:.2f} ± {:.2f}", mean, sd));
    }
  });
});

}  // namespace
}  // namespace jing::cli
