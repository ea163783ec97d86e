// The responder a worker thread answers one request with: writes straight to the socket, each
// write bounded by the write timeout (a client that stops reading cannot hold a thread for
// ever), HEAD answered without a body, HTTP/1.0 streams delimited by closing instead of chunks.
#pragma once
#include <string>

#include "server/http.h"

namespace jing::server {

class SocketResponder : public HttpResponder {
 public:
  SocketResponder(int fd, const HttpRequest& req, int write_timeout_seconds);

  void send(int status, const std::string& content_type, const std::string& body,
            const std::map<std::string, std::string>& extra_headers = {}) override;
  bool begin_stream(int status, const std::string& content_type) override;
  bool chunk(const std::string& data) override;
  void end_stream() override;
  bool client_gone() override;
  void add_header(const std::string& name, const std::string& value) override;

  bool sent() const { return sent_; }
  bool ok() const { return ok_; }
  bool keep_alive() const { return keep_alive_ && ok_ && !streaming_; }

 private:
  std::string head(int status, const std::string& content_type) const;
  bool write(const std::string& data);
  int fd_;
  int timeout_ms_;
  bool head_only_, http10_, keep_alive_;
  std::string extra_;                 // "Name: value\r\n" lines from add_header
  std::string stream_type_;
  bool sent_ = false, streaming_ = false, chunked_ = false, ok_ = true, probed_ = false;
};

// Writes all of data to a socket, waiting at most timeout_ms for it to drain; false on error or timeout.
bool write_fully(int fd, const char* data, size_t n, int timeout_ms);

// A whole error response with a JSON body, as the I/O thread sends it before closing.
std::string error_response(int status, const std::string& message, bool close = true);

}  // namespace jing::server
