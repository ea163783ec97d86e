// What every architecture shares: the GGUF file, the KV cache, batch validation, and the
// final norm + output projection. An architecture implements layers(); see llama.cpp et al.
#pragma once
#include <memory>
#include <optional>

#include "model/backend.h"
#include "model/model.h"
#include "model/ops.h"
#include "runtime/kv_cache.h"
#include "runtime/placement.h"

namespace jing::model {

class BaseModel : public Model {
 public:
  BaseModel(gguf::File file, const ModelOptions& opts);

  const gguf::File& file() const override { return file_; }
  std::string arch() const override { return file_.architecture(); }
  int n_vocab() const override { return n_vocab_; }
  int n_embd() const override { return n_embd_; }
  int n_ctx() const override { return opts_.n_ctx; }
  int n_ctx_train() const override { return n_ctx_train_; }
  int n_seq() const override { return opts_.n_seq; }
  std::string backend_name() const override;
  uint64_t gpu_bytes() const override;
  std::vector<std::pair<std::string, uint64_t>> gpu_bytes_each() const override;
  int n_gpu_layers() const override { return n_gpu_layers_; }
  int kv_length(int seq) const override { return kv_len_.at(static_cast<size_t>(seq)); }
  void kv_truncate(int seq, int n_keep) override;

  std::vector<float> forward(const Batch& batch, Output out) override;


 protected:
  // Runs layers [first, end) over x [n][n_embd] (the cache already sized); x may end on another
  // backend. A range starts where the layer before it ran elsewhere (a GPU segment, decode_step).
  virtual void layers(Buf& x, const Batch& b, int first, int end) = 0;
  // Whether a one-token step may be recorded and replayed (CUDA graphs): not when the step
  // reads results back on the host midway.
  virtual bool step_recordable() const { return true; }
  // Placement (runtime/placement.h): where each layer, its routed experts, the embedding and the
  // output layer go, from -ngl (N or auto), -ot, --cpu-moe and the devices' memory; printed when
  // a GPU takes part. Architectures written against Backend call this once they know their
  // layer count and shape; the others stay on the CPU.
  // can_split_rows: the architecture can share each layer out over row_split_parts() backends
  // (tensor parallel); then, where asked for (--split-mode row over several GPUs, or the tests'
  // CPU shards) and every layer is on them, row_shards_ lists them.
  void place_layers(int n_layer, const runtime::LayerShape& shape, bool can_split_rows = false);
  int row_split_parts() const;  // the backends a row split would use (1: none asked for)
  // The backends a row split or expert parallelism shares work over, the main one first: every
  // GPU, or without one the CPU and the tests' CPU shards.
  std::vector<Backend*> split_group() const;
  void split_rows(const runtime::Placement& p, bool can_split_rows, const runtime::ModelSizes& sizes, const std::vector<runtime::Budget>& budgets,
                  std::vector<std::string>& lines);
  Backend& layer_backend(int layer) const { return *layer_be_.at(static_cast<size_t>(layer)); }
  // Where a layer's routed experts (and their router) live and run: the CPU when kept in RAM.
  Backend& expert_backend(int layer) const { return *expert_be_.at(static_cast<size_t>(layer)); }
  // Caches of width k_width/v_width for every backend that holds layers.
  void init_backend_caches(int k_width, int v_width);
  int64_t arch_int(const std::string& key, std::optional<int64_t> fallback = std::nullopt) const;
  float arch_float(const std::string& key, float fallback) const;

  gguf::File file_;
  ModelOptions opts_;
  Weights w_;
  Ctx ctx_;
  std::vector<int> kv_len_;  // positions each sequence's cache holds
  std::unique_ptr<Backend> cpu_, gpu_;
  std::vector<std::unique_ptr<Backend>> more_gpus_;  // the second GPU on, when layers are split over several
  std::vector<Backend*> backends() const;            // the CPU's and every GPU's
  std::vector<Backend*> layer_be_, expert_be_;
  // Tensor parallelism (model/row_split.h): the backends that share every layer, the first being
  // layer_be_'s; empty without a row split. Each holds a KV cache of its share of the heads.
  std::vector<Backend*> row_shards_;
  std::vector<std::unique_ptr<Backend>> cpu_row_shards_;  // the tests' CPU shards after the first
  std::unique_ptr<Collectives> collectives_;              // NCCL over row_shards_ (null: peer copies)
  CpuWeights cpu_weights_;
  // Runs of consecutive layers on one GPU, when every layer and its experts are on a GPU, the
  // embedding on the first and the output layer on the last; else none.
  struct Segment {
    Backend* be;
    int first, end;
  };
  std::vector<Segment> gpu_segments() const;
  // Expert parallelism: with every layer on GPUs split over several, each GPU holds a share of
  // every MoE layer's routed experts (not its own layers' experts), so all GPUs work on each MoE
  // layer; the GPUs in order, or none (one GPU, layers on the CPU, or not asked for:
  // JING_EXPERT_PARALLEL=1).
  std::vector<Backend*> expert_parallel_gpus() const;
  bool expert_parallel_fits_ = false;  // every GPU's budget holds its share of all experts (place_layers)
  bool experts_shared_ = false;        // the architecture did share them out (named by backend_name)
  // A batch over several GPU segments may go in parts, one after another, so that the GPUs
  // overlap (pipeline parallelism): each part's layers on the first GPU while the next GPU runs
  // the part before. Where it pays (measured, docs/PERFORMANCE.md): the decode steps of several
  // sequences on an MoE model, whose routed experts cost per token (R1 IQ1_S, 32 streams, two
  // GPUs: 1.27x of one GPU in 4 parts, 2 per GPU, the default; a model loaded for that many
  // sequences now shares its experts out instead where it can: 1.33x, expert_parallel_gpus).
  // Not prompts: their products convert the weights once a call, so
  // parts repeat that (70B pp512: 1,587 t/s in 2 parts against 2,134 whole). Nor dense decode,
  // which reads every weight once a call. JING_MICRO_BATCHES=N sets the count for measuring.
  // (A server step that also carries a new prompt's chunk has more tokens than this: whole.)
  static constexpr int64_t kPipelineMaxTokens = 128;
  int micro_batches(const Batch& b, size_t segments) const;
  bool pipeline_decode_ = false;  // set by architectures whose batched decode pays per token
  std::vector<float> pipelined(const Batch& b, const std::vector<Segment>& segs, int parts);
  // The rows of x [batch][n_embd] that want logits, output-normed, on x's backend (rows: how many).
  Buf output_rows(const Batch& b, const Buf& x, int64_t& rows) const;
  int micro_batches_forced_ = 0;
  Backend* input_be_ = nullptr;   // the token embedding lookup
  Backend* output_be_ = nullptr;  // output norm and projection
  cpu::WeightView tok_embd_view_, output_placed_;
  const float* output_norm_placed_ = nullptr;
  int n_vocab_ = 0, n_embd_ = 0, n_ctx_train_ = 0, n_gpu_layers_ = 0;
  float norm_eps_ = 1e-5f;
  const gguf::TensorInfo* tok_embd_ = nullptr;
  std::vector<float> output_norm_;
  cpu::WeightView output_;

 private:
  // One token of one sequence with everything on GPUs: the step after the first is recorded once
  // per GPU segment and replayed (no per-kernel launch cost); the embedding lookup and the
  // crossings between GPUs stay outside the records.
  // (Declared after the backends, so these buffers go before the backend that holds them.)
  std::vector<float> decode_step(const Batch& b);
  std::vector<Buf> step_x_;  // each segment's input and residual
  Buf step_logits_;
  int steps_run_ = 0;
  bool graphs_ok_ = true;
};

// Factories of the architectures (one file each).
std::unique_ptr<Model> make_llama(gguf::File file, const ModelOptions& opts);
std::unique_ptr<Model> make_qwen2(gguf::File file, const ModelOptions& opts);
std::unique_ptr<Model> make_qwen3(gguf::File file, const ModelOptions& opts);
std::unique_ptr<Model> make_deepseek2(gguf::File file, const ModelOptions& opts);

}  // namespace jing::model
