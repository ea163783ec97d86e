// GGUF reader: memory-maps a model (all parts of a split model) and validates it strictly.
//
// Every offset, size and count is checked against the file before use, so a malformed or
// hostile file gives a jing::Error naming the problem, never an out-of-bounds read.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gguf/value.h"
#include "quant/types.h"

namespace jing::gguf {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kDefaultAlignment = 32;
constexpr int kMaxDims = 4;

struct TensorInfo {
  std::string name;
  GgmlType type;
  int n_dims = 0;
  int64_t ne[kMaxDims] = {1, 1, 1, 1};  // ne[0] is the row length (contiguous dimension)
  uint64_t offset = 0;                   // relative to its part's data section
  size_t nbytes = 0;
  int part = 0;                          // which file of a split model holds it
  const uint8_t* data = nullptr;         // into the mapping

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  size_t row_bytes() const { return nbytes / static_cast<size_t>(n_rows()); }
};

struct KeyValue {
  std::string key;
  Value value;
};

// Drops this process's pages wholly inside [p, p + n) (MADV_DONTNEED): pages of a file mapping map
// back from the file on a later read; anonymous ones read back as zeros. Returns the bytes dropped.
size_t drop_pages(const void* p, size_t n);

// A read-only mapping of one file.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  // Drops this process's pages of [p, p + n) that lie wholly inside the mapping (weights copied
  // elsewhere: a later read maps them again from the file). Returns the bytes dropped.
  size_t release(const void* p, size_t n) const;

 private:
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

struct OpenOptions {
  bool load_split_parts = true;  // false: read only the named file (used by tools that inspect one part)
};

class File {
 public:
  // Opens a GGUF. For a split model any part may be named: every part is found, mapped and checked.
  static File open(const std::filesystem::path& path, const OpenOptions& opts = {});
  // Parses a GGUF held in memory (no split handling); used by the fuzzer and tests.
  static File parse(const uint8_t* data, size_t size, const std::string& label = "<memory>");

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  int n_parts() const { return static_cast<int>(parts_.size()); }
  // MappedFile::release for the part holding [p, p + n); 0 when no part of this file holds it.
  size_t release_pages(const void* p, size_t n) const;
  const std::vector<std::filesystem::path>& part_paths() const { return part_paths_; }
  uint64_t total_file_size() const { return total_size_; }

  // Metadata of the first part (the model's metadata), in file order.
  const std::vector<KeyValue>& metadata() const { return kv_; }
  const Value* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }
  // Typed getters: nullopt when absent, jing::Error when present with the wrong type.
  std::optional<std::string> get_string(const std::string& key) const;
  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;
  std::optional<bool> get_bool(const std::string& key) const;
  const Array* get_array(const std::string& key) const;
  // `general.architecture`, and `<arch>.<suffix>` lookups for hparams.
  std::string architecture() const;
  std::optional<int64_t> arch_int(const std::string& suffix) const;
  std::optional<double> arch_float(const std::string& suffix) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(const std::string& name) const;
  const TensorInfo& tensor(const std::string& name) const;  // throws when missing

 private:
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  std::vector<KeyValue> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
  std::vector<std::shared_ptr<MappedFile>> parts_;
  std::vector<std::filesystem::path> part_paths_;
  uint64_t total_size_ = 0;
  friend class Parser;
};

// Split naming: "<prefix>-00001-of-00003.gguf". Returns the 0-based part index and count.
struct SplitName {
  std::string prefix;
  int index = 0;
  int count = 1;
};
std::optional<SplitName> parse_split_name(const std::string& filename);
std::string split_path(const std::string& prefix, int index, int count);

}  // namespace jing::gguf
