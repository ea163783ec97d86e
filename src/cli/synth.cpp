// `jing synth --arch qwen2 --shape 1.5b --type Q4_K_M OUT.gguf`: a real-shape model with random weights.
#include <fmt/format.h>

#include "cli/command.h"
#include "gguf/gguf.h"
#include "gguf/summary.h"
#include "model/synth.h"

namespace jing::cli {
namespace {

Registrar reg([](CLI::App& app) {
  struct Opts {
    std::string arch, shape, type = "Q4_K_M", out, vocab;
    int layers = 0;
    uint64_t seed = 42;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("synth", "Write a model of a real shape with random weights (for speed measurements)");
  cmd->add_option("--arch", o->arch, "qwen2, llama, qwen3 or deepseek2")->required()->check(CLI::IsMember({"qwen2", "llama", "qwen3", "deepseek2"}));
  cmd->add_option("--shape", o->shape, "1.5b, 7b, 8b, 14b, 32b, 70b, 671b, or CONFIG.json")->required();
  cmd->add_option("--type", o->type, "Quantization mix (Q4_K_M, Q8_0, F16, ...)");
  cmd->add_option("--vocab", o->vocab, "Copy the tokenizer of this GGUF (the vocabulary size follows it)");
  cmd->add_option("--layers", o->layers, "Fewer layers than the shape has");
  cmd->add_option("--seed", o->seed, "Random seed");
  cmd->add_option("output", o->out, "GGUF to write")->required();
  cmd->callback([o] {
    auto shape = model::synth_shape(o->arch, o->shape);
    model::SynthOptions so;
    so.mix = o->type;
    so.seed = o->seed;
    if (!o->vocab.empty()) so.vocab = o->vocab;
    if (o->layers > 0) so.layers = o->layers;
    model::write_synth(shape, so, o->out);
    auto s = gguf::summarize(gguf::File::open(o->out));
    fmt::print("wrote {}: {} {} parameters, {} ({})\n", o->out, s.architecture, gguf::format_parameters(s.parameters), gguf::format_bytes(s.file_size),
               s.file_type);
  });
});

}  // namespace
}  // namespace jing::cli
