#include "gguf/writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace jing::gguf {

size_t TensorSpec::nbytes() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const TypeTraits& tr = traits(type);
  if (shape.empty() || shape[0] % tr.block_size != 0)
    throw Error("tensor '" + name + "': row length is not a multiple of the " + std::string(tr.name) + " block size");
  return static_cast<size_t>(n / tr.block_size) * tr.type_size;
}

namespace {

// Little-endian serialization into a byte buffer (the header is built in memory, then written once).
struct Bytes {
  std::string buf;
  template <typename T>
  void put(T v) {
    buf.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    buf.append(s);
  }
  void put_value(const Value& v) {
    switch (v.type) {
      case ValueType::UINT8: put<uint8_t>(static_cast<uint8_t>(v.as_uint())); break;
      case ValueType::INT8: put<int8_t>(static_cast<int8_t>(v.as_int())); break;
      case ValueType::UINT16: put<uint16_t>(static_cast<uint16_t>(v.as_uint())); break;
      case ValueType::INT16: put<int16_t>(static_cast<int16_t>(v.as_int())); break;
      case ValueType::UINT32: put<uint32_t>(static_cast<uint32_t>(v.as_uint())); break;
      case ValueType::INT32: put<int32_t>(static_cast<int32_t>(v.as_int())); break;
      case ValueType::FLOAT32: put<float>(static_cast<float>(v.as_float())); break;
      case ValueType::UINT64: put<uint64_t>(v.as_uint()); break;
      case ValueType::INT64: put<int64_t>(v.as_int()); break;
      case ValueType::FLOAT64: put<double>(v.as_float()); break;
      case ValueType::BOOL: put<uint8_t>(v.as_bool() ? 1 : 0); break;
      case ValueType::STRING: put_string(v.as_string()); break;
      case ValueType::ARRAY: {
        const Array& a = v.as_array();
        put<uint32_t>(static_cast<uint32_t>(a.elem_type));
        put<uint64_t>(a.items.size());
        for (const auto& item : a.items) {
          if (item.type != a.elem_type) throw Error("array element type differs from the array's element type");
          put_value(item);
        }
        break;
      }
    }
  }
  void pad_to(uint64_t alignment) { buf.append((alignment - buf.size() % alignment) % alignment, '\0'); }
};

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

Writer::~Writer() {
  if (out_) {
    std::fclose(out_);
    std::error_code ec;
    std::filesystem::remove(tmp_path_, ec);
  }
}

void Writer::set(const std::string& key, Value value) {
  for (auto& kv : kv_)
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  kv_.push_back({key, std::move(value)});
}

void Writer::remove(const std::string& key) {
  std::erase_if(kv_, [&](const KeyValue& kv) { return kv.key == key; });
}

void Writer::copy_metadata(const File& from) {
  for (const auto& kv : from.metadata())
    if (kv.key.rfind("split.", 0) != 0) set(kv.key, kv.value);
  set_alignment(from.alignment());
}

void Writer::set_alignment(uint32_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) throw Error("alignment must be a power of two");
  alignment_ = alignment;
  if (alignment != kDefaultAlignment) set("general.alignment", Value::u32(alignment));
  else remove("general.alignment");
}

void Writer::add_tensor(TensorSpec spec) {
  if (spec.shape.empty() || spec.shape.size() > kMaxDims) throw Error("tensor '" + spec.name + "' must have 1 to 4 dimensions");
  for (const auto& t : tensors_)
    if (t.name == spec.name) throw Error("duplicate tensor name '" + spec.name + "'");
  spec.nbytes();  // validates the shape against the block size
  tensors_.push_back(std::move(spec));
}

void Writer::begin(const std::filesystem::path& path) {
  if (out_) throw Error("GGUF writer: begin() called twice");
  Bytes h;
  h.put<uint32_t>(kMagic);
  h.put<uint32_t>(3);
  h.put<uint64_t>(tensors_.size());
  h.put<uint64_t>(kv_.size());
  for (const auto& kv : kv_) {
    h.put_string(kv.key);
    h.put<uint32_t>(static_cast<uint32_t>(kv.value.type));
    h.put_value(kv.value);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    h.put_string(t.name);
    h.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) h.put<uint64_t>(static_cast<uint64_t>(d));
    h.put<uint32_t>(static_cast<uint32_t>(t.type));
    h.put<uint64_t>(offset);
    offset = align_up(offset + t.nbytes(), alignment_);
  }
  h.pad_to(alignment_);

  path_ = path;
  tmp_path_ = path;
  tmp_path_ += ".tmp";
  out_ = std::fopen(tmp_path_.c_str(), "wb");
  if (!out_) throw Error("cannot create " + tmp_path_.string() + ": " + std::strerror(errno));
  if (std::fwrite(h.buf.data(), 1, h.buf.size(), out_) != h.buf.size())
    throw Error("writing " + tmp_path_.string() + " failed: " + std::strerror(errno));
  next_tensor_ = 0;
  data_written_ = 0;
}

void Writer::write_tensor_data(const void* data, size_t nbytes) {
  if (!out_) throw Error("GGUF writer: write_tensor_data() before begin()");
  if (next_tensor_ >= tensors_.size()) throw Error("GGUF writer: more tensor data than tensors");
  const TensorSpec& t = tensors_[next_tensor_];
  if (nbytes != t.nbytes())
    throw Error("tensor '" + t.name + "': " + std::to_string(nbytes) + " bytes given, " + std::to_string(t.nbytes()) + " expected");
  static const char zeros[64] = {};
  size_t pad = static_cast<size_t>(align_up(nbytes, alignment_) - nbytes);
  if (std::fwrite(data, 1, nbytes, out_) != nbytes || (pad && std::fwrite(zeros, 1, pad, out_) != pad))
    throw Error("writing " + tmp_path_.string() + " failed: " + std::strerror(errno));
  ++next_tensor_;
}

void Writer::write_tensor_part(const void* data, size_t nbytes) {
  if (!out_) throw Error("GGUF writer: write_tensor_part() before begin()");
  if (next_tensor_ >= tensors_.size()) throw Error("GGUF writer: more tensor data than tensors");
  const TensorSpec& t = tensors_[next_tensor_];
  if (part_written_ + nbytes > t.nbytes()) throw Error("tensor '" + t.name + "': more data than its size");
  if (nbytes && std::fwrite(data, 1, nbytes, out_) != nbytes) throw Error("writing " + tmp_path_.string() + " failed: " + std::strerror(errno));
  part_written_ += nbytes;
  if (part_written_ == t.nbytes()) {
    static const char zeros[64] = {};
    size_t pad = static_cast<size_t>(align_up(part_written_, alignment_) - part_written_);
    if (pad && std::fwrite(zeros, 1, pad, out_) != pad) throw Error("writing " + tmp_path_.string() + " failed: " + std::strerror(errno));
    part_written_ = 0;
    ++next_tensor_;
  }
}

void Writer::finish() {
  if (!out_) throw Error("GGUF writer: finish() before begin()");
  if (next_tensor_ != tensors_.size())
    throw Error("GGUF writer: " + std::to_string(tensors_.size() - next_tensor_) + " tensor(s) have no data");
  bool ok = std::fflush(out_) == 0 && fsync(fileno(out_)) == 0;
  int err = errno;
  ok = std::fclose(out_) == 0 && ok;
  out_ = nullptr;
  if (!ok) {
    std::error_code ec;
    std::filesystem::remove(tmp_path_, ec);
    throw Error("writing " + tmp_path_.string() + " failed: " + std::strerror(err));
  }
  std::filesystem::rename(tmp_path_, path_);
}

void Writer::write(const std::filesystem::path& path, const std::vector<const void*>& data) {
  if (data.size() != tensors_.size()) throw Error("GGUF writer: one data pointer per tensor expected");
  begin(path);
  for (size_t i = 0; i < data.size(); ++i) write_tensor_data(data[i], tensors_[i].nbytes());
  finish();
}

std::vector<int> split_assignment(const std::vector<uint64_t>& sizes, int n_parts) {
  uint64_t total = 0;
  for (uint64_t b : sizes) total += b;
  std::vector<int> part_of(sizes.size());
  int part = 0;
  uint64_t acc = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t left = sizes.size() - i;
    if (part < n_parts - 1 && (acc >= total * static_cast<uint64_t>(part + 1) / static_cast<uint64_t>(n_parts) || left <= static_cast<size_t>(n_parts - 1 - part)) && acc > 0)
      ++part;
    part_of[i] = part;
    acc += sizes[i];
  }
  return part_of;
}

std::vector<std::filesystem::path> write_split(const File& model, const std::string& prefix, int n_parts) {
  const auto& tensors = model.tensors();
  if (n_parts < 1) throw Error("a split needs at least one part");
  if (static_cast<size_t>(n_parts) > tensors.size()) throw Error("more parts than tensors");
  std::vector<uint64_t> sizes;
  for (const auto& t : tensors) sizes.push_back(t.nbytes);
  const std::vector<int> part_of = split_assignment(sizes, n_parts);

  std::vector<std::filesystem::path> paths;
  for (int p = 0; p < n_parts; ++p) {
    Writer w;
    if (p == 0) w.copy_metadata(model);
    else w.set_alignment(model.alignment());
    w.set("split.no", Value::u16(static_cast<uint16_t>(p)));
    w.set("split.count", Value::u16(static_cast<uint16_t>(n_parts)));
    w.set("split.tensors.count", Value::i32(static_cast<int32_t>(tensors.size())));
    std::vector<const void*> data;
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (part_of[i] != p) continue;
      const auto& t = tensors[i];
      w.add_tensor({t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims)});
      data.push_back(t.data);
    }
    paths.emplace_back(split_path(prefix, p, n_parts));
    w.write(paths.back(), data);
  }
  return paths;
}

}  // namespace jing::gguf
