// Matrix-matrix product of the 256-value block formats on AVX2 (CPUs without AVX-512 or
// AVX-VNNI): PMADDUBSW + PMADDWD. The kernel is in gemm_kquant_avx256.h.
#define JING_AVX_VNNI 0
#define JING_KQUANT_NAMESPACE avx2
#include "cpu/gemm_kquant_avx256.h"
