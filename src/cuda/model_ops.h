// The element-wise and attention kernels behind the CUDA backend (src/cuda/backend.cpp): the
// same math as src/model/ops.cpp, on device pointers, asynchronous on `stream` (a cudaStream_t).
// Plain C++ header so the backend compiles as C++20 while kernels compile as CUDA C++17.
#pragma once
#include <cstdint>

namespace jing::cuda::ops {

void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t dim, float eps, void* stream);
// Rows `stride` apart (x and y alike).
void rms_norm_strided(const float* x, int64_t stride, const float* w, float* y, int64_t n, int64_t dim, float eps, void* stream);
// dst[i] = src[rows[i]] (rows of `width`), and out[rows[i]] += weights[i] * src[i].
void gather_rows(float* dst, const float* src, const int32_t* rows, int64_t m, int64_t width, void* stream);
void scatter_add_rows(float* out, const float* src, const int32_t* rows, const float* weights, int64_t m, int64_t width, void* stream);
void add_bias(float* y, const float* b, int64_t n, int64_t width, void* stream);
void add(float* y, const float* x, int64_t count, void* stream);
void silu_mul(float* gate, const float* up, int64_t count, void* stream);

struct RopeParams {
  int n_rot = 0;
  bool neox = false;
  float freq_scale = 1, ext_factor = 0, corr_low = 0, corr_high = 0;
  float theta_scale = 1, mscale = 1;  // model::Rope's theta_scale() and mscale(), worked out on the host
  const float* freq_factors = nullptr;  // device, n_rot / 2 entries, or null
};
void rope(const RopeParams& p, float* x, int64_t n, int n_head, int head_stride, const int32_t* pos, void* stream);

// Values per scale of the 8-bit activation blocks of `kind` (cuda::Matmul::rounding_kind: 3 is
// Q8_K, the others a scale per 32).
constexpr int rounding_block(int kind) { return kind == 3 ? 256 : 32; }

// x += h, then y = norm(x) * w (y may be h).
void add_rms_norm(float* x, const float* h, const float* w, float* y, int64_t n, int64_t dim, float eps, void* stream);
// The same (h may be null: x unchanged), and y also rounded to 8-bit blocks of `kind`
// (cuda::Matmul::rounding_kind) into q/rec, for the products that take it as input.
void norm_round(float* x, const float* h, const float* w, float* y, int64_t n, int64_t dim, float eps, int kind, int8_t* q, void* rec,
                void* stream);
// gate = silu(gate) * up, also rounded to 8-bit blocks of `kind` into q/rec.
void silu_mul_round(float* gate, const float* up, int64_t count, int kind, int8_t* q, void* rec, void* stream);

// Attention inputs in two passes: q gets its bias and rotation in place; k gets its bias and
// rotation and v its bias on the way into the f16 cache (rows [n_seq][n_ctx][width]).
struct QkvParams {
  int n_head, n_head_kv, head_dim, head_dim_v, n_ctx;
  const float *bq, *bk, *bv;  // device, or null
};
void qkv_into_cache(const RopeParams& r, const QkvParams& p, float* q, const float* k, const float* v, int64_t n, const int32_t* seq,
                    const int32_t* pos, uint16_t* k_cache, uint16_t* v_cache, void* stream);

// MLA's inputs in one launch (Backend::mla_inputs): a block per token normalises its latent and
// writes [latent | rotated k_pe] into the f16 cache row; the other threads rotate q_pe of every
// head into qa (rows of kv_lora + n_rot per head).
struct MlaParams {
  int n_head, head_k, nope, kv_lora, n_rot, n_ctx;
  float eps;
};
void mla_inputs(const RopeParams& r, const MlaParams& m, const float* q, const float* kv, float* qa, const float* kv_norm, int64_t n,
                const int32_t* seq, const int32_t* pos, uint16_t* cache, void* stream);

// The cache of one layer: f16 rows [n_seq][n_ctx][width].
void store_rows_f16(uint16_t* cache, const float* rows, int64_t n, int width, const int32_t* seq, const int32_t* pos, int n_ctx,
                    void* stream);

struct AttentionParams {
  int n_head, n_head_kv, dk, dv;
  float scale;
  int n_ctx;
  int k_width, v_width;  // f16 values per cache row
  bool v_in_k;           // the value is the first dv values of the key row (MLA)
  int band = 0;          // attention_band() of the step's longest key count: caps the split over keys
};
// Steps whose longest key count falls in one band split the keys alike, so one recorded step
// replays for all of them (band b: up to 2^b splits, each of at least the minimum split length).
int attention_band(int64_t max_keys);
// out[t][h][dv] = softmax(q k^T * scale) v over positions [0, pos[t]] of sequence seq[t].
// Decode steps split each token's keys over several blocks (their partial results in `scratch`,
// attention_scratch_floats() of them) so that few heads still fill the GPU.
size_t attention_scratch_floats(const AttentionParams& p, int64_t n);
void attention_f16(const AttentionParams& p, const float* q, int64_t q_stride, const uint16_t* k_cache, const uint16_t* v_cache,
                   const int32_t* seq, const int32_t* pos, int64_t n, float* out, float* scratch, void* stream);

// A prompt of one sequence (token t at position first_pos + t) on the tensor cores: f32
// accumulation instead of the f16 chain above (attention_mma.cu). Key widths 64, 128 and 576 (MLA).
bool attention_prompt_supported(const AttentionParams& p);
void attention_prompt_f16(const AttentionParams& p, const float* q, int64_t q_stride, const uint16_t* k_cache, const uint16_t* v_cache, int seq,
                          int first_pos, int64_t n, float* out, void* stream);

}  // namespace jing::cuda::ops

namespace jing::cuda::ops {

// MoE routing on the device (the rules of model::route, src/model/moe.cpp): for each of n tokens,
// from router logits [n][n_expert], the n_used chosen experts in ascending order and their
// weights, ids/weights [n][n_used]. bias (device, may be null) shifts the selection only.
struct MoeRouteParams {
  int n_expert, n_used, n_group, n_group_used;
  bool sigmoid, normalize;
  float scale;
};
bool moe_route_supported(const MoeRouteParams& p);  // n_expert <= 1024, groups divide the experts
void moe_route(const MoeRouteParams& p, const float* logits, const float* bias, int64_t n, int32_t* ids, float* weights, void* stream);
// The router product (float32 weights w [n_expert][cols], x [n][cols]) into logits and the routing
// in one launch. `done` holds kMaxRouteTokens zeros (device memory, left zero). False (nothing
// launched): shapes or alignment it does not take.
constexpr int kMaxRouteTokens = 1024;
bool moe_router_route(const MoeRouteParams& p, const float* w, int64_t cols, const float* x, int64_t n, const float* bias, float* logits,
                      unsigned* done, int32_t* ids, float* weights, void* stream);
// out[t] = sum over j of weights[t][j] * rows[r] (rows of `width`), r = t * n_used + j, or
// pair_row[t * n_used + j] when given. With `share` (expert parallelism), only the pairs whose
// expert ids[t * n_used + j] is in [first, first + count): this GPU's share of the mix.
struct ExpertShare {
  const int32_t* ids = nullptr;
  int first = 0, count = 0;
};
void moe_combine(float* out, const float* rows, const float* weights, int64_t n, int n_used, int64_t width, void* stream,
                 const int32_t* pair_row = nullptr, ExpertShare share = {});
// The chosen (token, expert) pairs grouped by expert for a prompt: pair p = t * n_used + j goes to
// row pair_row[p] of the grouped order, whose rows hold tokens row_token[]; work items of up to
// item_rows rows of one expert, items[3 i ..] = {expert, first row, rows}, moe_max_items() of them
// (the unused ones 0 rows). All on the device, nothing back to the host. Only experts
// [first, first + n_expert) take part (one GPU's share; items count from first): the other
// pairs get row -1.
int64_t moe_max_items(int64_t pairs, int n_expert, int item_rows);
void moe_group(const int32_t* ids, int64_t n, int n_used, int first, int n_expert, int item_rows, int32_t* pair_row, int32_t* row_token,
               int32_t* items, void* stream);

}  // namespace jing::cuda::ops
