// A loaded model: weights mapped from a GGUF, a KV cache with one slot per sequence, and a
// forward pass over a batch that may mix several sequences (continuous batching).
// (Contract shared by run, bench, perplexity and the server; implemented in src/model + src/runtime.)
#pragma once
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gguf/gguf.h"
#include "quant/types.h"

namespace jing::model {

inline constexpr int kGpuLayersAuto = -1;  // n_gpu_layers: as many as fit (runtime/placement.h)

struct ModelOptions {
  int n_ctx = 4096;          // KV cache positions per sequence (0: the model's training context)
  int n_seq = 1;             // sequences (server slots) the cache holds at once
  int n_batch = 512;         // most tokens one forward call computes at once
  int n_threads = 0;         // 0: physical cores
  int n_gpu_layers = 0;      // the last N layers on the GPU (llama.cpp's -ngl; above the layer count: all, output too;
                             // kGpuLayersAuto: fill the GPU's free memory)
  int main_gpu = 0;          // the GPU they go to (--main-gpu / --device CUDAn)
  // Several GPUs (--tensor-split / --device lists): (GPU, share) in order; the GPU layers are split
  // over them in these proportions, whole layers each (llama.cpp's --split-mode layer). Empty or
  // one entry: main_gpu alone.
  std::vector<std::pair<int, double>> gpu_split;
  // --split-mode row: each layer's heads and feed-forward shared out over the gpu_split GPUs
  // (tensor parallel, model/row_split.h) where the architecture can; else whole layers.
  bool row_split = false;
  int cpu_row_shards = 0;    // tests: the same split (and expert parallelism) over this many CPU backends (no GPU needed)
  int n_cpu_moe = 0;         // routed experts of the first N layers stay in RAM, run by the CPU (--n-cpu-moe; --cpu-moe: all)
  GgmlType kv_type = GgmlType::F16;  // F16 or Q8_0
  bool mlock = false;
  bool use_mmap = true;      // false (--no-mmap): the plan also checks RAM for the CPU's weights
  std::vector<std::string> tensor_overrides;  // -ot REGEX=DEVICE, first match wins (runtime/tensor_overrides.h)
  uint64_t gpu_memory = 0;                    // --gpu-memory: the most to plan on the GPU (0: its free memory)
};

// Tokens to run: token i of the batch sits at position pos[i] of sequence seq[i].
// Positions of one sequence must follow on from what its cache already holds.
struct Batch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> pos;
  std::vector<int32_t> seq;
  std::vector<uint8_t> want_logits;  // 1 where this token's output is wanted

  void add(int32_t token, int32_t position, int32_t sequence, bool logits) {
    tokens.push_back(token);
    pos.push_back(position);
    seq.push_back(sequence);
    want_logits.push_back(logits ? 1 : 0);
  }
  size_t size() const { return tokens.size(); }
  bool several_sequences() const {
    return std::any_of(seq.begin(), seq.end(), [&](int32_t s) { return s != seq.front(); });
  }
  void clear() { tokens.clear(), pos.clear(), seq.clear(), want_logits.clear(); }
};

enum class Output { Logits, Embeddings };

class Model {
 public:
  virtual ~Model() = default;
  // Opens the GGUF (any part of a split model) and builds the architecture it names.
  // Throws jing::Error for unknown architectures, missing tensors, or too little memory.
  static std::unique_ptr<Model> load(const std::filesystem::path& path, const ModelOptions& opts);

  virtual const gguf::File& file() const = 0;
  virtual std::string arch() const = 0;
  virtual int n_vocab() const = 0;
  virtual int n_embd() const = 0;
  virtual int n_ctx() const = 0;        // cache positions per sequence
  virtual int n_ctx_train() const = 0;
  virtual int n_seq() const = 0;
  // Where the layers run, as llama-bench names backends ("CPU", "CUDA0 (NVIDIA H200)").
  virtual std::string backend_name() const { return "CPU"; }
  // Bytes the model holds in GPU memory (weights and cache), 0 on the CPU: Ollama's size_vram.
  virtual uint64_t gpu_bytes() const { return 0; }
  // The same per GPU (its name, bytes), for several GPUs; empty on the CPU.
  virtual std::vector<std::pair<std::string, uint64_t>> gpu_bytes_each() const { return {}; }
  virtual int n_gpu_layers() const { return 0; }  // layers placed on the GPU

  // Computes the batch and appends to the cache. Returns, for every token with want_logits set,
  // in batch order, a row of n_vocab logits (Output::Logits) or n_embd final hidden-state
  // values after the output norm (Output::Embeddings). Throws jing::Error when a sequence's
  // cache is full.
  virtual std::vector<float> forward(const Batch& batch, Output out = Output::Logits) = 0;

  // Cache management per sequence.
  virtual int kv_length(int seq) const = 0;           // positions held
  virtual void kv_truncate(int seq, int n_keep) = 0;  // keep positions [0, n_keep): prefix reuse
  virtual void kv_clear(int seq) { kv_truncate(seq, 0); }
};

}  // namespace jing::model
