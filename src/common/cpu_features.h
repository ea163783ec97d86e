// What this CPU lets the instruction-set-specific files run (see CMakeLists.txt: a file named
// *_avx2.cpp is compiled with AVX2/FMA/F16C/BMI2, *_avxvnni.cpp adds AVX-VNNI, *_avx512.cpp adds
// AVX-512 F/BW/VL/DQ/VNNI/BF16). Each answer is read once. JING_NO_SIMD, JING_NO_AVXVNNI and
// JING_NO_AVX512 switch a level off, so tests can run the slower paths on a fast machine.
#pragma once

namespace jing::cpu_features {

bool avx2();      // the *_avx2.cpp set: AVX2, FMA, F16C, BMI2 (not with JING_NO_SIMD)
bool avx_vnni();  // avx2() and AVX-VNNI (not with JING_NO_AVXVNNI)
bool avx512();    // avx2() and the *_avx512.cpp set (not with JING_NO_AVX512)
bool amd();       // an AMD CPU (CPUID vendor): where the 8-row tiles were measured to pay

}  // namespace jing::cpu_features
