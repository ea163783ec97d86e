// Model names as users type them, parsed and validated before anything touches the disk or network:
//   deepseek-r1[:TAG]            a short name from data/library.json (or one made with `jing cp`)
//   hf.co/OWNER/REPO[:QUANT]     a Hugging Face repository; the GGUF is chosen by quant (Q4_K_M default)
//   hf.co/OWNER/REPO/PATH.gguf   one file of a repository
#pragma once
#include <filesystem>
#include <optional>
#include <string>

namespace jing::store {

struct ModelRef {
  enum class Kind { Library, HfQuant, HfFile } kind = Kind::Library;
  std::string name, tag;     // Library: "deepseek-r1", "7b"
  std::string owner, repo;   // Hugging Face repository
  std::string quant;         // HfQuant: "Q4_K_M", "UD-IQ1_S"
  std::string file;          // HfFile: path inside the repository

  std::string display() const;                  // the canonical name `jing list` shows
  std::filesystem::path store_dir() const;      // relative directory inside the store
};

// Throws jing::Error for malformed names and for anything that could escape the store
// (.., absolute paths, empty or hidden components, odd characters).
ModelRef parse_model_ref(const std::string& text);

// The Hugging Face reference a library name stands for (following tag aliases), if it has one.
std::optional<ModelRef> library_target(const ModelRef& ref);

}  // namespace jing::store
