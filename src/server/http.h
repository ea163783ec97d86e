// A small HTTP/1.x server on Boost.Asio/Beast, built to stay up under careless and hostile
// clients: one I/O thread reads every connection without blocking (so idle, slow or half-sent
// connections cost a socket, not a thread), with deadlines for headers, bodies and idle keep-alive;
// a full request goes to a bounded pool of worker threads whose handler writes the response
// synchronously (simple streaming). At the connection limit the oldest connection not running a
// request is closed to make room; when every worker is taken, requests get a 503 with a JSON body.
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace jing::server {

struct HttpRequest {
  std::string method, target, path, query, body;
  std::map<std::string, std::string> headers;  // lower-case names
  unsigned version = 11;                       // 10: HTTP/1.0, 11: HTTP/1.1
  bool keep_alive = true;
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
  // Whether the client has gone away (polls the socket without blocking; a client that only
  // half-closed after its request still gets its answer).
  virtual bool client_gone() = 0;
  // Headers added to every response of this request (CORS); set by the router before answering.
  virtual void add_header(const std::string& name, const std::string& value) = 0;
};

using Handler = std::function<void(const HttpRequest&, HttpResponder&)>;

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 11434;
  size_t body_limit = 32 << 20;
  size_t header_limit = 64 << 10;
  int read_timeout_seconds = 600;    // --timeout: a body or a response write may stall this long
  int header_timeout_seconds = 10;   // from a request's first byte to the end of its headers
  int idle_timeout_seconds = 30;     // keep-alive connections waiting for their next request
  int max_connections = 1024;        // open sockets; beyond it the oldest idle one is closed
  int max_workers = 128;             // requests handled at once (threads)
  int max_pending = 256;             // complete requests waiting for a worker before 503
  int shutdown_grace_seconds = 4;    // stop(): how long open responses may take to finish
};

// Figures for tests and /metrics.
struct HttpStats {
  int connections = 0, busy = 0, workers = 0, pending = 0;
  uint64_t shed = 0, timed_out = 0, rejected = 0;
};

class HttpServer {
 public:
  HttpServer(HttpOptions opts, Handler handler);
  ~HttpServer();
  void listen();          // binds (throws jing::Error when the port is taken)
  int port() const;
  void serve();           // runs until stop() and the responses still open have finished
  void stop();            // thread-safe; stops accepting and closes idle connections
  HttpStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string status_text(int status);

}  // namespace jing::server
