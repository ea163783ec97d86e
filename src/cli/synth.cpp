// `jing synth --arch qwen2 --shape 1.5b --type Q4_K_M OUT.gguf`: a real-shape model with random weights.
#include <fmt/format.h>

#include <fstream>
#include <iterator>
#include <map>

#include "cli/command.h"
#include "gguf/gguf.h"
#include "gguf/summary.h"
#include "gguf/writer.h"
#include "quant/types.h"
#include "model/synth.h"

namespace jing::cli {
namespace {

Registrar reg([](CLI::App& app) {
  struct Opts {
    std::string arch, shape, type = "Q4_K_M", out, vocab, chat_template;
    int layers = 0, split = 1;
    bool dry_run = false;
    uint64_t seed = 42;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("synth", "Write a model of a real shape with random weights (for speed measurements)");
  cmd->add_option("--arch", o->arch, "qwen2, llama, qwen3 or deepseek2")->required()->check(CLI::IsMember({"qwen2", "llama", "qwen3", "deepseek2"}));
  cmd->add_option("--shape", o->shape, "1.5b, 7b, 8b, 14b, 32b, 70b, 671b, or CONFIG.json")->required();
  cmd->add_option("--type", o->type, "Quantization mix (Q4_K_M, Q8_0, F16, UD-IQ1_S, or one type: IQ2_XXS, ...)");
  cmd->add_option("--split", o->split, "Write N parts named like published splits (OUT-00001-of-0000N.gguf)")->check(CLI::Range(1, 999));
  cmd->add_flag("--dry-run", o->dry_run, "Print the size per tensor type and write nothing");
  cmd->add_option("--vocab", o->vocab, "Copy the tokenizer of this GGUF (the vocabulary size follows it)");
  cmd->add_option("--template", o->chat_template, "Chat template (a Jinja file) stored as tokenizer.chat_template, over --vocab's")
      ->check(CLI::ExistingFile);
  cmd->add_option("--layers", o->layers, "Fewer layers than the shape has");
  cmd->add_option("--seed", o->seed, "Random seed");
  cmd->add_option("output", o->out, "GGUF to write")->required();
  cmd->callback([o] {
    auto shape = model::synth_shape(o->arch, o->shape);
    model::SynthOptions so;
    so.mix = o->type;
    so.seed = o->seed;
    if (!o->vocab.empty()) so.vocab = o->vocab;
    if (!o->chat_template.empty()) {
      std::ifstream in(o->chat_template, std::ios::binary);
      so.chat_template = std::string(std::istreambuf_iterator<char>(in), {});
      if (!in && !in.eof()) throw Error("cannot read " + o->chat_template);
    }
    if (o->layers > 0) so.layers = o->layers;
    so.split = o->split;
    so.dry_run = o->dry_run;
    std::vector<model::SynthTensor> plan;
    so.plan = &plan;
    model::write_synth(shape, so, o->out);
    if (o->dry_run) {
      std::map<std::string, std::pair<uint64_t, uint64_t>> by_type;  // type -> tensors, bytes
      uint64_t total = 0;
      for (const auto& t : plan) {
        const uint64_t b = gguf::TensorSpec{t.name, t.type, t.shape}.nbytes();
        auto& e = by_type[std::string(traits(t.type).name)];
        e.first++, e.second += b, total += b;
      }
      for (const auto& [type, e] : by_type) fmt::print("{:>8} {:>5} tensors {:>12}\n", type, e.first, gguf::format_bytes(e.second));
      fmt::print("total {} in {} tensors ({:.1f} GB), nothing written\n", gguf::format_bytes(total), plan.size(), static_cast<double>(total) / 1e9);
      return;
    }
    if (o->split > 1) {
      fmt::print("wrote {} parts of {}\n", o->split, o->out);
      return;
    }
    auto s = gguf::summarize(gguf::File::open(o->out));
    fmt::print("wrote {}: {} {} parameters, {} ({})\n", o->out, s.architecture, gguf::format_parameters(s.parameters), gguf::format_bytes(s.file_size),
               s.file_type);
  });
});

}  // namespace
}  // namespace jing::cli
