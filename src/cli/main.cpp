#include <malloc.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "cli/command.h"
#include "common/error.h"

namespace jing::cli {

static std::vector<Setup>& registry() {
  static std::vector<Setup> setups;
  return setups;
}

Registrar::Registrar(Setup setup) { registry().push_back(std::move(setup)); }

}  // namespace jing::cli

// llama.cpp spells some options with one dash and several letters (-ngl 40); CLI11 reads "-ngl"
// as -n -g -l, so they are rewritten to their long names first.
static std::vector<std::string> rewrite_llama_flags(int argc, char** argv) {
  static const std::pair<const char*, const char*> kAliases[] = {
      {"-hf", "--hf"},           {"-ngl", "--n-gpu-layers"}, {"-np", "--parallel"},      {"-ctk", "--cache-type-k"},
      {"-ctv", "--cache-type-v"}, {"-ub", "--ubatch-size"},  {"-fa", "--flash-attn"},    {"-ot", "--override-tensor"},
      {"-cb", "--cont-batching"}, {"-nkvo", "--no-kv-offload"}, {"-sm", "--split-mode"}, {"-ts", "--tensor-split"},
      {"-mg", "--main-gpu"},     {"-tb", "--threads-batch"}, {"-dev", "--device"},
      {"-to", "--timeout"}};
  std::vector<std::string> out;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    for (const auto& [from, to] : kAliases)
      if (a == from) a = to;
    out.push_back(a);
  }
  return out;
}

int main(int argc, char** argv) {
  // A forward pass allocates and frees buffers of a few hundred KiB (activations, logits, cache
  // rows). glibc would give each its own mmap and unmap it on free, and every munmap stops the
  // other cores to flush their TLBs: a 32-sequence decode step spent 70% of its time there. Keep
  // such blocks in the heap instead.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  auto args = rewrite_llama_flags(argc, argv);
  std::vector<char*> ptrs;
  for (auto& a : args) ptrs.push_back(a.data());
  argc = static_cast<int>(ptrs.size());
  argv = ptrs.data();
  CLI::App app{"jing: run DeepSeek-R1 and its distills locally"};
  app.name("jing");
  app.require_subcommand(1);
  for (const auto& setup : jing::cli::registry()) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const jing::cli::ExitCode& e) {
    return e.code;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
