#include "server/http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace jing::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;

std::string HttpRequest::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

std::string status_text(int status) {
  return std::string(http::obsolete_reason(static_cast<http::status>(status)));
}

namespace {

const char* kCors =
    "Access-Control-Allow-Origin: *\r\nAccess-Control-Allow-Headers: *\r\nAccess-Control-Allow-Methods: GET, POST, DELETE, OPTIONS\r\n";

class SocketResponder : public HttpResponder {
 public:
  SocketResponder(asio::ip::tcp::socket& s, bool keep_alive) : sock_(s), keep_alive_(keep_alive) {}

  void send(int status, const std::string& type, const std::string& body, const std::map<std::string, std::string>& extra = {}) override {
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
    head += "Content-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + kCors;
    for (const auto& [k, v] : extra) head += k + ": " + v + "\r\n";
    head += keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    sent_ = true;
    write(head + body);
  }

  bool begin_stream(int status, const std::string& type) override {
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
    head += "Content-Type: " + type + "\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache\r\n" + kCors;
    head += keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    sent_ = streaming_ = true;
    return write(head);
  }

  bool chunk(const std::string& data) override {
    if (data.empty()) return ok_;
    char len[32];
    std::snprintf(len, sizeof len, "%zx\r\n", data.size());
    return write(len + data + "\r\n");
  }

  void end_stream() override {
    if (streaming_) write("0\r\n\r\n");
    streaming_ = false;
  }

  bool client_gone() override {
    if (!ok_) return true;
    pollfd p{sock_.native_handle(), POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) ok_ = false;
    return !ok_;
  }

  bool sent() const { return sent_; }
  bool ok() const { return ok_; }

 private:
  bool write(const std::string& data) {
    if (!ok_) return false;
    beast::error_code ec;
    asio::write(sock_, asio::buffer(data), ec);
    if (ec) ok_ = false;
    return ok_;
  }
  asio::ip::tcp::socket& sock_;
  bool keep_alive_, sent_ = false, streaming_ = false, ok_ = true;
};

}  // namespace

HttpServer::HttpServer(HttpOptions opts, Handler handler) : opts_(std::move(opts)), handler_(std::move(handler)) {}

HttpServer::~HttpServer() {
  stop();
  std::vector<std::thread> ts;
  {
    std::lock_guard lk(mu_);
    ts.swap(threads_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : ts)
    if (t.joinable()) t.join();
}

void HttpServer::listen() {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  std::string port = std::to_string(opts_.port);
  if (getaddrinfo(opts_.host.c_str(), port.c_str(), &hints, &res) != 0 || !res)
    throw Error("cannot resolve listen address '" + opts_.host + "'");
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || ::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 512) != 0) {
    int err = errno;
    freeaddrinfo(res);
    if (fd >= 0) ::close(fd);
    throw Error("cannot listen on " + opts_.host + ":" + port + ": " + std::strerror(err));
  }
  freeaddrinfo(res);
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  listen_fd_ = fd;
}

void HttpServer::serve() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (connections_ >= opts_.max_connections) {
      const char* busy = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)!::write(fd, busy, std::strlen(busy));
      ::close(fd);
      continue;
    }
    ++connections_;
    std::lock_guard lk(mu_);
    open_fds_.insert(fd);
    threads_.emplace_back([this, fd] {
      session(fd);
      --connections_;
    });
    // Reap finished threads now and then so the list stays short.
    if (threads_.size() > 2u * static_cast<size_t>(opts_.max_connections)) {
      for (auto& t : threads_) t.detach();
      threads_.clear();
    }
  }
}

void HttpServer::stop() {
  stopping_ = true;
  if (listen_fd_ >= 0) {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
}

void HttpServer::session(int fd) {
  asio::io_context io;
  asio::ip::tcp::socket sock(io);
  boost::system::error_code ec;
  sock.assign(asio::ip::tcp::v6(), fd, ec);  // the protocol tag does not matter for reads and writes
  timeval tv{opts_.read_timeout_seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  beast::flat_buffer buf;
  while (!stopping_) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(opts_.body_limit);
    parser.header_limit(64 * 1024);
    http::read(sock, buf, parser, ec);
    if (ec == http::error::body_limit) {
      SocketResponder r(sock, false);
      r.send(413, "application/json", R"({"error":{"message":"request body is too large","type":"invalid_request_error","code":413}})");
      break;
    }
    if (ec) break;  // closed, timed out, or malformed HTTP
    auto& msg = parser.get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    for (const auto& f : msg) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers[name] = std::string(f.value());
    }
    req.body = std::move(msg.body());
    const bool keep = msg.keep_alive();
    SocketResponder r(sock, keep);
    if (req.method == "OPTIONS") {
      r.send(204, "text/plain", "");
    } else {
      try {
        handler_(req, r);
      } catch (const std::exception& e) {
        if (!r.sent()) r.send(500, "application/json", std::string(R"({"error":{"message":"internal error","type":"server_error"}})"));
      }
      if (!r.sent()) r.send(500, "application/json", R"({"error":{"message":"no response","type":"server_error"}})");
    }
    if (!keep || !r.ok()) break;
  }
  {
    std::lock_guard l(mu_);
    open_fds_.erase(fd);
  }
  sock.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  sock.close(ec);
}

}  // namespace jing::server
