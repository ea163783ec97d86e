// MoE routing and mixing on the device, so a decode step's experts are chosen and run without a
// round trip to the host (and the step can be recorded as a CUDA graph).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "cuda/check.h"
#include "cuda/model_ops.h"
#include "cuda/pdl.cuh"

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

// One block per token, one thread per expert.
__global__ void moe_route_kernel(MoeRouteParams p, const float* logits, const float* bias, int32_t* ids, float* weights) {
  __shared__ float prob[kMaxExperts], select[kMaxExperts];
  __shared__ Best red[32];
  __shared__ float group_score[64];
  __shared__ int chosen[64];
  const int t = blockIdx.x, e = threadIdx.x, E = p.n_expert;
  wait_for_previous_kernel();
  let_next_kernel_start();
  const float l = e < E ? logits[static_cast<int64_t>(t) * E + e] : -INFINITY;
  float pr;
  if (p.sigmoid) {
    pr = 1.0f / (1.0f + expf(-l));
  } else {
    const float mx = block_best(Best{l, e}, red).v;
    const float ex = e < E ? expf(l - mx) : 0.0f;
    // The sum in double, as the CPU's softmax.
    __shared__ double dsum[32];
    double s = ex;
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (e % 32 == 0) dsum[e / 32] = s;
    __syncthreads();
    double total = 0;
    for (int w = 0; w < (blockDim.x + 31) / 32; ++w) total += dsum[w];
    pr = ex * static_cast<float>(1.0 / total);
  }
  if (e < E) prob[e] = pr, select[e] = pr + (bias ? bias[e] : 0.0f);
  __syncthreads();
  if (p.n_group > 1) {
    // A group scores the sum of its two best experts; experts outside the best groups drop out.
    const int per = E / p.n_group;
    if (e < p.n_group) {
      float a = -INFINITY, b = -INFINITY;
      for (int i = e * per; i < (e + 1) * per; ++i) {
        const float v = select[i];
        if (v > a) b = a, a = v;
        else if (v > b) b = v;
      }
      group_score[e] = a + (per > 1 ? b : 0.0f);
    }
    __syncthreads();
    if (e == 0) {
      bool keep[64] = {};
      for (int k = 0; k < p.n_group_used; ++k) {
        int best = -1;
        for (int g = 0; g < p.n_group; ++g)
          if (!keep[g] && (best < 0 || group_score[g] > group_score[best])) best = g;
        keep[best] = true;
      }
      for (int g = 0; g < p.n_group; ++g) chosen[g] = keep[g];
    }
    __syncthreads();
    if (e < E && !chosen[e / per]) select[e] = -INFINITY;
    __syncthreads();
  }
  // Top n_used by selection score: one warp, a warp-wide maximum at a time (no block barriers).
  __shared__ int picked[64];
  if (e < 32) {
    for (int k = 0; k < p.n_used; ++k) {
      Best b{-INFINITY, kMaxExperts};
      for (int i = e; i < E; i += 32) b = better(b, Best{select[i], i});
      for (int o = 16; o > 0; o >>= 1) b = better(b, Best{__shfl_xor_sync(0xffffffffu, b.v, o), __shfl_xor_sync(0xffffffffu, b.i, o)});
      if (e == 0) picked[k] = b.i;
      if (b.i % 32 == e && b.i < E) select[b.i] = -INFINITY;  // its owner takes it out
      __syncwarp();
    }
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
      ids[static_cast<int64_t>(t) * p.n_used + k] = picked[k];
      weights[static_cast<int64_t>(t) * p.n_used + k] = w * p.scale;
    }
  }
}

__global__ void moe_combine_kernel(float* out, const float* rows, const float* weights, int n_used, int64_t width, const int32_t* pair_row) {
  const int64_t t = blockIdx.y;
  wait_for_previous_kernel();
  let_next_kernel_start();
  for (int64_t d = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; d < width; d += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < n_used; ++j) {
      const int64_t r = pair_row ? pair_row[t * n_used + j] : t * n_used + j;
      acc += weights[t * n_used + j] * rows[r * width + d];
    }
    out[t * width + d] = acc;
  }
}


// One block: counts per expert, their running starts, the work items, then each pair's row.
// (Rows of one expert land in any order: every row's product is computed on its own.)
__global__ void moe_group_kernel(const int32_t* ids, int pairs, int n_used, int n_expert, int item_rows, int max_items, int32_t* pair_row,
                                 int32_t* row_token, int32_t* items) {
  __shared__ int count[kMaxExperts], start[kMaxExperts];
  wait_for_previous_kernel();
  let_next_kernel_start();
  for (int e = threadIdx.x; e < n_expert; e += blockDim.x) count[e] = 0;
  __syncthreads();
  for (int p = threadIdx.x; p < pairs; p += blockDim.x) atomicAdd(&count[ids[p]], 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    int row = 0, item = 0;
    for (int e = 0; e < n_expert; ++e) {
      start[e] = row;
      for (int c = 0; c < count[e]; c += item_rows, ++item)
        items[3 * item] = e, items[3 * item + 1] = row + c, items[3 * item + 2] = min(item_rows, count[e] - c);
      row += count[e];
    }
    for (; item < max_items; ++item) items[3 * item] = 0, items[3 * item + 1] = 0, items[3 * item + 2] = 0;
  }
  __syncthreads();
  for (int p = threadIdx.x; p < pairs; p += blockDim.x) {
    const int r = atomicAdd(&start[ids[p]], 1);
    pair_row[p] = r;
    row_token[r] = p / n_used;
  }
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

void moe_combine(float* out, const float* rows, const float* weights, int64_t n, int n_used, int64_t width, void* stream, const int32_t* pair_row) {
  if (n <= 0) return;
  const unsigned bx = static_cast<unsigned>(std::min<int64_t>((width + 255) / 256, 64));
  launch_pdl(moe_combine_kernel, dim3(bx, static_cast<unsigned>(n)), dim3(256), static_cast<cudaStream_t>(stream), "moe_combine", out, rows, weights,
             n_used, width, pair_row);
}

int64_t moe_max_items(int64_t pairs, int n_expert, int item_rows) { return (pairs + item_rows - 1) / item_rows + n_expert; }

void moe_group(const int32_t* ids, int64_t n, int n_used, int n_expert, int item_rows, int32_t* pair_row, int32_t* row_token, int32_t* items,
               void* stream) {
  if (n <= 0) return;
  const int64_t pairs = n * n_used;
  launch_pdl(moe_group_kernel, dim3(1), dim3(1024), static_cast<cudaStream_t>(stream), "moe_group", ids, static_cast<int>(pairs), n_used, n_expert,
             item_rows, static_cast<int>(moe_max_items(pairs, n_expert, item_rows)), pair_row, row_token, items);
}

}  // namespace jing::cuda::ops
