// The request reader the server and fuzz/http.cpp share, fed as a socket would feed it (split at
// every byte, pipelined), and the Origin/Host policy: what a browser page or a rebound name may reach.
#include <gtest/gtest.h>

#include "server/access.h"
#include "server/http_reader.h"

using namespace jing::server;

namespace {

// Feeds `bytes` in pieces of `step`, collecting complete requests; returns the error status (0: none).
int feed_all(RequestReader& r, const std::string& bytes, size_t step, std::vector<HttpRequest>& out) {
  std::string pending;
  for (size_t at = 0; at < bytes.size() || !pending.empty();) {
    if (at < bytes.size()) pending.append(bytes, at, std::min(step, bytes.size() - at)), at += step;
    const size_t used = r.feed(pending.data(), pending.size());
    pending.erase(0, used);
    if (r.error_status()) return r.error_status();
    if (r.complete()) {
      out.push_back(r.take());
      continue;
    }
    if (used == 0 && at >= bytes.size()) break;
  }
  return 0;
}

}  // namespace

TEST(RequestReader, AnyFragmentationGivesTheSameRequests) {
  const std::string two =
      "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 7\r\nX-A: 1\r\nx-a: 2\r\n\r\n{\"a\":1}"
      "GET http://localhost/health HTTP/1.0\r\n\r\n";
  for (size_t step : {1, 2, 7, 64, 4096}) {
    SCOPED_TRACE(step);
    RequestReader r(1 << 20);
    std::vector<HttpRequest> got;
    ASSERT_EQ(feed_all(r, two, step, got), 0);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].method, "POST");
    EXPECT_EQ(got[0].path, "/v1/chat/completions");
    EXPECT_EQ(got[0].query, "x=1");
    EXPECT_EQ(got[0].body, "{\"a\":1}");
    EXPECT_EQ(got[0].header("x-a"), "1, 2");  // repeated fields join as one list
    EXPECT_EQ(got[0].version, 11u);
    EXPECT_TRUE(got[0].keep_alive);
    EXPECT_EQ(got[1].path, "/health");  // absolute form
    EXPECT_EQ(got[1].version, 10u);
    EXPECT_FALSE(got[1].keep_alive);
  }
}

TEST(RequestReader, ChunkedBodiesAndContinue) {
  RequestReader r(1 << 20);
  std::vector<HttpRequest> got;
  ASSERT_EQ(feed_all(r, "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 3, got), 0);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "abcde");
  RequestReader c(1 << 20);
  const std::string head = "POST /x HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
  c.feed(head.data(), head.size());
  EXPECT_TRUE(c.header_done());
  EXPECT_TRUE(c.expects_continue());
}

TEST(RequestReader, MalformedInputGetsTheRightStatus) {
  const std::pair<std::string, int> cases[] = {
      {"\x16\x03\x01garbage\r\n\r\n", 400},
      {"GET /health HTTP/1.1\r\nNoColon\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"GET / HTTP/2.0\r\n\r\n", 505},
      {"GET / HTTP/1.1\r\nX: " + std::string(5000, 'a') + "\r\n\r\n", 431},
      {"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413},
  };
  for (const auto& [bytes, status] : cases) {
    SCOPED_TRACE(bytes.substr(0, 40));
    RequestReader r(1 << 20, 4096);
    std::vector<HttpRequest> got;
    EXPECT_EQ(feed_all(r, bytes, 5, got), status);
    EXPECT_FALSE(r.error_message().empty());
  }
  RequestReader cut(1 << 20);
  const std::string partial = "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc";
  cut.feed(partial.data(), partial.size());
  cut.eof();
  EXPECT_EQ(cut.error_status(), 400);
}

TEST(AccessPolicy, LoopbackServerAnswersLoopbackNamesAndPagesOnly) {
  const auto p = AccessPolicy::make("127.0.0.1", {}, {});
  for (const char* ok : {"", "localhost", "localhost:11434", "LOCALHOST:1", "localhost.", "app.localhost", "127.0.0.1:8080",
                         "127.9.9.9", "[::1]:11434", "::1", "0.0.0.0:11434", "192.168.1.20:11434", "10.0.0.5", "[fd00::1]:80"})
    EXPECT_TRUE(p.host_allowed(ok)) << ok;
  for (const char* bad : {"evil.example", "evil.example:11434", "127.attacker.example", "localhost.evil.example", "[2001:db8::1]:80",
                          "8.8.8.8", "172.32.0.1"})
    EXPECT_FALSE(p.host_allowed(bad)) << bad;
  for (const char* ok : {"http://localhost", "http://localhost:3000", "https://127.0.0.1:8443", "app://obsidian.md", "vscode-webview://x"})
    EXPECT_TRUE(p.origin_allowed(ok)) << ok;
  for (const char* bad : {"https://evil.example", "http://localhost.evil.example", "http://127.0.0.1.evil.example", "null"})
    EXPECT_FALSE(p.origin_allowed(bad)) << bad;
}

TEST(AccessPolicy, ConfiguredAndWildcardListeners) {
  const auto p = AccessPolicy::make("127.0.0.1", {"https://*.example.org"}, {"box.lan"});
  EXPECT_TRUE(p.origin_allowed("https://chat.example.org"));
  EXPECT_FALSE(p.origin_allowed("https://example.com"));
  EXPECT_TRUE(p.host_allowed("box.lan:11434"));
  const auto any = AccessPolicy::make("0.0.0.0", {"*"}, {});
  EXPECT_TRUE(any.host_allowed("my-server.example:11434"));
  EXPECT_TRUE(any.origin_allowed("https://anything.example"));
  EXPECT_EQ(split_list(" a, b ,,c "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(wildcard_match("http://localhost:*", "http://localhost:5173"));
  EXPECT_FALSE(wildcard_match("http://localhost:*", "http://localhost"));
}
