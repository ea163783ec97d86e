// Matrix-matrix product of the 256-value block formats with AVX-VNNI (VPDPBUSD on 256-bit
// registers: Intel client CPUs without AVX-512). The kernel is in gemm_kquant_avx256.h.
#define JING_AVX_VNNI 1
#define JING_KQUANT_NAMESPACE avxvnni
#include "cpu/gemm_kquant_avx256.h"
