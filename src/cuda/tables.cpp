// What the kernels need to know per device: the IQ/FP4 tables of src/quant/iq_tables.cpp,
// copied once into each device's memory (kernels read the same data the CPU decoders do), the
// SM count and whether programmatic dependent launch is available.
#include <array>
#include <cstring>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "cuda/check.h"
#include "cuda/formats_iq.cuh"
#include "cuda/kernels.h"
#include "quant/iq_tables.h"

namespace jing::cuda::detail {
namespace {

struct DeviceTables {
  void* memory = nullptr;
  fmt::Tables tables;
};

}  // namespace

constexpr int kMaxDevices = 64;

fmt::Tables device_tables() {
  static std::mutex mu;
  static std::array<DeviceTables, kMaxDevices> per_device;
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  if (dev < 0 || dev >= kMaxDevices) throw Error("CUDA: device index out of range");
  std::lock_guard<std::mutex> lock(mu);
  DeviceTables& t = per_device[dev];
  if (t.memory) return t.tables;
  // One allocation; each table at a 16-byte aligned offset (the 16-entry tables are read as one
  // 16-byte load).
  std::vector<uint8_t> host;
  auto add = [&](const void* data, size_t bytes) {
    const size_t off = (host.size() + 15) / 16 * 16;
    host.resize(off + bytes);
    std::memcpy(host.data() + off, data, bytes);
    return off;
  };
  const size_t o2xxs = add(iq::iq2xxs_grid, sizeof iq::iq2xxs_grid), o2xs = add(iq::iq2xs_grid, sizeof iq::iq2xs_grid),
               o2s = add(iq::iq2s_grid, sizeof iq::iq2s_grid), o3xxs = add(iq::iq3xxs_grid, sizeof iq::iq3xxs_grid),
               o3s = add(iq::iq3s_grid, sizeof iq::iq3s_grid), o1s = add(iq::iq1s_grid, sizeof iq::iq1s_grid),
               osg = add(iq::ksigns_iq2xs, sizeof iq::ksigns_iq2xs), o4nl = add(iq::kvalues_iq4nl, sizeof iq::kvalues_iq4nl),
               ofp4 = add(iq::kvalues_fp4, sizeof iq::kvalues_fp4);
  uint32_t iq1s_nib[fmt::kIq1sGridEntries];
  for (int i = 0; i < fmt::kIq1sGridEntries; ++i) iq1s_nib[i] = fmt::iq1s_nibbles(iq::iq1s_grid[i]);
  const size_t o1sn = add(iq1s_nib, sizeof iq1s_nib);
  void* mem = nullptr;
  check(cudaMalloc(&mem, host.size()), "cudaMalloc (lookup tables)");
  check(cudaMemcpy(mem, host.data(), host.size(), cudaMemcpyHostToDevice), "cudaMemcpy (lookup tables)");
  const auto* base = static_cast<const uint8_t*>(mem);
  t.tables.iq2xxs = reinterpret_cast<const uint64_t*>(base + o2xxs);
  t.tables.iq2xs = reinterpret_cast<const uint64_t*>(base + o2xs);
  t.tables.iq2s = reinterpret_cast<const uint64_t*>(base + o2s);
  t.tables.iq3xxs = reinterpret_cast<const uint32_t*>(base + o3xxs);
  t.tables.iq3s = reinterpret_cast<const uint32_t*>(base + o3s);
  t.tables.iq1s = reinterpret_cast<const uint64_t*>(base + o1s);
  t.tables.iq1s_nib = reinterpret_cast<const uint32_t*>(base + o1sn);
  t.tables.ksigns = base + osg;
  t.tables.iq4nl = reinterpret_cast<const int8_t*>(base + o4nl);
  t.tables.fp4 = reinterpret_cast<const int8_t*>(base + ofp4);
  t.memory = mem;  // kept for the life of the process
  return t.tables;
}

int sm_count() {
  int dev = 0, n = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  return n;
}

}  // namespace jing::cuda::detail

namespace jing::cuda {

bool pdl_supported() {
  static std::mutex mu;
  static std::array<int, detail::kMaxDevices> answer{};  // 0 unknown, 1 yes, 2 no
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  if (dev < 0 || dev >= detail::kMaxDevices) return false;
  std::lock_guard<std::mutex> lock(mu);
  if (!answer[dev]) {
    int major = 0;
    check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev), "cudaDeviceGetAttribute");
    answer[dev] = major >= 9 && !std::getenv("JING_NO_PDL") ? 1 : 2;  // JING_NO_PDL: plain launches (for finding ordering bugs)
  }
  return answer[dev] == 1;
}

}  // namespace jing::cuda
