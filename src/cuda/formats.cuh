// Every weight format the CUDA kernels decode, and the dispatch from a GgmlType to its decoder.
#pragma once
#include "cuda/formats_iq.cuh"
#include "cuda/formats_kquant.cuh"
#include "cuda/formats_legacy.cuh"
#include "cuda/formats_other.cuh"
#include "quant/types.h"

namespace jing::cuda::fmt {

// Calls f(Format{}) for the decoder of type t; returns false for types without one.
template <class Fn>
bool with_format(GgmlType t, Fn&& f) {
  switch (t) {
    case GgmlType::F32: f(F32{}); return true;
    case GgmlType::F16: f(F16{}); return true;
    case GgmlType::BF16: f(BF16{}); return true;
    case GgmlType::Q4_0: f(Q4_0{}); return true;
    case GgmlType::Q4_1: f(Q4_1{}); return true;
    case GgmlType::Q5_0: f(Q5_0{}); return true;
    case GgmlType::Q5_1: f(Q5_1{}); return true;
    case GgmlType::Q8_0: f(Q8_0{}); return true;
    case GgmlType::IQ4_NL: f(IQ4_NL{}); return true;
    case GgmlType::MXFP4: f(MXFP4{}); return true;
    case GgmlType::Q2_K: f(Q2_K{}); return true;
    case GgmlType::Q3_K: f(Q3_K{}); return true;
    case GgmlType::Q4_K: f(Q4_K{}); return true;
    case GgmlType::Q5_K: f(Q5_K{}); return true;
    case GgmlType::Q6_K: f(Q6_K{}); return true;
    case GgmlType::IQ2_XXS: f(IQ2_XXS{}); return true;
    case GgmlType::IQ2_XS: f(IQ2_XS{}); return true;
    case GgmlType::IQ2_S: f(IQ2_S{}); return true;
    case GgmlType::IQ3_XXS: f(IQ3_XXS{}); return true;
    case GgmlType::IQ3_S: f(IQ3_S{}); return true;
    case GgmlType::IQ1_S: f(IQ1_S{}); return true;
    case GgmlType::IQ1_M: f(IQ1_M{}); return true;
    case GgmlType::IQ4_XS: f(IQ4_XS{}); return true;
    case GgmlType::TQ1_0: f(TQ1_0{}); return true;
    case GgmlType::TQ2_0: f(TQ2_0{}); return true;
    default: return false;
  }
}

}  // namespace jing::cuda::fmt
