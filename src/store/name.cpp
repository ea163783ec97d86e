#include "store/name.h"

#include <regex>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "store/library_data.h"

namespace jing::store {
namespace {

const std::regex kComponent(R"([A-Za-z0-9][A-Za-z0-9._-]{0,127})");

void check_component(const std::string& part, const std::string& what, const std::string& text) {
  if (!std::regex_match(part, kComponent) || part.find("..") != std::string::npos)
    throw Error("invalid model name '" + text + "': bad " + what + " '" + part + "'");
}

std::string strip_prefix(std::string s) {
  for (const char* p : {"https://", "http://"})
    if (s.rfind(p, 0) == 0) s = s.substr(std::string(p).size());
  if (s.rfind("huggingface.co/", 0) == 0) s = "hf.co/" + s.substr(15);
  return s;
}

const nlohmann::json& library() {
  static const nlohmann::json lib = nlohmann::json::parse(kLibraryJson);
  return lib;
}

}  // namespace

std::string ModelRef::display() const {
  switch (kind) {
    case Kind::Library: return name + ":" + tag;
    case Kind::HfQuant: return "hf.co/" + owner + "/" + repo + ":" + quant;
    case Kind::HfFile: return "hf.co/" + owner + "/" + repo + "/" + file;
  }
  return {};
}

std::filesystem::path ModelRef::store_dir() const {
  switch (kind) {
    case Kind::Library: return std::filesystem::path("library") / name / tag;
    case Kind::HfQuant: return std::filesystem::path("hf.co") / owner / repo / quant;
    case Kind::HfFile: {
      std::string flat = file;
      for (auto& c : flat)
        if (c == '/') c = '+';
      return std::filesystem::path("hf.co") / owner / repo / flat;
    }
  }
  return {};
}

ModelRef parse_model_ref(const std::string& input) {
  const std::string text = strip_prefix(input);
  if (text.empty()) throw Error("empty model name");
  if (text.size() > 512) throw Error("model name is too long");
  ModelRef ref;
  if (text.rfind("hf.co/", 0) == 0) {
    std::string rest = text.substr(6);
    std::vector<std::string> parts;
    size_t start = 0;
    for (size_t i = 0; i <= rest.size(); ++i)
      if (i == rest.size() || rest[i] == '/') parts.push_back(rest.substr(start, i - start)), start = i + 1;
    if (parts.size() < 2) throw Error("invalid model name '" + input + "': expected hf.co/OWNER/REPO[:QUANT]");
    ref.owner = parts[0];
    check_component(ref.owner, "owner", input);
    if (parts.size() == 2) {
      ref.kind = ModelRef::Kind::HfQuant;
      auto colon = parts[1].find(':');
      ref.repo = parts[1].substr(0, colon);
      ref.quant = colon == std::string::npos ? "Q4_K_M" : parts[1].substr(colon + 1);
      check_component(ref.repo, "repository", input);
      check_component(ref.quant, "quantization", input);
      return ref;
    }
    ref.kind = ModelRef::Kind::HfFile;
    ref.repo = parts[1];
    check_component(ref.repo, "repository", input);
    for (size_t i = 2; i < parts.size(); ++i) {
      check_component(parts[i], "path component", input);
      ref.file += (i > 2 ? "/" : "") + parts[i];
    }
    if (ref.file.size() < 6 || ref.file.substr(ref.file.size() - 5) != ".gguf")
      throw Error("invalid model name '" + input + "': a file name must end in .gguf");
    return ref;
  }
  if (text.find('/') != std::string::npos || text.find('\\') != std::string::npos)
    throw Error("model '" + input + "' not found: no such file, and not a model name (NAME[:TAG] or hf.co/OWNER/REPO[:QUANT])");
  auto colon = text.find(':');
  ref.kind = ModelRef::Kind::Library;
  ref.name = text.substr(0, colon);
  ref.tag = colon == std::string::npos ? "latest" : text.substr(colon + 1);
  check_component(ref.name, "name", input);
  check_component(ref.tag, "tag", input);
  return ref;
}

std::optional<ModelRef> library_target(const ModelRef& ref) {
  if (ref.kind != ModelRef::Kind::Library) return std::nullopt;
  const auto& lib = library();
  auto it = lib.find(ref.name);
  if (it == lib.end() || !it->is_object()) return std::nullopt;
  std::string tag = ref.tag;
  for (int hops = 0; hops < 8; ++hops) {
    auto t = it->find(tag);
    if (t == it->end() || !t->is_string()) return std::nullopt;
    std::string target = t->get<std::string>();
    if (target.rfind("hf.co/", 0) == 0) return parse_model_ref(target);
    tag = target;  // an alias such as latest -> 8b
  }
  return std::nullopt;
}

}  // namespace jing::store
