// Incremental HTTP/1.x request parsing (Boost.Beast's parser) with the limits and the error
// statuses a server answers with: 400 malformed, 413 body too large, 431 headers too large,
// 505 version. The server feeds it socket bytes as they arrive; the HTTP fuzzer feeds it anything.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "server/http.h"

namespace jing::server {

class RequestReader {
 public:
  RequestReader(size_t body_limit, size_t header_limit = 64 * 1024);
  ~RequestReader();

  // Parses from data[0, n); returns how many bytes were used (the rest belongs to a later
  // request, or is needed again with more bytes behind it).
  size_t feed(const char* data, size_t n);
  // The peer closed its side: a request in progress becomes an error.
  void eof();

  bool started() const { return started_; }          // any byte of a request seen
  bool header_done() const;
  bool expects_continue() const;                       // "Expect: 100-continue" with a body to come
  bool complete() const { return complete_; }
  int error_status() const { return error_status_; }  // 0: none
  const std::string& error_message() const { return error_message_; }

  // The finished request (after complete()); the reader then starts over for the next one.
  HttpRequest take();

 private:
  void fail(int status, std::string message);
  void reset();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  size_t body_limit_, header_limit_;
  bool started_ = false, complete_ = false;
  int error_status_ = 0;
  std::string error_message_;
};

}  // namespace jing::server
