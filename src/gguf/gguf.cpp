#include "gguf/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <regex>

#include "common/error.h"

namespace jing::gguf {

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path.string() + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path.string() + " is not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    throw Error(path.string() + " is empty, not a GGUF file");
  }
  void* p = mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) throw Error("cannot map " + path.string() + ": " + std::strerror(errno));
  data_ = static_cast<const uint8_t*>(p);
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

size_t drop_pages(const void* p, size_t n) {
  const auto begin = reinterpret_cast<uintptr_t>(p);
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t from = (begin + page - 1) / page * page, to = (begin + n) / page * page;
  if (to <= from || madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED) != 0) return 0;  // (locked pages stay)
  return to - from;
}

size_t MappedFile::release(const void* p, size_t n) const {
  const auto begin = reinterpret_cast<uintptr_t>(p), base = reinterpret_cast<uintptr_t>(data_);
  if (!data_ || begin < base || n > size_ || begin - base > size_ - n) return 0;
  return drop_pages(p, n);
}

// Reads one GGUF image with bounds checks on every access.
class Parser {
 public:
  Parser(const uint8_t* data, size_t size, std::string label) : p_(data), size_(size), label_(std::move(label)) {}

  struct Part {
    uint32_t version = 0;
    uint32_t alignment = kDefaultAlignment;
    std::vector<KeyValue> kv;
    std::vector<TensorInfo> tensors;
  };

  Part parse() {
    Part part;
    if (size_ < 24) fail("file is too small to be a GGUF (" + std::to_string(size_) + " bytes)");
    uint32_t magic = u32();
    if (magic != kMagic) fail("not a GGUF file (bad magic)");
    part.version = u32();
    if (part.version == 1) fail("GGUF version 1 is not supported (re-convert the model)");
    if (part.version != 2 && part.version != 3) {
      if ((part.version & 0xFFFF) == 0) fail("big-endian GGUF files are not supported");
      fail("unsupported GGUF version " + std::to_string(part.version));
    }
    uint64_t n_tensors = u64();
    uint64_t n_kv = u64();
    // Each key-value takes at least 12 bytes and each tensor info at least 24: bound counts by the file.
    if (n_kv > remaining() / 12) fail("metadata count " + std::to_string(n_kv) + " exceeds the file size");
    if (n_tensors > remaining() / 24) fail("tensor count " + std::to_string(n_tensors) + " exceeds the file size");

    std::map<std::string, size_t> seen;
    for (uint64_t i = 0; i < n_kv; ++i) {
      KeyValue kv;
      kv.key = str("metadata key");
      if (kv.key.empty()) fail("metadata key " + std::to_string(i) + " is empty");
      auto type = value_type(u32(), kv.key);
      kv.value = value(type, kv.key, 0);
      if (!seen.emplace(kv.key, i).second) fail("duplicate metadata key '" + kv.key + "'");
      part.kv.push_back(std::move(kv));
    }
    if (auto it = seen.find("general.alignment"); it != seen.end()) {
      const Value& v = part.kv[it->second].value;
      if (v.type != ValueType::UINT32) fail("general.alignment must be uint32");
      uint64_t a = v.as_uint();
      if (a == 0 || (a & (a - 1)) != 0 || a > (1u << 30)) fail("general.alignment " + std::to_string(a) + " is not a power of two");
      part.alignment = static_cast<uint32_t>(a);
    }

    std::map<std::string, int> names;
    for (uint64_t i = 0; i < n_tensors; ++i) {
      TensorInfo t;
      t.name = str("tensor name");
      if (t.name.empty()) fail("tensor " + std::to_string(i) + " has an empty name");
      if (!names.emplace(t.name, 0).second) fail("duplicate tensor name '" + t.name + "'");
      uint32_t n_dims = u32();
      if (n_dims == 0 || n_dims > kMaxDims)
        fail("tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
      t.n_dims = static_cast<int>(n_dims);
      uint64_t n_elems = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        uint64_t ne = u64();
        if (ne == 0 || ne > (uint64_t{1} << 40)) fail("tensor '" + t.name + "' has an invalid dimension " + std::to_string(ne));
        if (n_elems > (uint64_t{1} << 50) / ne) fail("tensor '" + t.name + "' has too many elements");
        n_elems *= ne;
        t.ne[d] = static_cast<int64_t>(ne);
      }
      uint32_t type_id = u32();
      auto tr = type_traits(type_id);
      if (!tr) fail("tensor '" + t.name + "' has unknown ggml type id " + std::to_string(type_id));
      t.type = tr->type;
      if (t.ne[0] % tr->block_size != 0)
        fail("tensor '" + t.name + "' row of " + std::to_string(t.ne[0]) + " elements is not a multiple of the " +
             std::string(tr->name) + " block size " + std::to_string(tr->block_size));
      t.nbytes = static_cast<size_t>(n_elems / static_cast<uint64_t>(tr->block_size)) * tr->type_size;
      t.offset = u64();
      if (t.offset % part.alignment != 0)
        fail("tensor '" + t.name + "' offset " + std::to_string(t.offset) + " is not aligned to " + std::to_string(part.alignment));
      part.tensors.push_back(std::move(t));
    }

    // The data section starts at the next alignment boundary; every tensor must lie inside the file.
    uint64_t data_start = (pos_ + part.alignment - 1) / part.alignment * part.alignment;
    if (!part.tensors.empty() && data_start > size_) fail("file ends before its tensor data section");
    uint64_t data_size = data_start <= size_ ? size_ - data_start : 0;
    for (auto& t : part.tensors) {
      if (t.offset > data_size || t.nbytes > data_size - t.offset)
        fail("tensor '" + t.name + "' data (offset " + std::to_string(t.offset) + ", " + std::to_string(t.nbytes) +
             " bytes) runs past the end of the file (truncated?)");
      t.data = p_ + data_start + t.offset;
    }
    std::vector<const TensorInfo*> by_offset;
    for (const auto& t : part.tensors) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i)
      if (by_offset[i - 1]->offset + by_offset[i - 1]->nbytes > by_offset[i]->offset)
        fail("tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name + "' overlap");
    return part;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(label_ + ": " + what); }
  size_t remaining() const { return size_ - pos_; }
  void need(size_t n, const char* what) const {
    if (n > remaining()) fail(std::string("unexpected end of file while reading ") + what + " at offset " + std::to_string(pos_));
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  uint32_t u32() { return read<uint32_t>("a 32-bit integer"); }
  uint64_t u64() { return read<uint64_t>("a 64-bit integer"); }
  std::string str(const char* what) {
    uint64_t len = u64();
    if (len > remaining()) fail(std::string(what) + " length " + std::to_string(len) + " runs past the end of the file");
    std::string s(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(len));
    pos_ += len;
    return s;
  }
  ValueType value_type(uint32_t t, const std::string& key) {
    if (t > static_cast<uint32_t>(ValueType::FLOAT64)) fail("metadata '" + key + "' has unknown value type " + std::to_string(t));
    return static_cast<ValueType>(t);
  }
  Value value(ValueType type, const std::string& key, int depth) {
    switch (type) {
      case ValueType::UINT8: return Value::u8(read<uint8_t>("uint8"));
      case ValueType::INT8: return Value::i8(read<int8_t>("int8"));
      case ValueType::UINT16: return Value::u16(read<uint16_t>("uint16"));
      case ValueType::INT16: return Value::i16(read<int16_t>("int16"));
      case ValueType::UINT32: return Value::u32(read<uint32_t>("uint32"));
      case ValueType::INT32: return Value::i32(read<int32_t>("int32"));
      case ValueType::FLOAT32: return Value::f32(read<float>("float32"));
      case ValueType::UINT64: return Value::u64(read<uint64_t>("uint64"));
      case ValueType::INT64: return Value::i64(read<int64_t>("int64"));
      case ValueType::FLOAT64: return Value::f64(read<double>("float64"));
      case ValueType::BOOL: {
        uint8_t b = read<uint8_t>("bool");
        if (b > 1) fail("metadata '" + key + "' has an invalid bool byte " + std::to_string(b));
        return Value::boolean(b != 0);
      }
      case ValueType::STRING: return Value::str(str("string"));
      case ValueType::ARRAY: {
        if (depth >= 8) fail("metadata '" + key + "' nests arrays too deeply");
        ValueType elem = value_type(u32(), key);
        uint64_t n = u64();
        // Every element takes at least one byte: a count larger than what is left is corrupt.
        if (n > remaining()) fail("metadata '" + key + "' array length " + std::to_string(n) + " exceeds the file size");
        std::vector<Value> items;
        items.reserve(static_cast<size_t>(n));
        for (uint64_t i = 0; i < n; ++i) items.push_back(value(elem, key, depth + 1));
        return Value::array(elem, std::move(items));
      }
    }
    fail("metadata '" + key + "' has unknown value type");
  }

  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  std::string label_;
};

std::optional<SplitName> parse_split_name(const std::string& filename) {
  static const std::regex re(R"((.*)-(\d{5})-of-(\d{5})\.gguf)");
  std::smatch m;
  if (!std::regex_match(filename, m, re)) return std::nullopt;
  SplitName s;
  s.prefix = m[1];
  s.index = std::stoi(m[2]) - 1;
  s.count = std::stoi(m[3]);
  if (s.index < 0 || s.count < 1 || s.index >= s.count) return std::nullopt;
  return s;
}

std::string split_path(const std::string& prefix, int index, int count) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "-%05d-of-%05d.gguf", index + 1, count);
  return prefix + buf;
}

namespace {

int64_t split_key(const Parser::Part& part, const std::string& key, const std::string& label) {
  for (const auto& kv : part.kv)
    if (kv.key == key) {
      if (!kv.value.is_integer()) throw Error(label + ": " + key + " must be an integer");
      return kv.value.as_int();
    }
  return -1;
}

}  // namespace

File File::parse(const uint8_t* data, size_t size, const std::string& label) {
  Parser parser(data, size, label);
  Parser::Part part = parser.parse();
  File f;
  f.version_ = part.version;
  f.alignment_ = part.alignment;
  f.total_size_ = size;
  for (size_t i = 0; i < part.kv.size(); ++i) f.kv_index_[part.kv[i].key] = i;
  f.kv_ = std::move(part.kv);
  for (auto& t : part.tensors) {
    f.tensor_index_[t.name] = f.tensors_.size();
    f.tensors_.push_back(std::move(t));
  }
  return f;
}

File File::open(const std::filesystem::path& path, const OpenOptions& opts) {
  std::vector<std::filesystem::path> paths{path};
  auto split = parse_split_name(path.filename().string());
  if (split && split->count > 1 && opts.load_split_parts) {
    paths.clear();
    for (int i = 0; i < split->count; ++i) {
      auto p = path.parent_path() / split_path(split->prefix, i, split->count);
      if (!std::filesystem::exists(p))
        throw Error("split model part " + std::to_string(i + 1) + " of " + std::to_string(split->count) + " is missing: " + p.string());
      paths.push_back(p);
    }
  }

  File f;
  int64_t expected_tensors = -1;
  for (size_t i = 0; i < paths.size(); ++i) {
    auto mapped = std::make_shared<MappedFile>(paths[i]);
    const std::string label = paths[i].string();
    Parser parser(mapped->data(), mapped->size(), label);
    Parser::Part part = parser.parse();
    int64_t count = split_key(part, "split.count", label);
    int64_t no = split_key(part, "split.no", label);
    if (opts.load_split_parts && (paths.size() > 1 || count > 1)) {
      if (count != static_cast<int64_t>(paths.size()))
        throw Error(label + ": split.count is " + std::to_string(count) + " but " + std::to_string(paths.size()) +
                    " part file(s) were found" + (split ? "" : " (a split model's files end in -0000N-of-0000M.gguf)"));
      if (no != static_cast<int64_t>(i))
        throw Error(label + ": split.no is " + std::to_string(no) + ", expected " + std::to_string(i));
      int64_t tc = split_key(part, "split.tensors.count", label);
      if (i == 0) expected_tensors = tc;
      else if (tc != expected_tensors)
        throw Error(label + ": split.tensors.count " + std::to_string(tc) + " differs from the first part's " + std::to_string(expected_tensors));
    }
    if (i == 0) {
      f.version_ = part.version;
      f.alignment_ = part.alignment;
      for (size_t k = 0; k < part.kv.size(); ++k) f.kv_index_[part.kv[k].key] = k;
      f.kv_ = std::move(part.kv);
    }
    for (auto& t : part.tensors) {
      t.part = static_cast<int>(i);
      if (!f.tensor_index_.emplace(t.name, f.tensors_.size()).second)
        throw Error(label + ": tensor '" + t.name + "' also appears in an earlier part");
      f.tensors_.push_back(std::move(t));
    }
    f.total_size_ += mapped->size();
    f.parts_.push_back(std::move(mapped));
    f.part_paths_.push_back(paths[i]);
  }
  if (expected_tensors >= 0 && opts.load_split_parts && expected_tensors != static_cast<int64_t>(f.tensors_.size()))
    throw Error(path.string() + ": split.tensors.count is " + std::to_string(expected_tensors) + " but the parts hold " +
                std::to_string(f.tensors_.size()) + " tensors");
  return f;
}

const Value* File::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].value;
}

template <typename F>
static auto typed(const File& f, const std::string& key, F&& get) -> std::optional<decltype(get(std::declval<const Value&>()))> {
  const Value* v = f.find(key);
  if (!v) return std::nullopt;
  try {
    return get(*v);
  } catch (const Error& e) {
    throw Error("metadata '" + key + "': " + e.what());
  }
}

std::optional<std::string> File::get_string(const std::string& key) const {
  return typed(*this, key, [](const Value& v) { return v.as_string(); });
}
std::optional<int64_t> File::get_int(const std::string& key) const {
  return typed(*this, key, [](const Value& v) { return v.as_int(); });
}
std::optional<double> File::get_float(const std::string& key) const {
  return typed(*this, key, [](const Value& v) { return v.as_float(); });
}
std::optional<bool> File::get_bool(const std::string& key) const {
  return typed(*this, key, [](const Value& v) { return v.as_bool(); });
}
const Array* File::get_array(const std::string& key) const {
  const Value* v = find(key);
  if (!v) return nullptr;
  if (v->type != ValueType::ARRAY) throw Error("metadata '" + key + "' is not an array");
  return &v->as_array();
}

std::string File::architecture() const { return get_string("general.architecture").value_or(""); }
std::optional<int64_t> File::arch_int(const std::string& suffix) const { return get_int(architecture() + "." + suffix); }
std::optional<double> File::arch_float(const std::string& suffix) const { return get_float(architecture() + "." + suffix); }

size_t File::release_pages(const void* p, size_t n) const {
  for (const auto& part : parts_)
    if (part) {
      const auto* b = static_cast<const uint8_t*>(p);
      if (b >= part->data() && b < part->data() + part->size()) return part->release(p, n);
    }
  return 0;
}

const TensorInfo* File::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& File::tensor(const std::string& name) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) throw Error("model has no tensor '" + name + "'");
  return *t;
}

}  // namespace jing::gguf
