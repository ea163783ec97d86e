// GGUF writer: streams a model to disk (header first, then tensor data in order), so quantize,
// synth and split never hold a whole model in memory. Files appear atomically: data goes to
// "<path>.tmp" and is renamed into place only when complete.
#pragma once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "gguf/gguf.h"

namespace jing::gguf {

struct TensorSpec {
  std::string name;
  GgmlType type;
  std::vector<int64_t> shape;  // ne[0] first (row length), as GGUF stores it
  size_t nbytes() const;
};

class Writer {
 public:
  Writer() = default;
  ~Writer();  // an unfinished file is removed
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Metadata in the order it will be written; setting an existing key replaces its value in place.
  void set(const std::string& key, Value value);
  void remove(const std::string& key);
  void copy_metadata(const File& from);  // every key but split.*
  void set_alignment(uint32_t alignment);  // writes general.alignment when not 32
  void add_tensor(TensorSpec spec);

  // Writes header and tensor table to "<path>.tmp"; then write_tensor_data once per tensor, in
  // add_tensor order; finish() checks sizes, flushes, fsyncs and renames into place.
  void begin(const std::filesystem::path& path);
  void write_tensor_data(const void* data, size_t nbytes);
  // The same in pieces: parts of the current tensor, in order, adding up to its size.
  void write_tensor_part(const void* data, size_t nbytes);
  void finish();

  // One call for small files: every tensor's bytes given up front (data[i] for tensors()[i]).
  void write(const std::filesystem::path& path, const std::vector<const void*>& data);

  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  const std::vector<KeyValue>& metadata() const { return kv_; }

 private:
  std::vector<KeyValue> kv_;
  std::vector<TensorSpec> tensors_;
  uint32_t alignment_ = kDefaultAlignment;
  std::filesystem::path path_, tmp_path_;
  std::FILE* out_ = nullptr;
  size_t next_tensor_ = 0;
  uint64_t data_written_ = 0;
  size_t part_written_ = 0;  // bytes of the current tensor written through write_tensor_part
};

// Which part each tensor goes to: in order, a part closing once it holds its share of the bytes,
// keeping enough tensors for the parts still to come.
std::vector<int> split_assignment(const std::vector<uint64_t>& sizes, int n_parts);

// Writes `model`'s tensors into n_parts files "<prefix>-0000i-of-0000n.gguf" (llama.cpp's
// gguf-split layout: full metadata in part 1, split.no/split.count/split.tensors.count in every
// part), tensors distributed in order so parts hold about equal bytes. Returns the paths.
std::vector<std::filesystem::path> write_split(const File& model, const std::string& prefix, int n_parts);

}  // namespace jing::gguf
