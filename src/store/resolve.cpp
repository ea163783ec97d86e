#include "store/resolve.h"

#include "common/error.h"
#include "store/name.h"
#include "store/pull.h"
#include "store/store.h"

namespace jing::store {

std::filesystem::path resolve_model(const std::string& name_or_path, const ResolveOptions& opts) {
  std::filesystem::path p(name_or_path);
  if (std::filesystem::is_regular_file(p)) return p;
  if (name_or_path.ends_with(".gguf") && name_or_path.find("hf.co/") == std::string::npos &&
      name_or_path.find("huggingface.co/") == std::string::npos)
    throw Error("model file '" + name_or_path + "' not found");
  ModelRef ref = parse_model_ref(name_or_path);
  Store store = Store::open_default();
  if (auto e = store.find(ref)) return e->model_path();
  if (!opts.pull_if_missing)
    throw Error("model '" + ref.display() + "' not found in " + store.root().string() + "; try `jing pull " + ref.display() + "`");
  return pull(store, ref, Hub(HubConfig::from_env()), {}).model_path();
}

std::optional<std::filesystem::path> find_stored_model(const std::string& name) {
  ModelRef ref;
  try {
    ref = parse_model_ref(name);
  } catch (const Error&) {
    return std::nullopt;
  }
  if (auto e = Store::open_default().find(ref)) return e->model_path();
  return std::nullopt;
}

}  // namespace jing::store
