// The local model store. Layout under $JING_MODELS (default ~/.jing/models):
//   <dir>/manifest.json + the model's GGUF file(s), named as published (split parts keep their
//       -0000N-of-0000M names so the loader finds them). <dir> comes from ModelRef::store_dir():
//       library/deepseek-r1/7b, hf.co/OWNER/REPO/QUANT, ...
//   .downloads/  partial downloads and their resume state (never listed)
//   .locks/      one lock file per model, so concurrent pulls of a model wait for each other
// A model exists once its manifest.json exists: it is written last, atomically, after every file
// is complete and verified; rm deletes it first. So no half model ever looks installed.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/name.h"

namespace jing::store {

struct Entry {
  std::string name;                          // display name, e.g. "deepseek-r1:7b"
  std::filesystem::path dir;
  std::vector<std::string> files;            // GGUF file names in dir; files[0] is the one to open
  uint64_t size = 0;
  std::string quant;
  int64_t modified = 0;                      // unix seconds
  nlohmann::json manifest;

  std::filesystem::path model_path() const { return dir / files.at(0); }
};

class Store {
 public:
  explicit Store(std::filesystem::path root);
  static Store open_default();  // $JING_MODELS or ~/.jing/models
  const std::filesystem::path& root() const { return root_; }

  std::vector<Entry> list() const;
  std::optional<Entry> find(const ModelRef& ref) const;
  // Installs files already complete in `staged` (moved in) under ref, then writes the manifest.
  Entry install(const ModelRef& ref, const std::filesystem::path& staged_dir, const std::vector<std::string>& files,
                nlohmann::json manifest);
  void remove(const ModelRef& ref);                      // throws when absent
  Entry copy(const ModelRef& from, const ModelRef& to);  // hard links where possible

  std::filesystem::path downloads_dir() const { return root_ / ".downloads"; }
  std::filesystem::path lock_path(const ModelRef& ref) const;

 private:
  std::optional<Entry> read_entry(const std::filesystem::path& dir) const;
  std::filesystem::path root_;
};

// An exclusive advisory lock (flock) held for the object's lifetime.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// Writes `data` to `path` atomically (temp file in the same directory, fsync, rename).
void write_file_atomic(const std::filesystem::path& path, const std::string& data);

}  // namespace jing::store
