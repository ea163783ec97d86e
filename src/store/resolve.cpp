#include "store/resolve.h"

#include "common/error.h"

namespace jing::store {

std::filesystem::path resolve_model(const std::string& name_or_path, const ResolveOptions& opts) {
  std::filesystem::path p(name_or_path);
  if (std::filesystem::is_regular_file(p)) return p;
  throw Error("model '" + name_or_path + "' not found: no such file");
}

}  // namespace jing::store
