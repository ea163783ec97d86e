// Several processes agreeing on one opaque id before they open a group together: NCCL's unique id,
// which the process holding rank 0 makes and the others must receive before any of them can join
// (ncclCommInitRank). The process of rank 0 serves the id at an address; the others fetch it there.
// One process driving every GPU of its machine needs none of this (it makes the id itself); the
// address is what a run over several machines adds.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace jing::runtime {

struct Address {
  std::string host;
  uint16_t port = 0;
};
// "host:port" or "[v6 host]:port"; a clear error otherwise.
Address parse_address(const std::string& text);

// Serves `id` to `peers` processes that connect to `at` (port 0: any free one, see port()), from
// a thread of its own, so the caller can go on to its own part of the group meanwhile.
class IdServer {
 public:
  IdServer(const Address& at, std::vector<uint8_t> id, int peers, std::chrono::milliseconds timeout);
  ~IdServer();
  IdServer(const IdServer&) = delete;
  IdServer& operator=(const IdServer&) = delete;
  uint16_t port() const;
  // Waits until every peer has the id; throws, naming how many came, if the time ran out first.
  void wait();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The id served at `from`, `bytes` long. Connects again while nothing listens there yet (the
// serving process may start later), until `timeout`; then, or on a reply that is not an id of
// that length, a clear error.
std::vector<uint8_t> fetch_id(const Address& from, size_t bytes, std::chrono::milliseconds timeout);

}  // namespace jing::runtime
