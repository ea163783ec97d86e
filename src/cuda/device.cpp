#include "cuda/device.h"

#include <cuda_runtime_api.h>

#include <atomic>
#include <utility>

#include "cuda/check.h"

namespace jing::cuda {

int device_count() {
  // Asked once: without a driver the runtime answers an error (cudaErrorNoDevice,
  // cudaErrorInsufficientDriver, ...), which means "no GPU" here. The error is cleared so it does
  // not surface at a later, unrelated call.
  static const int n = [] {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return count;
  }();
  return n;
}

bool available() { return device_count() > 0; }

std::string device_name(int device) {
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  return p.name;
}

void set_device(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }

int current_device() {
  int d = 0;
  check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}

MemoryInfo memory_info(int device) {
  set_device(device);
  MemoryInfo m;
  check(cudaMemGetInfo(&m.free, &m.total), "cudaMemGetInfo");
  return m;
}

DeviceBuffer::DeviceBuffer(size_t bytes) { reserve(bytes); }

DeviceBuffer::~DeviceBuffer() {
  if (ptr_) cudaFree(ptr_);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = std::exchange(o.ptr_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

uint64_t DeviceBuffer::allocations() { return g_allocations.load(); }

void DeviceBuffer::reserve(size_t bytes) {
  if (bytes <= size_) return;
  ++g_allocations;
  if (ptr_) cudaFree(ptr_);  // cudaFree waits for work that may still use the old buffer
  ptr_ = nullptr, size_ = 0;
  if (cudaMalloc(&ptr_, bytes) != cudaSuccess) {
    cudaGetLastError();
    ptr_ = nullptr;
    throw Error("CUDA: out of device memory allocating " + std::to_string(bytes >> 20) + " MiB");
  }
  size_ = bytes;
}

void DeviceBuffer::upload(const void* src, size_t bytes, size_t offset) {
  if (offset + bytes > size_) throw Error("CUDA: upload past the end of a device buffer");
  check(cudaMemcpy(static_cast<char*>(ptr_) + offset, src, bytes, cudaMemcpyHostToDevice), "upload");
  // A copy from pageable memory may return before it lands; kernels on other (non-blocking)
  // streams must see the data.
  check(cudaDeviceSynchronize(), "upload");
}

void DeviceBuffer::download(void* dst, size_t bytes, size_t offset) const {
  if (offset + bytes > size_) throw Error("CUDA: download past the end of a device buffer");
  check(cudaDeviceSynchronize(), "download");  // work on other streams that writes this buffer
  check(cudaMemcpy(dst, static_cast<const char*>(ptr_) + offset, bytes, cudaMemcpyDeviceToHost), "download");
}

Stream::Stream() {
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  stream_ = s;
}

Stream::~Stream() {
  if (stream_) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

void Stream::synchronize() const { check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)), "cudaStreamSynchronize"); }

}  // namespace jing::cuda
