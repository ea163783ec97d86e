// Lookup tables of the IQ and FP4 formats (see iq_tables.cpp for their source).
#pragma once
#include <cstdint>

namespace jing::iq {

extern const uint8_t kmask_iq2xs[8];
extern const uint8_t ksigns_iq2xs[128];
extern const uint64_t iq2xxs_grid[256];
extern const uint64_t iq2xs_grid[512];
extern const uint64_t iq2s_grid[1024];
extern const uint32_t iq3xxs_grid[256];
extern const uint32_t iq3s_grid[512];
extern const int8_t kvalues_iq4nl[16];
extern const int8_t kvalues_fp4[16];
extern const uint64_t iq1s_grid[2048];

constexpr float kIq1sDelta = 0.125f;  // IQ1S_DELTA / IQ1M_DELTA

}  // namespace jing::iq
