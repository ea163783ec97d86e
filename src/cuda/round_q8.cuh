// Rounding activations to 8-bit blocks exactly as the CPU engine's quantize_row does (Q8_0 and
// Q8_1: a scale per 32 values; Q8_K: a scale per 256 from the signed maximum), one warp per
// block. Shared by the rounding kernels of activations.cu and the kernels that round their own
// output on the way out (norm, SwiGLU), so every path hands the products the same bytes.
// Layout: q [values] int8; one 16-byte record {d, s, sum0, sum1} per 32 values.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

namespace jing::cuda {

__device__ __forceinline__ float half_round(float v) { return __half2float(__float2half_rn(v)); }

// Lane j holds value j of the block.
template <bool kQ8_1>
__device__ __forceinline__ void round_q8_32(float v, int lane, int8_t* q, float4* rec) {
  float amax = fabsf(v);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, o));
  const float d = amax / 127.f, id = d != 0.f ? 1.0f / d : 0.f;
  const int qi = static_cast<int>(roundf(__fmul_rn(v, id)));
  q[lane] = static_cast<int8_t>(qi);
  int half_sum = qi;
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) half_sum += __shfl_xor_sync(0xFFFFFFFFu, half_sum, o);
  const int sum1 = __shfl_sync(0xFFFFFFFFu, half_sum, 16);
  if (lane == 0) {
    const float s = kQ8_1 ? half_round(__fmul_rn(static_cast<float>(half_sum + sum1), d)) : 0.f;
    *rec = make_float4(half_round(d), s, __int_as_float(half_sum), __int_as_float(sum1));
  }
}

// The same rounding for eight consecutive values per lane: lanes 4g..4g+3 hold block g's 32
// (values 8(l%4)..), q and rec at the warp's 256 values. Bytes as round_q8_32's.
template <bool kQ8_1>
__device__ __forceinline__ void round_q8_32_x8(const float v[8], int lane, int8_t* q, float4* rec) {
  float amax = 0.f;
#pragma unroll
  for (int j = 0; j < 8; ++j) amax = fmaxf(amax, fabsf(v[j]));
  amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, 1));
  amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, 2));
  const float d = amax / 127.f, id = d != 0.f ? 1.0f / d : 0.f;
  uint32_t packed[2] = {0, 0};
  int sum = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int qi = static_cast<int>(roundf(__fmul_rn(v[j], id)));
    packed[j / 4] |= static_cast<uint32_t>(qi & 0xFF) << (8 * (j % 4));
    sum += qi;
  }
  reinterpret_cast<uint2*>(q)[lane] = make_uint2(packed[0], packed[1]);
  const int sum16 = sum + __shfl_xor_sync(0xFFFFFFFFu, sum, 1);  // lanes 4g, 4g+1: values 0-15 of block g
  const int next16 = __shfl_down_sync(0xFFFFFFFFu, sum16, 2);    // at lane 4g: values 16-31
  if (lane % 4 == 0) {
    const float s = kQ8_1 ? half_round(__fmul_rn(static_cast<float>(sum16 + next16), d)) : 0.f;
    rec[lane / 4] = make_float4(half_round(d), s, __int_as_float(sum16), __int_as_float(next16));
  }
}

// Lane l holds values 8l..8l+7 of the 256; the scale maps the value of largest magnitude (the
// first of equals) to -127. rec: the block's 8 records.
__device__ __forceinline__ void round_q8_256(const float v[8], int lane, int8_t* q, float4* rec) {
  float mag = 0.f, val = 0.f;
  int idx = 1 << 30;
#pragma unroll
  for (int j = 0; j < 8; ++j)
    if (fabsf(v[j]) > mag) mag = fabsf(v[j]), val = v[j], idx = 8 * lane + j;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xFFFFFFFFu, mag, o), v2 = __shfl_xor_sync(0xFFFFFFFFu, val, o);
    const int i2 = __shfl_xor_sync(0xFFFFFFFFu, idx, o);
    if (m2 > mag || (m2 == mag && i2 < idx)) mag = m2, val = v2, idx = i2;
  }
  float d = 0.f;
  uint32_t packed[2] = {0, 0};
  int sum = 0;
  if (mag != 0.f) {
    const float iscale = -127.f / val;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int qi = min(127, __float2int_rn(__fmul_rn(iscale, v[j])));
      packed[j / 4] |= static_cast<uint32_t>(qi & 0xFF) << (8 * (j % 4));
      sum += qi;
    }
    d = 1.f / iscale;
  }
  reinterpret_cast<uint2*>(q)[lane] = make_uint2(packed[0], packed[1]);
  const int sum16 = sum + __shfl_xor_sync(0xFFFFFFFFu, sum, 1);  // lanes 2m, 2m+1: values 16m..16m+15
  const int next16 = __shfl_down_sync(0xFFFFFFFFu, sum16, 2);    // at lane 4g: the group's second half
  if (lane % 4 == 0) rec[lane / 4] = make_float4(d, 0.f, __int_as_float(sum16), __int_as_float(next16));
}

// Any kind from eight consecutive values per lane (a warp's 256 values; q, rec at their start).
__device__ __forceinline__ void round_values_x8(int kind, const float v[8], int lane, int8_t* q, float4* rec) {
  if (kind == 3) round_q8_256(v, lane, q, rec);
  else if (kind == 2) round_q8_32_x8<true>(v, lane, q, rec);
  else round_q8_32_x8<false>(v, lane, q, rec);
}

// Values each lane holds of a block of `kind` (1 Q8_0, 2 Q8_1, 3 Q8_K: fmt::Act's values); a
// block is 32 times that.
__device__ __forceinline__ int round_lane_values(int kind) { return kind == 3 ? 8 : 1; }

// A warp rounds one block of `kind` whose values lane l holds in v[0 .. round_lane_values(kind)),
// into the block's q and records.
__device__ __forceinline__ void round_values(int kind, const float* v, int lane, int8_t* q, float4* rec) {
  if (kind == 3) round_q8_256(v, lane, q, rec);
  else if (kind == 2) round_q8_32<true>(v[0], lane, q, rec);
  else round_q8_32<false>(v[0], lane, q, rec);
}

// The same for the block starting at value `first` of src (the block's values back to back),
// into q/rec at the same index.
__device__ __forceinline__ void round_block(int kind, const float* src, int64_t first, int lane, int8_t* q, float4* rec) {
  float v[8];
  if (kind == 3) {
    const float4* p = reinterpret_cast<const float4*>(src + first + 8 * lane);
    const float4 a = p[0], c = p[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = c.x, v[5] = c.y, v[6] = c.z, v[7] = c.w;
  } else {
    v[0] = src[first + lane];
  }
  round_values(kind, v, lane, q + first, rec + first / 32);
}

}  // namespace jing::cuda
