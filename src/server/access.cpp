#include "server/access.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace jing::server {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= s.size()) {
    size_t comma = s.find(',', at);
    if (comma == std::string::npos) comma = s.size();
    std::string item = s.substr(at, comma - at);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
    at = comma + 1;
  }
  return out;
}

bool wildcard_match(const std::string& p, const std::string& t) {
  // Greedy matching with one backtrack point: linear enough for the short strings compared here.
  size_t i = 0, j = 0, star = std::string::npos, mark = 0;
  while (j < t.size()) {
    if (i < p.size() && p[i] == '*') star = i++, mark = j;
    else if (i < p.size() && std::tolower(static_cast<unsigned char>(p[i])) == std::tolower(static_cast<unsigned char>(t[j]))) ++i, ++j;
    else if (star != std::string::npos) i = star + 1, j = ++mark;
    else return false;
  }
  while (i < p.size() && p[i] == '*') ++i;
  return i == p.size();
}

namespace {

bool wildcard_listen(const std::string& h) { return h.empty() || h == "0.0.0.0" || h == "::" || h == "[::]" || h == "*"; }

}  // namespace

AccessPolicy AccessPolicy::make(const std::string& listen_host, const std::vector<std::string>& extra_origins,
                                const std::vector<std::string>& extra_hosts) {
  AccessPolicy p;
  p.origins = extra_origins;
  for (const char* h : {"localhost", "127.0.0.1", "[::1]", "0.0.0.0"})
    for (const char* scheme : {"http://", "https://"}) {
      p.origins.push_back(std::string(scheme) + h);
      p.origins.push_back(std::string(scheme) + h + ":*");
    }
  for (const char* app : {"app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*"}) p.origins.push_back(app);

  p.hosts = extra_hosts;
  // Listening on every interface means serving other machines by their own names: any Host.
  if (wildcard_listen(listen_host)) p.hosts.push_back("*");
  for (const char* h : {"localhost", "*.localhost", "::1"}) p.hosts.push_back(h);
  std::string lh = listen_host;
  if (lh.size() > 2 && lh.front() == '[' && lh.back() == ']') lh = lh.substr(1, lh.size() - 2);
  p.hosts.push_back(lh);
  return p;
}

bool AccessPolicy::origin_allowed(const std::string& origin) const {
  return std::any_of(origins.begin(), origins.end(), [&](const std::string& o) { return o == "*" || wildcard_match(o, origin); });
}

bool AccessPolicy::host_allowed(const std::string& host_header) const {
  if (host_header.empty()) return true;
  std::string h = host_header;
  if (h.front() == '[') {  // [v6]:port
    auto close = h.find(']');
    if (close == std::string::npos) return false;
    h = h.substr(1, close - 1);
  } else if (auto colon = h.rfind(':'); colon != std::string::npos && h.find(':') == colon) {
    h = h.substr(0, colon);
  }
  if (!h.empty() && h.back() == '.') h.pop_back();  // "localhost." is localhost
  // An address written as a number cannot be a rebound name: loopback, private and unspecified ones
  // are answered, as Ollama does (127.x by number only; "127.evil.example" is a name).
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    const uint32_t a = ntohl(v4.s_addr);
    if ((a >> 24) == 127 || (a >> 24) == 10 || (a >> 20) == 0xAC1 || (a >> 16) == 0xC0A8 || a == 0) return true;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    const uint8_t* b = v6.s6_addr;
    const bool zero_prefix = std::all_of(b, b + 15, [](uint8_t x) { return x == 0; });
    if ((zero_prefix && (b[15] == 1 || b[15] == 0)) || (b[0] & 0xFE) == 0xFC || (b[0] == 0xFE && (b[1] & 0xC0) == 0x80)) return true;
  }
  return std::any_of(hosts.begin(), hosts.end(), [&](const std::string& p) { return p == "*" || wildcard_match(p, h); });
}

}  // namespace jing::server
