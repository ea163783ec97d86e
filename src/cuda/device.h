// The CUDA devices this process can use, device memory and streams. Plain C++ (no CUDA headers),
// so CPU-only code can hold these types; src/cuda is compiled only when JING_CUDA is on, so callers
// guard with #ifdef JING_WITH_CUDA.
#pragma once
#include <cstddef>
#include <string>

namespace jing::cuda {

// True when a driver and at least one device answer. Never throws: a CUDA build on a machine
// without a GPU or driver simply has none.
bool available();
int device_count();  // 0 when unavailable
std::string device_name(int device);

struct MemoryInfo {
  size_t free = 0, total = 0;
};
MemoryInfo memory_info(int device);  // of the given device (makes it current)
void set_device(int device);
int current_device();

// Device memory, freed with the object. Throws jing::Error when allocation fails.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), size_(o.size_) { o.ptr_ = nullptr, o.size_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return ptr_; }
  size_t size() const { return size_; }
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }
  // At least `bytes` large afterwards; a reallocation drops the contents.
  void reserve(size_t bytes);
  // How many allocations reserve() has made in this process: a CUDA graph recorded before a
  // later one may hold a freed pointer (the recorder compares this before replaying).
  static uint64_t allocations();
  // Synchronous copies (host memory need not be pinned): they wait for all work on the device,
  // so they are for loading and tests, not for a decode loop.
  void upload(const void* src, size_t bytes, size_t offset = 0);
  void download(void* dst, size_t bytes, size_t offset = 0) const;

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

// A CUDA stream of the current device (non-blocking with respect to the legacy default stream).
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  void* handle() const { return stream_; }  // a cudaStream_t
  void synchronize() const;

 private:
  void* stream_ = nullptr;
};

}  // namespace jing::cuda
