#include "server/http_responder.h"

#include <poll.h>
#include <sys/socket.h>

#include <boost/beast/http/status.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace jing::server {

std::string HttpRequest::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

std::string status_text(int status) {
  return std::string(boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status)));
}

bool write_fully(int fd, const char* data, size_t n, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (n > 0) {
    ssize_t k = ::send(fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k > 0) {
      data += k;
      n -= static_cast<size_t>(k);
      continue;
    }
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000))) < 0 && errno != EINTR) return false;
    if (p.revents & (POLLERR | POLLHUP)) return false;
  }
  return true;
}

std::string error_response(int status, const std::string& message, bool close) {
  nlohmann::json body = {{"error", {{"message", message}, {"type", status >= 500 ? "server_error" : "invalid_request_error"}, {"code", status}}}};
  std::string b = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\nContent-Type: application/json\r\nContent-Length: " +
                  std::to_string(b.size()) + "\r\n";
  if (status == 503 || status == 429) r += "Retry-After: 1\r\n";
  r += close ? "Connection: close\r\n\r\n" : "\r\n";
  return r + b;
}

SocketResponder::SocketResponder(int fd, const HttpRequest& req, int write_timeout_seconds)
    : fd_(fd), timeout_ms_(write_timeout_seconds * 1000), head_only_(req.method == "HEAD"), http10_(req.version == 10),
      keep_alive_(req.keep_alive) {}

void SocketResponder::add_header(const std::string& name, const std::string& value) {
  if (name.find_first_of("\r\n") != std::string::npos || value.find_first_of("\r\n") != std::string::npos) return;
  extra_ += name + ": " + value + "\r\n";
}

std::string SocketResponder::head(int status, const std::string& type) const {
  return (http10_ ? "HTTP/1.0 " : "HTTP/1.1 ") + std::to_string(status) + " " + status_text(status) + "\r\nContent-Type: " + type + "\r\n" + extra_;
}

void SocketResponder::send(int status, const std::string& type, const std::string& body, const std::map<std::string, std::string>& extra) {
  // A 304 has no body, and a Content-Length there would have to be the 200's (RFC 9110 8.6).
  const bool no_body = head_only_ || status == 304;
  std::string h = head(status, type) + (status == 304 ? "" : "Content-Length: " + std::to_string(body.size()) + "\r\n");
  for (const auto& [k, v] : extra) h += k + ": " + v + "\r\n";
  h += keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  sent_ = true;
  write(no_body ? h : h + body);
}

bool SocketResponder::begin_stream(int status, const std::string& type) {
  // HTTP/1.0 has no chunked encoding: the stream ends when the connection closes.
  chunked_ = !http10_;
  std::string h = head(status, type) + "Cache-Control: no-cache\r\n";
  h += chunked_ ? "Transfer-Encoding: chunked\r\n" : "";
  h += chunked_ && keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  if (!chunked_) keep_alive_ = false;
  sent_ = streaming_ = true;
  stream_type_ = type;
  return write(h);
}

bool SocketResponder::chunk(const std::string& data) {
  if (data.empty() || head_only_) return ok_;
  if (!chunked_) return write(data);
  char len[32];
  std::snprintf(len, sizeof len, "%zx\r\n", data.size());
  return write(len + data + "\r\n");
}

void SocketResponder::end_stream() {
  if (streaming_ && chunked_ && !head_only_) write("0\r\n\r\n");
  streaming_ = false;
}

// A peer that shut its sending side (POLLRDHUP) has either gone or only half-closed and still
// reads. Writing tells them apart: a closed socket answers any byte with a reset (POLLERR), so
// once per request a byte that changes nothing is sent: a 100 Continue before the response (HTTP/1.1
// clients skip 1xx answers), an SSE comment or a blank space inside a stream.
bool SocketResponder::client_gone() {
  if (!ok_) return true;
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return !(ok_ = false);
  if ((p.revents & POLLRDHUP) && !probed_) {
    probed_ = true;
    if (!sent_ && !http10_) write("HTTP/1.1 100 Continue\r\n\r\n");
    else if (streaming_) chunk(stream_type_ == "text/event-stream" ? ":\n\n" : " ");
    // A closed peer's reset comes back within a round trip: look again at once, not a poll later.
    pollfd again{fd_, POLLIN | POLLRDHUP, 0};
    if (ok_ && ::poll(&again, 1, 5) > 0 && (again.revents & (POLLERR | POLLHUP | POLLNVAL))) ok_ = false;
  }
  return !ok_;
}

bool SocketResponder::write(const std::string& data) {
  if (!ok_) return false;
  if (!write_fully(fd_, data.data(), data.size(), timeout_ms_)) ok_ = false;
  return ok_;
}

}  // namespace jing::server
