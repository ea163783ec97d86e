#include "model/base.h"

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <map>

#include "common/cpu_features.h"
#include "common/error.h"
#include "cpu/matmul.h"
#include "runtime/placement.h"

namespace jing::model {

BaseModel::BaseModel(gguf::File file, const ModelOptions& opts) : file_(std::move(file)), opts_(opts), w_(file_) {
  ctx_.n_threads = opts.n_threads > 0 ? opts.n_threads : cpu::default_threads();
  n_embd_ = static_cast<int>(arch_int("embedding_length"));
  n_ctx_train_ = static_cast<int>(arch_int("context_length", 4096));
  if (opts_.n_ctx <= 0) opts_.n_ctx = n_ctx_train_;
  if (opts_.n_seq <= 0) opts_.n_seq = 1;
  norm_eps_ = arch_float("attention.layer_norm_rms_epsilon", 1e-5f);
  tok_embd_ = file_.find_tensor("token_embd.weight");
  if (!tok_embd_) throw Error("model file is missing tensor 'token_embd.weight'");
  n_vocab_ = static_cast<int>(tok_embd_->ne[1]);
  output_norm_ = w_.vector("output_norm.weight", n_embd_);
  // Models with tied embeddings have no output.weight: the embedding table projects back.
  auto out = w_.optional_matrix("output.weight", n_embd_, n_vocab_);
  output_ = out ? *out : w_.matrix("token_embd.weight", n_embd_, n_vocab_);
  tok_embd_view_ = w_.matrix("token_embd.weight", n_embd_, n_vocab_);
  kv_len_.assign(static_cast<size_t>(opts_.n_seq), 0);
  if (const char* parts = std::getenv("JING_MICRO_BATCHES")) micro_batches_forced_ = std::atoi(parts);
  // Matrices of the tiled formats (cpu/row_tiles.h) in 8-row tiles, as llama.cpp repacks some at
  // load: on AMD Zen 4 the CPU's decode reads 8 rows per load, 1.0-2x the plain rows' speed on one
  // core; on the GPU machine's Intel Xeon the plain rows were the faster (7B, 8 threads 9.8 against
  // 14.8 t/s; docs/PERFORMANCE.md), so tiles are the default on AMD CPUs only. (That was the
  // hardware prefetch: with software prefetch, 1 Dec, tiled decode on a Xeon is at or above the
  // rows, 1.8-2.5x for Q4_0 and IQ4_XS, but prompts and many-sequence steps, which untile, lost
  // 1-18%: the server's 32 streams 220-226 t/s against 264-277; so the default stays.)
  // JING_TILES=1 / =0 turns them on / off (0: the rounding order the GPU's decode kernels mirror;
  // the GPU tests pin it).
  const char* tiles = std::getenv("JING_TILES");
  const bool tiled = tiles && *tiles ? *tiles != '0' : cpu_features::amd();
  // Small models' CPU weights are also read into memory of their own, in huge pages (the mapped
  // file's pages leave the process, so RAM holds one copy): fewer TLB misses while decode streams
  // them (1.5B Q4_K_M, two threads: 36.6-39.4 t/s against 34.9-37.7 mapped). Large ones, R1's
  // experts in RAM above all, stay mapped. JING_HUGE_COPY=0 / =1 forces either.
  const uint64_t ram = runtime::ram_available();
  const bool small = file_.total_file_size() <= std::min<uint64_t>(uint64_t{16} << 30, ram / 4);
  const char* huge = std::getenv("JING_HUGE_COPY");
  const bool copy_huge = opts_.use_mmap && (huge && *huge ? *huge != '0' : small);
  cpu_weights_ = {!opts_.use_mmap, opts_.mlock, tiled, copy_huge};
  cpu_ = make_cpu_backend(ctx_.n_threads, cpu_weights_);
  input_be_ = output_be_ = cpu_.get();
  output_placed_ = output_;
  output_norm_placed_ = output_norm_.data();
}

std::vector<Backend*> BaseModel::backends() const {
  std::vector<Backend*> all{cpu_.get()};
  if (gpu_) all.push_back(gpu_.get());
  for (const auto& g : more_gpus_) all.push_back(g.get());
  for (const auto& c : cpu_row_shards_) all.push_back(c.get());
  return all;
}

std::vector<Backend*> BaseModel::split_group() const {
  std::vector<Backend*> group{gpu_ ? gpu_.get() : cpu_.get()};
  if (gpu_)
    for (const auto& g : more_gpus_) group.push_back(g.get());
  else
    for (const auto& c : cpu_row_shards_) group.push_back(c.get());
  return group;
}

int BaseModel::row_split_parts() const {
  if (opts_.row_split && opts_.gpu_split.size() > 1) return static_cast<int>(opts_.gpu_split.size());
  return std::max(opts_.cpu_row_shards, 1);
}

std::string BaseModel::backend_name() const {
  const std::string rows = row_shards_.size() > 1 ? " (row split)" : experts_shared_ ? " (experts shared out)" : "";
  if (!gpu_) return cpu_row_shards_.empty() ? "CPU" : std::to_string(cpu_row_shards_.size() + 1) + " x CPU" + rows;
  std::string name = gpu_->name();
  for (const auto& g : more_gpus_) name += " + " + g->name();
  return name + rows;
}

uint64_t BaseModel::gpu_bytes() const {
  uint64_t bytes = 0;
  for (const auto& [_, each] : gpu_bytes_each()) bytes += each;
  return bytes;
}

std::vector<std::pair<std::string, uint64_t>> BaseModel::gpu_bytes_each() const {
  std::vector<std::pair<std::string, uint64_t>> each;
  for (Backend* be : backends())
    if (be && be != cpu_.get()) each.push_back({be->name(), be->weight_bytes() + be->cache_bytes()});
  return each;
}

void BaseModel::place_layers(int n_layer, const runtime::LayerShape& shape, bool can_split_rows) {
  using runtime::Device;
  const int device = std::max(0, opts_.gpu_split.size() > 1 ? opts_.gpu_split[0].first : opts_.main_gpu);  // a split starts on its first GPU
  if (runtime::wants_gpu(opts_)) {
    std::string why;
    gpu_ = make_gpu_backend(device, &why);
    if (gpu_) gpu_->weights_copied = [this](const void* p, size_t n) { file_.release_pages(p, n); };
    static bool said = false;  // without a GPU, -ngl auto (the CLI's default) quietly means the CPU
    if (!gpu_ && opts_.n_gpu_layers != kGpuLayersAuto && !said) {
      std::fprintf(stderr, "note: %s; all layers run on the CPU\n", why.c_str());
      said = true;
    }
    // Several GPUs (-ts / -dev lists): one backend each; a GPU that is missing fails the load.
    for (size_t k = 1; gpu_ && k < opts_.gpu_split.size(); ++k) {
      auto g = make_gpu_backend(opts_.gpu_split[k].first, &why);
      if (!g) throw Error("CUDA" + std::to_string(opts_.gpu_split[k].first) + ": " + why);
      g->weights_copied = gpu_->weights_copied;
      more_gpus_.push_back(std::move(g));
    }
  }
  uint64_t free = 0;
  if (gpu_) free = runtime::gpu_free_bytes(device);
  // Split over several GPUs: each GPU's budget (its free memory, --gpu-memory capping each), the
  // plan weighing them together; each GPU's own part is checked against its budget below.
  model::ModelOptions plan_opts = opts_;
  std::vector<runtime::Budget> split_budgets;
  if (!more_gpus_.empty()) {
    free = 0;
    for (const auto& [index, _] : opts_.gpu_split) {
      runtime::Budget b;
      b.gpu = runtime::gpu_free_bytes(index), b.gpu_name = "CUDA" + std::to_string(index);
      if (opts_.gpu_memory > 0 && opts_.gpu_memory < b.gpu) b.gpu = opts_.gpu_memory, b.gpu_capped = true;
      free += b.gpu;
      split_budgets.push_back(b);
    }
    plan_opts.gpu_memory = 0;
  }
  const auto plan = runtime::plan_placement(file_, n_layer, shape, n_vocab_, plan_opts, gpu_ ? &free : nullptr);
  for (const auto& spec : plan.unused) std::fprintf(stderr, "note: -ot '%s' matches no tensor of this model\n", spec.c_str());
  const runtime::Placement& p = plan.placement;
  if (gpu_ && !p.uses(Device::Gpu) && p.input != Device::Gpu) {
    const bool capped = opts_.gpu_memory > 0 && opts_.gpu_memory < free;
    std::fprintf(stderr, "placement: not one layer fits in the %s %s on %s; all on the CPU\n",
                 runtime::format_gib(capped ? opts_.gpu_memory : free).c_str(), capped ? "allowed" : "free", gpu_->name().c_str());
    gpu_.reset();
    more_gpus_.clear();
  }
  auto on = [&](Device d) { return d == Device::Gpu ? gpu_.get() : cpu_.get(); };
  layer_be_.resize(static_cast<size_t>(n_layer));
  expert_be_.resize(static_cast<size_t>(n_layer));
  for (size_t i = 0; i < layer_be_.size(); ++i) layer_be_[i] = on(p.layers[i]), expert_be_[i] = on(p.experts[i]);
  input_be_ = on(p.input);
  output_be_ = on(p.output);
  std::vector<std::string> split_lines;
  if (!more_gpus_.empty()) {
    // Whole layers per GPU in the shares' proportions (a layer's experts go with it; the embedding
    // to the first GPU, the output layer with the last GPU layer), each GPU's part checked
    // against its own free memory before anything is copied.
    std::vector<double> shares;
    for (const auto& [_, share] : opts_.gpu_split) shares.push_back(share);
    const auto parts = runtime::split_over_gpus(p, shares);
    for (size_t k = 0; k < parts.size(); ++k) {
      Backend* g = k == 0 ? gpu_.get() : more_gpus_[k - 1].get();
      const runtime::Budget& b = split_budgets[k];
      runtime::check_fits(plan.sizes, parts[k], b, "the layer split over " + std::to_string(parts.size()) + " GPUs (--tensor-split)");
      const bool holds = parts[k].uses(Device::Gpu) || parts[k].input == Device::Gpu;
      split_lines.push_back(holds ? runtime::describe(plan.sizes, parts[k], b).front() : b.gpu_name + ": nothing (its share rounds to no layer)");
      for (size_t l = 0; l < layer_be_.size(); ++l) {
        if (parts[k].layers[l] == Device::Gpu) layer_be_[l] = g;
        if (parts[k].experts[l] == Device::Gpu) expert_be_[l] = g;
      }
      if (parts[k].input == Device::Gpu) input_be_ = g;
      if (parts[k].output == Device::Gpu) output_be_ = g;
    }
    // Expert parallelism (expert_parallel_gpus) moves each GPU's own layers' experts out for an
    // even share of all of them: allowed only where every GPU's budget holds that too.
    auto experts_on_gpu = [&](const runtime::Placement& where) {
      uint64_t bytes = 0;
      for (int l = 0; l < n_layer; ++l)
        if (where.experts[static_cast<size_t>(l)] == Device::Gpu) bytes += plan.sizes.expert_bytes[static_cast<size_t>(l)];
      return bytes;
    };
    const uint64_t experts = experts_on_gpu(p);
    expert_parallel_fits_ = true;
    for (size_t k = 0; k < parts.size(); ++k) {
      const uint64_t own = experts_on_gpu(parts[k]);
      const uint64_t need = runtime::usage_on(Device::Gpu, plan.sizes, parts[k]).total() - own + (experts + parts.size() - 1) / parts.size();
      if (need > split_budgets[k].gpu) expert_parallel_fits_ = false;
    }
  }
  if (row_split_parts() > 1) split_rows(p, can_split_rows, plan.sizes, split_budgets, split_lines);
  tok_embd_view_ = input_be_->place_table(tok_embd_view_);  // (on the CPU: in place, unless --no-mmap / --mlock)
  output_placed_ = output_be_->place(output_);
  output_norm_placed_ = output_be_->place(output_norm_);
  if (!gpu_) return;
  n_gpu_layers_ = p.layers_on(Device::Gpu);
  for (const auto& line : split_lines.empty() ? plan.lines : split_lines) std::fprintf(stderr, "placement: %s\n", line.c_str());
  if (!split_lines.empty())  // the CPU's line, when it holds anything
    for (const auto& line : plan.lines)
      if (line.rfind("CPU", 0) == 0) std::fprintf(stderr, "placement: %s\n", line.c_str());
}

void BaseModel::split_rows(const runtime::Placement& p, bool can_split_rows, const runtime::ModelSizes& sizes,
                           const std::vector<runtime::Budget>& budgets, std::vector<std::string>& lines) {
  using runtime::Device;
  const int parts = row_split_parts();
  if (!gpu_ && opts_.cpu_row_shards > 1)  // the tests' CPU shards: for a row split, or expert parallelism
    for (int k = 1; k < parts; ++k) cpu_row_shards_.push_back(make_cpu_backend(ctx_.n_threads, cpu_weights_));
  if (!can_split_rows) {
    std::fprintf(stderr, "note: --split-mode row: this model's layers cannot be shared out over %d backends (heads, KV heads and feed-forward "
                         "must divide, in whole blocks); whole layers instead\n", parts);
    return;
  }
  if (gpu_ && !more_gpus_.empty()) {
    const bool all_gpu = p.input == Device::Gpu && p.output == Device::Gpu &&
                         std::all_of(p.layers.begin(), p.layers.end(), [](Device d) { return d == Device::Gpu; }) &&
                         std::all_of(p.experts.begin(), p.experts.end(), [](Device d) { return d == Device::Gpu; });
    if (!all_gpu) {
      std::fprintf(stderr, "note: --split-mode row needs every layer on the GPUs; whole layers instead\n");
      return;
    }
    for (int k = 0; k < parts; ++k)  // each GPU's even share (the layer split's part was checked above)
      if (const uint64_t need = runtime::row_split_usage(sizes, k, parts).total(); need > budgets.at(static_cast<size_t>(k)).gpu) {
        std::fprintf(stderr, "note: --split-mode row: %s would need %s of its %s; whole layers instead\n", budgets[static_cast<size_t>(k)].gpu_name.c_str(),
                     runtime::format_gib(need).c_str(), runtime::format_gib(budgets[static_cast<size_t>(k)].gpu).c_str());
        return;
      }
    row_shards_ = split_group();
    // The all-reduces through NCCL (JING_NCCL=0: through the first GPU by peer copies).
    std::string why = "JING_NCCL=0";
    const char* nccl = std::getenv("JING_NCCL");
    if (!nccl || std::string(nccl) != "0") collectives_ = make_gpu_collectives(row_shards_, &why);
    lines = {"every layer's heads and feed-forward shared out over " + std::to_string(row_shards_.size()) +
             " GPUs (--split-mode row, tensor parallel; all-reduce " + (collectives_ ? collectives_->name() : "by peer copies: " + why) +
             "); token embedding and output layer on " + gpu_->name()};
  } else if (!cpu_row_shards_.empty()) {
    row_shards_ = split_group();
  } else {
    return;
  }
  std::fill(layer_be_.begin(), layer_be_.end(), row_shards_.front());
  std::fill(expert_be_.begin(), expert_be_.end(), row_shards_.front());
  input_be_ = output_be_ = row_shards_.front();
}

void BaseModel::init_backend_caches(int k_width, int v_width) {
  const int n_layer = static_cast<int>(layer_be_.size());
  if (!row_shards_.empty()) {  // every shard: all layers, its share of the heads
    const int parts = static_cast<int>(row_shards_.size());
    for (Backend* be : row_shards_)
      be->init_cache(n_layer, opts_.n_seq, opts_.n_ctx, k_width / parts, v_width / parts, opts_.kv_type, std::vector<uint8_t>(static_cast<size_t>(n_layer), 1));
    return;
  }
  for (Backend* be : backends())
    if (be && std::find(layer_be_.begin(), layer_be_.end(), be) != layer_be_.end()) {
      std::vector<uint8_t> here(static_cast<size_t>(n_layer));
      for (int l = 0; l < n_layer; ++l) here[static_cast<size_t>(l)] = layer_be_[static_cast<size_t>(l)] == be;
      be->init_cache(n_layer, opts_.n_seq, opts_.n_ctx, k_width, v_width, opts_.kv_type, here);
    }
}

int64_t BaseModel::arch_int(const std::string& key, std::optional<int64_t> fallback) const {
  if (auto v = file_.arch_int(key)) return *v;
  if (fallback) return *fallback;
  throw Error("model metadata is missing " + file_.architecture() + "." + key);
}

float BaseModel::arch_float(const std::string& key, float fallback) const {
  return static_cast<float>(file_.arch_float(key).value_or(fallback));
}

void BaseModel::kv_truncate(int seq, int n_keep) {
  if (seq < 0 || seq >= opts_.n_seq) throw Error("sequence " + std::to_string(seq) + " does not exist");
  auto& len = kv_len_[static_cast<size_t>(seq)];
  len = std::clamp(n_keep, 0, len);
}

std::vector<float> BaseModel::forward(const Batch& b, Output out) {
  const int64_t n = static_cast<int64_t>(b.size());
  if (n == 0) return {};
  if (b.pos.size() != b.tokens.size() || b.seq.size() != b.tokens.size() || b.want_logits.size() != b.tokens.size())
    throw Error("batch arrays differ in length");
  // Positions of each sequence must continue its cache without gaps.
  std::map<int, int> next;
  for (int64_t i = 0; i < n; ++i) {
    const int s = b.seq[static_cast<size_t>(i)];
    if (s < 0 || s >= opts_.n_seq) throw Error("sequence " + std::to_string(s) + " does not exist");
    auto [it, fresh] = next.emplace(s, kv_len_[static_cast<size_t>(s)]);
    if (b.pos[static_cast<size_t>(i)] != it->second)
      throw Error("position " + std::to_string(b.pos[static_cast<size_t>(i)]) + " of sequence " + std::to_string(s) +
                  " does not follow its cache (" + std::to_string(it->second) + ")");
    if (it->second >= opts_.n_ctx)
      throw Error("context is full: sequence " + std::to_string(s) + " holds " + std::to_string(opts_.n_ctx) +
                  " tokens (raise --ctx-size)");
    ++it->second;
  }

  if (n == 1 && b.want_logits[0] && out == Output::Logits && graphs_ok_ && step_recordable() && !gpu_segments().empty()) {
    auto logits = decode_step(b);
    for (auto [s, len] : next) kv_len_[static_cast<size_t>(s)] = len;
    return logits;
  }
  if (out == Output::Logits && n > 1) {
    const auto segs = gpu_segments();
    if (const int parts = micro_batches(b, segs.size()); parts > 1) {
      auto logits = pipelined(b, segs, parts);
      for (auto [s, len] : next) kv_len_[static_cast<size_t>(s)] = len;
      return logits;
    }
  }
  for (Backend* be : backends()) be->begin(b);
  Buf x(*input_be_, static_cast<size_t>(n * n_embd_));
  input_be_->embed(tok_embd_view_, b.tokens, x.data());
  layers(x, b, 0, static_cast<int>(layer_be_.size()));
  for (auto [s, len] : next) {
    kv_len_[static_cast<size_t>(s)] = len;
  }

  Backend& ob = *output_be_;
  x = move_to(ob, std::move(x));
  int64_t m = 0;
  const Buf picked = output_rows(b, x, m);
  if (out == Output::Embeddings) {
    std::vector<float> host(static_cast<size_t>(m * n_embd_));
    ob.download(host.data(), picked.data(), host.size());
    return host;
  }
  std::vector<float> logits(static_cast<size_t>(m * n_vocab_));
  if (m == 0) return logits;
  Buf dev_logits(ob, logits.size());
  ob.matmul(output_placed_, picked.data(), m, dev_logits.data());
  ob.download(logits.data(), dev_logits.data(), logits.size());
  return logits;
}

Buf BaseModel::output_rows(const Batch& b, const Buf& x, int64_t& rows) const {
  // Only the rows that were asked for go through the output norm (and then the projection).
  Backend& ob = *x.backend();
  rows = 0;
  for (uint8_t want : b.want_logits) rows += want ? 1 : 0;
  Buf picked(ob, static_cast<size_t>(std::max<int64_t>(rows, 1) * n_embd_));
  for (size_t i = 0, k = 0; i < b.size(); ++i)
    if (b.want_logits[i]) ob.copy(picked.data() + (k++) * n_embd_, x.data() + i * n_embd_, static_cast<size_t>(n_embd_));
  ob.rms_norm(picked.data(), output_norm_placed_, picked.data(), rows, n_embd_, norm_eps_);
  return picked;
}

std::unique_ptr<Model> Model::load(const std::filesystem::path& path, const ModelOptions& opts) {
  gguf::File f = gguf::File::open(path);
  const std::string arch = f.architecture();
  if (arch == "llama") return make_llama(std::move(f), opts);
  if (arch == "qwen2") return make_qwen2(std::move(f), opts);
  if (arch == "qwen3") return make_qwen3(std::move(f), opts);
  if (arch == "deepseek2") return make_deepseek2(std::move(f), opts);
  if (arch.empty()) throw Error(path.string() + " has no general.architecture: not a model file (a vocab-only GGUF?)");
  throw Error("architecture '" + arch + "' is not supported (llama, qwen2, qwen3, deepseek2 are)");
}

}  // namespace jing::model
