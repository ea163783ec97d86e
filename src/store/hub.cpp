#include "store/hub.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "gguf/gguf.h"
#include "store/http.h"

namespace jing::store {

HubConfig HubConfig::from_env() {
  HubConfig c;
  const char* ep = std::getenv("HF_ENDPOINT");
  c.endpoint = ep && *ep ? ep : "https://huggingface.co";
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
  if (const char* t = std::getenv("HF_TOKEN"); t && *t) c.token = t;
  return c;
}

namespace {

std::vector<std::string> auth_headers(const HubConfig& cfg) {
  std::vector<std::string> h{"Accept: application/json"};
  if (!cfg.token.empty()) h.push_back("Authorization: Bearer " + cfg.token);
  return h;
}

// RFC 8288 Link header: <url>; rel="next"
std::string next_link(const HttpResponse& r) {
  static const std::regex re(R"re(<([^>]+)>\s*;\s*rel="?next"?)re");
  for (auto [it, end] = r.headers.equal_range("link"); it != end; ++it) {
    std::smatch m;
    if (std::regex_search(it->second, m, re)) return m[1];
  }
  return {};
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// True when `needle` occurs in `hay` delimited by non-alphanumerics (so Q4_K does not match Q4_K_M).
bool contains_token(const std::string& hay, const std::string& needle) {
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) {
    auto edge = [&](size_t i) { return i >= hay.size() || !(std::isalnum(static_cast<unsigned char>(hay[i])) || hay[i] == '_'); };
    if ((at == 0 || edge(at - 1)) && edge(at + needle.size())) return true;
  }
  return false;
}

}  // namespace

std::string Hub::resolve_url(const std::string& owner, const std::string& repo, const std::string& path) const {
  return cfg_.endpoint + "/" + owner + "/" + repo + "/resolve/main/" + path;
}

std::string Hub::unreachable_advice() const {
  const bool mirror = std::getenv("HF_ENDPOINT") && *std::getenv("HF_ENDPOINT");
  return std::string(mirror ? "the mirror HF_ENDPOINT=" + cfg_.endpoint + " cannot be reached: check it, or set HF_ENDPOINT to another mirror's base URL"
                            : "the Hugging Face hub (" + cfg_.endpoint + ") cannot be reached: to download through a mirror, set HF_ENDPOINT to its base URL (HF_ENDPOINT=https://MIRROR jing pull NAME)") +
         "; or skip the download and give a local .gguf file instead of a name (jing run ./model.gguf, jing serve --model ./model.gguf)";
}

std::vector<RemoteFile> Hub::list_files(const std::string& owner, const std::string& repo) const {
  std::vector<RemoteFile> out;
  std::string url = cfg_.endpoint + "/api/models/" + owner + "/" + repo + "/tree/main?recursive=true";
  for (int page = 0; !url.empty() && page < 1000; ++page) {
    HttpResponse r;
    try {
      r = http_get(url, auth_headers(cfg_));
    } catch (const Unreachable& e) {
      throw Error(std::string(e.what()) + "\n" + unreachable_advice());
    }
    if (r.status == 401 || r.status == 403)
      throw Error("hf.co/" + owner + "/" + repo + " needs access rights (HTTP " + std::to_string(r.status) + "): set HF_TOKEN");
    if (r.status == 404) throw Error("repository hf.co/" + owner + "/" + repo + " not found");
    if (r.status != 200) throw Error("listing hf.co/" + owner + "/" + repo + " failed: HTTP " + std::to_string(r.status));
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (!j.is_array()) throw Error("listing hf.co/" + owner + "/" + repo + ": unexpected reply from " + cfg_.endpoint);
    for (const auto& e : j) {
      if (!e.is_object() || e.value("type", "") != "file" || !e.contains("path") || !e["path"].is_string()) continue;
      RemoteFile f;
      f.path = e["path"].get<std::string>();
      f.size = e.value("size", uint64_t{0});
      if (e.contains("lfs") && e["lfs"].is_object()) {
        f.sha256 = e["lfs"].value("oid", "");
        f.size = e["lfs"].value("size", f.size);
      }
      out.push_back(std::move(f));
    }
    url = next_link(r);
  }
  return out;
}

std::vector<RemoteFile> choose_files(const std::vector<RemoteFile>& files, const std::string& quant) {
  const std::string q = lower(quant);
  std::map<std::string, std::vector<RemoteFile>> groups;  // by split prefix (or whole path)
  std::set<std::string> available;
  for (const auto& f : files) {
    std::string lp = lower(f.path);
    if (lp.size() < 5 || lp.substr(lp.size() - 5) != ".gguf") continue;
    if (lp.find("mmproj") != std::string::npos) continue;  // vision projectors are not models
    std::string base = f.path.substr(f.path.rfind('/') + 1);
    if (auto s = gguf::parse_split_name(base)) {
      groups[f.path.substr(0, f.path.size() - base.size()) + s->prefix].push_back(f);
    } else {
      groups[f.path].push_back(f);
    }
    static const std::regex qre(R"((UD-)?(I?Q\d[A-Z0-9_]*|BF16|F16|F32|TQ\d_\d|MXFP4))", std::regex::icase);
    std::smatch m;
    if (std::regex_search(base, m, qre)) available.insert(m.str());
  }
  std::vector<std::pair<std::string, std::vector<RemoteFile>>> matches;
  for (auto& [key, parts] : groups)
    if (contains_token(lower(key), q)) matches.emplace_back(key, parts);
  if (matches.empty()) {
    std::string list;
    for (const auto& a : available) list += (list.empty() ? "" : ", ") + a;
    throw Error("no GGUF for quantization '" + quant + "' in this repository" + (list.empty() ? "" : " (available: " + list + ")"));
  }
  // Prefer the shortest name (e.g. "X-Q4_K_M.gguf" over "X-Q4_K_M-imatrix-extra.gguf").
  std::sort(matches.begin(), matches.end(), [](auto& a, auto& b) { return a.first.size() < b.first.size(); });
  auto parts = matches.front().second;
  std::sort(parts.begin(), parts.end(), [](auto& a, auto& b) { return a.path < b.path; });
  if (auto s = gguf::parse_split_name(parts.front().path.substr(parts.front().path.rfind('/') + 1))) {
    if (static_cast<int>(parts.size()) != s->count)
      throw Error("the repository lists " + std::to_string(parts.size()) + " of the " + std::to_string(s->count) + " parts of " + matches.front().first);
  }
  return parts;
}

}  // namespace jing::store
