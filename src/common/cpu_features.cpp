#include "common/cpu_features.h"

#include <cpuid.h>

#include <cstdlib>

namespace jing::cpu_features {

namespace {
bool off(const char* env) { return std::getenv(env) != nullptr; }
}  // namespace

bool avx2() {
  static const bool ok = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    const bool f16c = c & (1u << 29);  // (clang 14 has no "f16c" for __builtin_cpu_supports)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c && __builtin_cpu_supports("bmi2") &&
           !off("JING_NO_SIMD");
  }();
  return ok;
}

bool avx_vnni() {
  static const bool ok = [] {
    unsigned a, b, c, d;  // CPUID leaf 7, sub-leaf 1, EAX bit 4
    return avx2() && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4)) && !off("JING_NO_AVXVNNI");
  }();
  return ok;
}

bool avx512() {
  static const bool ok = avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                         __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bf16") && !off("JING_NO_AVX512");
  return ok;
}

bool amd() {
  static const bool is = __builtin_cpu_is("amd");
  return is;
}

}  // namespace jing::cpu_features
