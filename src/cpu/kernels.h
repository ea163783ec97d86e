// Fast CPU kernels chosen at run time by instruction set. matmul_fast returns false when no fast
// kernel covers the weight type (or the CPU lacks the instructions); matmul then takes the
// portable path.
#pragma once
#include <cstdint>

#include "cpu/matmul.h"

namespace jing::cpu {

bool matmul_fast(const WeightView& w, const float* x, int64_t n_tokens, float* y, int n_threads);
// cpu::matvecs on the row kernels (false: a type without one; nothing was computed).
bool matvecs_fast(const WeightView* ws, const float* const* xs, float* const* ys, int count, int n_threads);
float dot_f32(const float* a, const float* b, int64_t n);
// Attention's score q . k in avx512::score_dot's order (portable; the SIMD paths and the GPU give
// the same bits): 32 running sums by FMA, then a fixed tree.
float score_dot(const float* a, const float* b, int64_t n);
bool simd_available();    // AVX2 + FMA + F16C kernels usable on this CPU
bool avx512_available();  // AVX-512 F/BW/VL/DQ + VNNI + BF16 kernels usable on this CPU

// Work below this many multiply-adds runs on the calling thread: waking the thread pool costs
// more than it saves, and idle pool threads would spin beside the server's other threads.
constexpr int64_t kParallelMinWork = int64_t{1} << 20;
inline int threads_for(int64_t work, int n_threads) { return work >= kParallelMinWork ? n_threads : 1; }

}  // namespace jing::cpu
