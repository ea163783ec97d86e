// The Hugging Face hub as its own clients use it: the file listing of a repository
// (GET {endpoint}/api/models/OWNER/REPO/tree/main, paginated through Link headers) and
// resolve URLs for downloads. HF_ENDPOINT selects a mirror, HF_TOKEN authenticates.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "store/name.h"

namespace jing::store {

struct RemoteFile {
  std::string path;    // inside the repository
  uint64_t size = 0;
  std::string sha256;  // the LFS oid; empty for files not in LFS
};

struct HubConfig {
  std::string endpoint;  // no trailing slash
  std::string token;     // may be empty
  static HubConfig from_env();
};

class Hub {
 public:
  explicit Hub(HubConfig config) : cfg_(std::move(config)) {}
  const HubConfig& config() const { return cfg_; }
  std::vector<RemoteFile> list_files(const std::string& owner, const std::string& repo) const;
  std::string resolve_url(const std::string& owner, const std::string& repo, const std::string& path) const;
  // What to do when the hub cannot be reached: a mirror (HF_ENDPOINT) or a local .gguf file.
  std::string unreachable_advice() const;

 private:
  HubConfig cfg_;
};

// Picks the GGUF file(s) of a repository for a quant ("Q4_K_M", "UD-IQ1_S"): the name (or a
// folder) must contain the quant as a whole token, case-insensitively; a split model yields
// every part, in order. Throws jing::Error listing the quants available when none matches.
std::vector<RemoteFile> choose_files(const std::vector<RemoteFile>& files, const std::string& quant);

}  // namespace jing::store
