// Turns what a user types as MODEL into a local GGUF path: a file path, a store name
// ("deepseek-r1:7b", "hf.co/OWNER/REPO:QUANT"), pulling it first when asked.
// (Contract shared by run, show, serve; implemented in src/store.)
#pragma once
#include <filesystem>
#include <optional>
#include <string>

namespace jing::store {

struct ResolveOptions {
  bool pull_if_missing = false;  // `jing run NAME` pulls on first use
};

// Returns the path of the GGUF to open (the first part of a split model).
// Throws jing::Error naming the model when it is neither a file nor in the store.
std::filesystem::path resolve_model(const std::string& name_or_path, const ResolveOptions& opts = {});

// A model name looked up in the store only, never as a filesystem path (what the server does
// with names clients send). Empty when the name is malformed or not in the store.
std::optional<std::filesystem::path> find_stored_model(const std::string& name);

}  // namespace jing::store
