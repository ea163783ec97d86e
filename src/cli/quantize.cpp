// `jing quantize IN.gguf OUT.gguf TYPE [--tensor-type REGEX=TYPE]`: llama-quantize's mixes,
// streaming tensor by tensor (and row block by row block), on every core.
#include <omp.h>

#include <fstream>

#include <fmt/format.h>

#include "cli/command.h"
#include "common/error.h"
#include "cpu/matmul.h"
#include "gguf/summary.h"
#include "gguf/writer.h"
#include "quant/dequant.h"
#include "quant/mix.h"
#include "quant/quantize.h"

namespace jing::cli {
namespace {

// An imatrix as a GGUF (llama-imatrix's format: "<tensor>.in_sum2" and ".counts"), giving one
// importance weight per input column of each tensor.
std::map<std::string, std::vector<float>> load_imatrix(const std::string& path) {
  std::map<std::string, std::vector<float>> out;
  auto f = gguf::File::open(path);
  for (const auto& t : f.tensors()) {
    const std::string suffix = ".in_sum2";
    if (t.name.size() <= suffix.size() || t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    std::string name = t.name.substr(0, t.name.size() - suffix.size());
    std::vector<float> v(static_cast<size_t>(t.n_elements()));
    dequantize_row(t.type, t.data, v.data(), t.n_elements());
    if (const auto* c = f.find_tensor(name + ".counts")) {
      std::vector<float> counts(static_cast<size_t>(c->n_elements()));
      dequantize_row(c->type, c->data, counts.data(), c->n_elements());
      if (!counts.empty() && counts[0] > 0)
        for (auto& x : v) x /= counts[0];
    }
    out[name] = std::move(v);
  }
  if (out.empty()) throw Error(path + " holds no importance matrix (<tensor>.in_sum2 entries)");
  return out;
}

Registrar reg([](CLI::App& app) {
  struct Opts {
    std::string in, out, type, imatrix;
    std::vector<std::string> overrides;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("quantize", "Quantize a GGUF with one of llama-quantize's mixes (Q4_K_M, Q8_0, ...)");
  cmd->add_option("input", o->in, "Source GGUF")->required();
  cmd->add_option("output", o->out, "Quantized GGUF to write")->required();
  cmd->add_option("type", o->type, "Mix: Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, Q4_K_S, Q3_K_M, Q3_K_S, Q2_K, Q5_0, Q4_0, IQ4_XS, IQ4_NL, F16, BF16")->required();
  cmd->add_option("--tensor-type", o->overrides, "Override: REGEX=TYPE (first match wins); may repeat");
  cmd->add_option("--imatrix", o->imatrix, "Importance matrix GGUF (from llama-imatrix)");
  cmd->add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  cmd->callback([o] {
    const Mix mix = mix_from_name(o->type);
    std::vector<TensorTypeOverride> overrides;
    for (const auto& s : o->overrides) overrides.push_back(parse_override(s));
    auto imatrix = o->imatrix.empty() ? std::map<std::string, std::vector<float>>{} : load_imatrix(o->imatrix);
    auto src = gguf::File::open(o->in);
    const int n_layer = static_cast<int>(src.arch_int("block_count").value_or(0));
    gguf::Writer w;
    w.copy_metadata(src);
    w.set("general.file_type", gguf::Value::u32(static_cast<uint32_t>(mix.file_type)));
    w.set("general.quantization_version", gguf::Value::u32(2));
    std::vector<GgmlType> types;
    for (const auto& t : src.tensors()) {
      GgmlType type = choose_type(mix, t, n_layer, overrides);
      if (!can_quantize(type) && type != t.type) throw Error("no quantizer for " + std::string(traits(type).name) + " (tensor " + t.name + ")");
      if (!can_dequantize(t.type)) throw Error("cannot read tensor " + t.name + " of type " + std::string(traits(t.type).name));
      types.push_back(type);
      w.add_tensor({t.name, type, std::vector<int64_t>(t.ne, t.ne + t.n_dims)});
    }
    w.begin(o->out);
    const int threads = o->threads > 0 ? o->threads : cpu::default_threads();
    uint64_t in_bytes = 0, out_bytes = 0;
    for (size_t i = 0; i < src.tensors().size(); ++i) {
      const auto& t = src.tensors()[i];
      const GgmlType type = types[i];
      in_bytes += t.nbytes;
      if (type == t.type) {  // already right: copied as is
        w.write_tensor_part(t.data, t.nbytes);
        out_bytes += t.nbytes;
        continue;
      }
      const int64_t cols = t.ne[0], rows = t.n_rows();
      const float* im = nullptr;
      if (auto it = imatrix.find(t.name); it != imatrix.end() && static_cast<int64_t>(it->second.size()) == cols) im = it->second.data();
      const size_t in_row = t.row_bytes(), out_row = row_size(type, cols);
      // Row blocks of about 16 MiB of floats: memory stays bounded whatever the tensor's size.
      const int64_t chunk = std::max<int64_t>(1, (int64_t{4} << 20) / cols);
      std::vector<uint8_t> qbuf;
      for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t nr = std::min(chunk, rows - r0);
        qbuf.resize(static_cast<size_t>(nr) * out_row);
#pragma omp parallel num_threads(threads)
        {
          std::vector<float> f(static_cast<size_t>(cols));
#pragma omp for schedule(dynamic, 4)
          for (int64_t r = 0; r < nr; ++r) {
            dequantize_row(t.type, t.data + static_cast<size_t>(r0 + r) * in_row, f.data(), cols);
            quantize_rows(type, f.data(), qbuf.data() + static_cast<size_t>(r) * out_row, 1, cols, im);
          }
        }
        w.write_tensor_part(qbuf.data(), qbuf.size());
      }
      out_bytes += static_cast<uint64_t>(rows) * out_row;
      fmt::print(stderr, "[{:>4}/{}] {:<40} {:>8} -> {:<8}\n", i + 1, src.tensors().size(), t.name, traits(t.type).name, traits(type).name);
    }
    w.finish();
    fmt::print("quantized {} ({}) to {} ({}) as {}\n", o->in, gguf::format_bytes(in_bytes), o->out, gguf::format_bytes(out_bytes), mix.name);
  });
});

}  // namespace
}  // namespace jing::cli
