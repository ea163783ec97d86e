// The group id's rendezvous over TCP on 127.0.0.1: the process of rank 0 serves the id, the others
// fetch it, in whichever order they start; every failure is a clear error within its time limit.
#include <gtest/gtest.h>

#include <future>
#include <random>
#include <thread>

#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "common/error.h"
#include "runtime/rendezvous.h"

using namespace jing;
using namespace std::chrono_literals;

namespace {

std::vector<uint8_t> random_id(size_t n) {
  std::mt19937 rng(std::random_device{}());
  std::vector<uint8_t> id(n);
  for (auto& b : id) b = static_cast<uint8_t>(rng());
  return id;
}

// A port nothing listens on now (bound, read, released).
uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET, a.sin_addr.s_addr = htonl(INADDR_LOOPBACK), a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

TEST(Rendezvous, AddressesParseOrFailClearly) {
  auto a = runtime::parse_address("10.0.0.2:29500");
  EXPECT_EQ(a.host, "10.0.0.2");
  EXPECT_EQ(a.port, 29500);
  a = runtime::parse_address("[::1]:7");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 7);
  for (const char* bad : {"", "host", "host:", ":80", "host:port", "host:70000", "[::1:80", "host:123456"})
    EXPECT_THROW(runtime::parse_address(bad), Error) << bad;
}

TEST(Rendezvous, EveryPeerGetsTheServedIdWhicheverStartsFirst) {
  const auto id = random_id(128);
  const uint16_t port = free_port();
  const runtime::Address at{"127.0.0.1", port};
  // One peer asks before anything listens: it must try again until the server is up.
  auto early = std::async(std::launch::async, [&] { return runtime::fetch_id(at, id.size(), 10s); });
  std::this_thread::sleep_for(300ms);
  runtime::IdServer server(at, id, 3, 10s);
  EXPECT_EQ(server.port(), port);
  auto second = std::async(std::launch::async, [&] { return runtime::fetch_id(at, id.size(), 10s); });
  auto third = std::async(std::launch::async, [&] { return runtime::fetch_id(at, id.size(), 10s); });
  EXPECT_EQ(early.get(), id);
  EXPECT_EQ(second.get(), id);
  EXPECT_EQ(third.get(), id);
  EXPECT_NO_THROW(server.wait());
}

TEST(Rendezvous, AnyFreePortWhenAskedForPortZero) {
  const auto id = random_id(16);
  runtime::IdServer server({"127.0.0.1", 0}, id, 1, 10s);
  ASSERT_NE(server.port(), 0);
  EXPECT_EQ(runtime::fetch_id({"127.0.0.1", server.port()}, id.size(), 5s), id);
  server.wait();
}

TEST(Rendezvous, MissingPeersAndMissingServersEndInTime) {
  const auto id = random_id(128);
  runtime::IdServer server({"127.0.0.1", 0}, id, 2, 500ms);
  EXPECT_EQ(runtime::fetch_id({"127.0.0.1", server.port()}, id.size(), 5s), id);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    server.wait();
    FAIL() << "one of two peers came: wait() must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("only 1 of 2"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);

  const auto t1 = std::chrono::steady_clock::now();
  EXPECT_THROW(runtime::fetch_id({"127.0.0.1", free_port()}, 128, 700ms), Error);
  const auto took = std::chrono::steady_clock::now() - t1;
  EXPECT_GE(took, 600ms);
  EXPECT_LT(took, 3s);
}

TEST(Rendezvous, AnIdOfAnotherLengthOrAnotherProgramIsAClearError) {
  runtime::IdServer server({"127.0.0.1", 0}, random_id(64), 1, 5s);
  try {
    runtime::fetch_id({"127.0.0.1", server.port()}, 128, 5s);
    FAIL() << "a 64-byte id where 128 are expected must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("64 bytes, expected 128"), std::string::npos) << e.what();
  }

  // Something else listening there: it answers, but not with an id.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET, a.sin_addr.s_addr = htonl(INADDR_LOOPBACK), a.sin_port = 0;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::thread other([fd] {
    const int c = accept(fd, nullptr, nullptr);
    const char reply[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    (void)!write(c, reply, sizeof reply - 1);
    close(c);
  });
  EXPECT_THROW(runtime::fetch_id({"127.0.0.1", ntohs(a.sin_port)}, 128, 5s), Error);
  other.join();
  close(fd);
}

TEST(Rendezvous, AnAddressInUseIsAClearError) {
  runtime::IdServer first({"127.0.0.1", 0}, random_id(8), 1, 5s);
  EXPECT_THROW(runtime::IdServer({"127.0.0.1", first.port()}, random_id(8), 1, 5s), Error);
  EXPECT_EQ(runtime::fetch_id({"127.0.0.1", first.port()}, 8, 5s).size(), 8u);
}
