#include "server/http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>  // boost/asio/awaitable.hpp uses std::exchange without including it (Boost 1.74)

#include <boost/asio.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "server/http_reader.h"
#include "server/http_responder.h"

namespace jing::server {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Threads that run handlers: created on demand up to a bound, then requests wait in a queue of
// bounded length.
class WorkerPool {
 public:
  WorkerPool(int max_threads, int max_pending) : max_threads_(max_threads), max_pending_(max_pending) {}
  ~WorkerPool() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  bool submit(std::function<void()> task) {
    std::lock_guard lk(mu_);
    if (static_cast<int>(tasks_.size()) >= max_pending_) return false;
    tasks_.push_back(std::move(task));
    if (idle_ == 0 && static_cast<int>(threads_.size()) < max_threads_) threads_.emplace_back([this] { run(); });
    cv_.notify_one();
    return true;
  }
  int threads() {
    std::lock_guard lk(mu_);
    return static_cast<int>(threads_.size());
  }
  int pending() {
    std::lock_guard lk(mu_);
    return static_cast<int>(tasks_.size());
  }

 private:
  void run() {
    std::unique_lock lk(mu_);
    while (true) {
      ++idle_;
      cv_.wait(lk, [&] { return stop_ || !tasks_.empty(); });
      --idle_;
      if (tasks_.empty()) return;  // stopping
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lk.unlock();
      task();
      lk.lock();
    }
  }
  int max_threads_, max_pending_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
  int idle_ = 0;
  bool stop_ = false;
};

}  // namespace

// One client connection. Only the I/O thread touches it, except the socket's descriptor, which
// a worker writes the response to while the connection is busy (the I/O thread then leaves it be).
struct Conn {
  Conn(asio::io_context& io, asio::ip::tcp::socket s, size_t body_limit, size_t header_limit)
      : sock(std::move(s)), timer(io), reader(body_limit, header_limit) {}
  asio::ip::tcp::socket sock;
  asio::steady_timer timer;
  RequestReader reader;
  std::string inbuf;           // bytes read but not parsed yet (a pipelined next request)
  char chunk[16384];
  bool busy = false, closed = false, draining = false, continue_sent = false, reading = false;
  std::list<Conn*>::iterator idle_pos;  // place in the idle list (oldest first) when not busy
  bool in_idle = false;
};

struct HttpServer::Impl {
  HttpOptions opts;
  Handler handler;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io}, grace{io};
  int port = 0;
  bool stopping = false;
  std::unordered_map<Conn*, std::shared_ptr<Conn>> conns;
  std::list<Conn*> idle;  // connections not running a request, oldest first: shed from the front
  WorkerPool pool;
  std::atomic<int> n_conns{0}, n_busy{0};
  std::atomic<uint64_t> n_shed{0}, n_timed_out{0}, n_rejected{0};

  Impl(HttpOptions o, Handler h) : opts(std::move(o)), handler(std::move(h)), pool(opts.max_workers, opts.max_pending) {}

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, asio::ip::tcp::socket s) {
      if (stopping) return;
      if (ec) {  // out of descriptors, usually: wait instead of spinning
        accept_retry.expires_after(std::chrono::milliseconds(50));
        accept_retry.async_wait([this](boost::system::error_code e) {
          if (!e && !stopping) accept();
        });
        return;
      }
      admit(std::move(s));
      accept();
    });
  }

  void admit(asio::ip::tcp::socket s) {
    if (static_cast<int>(conns.size()) >= opts.max_connections && !idle.empty()) {
      n_shed++;
      close(idle.front());  // the oldest connection that is not running a request makes room
    }
    if (static_cast<int>(conns.size()) >= opts.max_connections) {
      n_rejected++;
      std::string r = error_response(503, "the server has too many open connections; try again");
      write_fully(s.native_handle(), r.data(), r.size(), 100);
      boost::system::error_code ec;
      s.close(ec);
      return;
    }
    boost::system::error_code ec;
    s.set_option(asio::ip::tcp::no_delay(true), ec);
    auto c = std::make_shared<Conn>(io, std::move(s), opts.body_limit, opts.header_limit);
    conns.emplace(c.get(), c);
    n_conns = static_cast<int>(conns.size());
    wait_for_request(c.get());
  }

  void set_idle(Conn* c, bool on) {
    if (on && !c->in_idle) c->idle_pos = idle.insert(idle.end(), c), c->in_idle = true;
    if (!on && c->in_idle) idle.erase(c->idle_pos), c->in_idle = false;
  }

  void arm(Conn* c, int seconds) {
    c->timer.expires_after(std::chrono::seconds(seconds));
    auto self = conns.at(c);
    c->timer.async_wait([this, self](boost::system::error_code ec) {
      if (ec || self->closed) return;
      n_timed_out++;
      // A request that started but did not arrive in time hears why; an idle one just closes.
      if (self->reader.started() && !self->busy && !self->draining) return fail(self.get(), 408, "the request did not arrive in time");
      close(self.get());
    });
  }

  // Between requests (and while one arrives): the connection is idle and may be shed.
  void wait_for_request(Conn* c) {
    c->busy = false;
    c->continue_sent = false;
    set_idle(c, true);
    arm(c, opts.idle_timeout_seconds);
    if (!c->inbuf.empty()) return parse(c);
    read(c);
  }

  void read(Conn* c) {
    if (c->reading) return;
    c->reading = true;
    auto self = conns.at(c);
    c->sock.async_read_some(asio::buffer(c->chunk), [this, self](boost::system::error_code ec, size_t n) {
      Conn* c = self.get();
      c->reading = false;
      if (c->closed) return;
      if (c->draining) {  // after an error answer: discard until the client closes or the timer fires
        if (ec) return close(c);
        return read(c);
      }
      if (ec) {
        c->reader.eof();
        if (c->reader.error_status()) return fail(c, c->reader.error_status(), c->reader.error_message());
        return close(c);
      }
      const bool first = !c->reader.started();
      c->inbuf.append(c->chunk, n);
      if (first && c->inbuf.find_first_not_of("\r\n") != std::string::npos) arm(c, opts.header_timeout_seconds);
      else if (c->reader.header_done()) arm(c, opts.read_timeout_seconds);  // body: each read renews it
      parse(c);
    });
  }

  void parse(Conn* c) {
    const bool had_header = c->reader.header_done();
    size_t used = c->reader.feed(c->inbuf.data(), c->inbuf.size());
    c->inbuf.erase(0, used);
    if (c->reader.error_status()) return fail(c, c->reader.error_status(), c->reader.error_message());
    if (c->reader.complete()) return dispatch(c);
    if (!had_header && c->reader.header_done()) arm(c, opts.read_timeout_seconds);
    if (c->reader.expects_continue() && !c->continue_sent) {
      c->continue_sent = true;
      static const std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
      write_fully(c->sock.native_handle(), cont.data(), cont.size(), 1000);
    }
    read(c);
  }

  void dispatch(Conn* c) {
    HttpRequest req = c->reader.take();
    set_idle(c, false);
    c->busy = true;
    c->timer.cancel();
    n_busy++;
    auto self = conns.at(c);
    const int fd = c->sock.native_handle();
    bool queued = pool.submit([this, self, fd, req = std::move(req)] {
      SocketResponder out(fd, req, opts.read_timeout_seconds);
      try {
        handler(req, out);
      } catch (const std::exception&) {
        if (!out.sent()) out.send(500, "application/json", R"({"error":{"message":"internal error","type":"server_error","code":500}})");
      }
      if (!out.sent()) out.send(500, "application/json", R"({"error":{"message":"no response","type":"server_error","code":500}})");
      const bool keep = out.keep_alive();
      asio::post(io, [this, self, keep] { finished(self.get(), keep); });
    });
    if (!queued) {
      n_busy--;
      n_rejected++;
      c->busy = false;
      fail(c, 503, "the server is busy: every worker is taken; try again");
    }
  }

  void finished(Conn* c, bool keep_alive) {
    n_busy--;
    c->busy = false;
    if (c->closed) return;
    if (!keep_alive || stopping) close(c);
    else wait_for_request(c);
    if (stopping && n_busy == 0) io.stop();
  }

  // Answers with an error and closes, after reading what the client still sends for a moment
  // (closing with unread data would reset the connection and could lose the answer).
  void fail(Conn* c, int status, const std::string& message) {
    std::string r = error_response(status, message);
    write_fully(c->sock.native_handle(), r.data(), r.size(), 1000);
    boost::system::error_code ec;
    c->sock.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    c->draining = true;
    set_idle(c, true);
    arm(c, 2);
    read(c);
  }

  void close(Conn* c) {
    if (c->closed) return;
    c->closed = true;
    set_idle(c, false);
    c->timer.cancel();
    boost::system::error_code ec;
    if (!c->busy) {
      c->sock.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
      c->sock.close(ec);
    }
    conns.erase(c);  // handlers still queued hold their own reference
    n_conns = static_cast<int>(conns.size());
  }

  void begin_stop() {
    if (stopping) return;
    stopping = true;
    boost::system::error_code ec;
    acceptor.close(ec);
    accept_retry.cancel();
    std::vector<Conn*> quiet;
    for (auto& [c, _] : conns)
      if (!c->busy) quiet.push_back(c);
    for (Conn* c : quiet) close(c);
    if (n_busy == 0) return io.stop();
    grace.expires_after(std::chrono::seconds(opts.shutdown_grace_seconds));
    grace.async_wait([this](boost::system::error_code e) {
      if (e) return;
      // Responses still open (a client that stopped reading): their writes fail now.
      for (auto& [c, _] : conns)
        if (c->busy) ::shutdown(c->sock.native_handle(), SHUT_RDWR);
      io.stop();
    });
  }
};

HttpServer::HttpServer(HttpOptions opts, Handler handler) : impl_(std::make_unique<Impl>(std::move(opts), std::move(handler))) {}

HttpServer::~HttpServer() {
  stop();
  impl_->io.stop();
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::listen() {
  // Every connection is a descriptor: allow as many as the system lets this process have.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  const auto& o = impl_->opts;
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  std::string port = std::to_string(o.port);
  if (getaddrinfo(o.host.c_str(), port.c_str(), &hints, &res) != 0 || !res)
    throw Error("cannot resolve listen address '" + o.host + "'");
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || ::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
    int err = errno;
    freeaddrinfo(res);
    if (fd >= 0) ::close(fd);
    throw Error("cannot listen on " + o.host + ":" + port + ": " + std::strerror(err));
  }
  const bool v6 = res->ai_family == AF_INET6;
  freeaddrinfo(res);
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  impl_->port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  impl_->acceptor.assign(v6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd);
}

void HttpServer::serve() {
  impl_->accept();
  impl_->io.run();
}

void HttpServer::stop() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->begin_stop(); });
}

HttpStats HttpServer::stats() const {
  HttpStats s;
  s.connections = impl_->n_conns;
  s.busy = impl_->n_busy;
  s.workers = impl_->pool.threads();
  s.pending = impl_->pool.pending();
  s.shed = impl_->n_shed;
  s.timed_out = impl_->n_timed_out;
  s.rejected = impl_->n_rejected;
  return s;
}

}  // namespace jing::server
