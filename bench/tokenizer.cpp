// Tokenizer throughput (MB/s of mixed English/Chinese/code text, one thread).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace {

std::string corpus() {
  const char* dir = std::getenv("JING_FIXTURES");
  std::string base = dir ? dir : "../shared/fixtures";
  std::ifstream in(base + "/models/corpus-eval.txt");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  text += "\nint main(int argc, char** argv) { for (int i = 0; i < argc; ++i) printf(\"%s\\n\", argv[i]); return 0; }\n";
  std::string out;
  while (out.size() < (4u << 20) && !text.empty()) out += text;
  return out;
}

void encode(benchmark::State& st, const char* vocab) {
  const char* dir = std::getenv("JING_FIXTURES");
  std::string base = dir ? dir : "../shared/fixtures";
  jing::gguf::File f = jing::gguf::File::open(base + "/tokenizer/" + vocab);
  auto tok = jing::tok::Tokenizer::from_gguf(f);
  static const std::string text = corpus();
  size_t tokens = 0;
  for (auto _ : st) tokens += tok->encode(text, false, false).size();
  st.counters["MB/s"] = benchmark::Counter(static_cast<double>(text.size()) * st.iterations() / 1e6, benchmark::Counter::kIsRate);
  st.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK_CAPTURE(encode, qwen, "qwen3-vocab.gguf")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(encode, deepseek_v3, "deepseek_v3-vocab.gguf")->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
