// `jing show MODEL`: what a GGUF holds (architecture, size, quant mix, tokenizer), for people or --json.
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "cli/command.h"
#include "gguf/gguf.h"
#include "gguf/summary.h"
#include "store/resolve.h"

namespace jing::cli {
namespace {

void print_summary(const gguf::ModelSummary& s) {
  auto line = [](const char* key, const std::string& value) { fmt::print("    {:<20}{}\n", key, value); };
  auto num = [&](const char* key, const std::optional<int64_t>& v) {
    if (v) line(key, std::to_string(*v));
  };
  fmt::print("  Model\n");
  line("architecture", s.architecture);
  if (!s.name.empty()) line("name", s.name);
  line("parameters", gguf::format_parameters(s.parameters));
  num("context length", s.context_length);
  num("embedding length", s.embedding_length);
  num("layers", s.block_count);
  num("attention heads", s.head_count);
  num("kv heads", s.head_count_kv);
  num("experts", s.expert_count);
  num("experts used", s.expert_used_count);
  line("quantization", s.file_type.empty() ? s.dominant_type : s.file_type);
  line("file size", gguf::format_bytes(s.file_size) + (s.n_parts > 1 ? fmt::format(" in {} parts", s.n_parts) : ""));
  fmt::print("\n  Tensors ({})\n", s.n_tensors);
  for (const auto& [type, u] : s.types) fmt::print("    {:<20}{:>5} tensors  {:>12}\n", type, u.tensors, gguf::format_bytes(u.bytes));
  fmt::print("\n  Tokenizer\n");
  line("model", s.tokenizer_model.empty() ? "(none)" : s.tokenizer_model);
  if (!s.tokenizer_pre.empty()) line("pre-tokenizer", s.tokenizer_pre);
  num("vocabulary", s.vocab_size);
  line("chat template", s.has_chat_template ? "yes" : "no");
  if (!s.license.empty()) line("license", s.license);
}

void print_tensors(const gguf::File& f, bool json) {
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& t : f.tensors())
      arr.push_back({{"name", t.name}, {"type", traits(t.type).name}, {"shape", std::vector<int64_t>(t.ne, t.ne + t.n_dims)},
                     {"offset", t.offset}, {"bytes", t.nbytes}, {"part", t.part}});
    fmt::print("{}\n", arr.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  for (const auto& t : f.tensors()) {
    std::string shape;
    for (int d = 0; d < t.n_dims; ++d) shape += (d ? " x " : "") + std::to_string(t.ne[d]);
    fmt::print("{:<40} {:<8} {:<24} offset {}{}\n", t.name, traits(t.type).name, shape, t.offset,
               f.n_parts() > 1 ? fmt::format(" (part {})", t.part + 1) : "");
  }
}

Registrar reg([](CLI::App& app) {
  struct Opts {
    std::string model;
    bool json = false, tensors = false, modelfile = false, template_ = false, license = false;
  };
  auto opts = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("show", "Show what a model holds: architecture, size, quantization, tokenizer");
  cmd->add_option("model", opts->model, "GGUF file (any part of a split model) or model name")->required();
  cmd->add_flag("--json", opts->json, "Print JSON for machines");
  cmd->add_flag("--tensors", opts->tensors, "List every tensor: name, type, shape, offset");
  cmd->add_flag("--template", opts->template_, "Print the chat template");
  cmd->add_flag("--license", opts->license, "Print the licence");
  cmd->callback([opts] {
    auto path = store::resolve_model(opts->model);
    gguf::File f = gguf::File::open(path);
    if (opts->tensors) return print_tensors(f, opts->json);
    if (opts->template_) return fmt::print("{}\n", f.get_string("tokenizer.chat_template").value_or(""));
    if (opts->license) return fmt::print("{}\n", f.get_string("general.license").value_or(""));
    auto s = gguf::summarize(f);
    if (opts->json) {
      auto j = s.to_json();
      j["path"] = path.string();
      fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
      print_summary(s);
    }
  });
});

}  // namespace
}  // namespace jing::cli
