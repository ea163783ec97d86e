#include "runtime/rendezvous.h"

#include <utility>  // boost/asio/awaitable.hpp uses std::exchange without including it (Boost 1.74)

#include <boost/asio.hpp>
#include <array>
#include <cstring>
#include <thread>

#include "common/error.h"

namespace jing::runtime {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// What goes over the wire: a magic word, the id's length (4 bytes, little-endian), the id.
constexpr std::array<char, 8> kMagic{'J', 'I', 'N', 'G', '-', 'I', 'D', '1'};
constexpr size_t kHeader = kMagic.size() + 4;

std::string text_of(const Address& a) { return a.host + ":" + std::to_string(a.port); }

tcp::endpoint resolve(asio::io_context& io, const Address& a) {
  boost::system::error_code ec;
  auto found = tcp::resolver(io).resolve(a.host, std::to_string(a.port), ec);
  if (ec || found.empty()) throw Error("cannot resolve " + text_of(a) + ": " + ec.message());
  return found.begin()->endpoint();
}

}  // namespace

Address parse_address(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    throw Error("address '" + text + "': expected host:port");
  std::string host = text.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') throw Error("address '" + text + "': an IPv6 host goes in brackets, [::1]:port");
    host = host.substr(1, host.size() - 2);
  }
  const std::string port = text.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535)
    throw Error("address '" + text + "': the port must be a number from 0 to 65535");
  return {host, static_cast<uint16_t>(std::stoi(port))};
}

struct IdServer::State {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  asio::steady_timer deadline{io};
  std::vector<uint8_t> message;
  int peers = 0, served = 0;
  uint16_t port = 0;
  std::chrono::milliseconds timeout{0};
  std::thread thread;

  void accept_next() {
    auto socket = std::make_shared<tcp::socket>(io);
    acceptor.async_accept(*socket, [this, socket](const boost::system::error_code& ec) {
      if (ec) return;  // closed: all served, or the time ran out
      asio::async_write(*socket, asio::buffer(message), [this, socket](const boost::system::error_code& wec, size_t) {
        if (!wec && ++served == peers) {
          acceptor.close();
          deadline.cancel();
        }
      });
      accept_next();  // the next peer (a pending accept ends when the acceptor closes)
    });
  }
};

IdServer::IdServer(const Address& at, std::vector<uint8_t> id, int peers, std::chrono::milliseconds timeout) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.peers = peers, s.timeout = timeout;
  s.message.assign(kMagic.begin(), kMagic.end());
  for (int i = 0; i < 4; ++i) s.message.push_back(static_cast<uint8_t>(id.size() >> (8 * i)));
  s.message.insert(s.message.end(), id.begin(), id.end());
  const tcp::endpoint ep = resolve(s.io, at);
  boost::system::error_code ec;
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) s.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(ep, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) s.port = s.acceptor.local_endpoint(ec).port();
  if (ec) throw Error("cannot serve the group's id at " + text_of(at) + ": " + ec.message());
  if (peers <= 0) return;
  s.accept_next();
  s.deadline.expires_after(timeout);
  s.deadline.async_wait([&s](const boost::system::error_code& wec) {
    if (!wec) s.acceptor.close();  // the time ran out: stop accepting
  });
  s.thread = std::thread([&s] { s.io.run(); });
}

IdServer::~IdServer() {
  if (state_->thread.joinable()) {
    asio::post(state_->io, [s = state_.get()] {
      s->deadline.cancel();
      s->acceptor.close();
    });
    state_->thread.join();
  }
}

uint16_t IdServer::port() const { return state_->port; }

void IdServer::wait() {
  State& s = *state_;
  if (s.thread.joinable()) s.thread.join();
  if (s.served < s.peers)
    throw Error("only " + std::to_string(s.served) + " of " + std::to_string(s.peers) + " processes fetched the group's id within " +
                std::to_string(s.timeout.count()) + " ms");
}

std::vector<uint8_t> fetch_id(const Address& from, size_t bytes, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  std::string last = "nothing answered";
  while (std::chrono::steady_clock::now() < end) {
    asio::io_context io;
    tcp::socket socket(io);
    std::vector<uint8_t> reply(kHeader + bytes);
    boost::system::error_code result = asio::error::timed_out;
    size_t got = 0;
    tcp::endpoint ep;
    try {
      ep = resolve(io, from);
    } catch (const Error& e) {
      last = e.what();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    socket.async_connect(ep, [&](const boost::system::error_code& ec) {
      if (ec) {
        result = ec;
        return;
      }
      // Reads until the peer closes or the buffer is full: a longer reply is caught below.
      asio::async_read(socket, asio::buffer(reply), [&](const boost::system::error_code& rec, size_t n) {
        got = n;
        result = rec == asio::error::eof ? boost::system::error_code{} : rec;
      });
    });
    io.run_for(std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()));
    if (result == asio::error::timed_out) break;
    if (result) {  // refused or reset: the serving process may not listen yet
      last = result.message();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (got < kHeader || std::memcmp(reply.data(), kMagic.data(), kMagic.size()) != 0)
      throw Error(text_of(from) + " did not answer with a group id (another program listens there?)");
    uint32_t length = 0;
    for (int i = 0; i < 4; ++i) length |= static_cast<uint32_t>(reply[kMagic.size() + static_cast<size_t>(i)]) << (8 * i);
    if (length != bytes || got != kHeader + bytes)
      throw Error(text_of(from) + " served an id of " + std::to_string(length) + " bytes, expected " + std::to_string(bytes));
    return {reply.begin() + kHeader, reply.end()};
  }
  throw Error("no group id from " + text_of(from) + " within " + std::to_string(timeout.count()) + " ms (" + last + ")");
}

}  // namespace jing::runtime
