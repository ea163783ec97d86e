// Which web pages and which host names may use the server. A browser lets any page send
// requests to 127.0.0.1; the Origin check (CORS, as Ollama does it: loopback pages and desktop
// app schemes by default) keeps other sites from driving the API, and the Host check keeps a
// rebound DNS name (evil.example resolving to 127.0.0.1) out.
#pragma once
#include <string>
#include <vector>

namespace jing::server {

struct AccessPolicy {
  std::vector<std::string> origins;  // patterns with '*' wildcards; "*" alone allows any origin
  std::vector<std::string> hosts;    // host names (no port), '*' wildcards; "*" alone allows any

  // Defaults for a server listening on listen_host, plus the configured extras
  // (--cors-origins / JING_ORIGINS, JING_ALLOWED_HOSTS: comma-separated).
  static AccessPolicy make(const std::string& listen_host, const std::vector<std::string>& extra_origins,
                           const std::vector<std::string>& extra_hosts);
  bool origin_allowed(const std::string& origin) const;
  // The Host header's value ("name:port", "[::1]:port"); an absent header is allowed (HTTP/1.0).
  bool host_allowed(const std::string& host_header) const;
};

// "a,b , c" -> {"a","b","c"}
std::vector<std::string> split_list(const std::string& s);
// Shell-style match where '*' stands for any run of characters.
bool wildcard_match(const std::string& pattern, const std::string& text);

}  // namespace jing::server
