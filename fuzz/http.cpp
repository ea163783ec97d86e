// libFuzzer target: raw bytes as a client would send them (request lines, headers, chunked
// bodies, pipelined requests) through the server's request reader, split at arbitrary points as
// they would arrive from a socket; then the header values the router checks (Host, Origin).
// Anything may be rejected; nothing may crash, and the reader's statuses must be HTTP errors.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/access.h"
#include "server/http_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace jing::server;
  if (size < 1) return 0;
  // The first byte chooses how the rest is cut into reads (1..256 bytes each).
  const size_t step = static_cast<size_t>(data[0]) + 1;
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  RequestReader reader(1 << 16, 4096);
  static const AccessPolicy policy = AccessPolicy::make("127.0.0.1", {"https://*.example.org"}, {"box.lan"});
  std::string pending;
  for (size_t at = 0; at < bytes.size() || !pending.empty();) {
    if (at < bytes.size()) {
      size_t n = std::min(step, bytes.size() - at);
      pending.append(bytes, at, n);
      at += n;
    }
    size_t used = reader.feed(pending.data(), pending.size());
    if (used > pending.size()) std::abort();
    pending.erase(0, used);
    if (reader.error_status()) {
      int s = reader.error_status();
      if (s != 400 && s != 413 && s != 431 && s != 505) std::abort();
      return 0;
    }
    if (reader.complete()) {
      HttpRequest req = reader.take();
      if (req.path.empty() && !req.target.empty() && req.target[0] != '?') std::abort();
      policy.host_allowed(req.header("host"));
      policy.origin_allowed(req.header("origin"));
      continue;
    }
    if (used == 0 && at >= bytes.size()) break;  // waiting for bytes that will not come
  }
  reader.eof();
  return 0;
}
