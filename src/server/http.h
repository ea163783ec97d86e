// A small HTTP/1.1 server on Boost.Beast: one thread per connection (synchronous reads and
// writes keep streaming simple), keep-alive, CORS, a body-size limit (413), read timeouts, and
// chunked streaming responses for SSE and NDJSON.
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace jing::server {

struct HttpRequest {
  std::string method, target, path, query, body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string header(const std::string& name) const;
};

// Writes one response: either whole (send) or streamed (begin_stream + chunk... + end_stream).
class HttpResponder {
 public:
  virtual ~HttpResponder() = default;
  virtual void send(int status, const std::string& content_type, const std::string& body,
                    const std::map<std::string, std::string>& extra_headers = {}) = 0;
  virtual bool begin_stream(int status, const std::string& content_type) = 0;
  virtual bool chunk(const std::string& data) = 0;  // false: the client is gone
  virtual void end_stream() = 0;
  virtual bool client_gone() = 0;  // polls the socket without blocking
};

using Handler = std::function<void(const HttpRequest&, HttpResponder&)>;

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 11434;
  size_t body_limit = 32 << 20;
  int read_timeout_seconds = 600;
  int max_connections = 512;
};

class HttpServer {
 public:
  HttpServer(HttpOptions opts, Handler handler);
  ~HttpServer();
  void listen();          // binds (throws jing::Error when the port is taken)
  int port() const { return port_; }
  void serve();           // accepts until stop()
  void stop();

 private:
  void session(int fd);
  HttpOptions opts_;
  Handler handler_;
  int listen_fd_ = -1, port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::set<int> open_fds_;  // shut down on destruction so idle keep-alive reads return
};

std::string status_text(int status);

}  // namespace jing::server
