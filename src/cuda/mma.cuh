// Tensor-core building blocks shared by the mma kernels (mma_f16.cu, attention_mma.cu):
// ldmatrix loads of 8x8 f16 tiles from shared memory and mma.m16n8k16 with f32 accumulators
// (sm_80 and later).
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/kernels.h"
#include "cuda/pdl.cuh"

namespace jing::cuda::mma {

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

// Four 8x8 tiles (lanes 8i..8i+7 give the rows of tile i): an A fragment of 16 x 16.
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const __half* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
// Two tiles: a B fragment of 16 x 8 from rows that hold its columns (lanes 0-15 give the rows).
__device__ __forceinline__ void ldmatrix_x2(uint32_t r[2], const __half* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(smem_addr(p)));
}
// The same from rows that hold its k dimension (transposed on the way).
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t r[2], const __half* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(smem_addr(p)));
}
// c += a b for a 16 x 16 A (row-major), a 16 x 8 B (column-major), f32 accumulators.
__device__ __forceinline__ void mma_m16n8k16(float c[4], const uint32_t a[4], const uint32_t b[2]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// The rows of activations a block of an MmaCall multiplies: a grouped call's work item blockIdx.y
// (its matrix moves w), or tile blockIdx.y of `tile` tokens of a dense one. False: an unused item.
__device__ __forceinline__ bool block_rows(const detail::MmaCall& c, int tile, const uint8_t*& w, int64_t& first, int& n) {
  w = static_cast<const uint8_t*>(c.w);
  if (c.items) {
    wait_for_previous_kernel();  // the work items come from an earlier kernel
    const int32_t* it = c.items + 3 * static_cast<int64_t>(blockIdx.y);
    n = it[2];
    w += static_cast<int64_t>(it[0]) * c.mat_bytes;
    first = it[1];
    return n > 0;
  }
  first = static_cast<int64_t>(blockIdx.y) * tile;
  n = static_cast<int>(min(static_cast<int64_t>(tile), c.n_tokens - first));
  return true;
}

}  // namespace jing::cuda::mma
