// Random weights in a model's real shape. Rows are drawn from a small pool of random rows
// quantized once per (type, width), so even a 70B-shape file is written at disk speed.
#include "model/synth.h"

#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <cstring>

#include "common/error.h"
#include "gguf/writer.h"
#include "quant/mix.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quantize.h"

namespace jing::model {

SynthShape synth_shape(const std::string& arch, const std::string& shape) {
  if (shape.ends_with(".json")) {
    std::ifstream in(shape);
    if (!in) throw Error("cannot read " + shape);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_object()) throw Error(shape + " is not a JSON object");
    SynthShape s;
    s.arch = arch;
    auto get = [&](const char* k, int& v) { if (j.contains(k)) v = j[k].get<int>(); };
    get("n_embd", s.n_embd), get("n_layer", s.n_layer), get("n_head", s.n_head), get("n_head_kv", s.n_head_kv), get("n_ff", s.n_ff);
    get("n_vocab", s.n_vocab), get("head_dim", s.head_dim), get("n_ctx", s.n_ctx), get("q_lora", s.q_lora), get("kv_lora", s.kv_lora);
    get("rope_dim", s.rope_dim), get("nope", s.nope), get("v_dim", s.v_dim), get("n_expert", s.n_expert), get("n_expert_used", s.n_expert_used);
    get("n_shared", s.n_shared), get("n_ff_exp", s.n_ff_exp), get("n_dense", s.n_dense), get("n_group", s.n_group), get("n_group_used", s.n_group_used);
    if (s.n_embd <= 0 || s.n_layer <= 0 || s.n_head <= 0 || s.n_vocab <= 0) throw Error(shape + ": n_embd, n_layer, n_head and n_vocab are required");
    if (!s.n_head_kv) s.n_head_kv = s.n_head;
    if (!s.head_dim) s.head_dim = s.n_embd / s.n_head;
    return s;
  }
  // The published configs of the models DeepSeek-R1 ships as.
  static const std::map<std::string, SynthShape> shapes = {
      {"qwen2:1.5b", {"qwen2", 1536, 28, 12, 2, 8960, 151936, 128, 131072, 10000.f}},
      {"qwen2:7b", {"qwen2", 3584, 28, 28, 4, 18944, 152064, 128, 131072, 10000.f}},
      {"qwen2:14b", {"qwen2", 5120, 48, 40, 8, 13824, 152064, 128, 131072, 1000000.f}},
      {"qwen2:32b", {"qwen2", 5120, 64, 40, 8, 27648, 152064, 128, 131072, 1000000.f}},
      {"llama:8b", {"llama", 4096, 32, 32, 8, 14336, 128256, 128, 131072, 500000.f}},
      {"llama:70b", {"llama", 8192, 80, 64, 8, 28672, 128256, 128, 131072, 500000.f}},
      {"qwen3:8b", {"qwen3", 4096, 36, 32, 8, 12288, 151936, 128, 131072, 1000000.f}},
      {"deepseek2:671b", {"deepseek2", 7168, 61, 128, 128, 18432, 129280, 192, 163840, 10000.f, 1536, 512, 64, 128, 128, 256, 8, 1, 2048, 3, 8, 4}},
  };
  auto it = shapes.find(arch + ":" + shape);
  if (it == shapes.end()) {
    std::string known;
    for (const auto& [k, _] : shapes) known += (known.empty() ? "" : ", ") + k;
    throw Error("no shape '" + shape + "' for architecture '" + arch + "' (known: " + known + ", or a CONFIG.json)");
  }
  return it->second;
}

namespace {

struct Pool {
  std::vector<uint8_t> rows;
  size_t row_bytes = 0;
  int n = 0;
};


// Formats without a quantizer here (IQ1_S, IQ2_XXS, ..., TQ1_0, MXFP4): random bytes are valid blocks (every
// grid index and sign pattern decodes), with each block's f16 scale set to a small value so the
// weights have a sane magnitude. IQ1_M spreads its scale over the top nibbles of its 4 scale words.
void random_iq_blocks(GgmlType type, std::vector<uint8_t>& rows, int64_t cols, std::mt19937_64& rng) {
  for (auto& b : rows) b = static_cast<uint8_t>(rng());
  const size_t block = traits(type).type_size;
  const float scale = 1.0f / std::sqrt(static_cast<float>(cols)) / 4;
  for (size_t at = 0; at + block <= rows.size(); at += block) {
    const uint16_t h = fp32_to_fp16(scale * (0.5f + static_cast<float>(rng() % 1000) / 1000.0f));
    uint8_t* b = rows.data() + at;
    if (type == GgmlType::IQ1_M) {
      auto* sc = reinterpret_cast<uint16_t*>(reinterpret_cast<blocks::iq1_m*>(b)->scales);
      for (int k = 0; k < 4; ++k) sc[k] = static_cast<uint16_t>((sc[k] & 0x0FFF) | (((h >> (4 * k)) & 0xF) << 12));
    } else if (type == GgmlType::TQ1_0 || type == GgmlType::TQ2_0) {
      std::memcpy(b + block - 2, &h, 2);  // the ternary formats keep d last
    } else if (type == GgmlType::MXFP4) {
      b[0] = static_cast<uint8_t>(120 + rng() % 3);  // E8M0 shared exponent: 2^-7 .. 2^-5
    } else {
      std::memcpy(b, &h, 2);  // the i-quants start with their f16 scale d
    }
  }
}

// One tensor's bytes: norms 1, biases 0, matrices rows drawn from a pool of 64 random quantized
// rows per (type, width) (fast: a 131 GB model is written at disk speed).
void write_random_tensor(gguf::Writer& w, const std::string& name, GgmlType type, const std::vector<int64_t>& shape, std::mt19937_64& rng,
                         std::map<std::pair<GgmlType, int64_t>, Pool>& pools) {
  const int64_t cols = shape[0];
  int64_t rows = 1;
  for (size_t d = 1; d < shape.size(); ++d) rows *= shape[d];
  if (shape.size() == 1) {
    std::vector<float> v(static_cast<size_t>(cols), name.find("norm") != std::string::npos ? 1.0f : 0.0f);
    w.write_tensor_part(v.data(), v.size() * 4);
    return;
  }
  Pool& pool = pools[{type, cols}];
  if (pool.n == 0) {
    pool.n = 64;
    pool.row_bytes = row_size(type, cols);
    pool.rows.resize(pool.row_bytes * static_cast<size_t>(pool.n));
    if (can_quantize(type)) {
      std::normal_distribution<float> nd(0.0f, 1.0f / std::sqrt(static_cast<float>(cols)));
      std::vector<float> f(static_cast<size_t>(cols) * static_cast<size_t>(pool.n));
      for (auto& x : f) x = nd(rng);
      quantize_rows(type, f.data(), pool.rows.data(), pool.n, cols);
    } else {
      random_iq_blocks(type, pool.rows, cols, rng);
    }
  }
  std::vector<uint8_t> buf;
  const int64_t chunk = std::max<int64_t>(1, (int64_t{16} << 20) / static_cast<int64_t>(pool.row_bytes));
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t nr = std::min(chunk, rows - r0);
    buf.resize(static_cast<size_t>(nr) * pool.row_bytes);
    for (int64_t r = 0; r < nr; ++r)
      std::memcpy(buf.data() + static_cast<size_t>(r) * pool.row_bytes, pool.rows.data() + (rng() % pool.n) * pool.row_bytes, pool.row_bytes);
    w.write_tensor_part(buf.data(), buf.size());
  }
}

}  // namespace

void write_synth(const SynthShape& s0, const SynthOptions& opts, const std::filesystem::path& out) {
  SynthShape s = s0;
  if (opts.layers) {
    if (*opts.layers < 1 || *opts.layers > s.n_layer) throw Error("--layers must be between 1 and " + std::to_string(s.n_layer));
    s.n_layer = *opts.layers;
    s.n_dense = std::min(s.n_dense, s.n_layer);
  }
  gguf::Writer w;  // the metadata (and, with one part, the whole file)
  std::optional<gguf::File> vocab_file;
  if (opts.vocab) {
    vocab_file.emplace(gguf::File::open(*opts.vocab));
    for (const auto& kv : vocab_file->metadata())
      if (kv.key.rfind("tokenizer.", 0) == 0) w.set(kv.key, kv.value);
    if (const auto* t = vocab_file->get_array("tokenizer.ggml.tokens")) s.n_vocab = static_cast<int>(t->items.size());
  } else {
    // A byte-level vocabulary: the 256 byte tokens, then placeholders up to n_vocab.
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      static int next = 256;
      uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(next++);
      std::string u;
      if (cp < 0x80) u += static_cast<char>(cp);
      else u += static_cast<char>(0xC0 | (cp >> 6)), u += static_cast<char>(0x80 | (cp & 0x3F));
      tokens.push_back(u);
    }
    while (static_cast<int>(tokens.size()) < s.n_vocab) tokens.push_back("<|synth_" + std::to_string(tokens.size()) + "|>");
    std::vector<gguf::Value> types(tokens.size(), gguf::Value::i32(1));
    w.set("tokenizer.ggml.model", gguf::Value::str("gpt2"));
    w.set("tokenizer.ggml.pre", gguf::Value::str("default"));
    w.set("tokenizer.ggml.tokens", gguf::Value::string_array(tokens));
    w.set("tokenizer.ggml.token_type", gguf::Value::array(gguf::ValueType::INT32, types));
    w.set("tokenizer.ggml.merges", gguf::Value::string_array({}));
    w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(0));
    w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(1));
  }
  if (opts.chat_template) w.set("tokenizer.chat_template", gguf::Value::str(*opts.chat_template));

  const std::string a = s.arch;
  auto u32 = [&](const std::string& k, int v) { w.set(a + "." + k, gguf::Value::u32(static_cast<uint32_t>(v))); };
  w.set("general.architecture", gguf::Value::str(a));
  w.set("general.name", gguf::Value::str("jing synth " + a));
  u32("block_count", s.n_layer), u32("context_length", s.n_ctx), u32("embedding_length", s.n_embd), u32("feed_forward_length", s.n_ff);
  u32("attention.head_count", s.n_head), u32("attention.head_count_kv", s.n_head_kv);
  w.set(a + ".rope.freq_base", gguf::Value::f32(s.rope_base));
  w.set(a + ".attention.layer_norm_rms_epsilon", gguf::Value::f32(1e-6f));
  if (a == "deepseek2") {
    u32("attention.q_lora_rank", s.q_lora), u32("attention.kv_lora_rank", s.kv_lora), u32("rope.dimension_count", s.rope_dim);
    u32("attention.key_length", s.kv_lora + s.rope_dim), u32("attention.value_length", s.kv_lora);
    u32("attention.key_length_mla", s.nope + s.rope_dim), u32("attention.value_length_mla", s.v_dim);
    u32("attention.head_count_kv", 1);
    u32("expert_count", s.n_expert), u32("expert_used_count", s.n_expert_used), u32("expert_shared_count", s.n_shared);
    u32("expert_feed_forward_length", s.n_ff_exp), u32("leading_dense_block_count", s.n_dense);
    u32("expert_group_count", s.n_group), u32("expert_group_used_count", s.n_group_used), u32("expert_gating_func", 2);
    w.set(a + ".expert_weights_scale", gguf::Value::f32(2.5f));
    w.set(a + ".expert_weights_norm", gguf::Value::boolean(true));
  } else {
    u32("attention.key_length", s.head_dim), u32("attention.value_length", s.head_dim), u32("rope.dimension_count", s.head_dim);
  }
  const Mix mix = mix_from_name(opts.mix);
  w.set("general.file_type", gguf::Value::u32(static_cast<uint32_t>(mix.file_type)));

  // Tensor list: (name, shape, fan_in) in the order llama.cpp's converters write them.
  struct T {
    std::string name;
    std::vector<int64_t> shape;
  };
  std::vector<T> ts;
  const int64_t E = s.n_embd;
  ts.push_back({"token_embd.weight", {E, s.n_vocab}});
  for (int i = 0; i < s.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    ts.push_back({p + "attn_norm.weight", {E}});
    ts.push_back({p + "ffn_norm.weight", {E}});
    if (a == "deepseek2") {
      ts.push_back({p + "attn_q_a.weight", {E, s.q_lora}});
      ts.push_back({p + "attn_q_a_norm.weight", {s.q_lora}});
      ts.push_back({p + "attn_q_b.weight", {s.q_lora, int64_t{s.n_head} * (s.nope + s.rope_dim)}});
      ts.push_back({p + "attn_kv_a_mqa.weight", {E, s.kv_lora + s.rope_dim}});
      ts.push_back({p + "attn_kv_a_norm.weight", {s.kv_lora}});
      ts.push_back({p + "attn_k_b.weight", {s.nope, s.kv_lora, s.n_head}});
      ts.push_back({p + "attn_v_b.weight", {s.kv_lora, s.v_dim, s.n_head}});
      ts.push_back({p + "attn_output.weight", {int64_t{s.n_head} * s.v_dim, E}});
      if (i < s.n_dense) {
        ts.push_back({p + "ffn_gate.weight", {E, s.n_ff}}), ts.push_back({p + "ffn_up.weight", {E, s.n_ff}}), ts.push_back({p + "ffn_down.weight", {s.n_ff, E}});
      } else {
        ts.push_back({p + "ffn_gate_inp.weight", {E, s.n_expert}});
        ts.push_back({p + "exp_probs_b.bias", {s.n_expert}});
        ts.push_back({p + "ffn_gate_exps.weight", {E, s.n_ff_exp, s.n_expert}});
        ts.push_back({p + "ffn_up_exps.weight", {E, s.n_ff_exp, s.n_expert}});
        ts.push_back({p + "ffn_down_exps.weight", {s.n_ff_exp, E, s.n_expert}});
        ts.push_back({p + "ffn_gate_shexp.weight", {E, int64_t{s.n_ff_exp} * s.n_shared}});
        ts.push_back({p + "ffn_up_shexp.weight", {E, int64_t{s.n_ff_exp} * s.n_shared}});
        ts.push_back({p + "ffn_down_shexp.weight", {int64_t{s.n_ff_exp} * s.n_shared, E}});
      }
      continue;
    }
    const int64_t q = int64_t{s.n_head} * s.head_dim, kv = int64_t{s.n_head_kv} * s.head_dim;
    ts.push_back({p + "attn_q.weight", {E, q}});
    ts.push_back({p + "attn_k.weight", {E, kv}});
    ts.push_back({p + "attn_v.weight", {E, kv}});
    ts.push_back({p + "attn_output.weight", {q, E}});
    if (a == "qwen2") ts.push_back({p + "attn_q.bias", {q}}), ts.push_back({p + "attn_k.bias", {kv}}), ts.push_back({p + "attn_v.bias", {kv}});
    if (a == "qwen3") ts.push_back({p + "attn_q_norm.weight", {s.head_dim}}), ts.push_back({p + "attn_k_norm.weight", {s.head_dim}});
    ts.push_back({p + "ffn_gate.weight", {E, s.n_ff}});
    ts.push_back({p + "ffn_up.weight", {E, s.n_ff}});
    ts.push_back({p + "ffn_down.weight", {s.n_ff, E}});
  }
  ts.push_back({"output_norm.weight", {E}});
  ts.push_back({"output.weight", {E, s.n_vocab}});

  std::vector<GgmlType> types;
  std::vector<uint64_t> sizes;
  for (const auto& t : ts) {
    gguf::TensorInfo info;
    info.name = t.name;
    info.n_dims = static_cast<int>(t.shape.size());
    for (size_t d = 0; d < t.shape.size(); ++d) info.ne[d] = t.shape[d];
    types.push_back(choose_type(mix, info, s.n_layer, {}));
    sizes.push_back(gguf::TensorSpec{t.name, types.back(), t.shape}.nbytes());
  }
  if (opts.plan) {
    opts.plan->clear();
    for (size_t i = 0; i < ts.size(); ++i) opts.plan->push_back({ts[i].name, types[i], ts[i].shape});
  }
  if (opts.dry_run) return;

  const int n_parts = std::max(1, opts.split);
  const std::vector<int> part_of = gguf::split_assignment(sizes, n_parts);
  std::mt19937_64 rng(opts.seed);
  std::map<std::pair<GgmlType, int64_t>, Pool> pools;
  for (int p = 0; p < n_parts; ++p) {
    // Split parts as gguf-split writes them: all metadata in the first, split.* keys in each.
    gguf::Writer part;
    if (p == 0)
      for (const auto& kv : w.metadata()) part.set(kv.key, kv.value);
    if (n_parts > 1) {
      part.set("split.no", gguf::Value::u16(static_cast<uint16_t>(p)));
      part.set("split.count", gguf::Value::u16(static_cast<uint16_t>(n_parts)));
      part.set("split.tensors.count", gguf::Value::i32(static_cast<int32_t>(ts.size())));
    }
    for (size_t i = 0; i < ts.size(); ++i)
      if (part_of[i] == p) part.add_tensor({ts[i].name, types[i], ts[i].shape});
    std::string stem = out.string();
    if (stem.size() > 5 && stem.compare(stem.size() - 5, 5, ".gguf") == 0) stem.resize(stem.size() - 5);
    part.begin(n_parts > 1 ? std::filesystem::path(gguf::split_path(stem, p, n_parts)) : out);
    for (size_t i = 0; i < ts.size(); ++i)
      if (part_of[i] == p) write_random_tensor(part, ts[i].name, types[i], ts[i].shape, rng, pools);
    part.finish();
  }
}

}  // namespace jing::model
