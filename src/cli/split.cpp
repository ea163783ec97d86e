// `jing split IN.gguf OUT_PREFIX --parts N`: writes a model as N split files (like gguf-split).
#include <fmt/format.h>

#include "cli/command.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"

namespace jing::cli {
namespace {

Registrar reg([](CLI::App& app) {
  struct Opts {
    std::string in, prefix;
    int parts = 2;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("split", "Write a GGUF as split files PREFIX-0000N-of-0000M.gguf");
  cmd->add_option("input", o->in, "GGUF to split")->required();
  cmd->add_option("prefix", o->prefix, "Output path prefix")->required();
  cmd->add_option("--parts", o->parts, "Number of parts")->check(CLI::Range(1, 99999));
  cmd->callback([o] {
    auto f = gguf::File::open(o->in);
    for (const auto& p : gguf::write_split(f, o->prefix, o->parts)) fmt::print("{}\n", p.string());
  });
});

}  // namespace
}  // namespace jing::cli
