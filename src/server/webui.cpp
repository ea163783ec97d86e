#include "server/webui.h"

#include <string>
#include <string_view>

namespace jing::server {
namespace {

// Same origin only: scripts, styles, fetches and images from this server, nothing inline, no frames.
constexpr const char* kPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const char* content_type(std::string_view path) {
  auto ends = [&](std::string_view ext) { return path.size() >= ext.size() && path.substr(path.size() - ext.size()) == ext; };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".json")) return "application/json";
  if (ends(".md") || ends(".txt")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

// If-None-Match holds "*" or a comma-separated list of tags (weak ones compare equal, RFC 9110 13.1.2).
bool etag_matches(const std::string& if_none_match, std::string_view etag) {
  size_t at = 0;
  while (at < if_none_match.size()) {
    size_t comma = if_none_match.find(',', at);
    if (comma == std::string::npos) comma = if_none_match.size();
    std::string_view tag(if_none_match.data() + at, comma - at);
    while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    at = comma + 1;
  }
  return false;
}

}  // namespace

bool serve_webui(const HttpRequest& req, HttpResponder& out) {
  if (req.method != "GET" && req.method != "HEAD") return false;
  std::string_view name;
  const bool root = req.path == "/";
  if (root) {
    if (req.header("accept").find("text/html") == std::string::npos) return false;
    name = "index.html";
  } else if (req.path.starts_with("/webui/")) {
    name = std::string_view(req.path).substr(7);
  } else {
    return false;
  }
  for (const auto& f : webui_files()) {
    if (name != f.path) continue;
    std::map<std::string, std::string> headers = {{"ETag", f.etag},
                                                  {"Cache-Control", "no-cache"},  // revalidated each load: a new binary shows its page
                                                  {"Content-Security-Policy", kPolicy},
                                                  {"X-Content-Type-Options", "nosniff"},
                                                  {"Referrer-Policy", "no-referrer"}};
    if (root) headers.emplace("Vary", "Accept");
    if (etag_matches(req.header("if-none-match"), f.etag)) {
      out.send(304, content_type(f.path), "", headers);
    } else {
      out.send(200, content_type(f.path), std::string(reinterpret_cast<const char*>(f.data), f.size), headers);
    }
    return true;
  }
  return false;
}

}  // namespace jing::server
