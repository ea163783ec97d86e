// MoE routing and mixing on the device, so a decode step's experts are chosen and run without a
// round trip to the host (and the step can be recorded as a CUDA graph).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "cuda/check.h"
#include "cuda/host_math.cuh"
#include "cuda/model_ops.h"
#include "cuda/pdl.cuh"
#include "cuda/reduce.cuh"

namespace jing::cuda::ops {
namespace {

constexpr int kMaxExperts = 1024;

struct Best {
  float v;
  int i;
};
// The larger value; on a tie the lower index (what a sort by value keeps first, in practice).
__device__ Best better(Best a, Best b) { return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a; }

__device__ Best block_best(Best b, Best* red) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = (blockDim.x + 31) / 32;
  for (int o = 16; o > 0; o >>= 1) b = better(b, Best{__shfl_xor_sync(0xffffffffu, b.v, o), __shfl_xor_sync(0xffffffffu, b.i, o)});
  __syncthreads();
  if (lane == 0) red[warp] = b;
  __syncthreads();
  Best r = red[0];
  for (int w = 1; w < warps; ++w) r = better(r, red[w]);
  return r;
}

// One token's routing by one block, one thread per expert (blockDim >= n_expert); `l` is this
// thread's logit (-inf past the experts). Writes the token's n_used ids and weights.
__device__ void route_token(const MoeRouteParams& p, float l, const float* bias, int32_t* ids, float* weights) {
  __shared__ float prob[kMaxExperts], select[kMaxExperts];
  __shared__ Best red[32];
  __shared__ float group_score[64];
  __shared__ int chosen[64], picked[64];
  const int e = threadIdx.x, E = p.n_expert;
  float pr;
  if (p.sigmoid) {
    pr = 1.0f / (1.0f + exp_as_host(-l));
  } else {
    const float mx = block_best(Best{l, e}, red).v;
    const float ex = e < E ? exp_as_host(l - mx) : 0.0f;
    // The sum in double, as the CPU's softmax.
    __shared__ double dsum[32];
    const double total = block_reduce<false>(static_cast<double>(ex), dsum);
    pr = ex * static_cast<float>(1.0 / total);
  }
  if (e < E) prob[e] = pr, select[e] = pr + (bias ? bias[e] : 0.0f);
  __syncthreads();
  // A value's place in descending order (ties: the lower index first), which is where k rounds
  // of "take the largest" would put it; each thread counts for its own value, all at once.
  auto rank = [](const float* v, int n, int i) {
    const float x = v[i];
    int r = 0;
    for (int j = 0; j < n; ++j) r += v[j] > x || (v[j] == x && j < i);
    return r;
  };
  if (p.n_group > 1) {
    // A group scores the sum of its two best experts; experts outside the best groups drop out.
    const int per = E / p.n_group;
    if (per == 32) {  // a warp per group: its best, then the best of the rest (one copy of the best out)
      const int g = e / 32, lane = e % 32;
      if (g < p.n_group) {
        const float v = select[e], a = warp_max(v);
        const int first = __ffs(__ballot_sync(0xffffffffu, v == a)) - 1;
        const float b = warp_max(lane == first ? -INFINITY : v);
        if (lane == 0) group_score[g] = a + b;
      }
    } else if (e < p.n_group) {
      float a = -INFINITY, b = -INFINITY;
      for (int i = e * per; i < (e + 1) * per; ++i) {
        const float v = select[i];
        if (v > a) b = a, a = v;
        else if (v > b) b = v;
      }
      group_score[e] = a + (per > 1 ? b : 0.0f);
    }
    __syncthreads();
    if (e < p.n_group) chosen[e] = rank(group_score, p.n_group, e) < p.n_group_used;
    __syncthreads();
    if (e < E && !chosen[e / per]) select[e] = -INFINITY;
    __syncthreads();
  }
  // The top n_used by selection score, in the order taken: each warp's own best n_used first
  // (ranks within the warp by shuffles), then those candidates ranked against each other.
  __shared__ float cand_v[kMaxExperts];
  __shared__ int cand_i[kMaxExperts], n_cand;
  if (e == 0) n_cand = 0;
  __syncthreads();
  {
    const int lane = e % 32;
    const float v = e < E ? select[e] : -INFINITY;
    int r = 0;
    for (int d = 1; d < 32; ++d) {
      const int from = (lane + d) & 31;
      const float u = __shfl_sync(0xffffffffu, v, from);
      r += u > v || (u == v && from < lane);
    }
    const bool keep = e < E && r < p.n_used;
    const unsigned m = __ballot_sync(0xffffffffu, keep);
    int base = 0;
    if (lane == 0 && m) base = atomicAdd(&n_cand, __popc(m));
    base = __shfl_sync(0xffffffffu, base, 0);
    if (keep) {
      const int at = base + __popc(m & ((1u << lane) - 1));
      cand_v[at] = v, cand_i[at] = e;
    }
  }
  __syncthreads();
  const int n_c = n_cand;
  for (int c = e; c < n_c; c += blockDim.x) {
    const float v = cand_v[c];
    const int i = cand_i[c];
    int r = 0;
    for (int j = 0; j < n_c; ++j) r += cand_v[j] > v || (cand_v[j] == v && cand_i[j] < i);
    if (r < p.n_used) picked[r] = i;
  }
  __syncthreads();
  if (e == 0) {
    // Weights summed in the order chosen (as the CPU does), written in ascending expert order.
    float sum = 0;
    for (int k = 0; k < p.n_used; ++k) sum += prob[picked[k]];
    for (int k = 1; k < p.n_used; ++k)
      for (int j = k; j > 0 && picked[j - 1] > picked[j]; --j) {
        const int x = picked[j];
        picked[j] = picked[j - 1], picked[j - 1] = x;
      }
    for (int k = 0; k < p.n_used; ++k) {
      float w = prob[picked[k]];
      if (p.normalize) w /= fmaxf(sum, 6.103515625e-5f);
      ids[k] = picked[k];
      weights[k] = w * p.scale;
    }
  }
}

// One block per token.
__global__ void moe_route_kernel(MoeRouteParams p, const float* logits, const float* bias, int32_t* ids, float* weights) {
  const int t = blockIdx.x, e = threadIdx.x;
  wait_for_previous_kernel();
  let_next_kernel_start();
  const float l = e < p.n_expert ? logits[static_cast<int64_t>(t) * p.n_expert + e] : -INFINITY;
  route_token(p, l, bias, ids + static_cast<int64_t>(t) * p.n_used, weights + static_cast<int64_t>(t) * p.n_used);
}

// Decode: a block per (expert, token) takes the router's logit (float32 rows, 16-byte aligned,
// columns a multiple of 4); the block that writes a token's last logit routes that token. One
// launch instead of two, and the routing starts as soon as the last product is done.
__global__ void moe_router_route_kernel(MoeRouteParams p, const float* w, int64_t cols, const float* x, const float* bias, float* logits,
                                        unsigned* done, int32_t* ids, float* weights) {
  __shared__ float red[32];
  __shared__ bool last;
  const int E = p.n_expert, t = blockIdx.y;
  const int64_t e = blockIdx.x;
  wait_for_previous_kernel();
  let_next_kernel_start();
  const float4* wr = reinterpret_cast<const float4*>(w + e * cols);
  const float4* xr = reinterpret_cast<const float4*>(x + t * cols);
  float s = 0.f;
  for (int64_t c = threadIdx.x; c < cols / 4; c += blockDim.x) {
    const float4 a = __ldg(wr + c), b = __ldg(xr + c);
    s += a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
  }
  s = block_reduce<false>(s, red);
  if (threadIdx.x == 0) {
    logits[static_cast<int64_t>(t) * E + e] = s;
    __threadfence();  // the logit is visible before the count says so
    last = atomicAdd(done + t, 1u) == static_cast<unsigned>(E - 1);
  }
  __syncthreads();
  if (!last) return;
  if (threadIdx.x == 0) done[t] = 0;  // ready for the next call (and the next replay of a graph)
  __threadfence();
  const float l = static_cast<int>(threadIdx.x) < E ? __ldcg(logits + static_cast<int64_t>(t) * E + threadIdx.x) : -INFINITY;
  route_token(p, l, bias, ids + static_cast<int64_t>(t) * p.n_used, weights + static_cast<int64_t>(t) * p.n_used);
}

__global__ void moe_combine_kernel(float* out, const float* rows, const float* weights, int n_used, int64_t width, const int32_t* pair_row,
                                   ExpertShare share) {
  const int64_t t = blockIdx.y;
  wait_for_previous_kernel();
  let_next_kernel_start();
  for (int64_t d = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; d < width; d += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < n_used; ++j) {
      if (share.ids && static_cast<unsigned>(share.ids[t * n_used + j] - share.first) >= static_cast<unsigned>(share.count)) continue;
      const int64_t r = pair_row ? pair_row[t * n_used + j] : t * n_used + j;
      acc = __fadd_rn(acc, __fmul_rn(weights[t * n_used + j], rows[r * width + d]));  // unfused, as the CPU's mix
    }
    out[t * width + d] = acc;
  }
}


// One block: counts per expert, their running starts, the work items, then each pair's row.
// (Rows of one expert land in any order: every row's product is computed on its own.) Only the
// experts [first, first + n_expert) take part (expert parallelism: this GPU's share; items name
// them from 0); other pairs get row -1, and the rows past the share's pairs read token 0.
__global__ void moe_group_kernel(const int32_t* ids, int pairs, int n_used, int first, int n_expert, int item_rows, int max_items, int32_t* pair_row,
                                 int32_t* row_token, int32_t* items) {
  __shared__ int count[kMaxExperts], start[kMaxExperts], total;
  wait_for_previous_kernel();
  let_next_kernel_start();
  auto mine = [&](int p) { return static_cast<unsigned>(ids[p] - first) < static_cast<unsigned>(n_expert); };
  for (int e = threadIdx.x; e < n_expert; e += blockDim.x) count[e] = 0;
  __syncthreads();
  for (int p = threadIdx.x; p < pairs; p += blockDim.x)
    if (mine(p)) atomicAdd(&count[ids[p] - first], 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    int row = 0, item = 0;
    for (int e = 0; e < n_expert; ++e) {
      start[e] = row;
      for (int c = 0; c < count[e]; c += item_rows, ++item)
        items[3 * item] = e, items[3 * item + 1] = row + c, items[3 * item + 2] = min(item_rows, count[e] - c);
      row += count[e];
    }
    total = row;
    for (; item < max_items; ++item) items[3 * item] = 0, items[3 * item + 1] = 0, items[3 * item + 2] = 0;
  }
  __syncthreads();
  for (int p = threadIdx.x; p < pairs; p += blockDim.x) {
    if (!mine(p)) {
      pair_row[p] = -1;
      continue;
    }
    const int r = atomicAdd(&start[ids[p] - first], 1);
    pair_row[p] = r;
    row_token[r] = p / n_used;
  }
  for (int r = total + threadIdx.x; r < pairs; r += blockDim.x) row_token[r] = 0;
}

}  // namespace

bool moe_route_supported(const MoeRouteParams& p) {
  return p.n_expert > 0 && p.n_expert <= kMaxExperts && p.n_used >= 1 && p.n_used <= 64 && p.n_used <= p.n_expert &&
         (p.n_group <= 1 || (p.n_group <= 64 && p.n_expert % p.n_group == 0 && p.n_group_used >= 1 && p.n_group_used <= p.n_group));
}

void moe_route(const MoeRouteParams& p, const float* logits, const float* bias, int64_t n, int32_t* ids, float* weights, void* stream) {
  if (n <= 0) return;
  const int threads = std::max(64, (p.n_expert + 31) / 32 * 32);
  launch_pdl(moe_route_kernel, dim3(static_cast<unsigned>(n)), dim3(static_cast<unsigned>(threads)), static_cast<cudaStream_t>(stream), "moe_route",
             p, logits, bias, ids, weights);
}

bool moe_router_route(const MoeRouteParams& p, const float* w, int64_t cols, const float* x, int64_t n, const float* bias, float* logits,
                      unsigned* done, int32_t* ids, float* weights, void* stream) {
  if (n <= 0) return true;
  if (cols % 4 || (reinterpret_cast<uintptr_t>(w) | reinterpret_cast<uintptr_t>(x)) % 16 || n > kMaxRouteTokens) return false;
  const int threads = std::max(64, (p.n_expert + 31) / 32 * 32);
  launch_pdl(moe_router_route_kernel, dim3(static_cast<unsigned>(p.n_expert), static_cast<unsigned>(n)), dim3(static_cast<unsigned>(threads)),
             static_cast<cudaStream_t>(stream), "moe_router_route", p, w, cols, x, bias, logits, done, ids, weights);
  return true;
}

void moe_combine(float* out, const float* rows, const float* weights, int64_t n, int n_used, int64_t width, void* stream, const int32_t* pair_row,
                 ExpertShare share) {
  if (n <= 0) return;
  const unsigned bx = static_cast<unsigned>(std::min<int64_t>((width + 255) / 256, 64));
  launch_pdl(moe_combine_kernel, dim3(bx, static_cast<unsigned>(n)), dim3(256), static_cast<cudaStream_t>(stream), "moe_combine", out, rows, weights,
             n_used, width, pair_row, share);
}

int64_t moe_max_items(int64_t pairs, int n_expert, int item_rows) { return (pairs + item_rows - 1) / item_rows + n_expert; }

void moe_group(const int32_t* ids, int64_t n, int n_used, int first, int n_expert, int item_rows, int32_t* pair_row, int32_t* row_token,
               int32_t* items, void* stream) {
  if (n <= 0) return;
  const int64_t pairs = n * n_used;
  launch_pdl(moe_group_kernel, dim3(1), dim3(1024), static_cast<cudaStream_t>(stream), "moe_group", ids, static_cast<int>(pairs), n_used, first,
             n_expert, item_rows, static_cast<int>(moe_max_items(pairs, n_expert, item_rows)), pair_row, row_token, items);
}

}  // namespace jing::cuda::ops
