// Weights to float or f16: dequantize_rows (embedding rows) and
// the matrix path's f16 copy of a weight panel. Float output is bit-identical to the CPU's
// dequantize_row (the decoders round each step as it does).
#include <cuda_fp16.h>

#include <algorithm>

#include "cuda/check.h"
#include "cuda/device.h"
#include "cuda/formats.cuh"
#include "cuda/gemv.cuh"
#include "cuda/kernels.h"
#include "cuda/matmul.h"

namespace jing::cuda {
namespace detail {
namespace {

constexpr int kWarps = 4;

// One warp per chunk of a row (the GEMV's chunk size): chunks come into shared memory with
// coalesced 16-byte asynchronous copies, the next while this one is expanded, then each lane
// expands 32-weight items from there.
template <class F, bool kHalf>
__global__ void __launch_bounds__(kWarps * 32) dequant_kernel(const uint8_t* src, size_t row_bytes, int64_t rows, int blocks, void* dst,
                                                            int64_t cols, fmt::Tables tab) {
  constexpr int kItems = F::kWeights / 32, kChunkBlocks = chunk_blocks<F, 2>(), kChunkBytes = kChunkBlocks * F::kBytes;
  __shared__ __align__(16) uint8_t smem[kWarps][2][kChunkBytes];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int chunks = (blocks + kChunkBlocks - 1) / kChunkBlocks;
  const bool aligned = row_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0;
  const int64_t tiles = rows * chunks, stride = static_cast<int64_t>(gridDim.x) * kWarps;
  auto fetch = [&](int64_t tile, int buf) {
    if (tile < tiles) {
      const int64_t row = tile / chunks;
      const int c = static_cast<int>(tile % chunks);
      const int bytes = min(kChunkBlocks, blocks - c * kChunkBlocks) * F::kBytes;
      copy_chunk<kChunkBytes>(smem[warp][buf], src + row * row_bytes + static_cast<int64_t>(c) * kChunkBytes, bytes, lane, aligned);
    }
    __pipeline_commit();
  };
  int buf = 0;
  fetch(static_cast<int64_t>(blockIdx.x) * kWarps + warp, 0);
  for (int64_t tile = static_cast<int64_t>(blockIdx.x) * kWarps + warp; tile < tiles; tile += stride, buf ^= 1) {
    fetch(tile + stride, buf ^ 1);
    __pipeline_wait_prior(1);
    __syncwarp();
    const int64_t row = tile / chunks;
    const int c = static_cast<int>(tile % chunks);
    const int nb = min(kChunkBlocks, blocks - c * kChunkBlocks);
    for (int it = lane; it < nb * kItems; it += 32) {
      float o[32];
      F::dequant(smem[warp][buf] + it / kItems * F::kBytes, it % kItems, tab, o);
      const int64_t at = row * cols + (static_cast<int64_t>(c) * kChunkBlocks * kItems + it) * 32;
      if constexpr (kHalf) {
        auto* out = reinterpret_cast<uint4*>(static_cast<__half*>(dst) + at);  // cols % 32 == 0: 64-byte aligned
#pragma unroll
        for (int v = 0; v < 4; ++v) {
          uint32_t w[4];
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const __half2 h = __floats2half2_rn(o[8 * v + 2 * j], o[8 * v + 2 * j + 1]);
            w[j] = *reinterpret_cast<const uint32_t*>(&h);
          }
          out[v] = make_uint4(w[0], w[1], w[2], w[3]);
        }
      } else {
        auto* out = reinterpret_cast<float4*>(static_cast<float*>(dst) + at);
#pragma unroll
        for (int v = 0; v < 8; ++v) out[v] = make_float4(o[4 * v], o[4 * v + 1], o[4 * v + 2], o[4 * v + 3]);
      }
    }
    __syncwarp();
  }
}

// Rows picked by id (the embedding lookup of a prompt): a thread per 32-weight item, straight
// from the table, bit-identical to the CPU as dequant_kernel is.
template <class F>
__global__ void dequant_gather_kernel(const uint8_t* table, size_t row_bytes, const int32_t* ids, int64_t n, int64_t cols, float* dst,
                                      fmt::Tables tab) {
  constexpr int kItems = F::kWeights / 32;
  const int64_t items = cols / 32, i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * items) return;
  const int64_t t = i / items, it = i % items;
  float o[32];
  F::dequant(table + static_cast<int64_t>(ids[t]) * row_bytes + it / kItems * F::kBytes, static_cast<int>(it % kItems), tab, o);
  auto* out = reinterpret_cast<float4*>(dst + t * cols + it * 32);
#pragma unroll
  for (int v = 0; v < 8; ++v) out[v] = make_float4(o[4 * v], o[4 * v + 1], o[4 * v + 2], o[4 * v + 3]);
}

}  // namespace

bool dequantize_gather(GgmlType type, const void* table, size_t row_bytes, const int32_t* ids, int64_t n, int64_t cols, float* dst,
                       const fmt::Tables& tab, cudaStream_t s) {
  return fmt::with_format(type, [&](auto f) {
    using F = decltype(f);
    if (cols % F::kWeights) throw Error("CUDA dequantize: row length is not a multiple of the block size");
    if ((reinterpret_cast<uintptr_t>(table) | row_bytes) % F::kAlign) throw Error("CUDA dequantize: rows are not aligned to their block size");
    const int64_t threads = n * (cols / 32);
    if (threads == 0) return;
    dequant_gather_kernel<F><<<static_cast<unsigned>((threads + 127) / 128), 128, 0, s>>>(static_cast<const uint8_t*>(table), row_bytes, ids,
                                                                                         n, cols, dst, tab);
    check_launch("dequantize (gather)");
  });
}

bool dequantize(GgmlType type, const void* src, size_t row_bytes, int64_t rows, int64_t cols, void* dst, bool to_half, const fmt::Tables& tab,
                cudaStream_t s) {
  return fmt::with_format(type, [&](auto f) {
    using F = decltype(f);
    if (cols % F::kWeights) throw Error("CUDA dequantize: row length is not a multiple of the block size");
    if ((reinterpret_cast<uintptr_t>(src) | row_bytes) % F::kAlign) throw Error("CUDA dequantize: rows are not aligned to their block size");
    const int blocks = static_cast<int>(cols / F::kWeights);
    const int64_t tiles = rows * ((blocks + chunk_blocks<F, 2>() - 1) / chunk_blocks<F, 2>());
    const int grid = static_cast<int>(std::min<int64_t>((tiles + kWarps - 1) / kWarps, int64_t{sm_count()} * 16));
    if (tiles == 0) return;
    const auto* from = static_cast<const uint8_t*>(src);
    if (to_half) dequant_kernel<F, true><<<grid, kWarps * 32, 0, s>>>(from, row_bytes, rows, blocks, dst, cols, tab);
    else dequant_kernel<F, false><<<grid, kWarps * 32, 0, s>>>(from, row_bytes, rows, blocks, dst, cols, tab);
    check_launch("dequantize");
  });
}

}  // namespace detail

void dequantize_gather(GgmlType type, const void* table, size_t row_bytes, const int32_t* ids, int64_t n, int64_t cols, float* dst,
                       const Stream& stream) {
  const auto s = static_cast<cudaStream_t>(stream.handle());
  if (!detail::dequantize_gather(type, table, row_bytes, ids, n, cols, dst, detail::device_tables(), s))
    throw Error("CUDA dequantize: no decoder for tensor type " + std::string(traits(type).name));
}

void dequantize_rows(GgmlType type, const void* src, float* dst, int64_t n_rows, int64_t cols, const Stream& stream) {
  const auto s = static_cast<cudaStream_t>(stream.handle());
  if (!detail::dequantize(type, src, row_size(type, cols), n_rows, cols, dst, false, detail::device_tables(), s))
    throw Error("CUDA dequantize: no decoder for tensor type " + std::string(traits(type).name));
}

}  // namespace jing::cuda
