#include "server/http_reader.h"

#include <boost/beast/http.hpp>
#include <optional>

namespace jing::server {

namespace http = boost::beast::http;

namespace {

// "GET / HTTP/2.0": a well-formed request line of a version this server does not speak (505),
// as opposed to a malformed one (400).
bool names_other_version(std::string_view data) {
  while (!data.empty() && (data[0] == '\r' || data[0] == '\n')) data.remove_prefix(1);
  auto eol = data.find("\r\n");
  if (eol == std::string_view::npos) return false;
  auto line = data.substr(0, eol);
  auto sp = line.rfind(' ');
  if (sp == std::string_view::npos) return false;
  auto v = line.substr(sp + 1);
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  return v.size() >= 6 && v.substr(0, 5) == "HTTP/" && digit(v[5]) && (v.size() == 6 || (v.size() == 8 && v[6] == '.' && digit(v[7])));
}

}  // namespace

struct RequestReader::Impl {
  std::optional<http::request_parser<http::string_body>> parser;
};

RequestReader::RequestReader(size_t body_limit, size_t header_limit)
    : impl_(std::make_unique<Impl>()), body_limit_(body_limit), header_limit_(header_limit) {
  reset();
}

RequestReader::~RequestReader() = default;

void RequestReader::reset() {
  impl_->parser.emplace();
  impl_->parser->body_limit(body_limit_);
  impl_->parser->header_limit(static_cast<uint32_t>(header_limit_));
  impl_->parser->eager(true);
  started_ = complete_ = false;
  error_status_ = 0;
  error_message_.clear();
}

void RequestReader::fail(int status, std::string message) {
  error_status_ = status;
  error_message_ = std::move(message);
}

bool RequestReader::header_done() const { return impl_->parser->is_header_done(); }

bool RequestReader::expects_continue() const {
  auto& p = *impl_->parser;
  if (!p.is_header_done() || p.is_done()) return false;
  auto it = p.get().find(http::field::expect);
  return it != p.get().end() && boost::beast::iequals(it->value(), "100-continue");
}

size_t RequestReader::feed(const char* data, size_t n) {
  if (error_status_ || complete_ || n == 0) return 0;
  // Blank lines before a request line are allowed (RFC 9112 2.2) and would confuse the parser.
  size_t used = 0;
  if (!started_) {
    while (used < n && (data[used] == '\r' || data[used] == '\n')) ++used;
    if (used == n) return used;
    started_ = true;
  }
  auto& p = *impl_->parser;
  while (used < n && !p.is_done()) {
    const bool had_header = p.is_header_done();
    boost::beast::error_code ec;
    size_t k = p.put(boost::asio::buffer(data + used, n - used), ec);
    used += k;
    if (ec == http::error::need_more) break;
    if (ec == http::error::header_limit) return fail(431, "the request headers are larger than " + std::to_string(header_limit_ / 1024) + " KiB"), used;
    if (ec == http::error::body_limit) return fail(413, "the request body is larger than " + std::to_string(body_limit_ >> 20) + " MiB"), used;
    if (ec == http::error::bad_version && names_other_version(std::string_view(data, n)))
      return fail(505, "only HTTP/1.0 and HTTP/1.1 are served"), used;
    if (ec) return fail(400, "malformed HTTP request: " + ec.message()), used;
    if (!had_header && p.is_header_done()) {
      const auto& m = p.get();
      if (m.version() != 10 && m.version() != 11) return fail(505, "only HTTP/1.0 and HTTP/1.1 are served"), used;
      auto te = m.find(http::field::transfer_encoding);
      if (te != m.end() && !p.chunked()) return fail(400, "unsupported Transfer-Encoding (only chunked)"), used;
      if (m.target().empty() || (m.target()[0] != '/' && m.target() != "*" && m.method() != http::verb::connect &&
                                 m.target().substr(0, 7) != "http://" && m.target().substr(0, 8) != "https://"))
        return fail(400, "malformed request target"), used;
    }
    if (k == 0) break;
  }
  if (p.is_done()) complete_ = true;
  return used;
}

void RequestReader::eof() {
  if (started_ && !complete_ && !error_status_) fail(400, "the connection closed in the middle of a request");
}

HttpRequest RequestReader::take() {
  auto msg = impl_->parser->release();
  HttpRequest req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  if (req.target.rfind("http://", 0) == 0 || req.target.rfind("https://", 0) == 0) {  // absolute form
    auto slash = req.target.find('/', req.target.find("://") + 3);
    req.target = slash == std::string::npos ? "/" : req.target.substr(slash);
  }
  auto q = req.target.find('?');
  req.path = req.target.substr(0, q);
  if (q != std::string::npos) req.query = req.target.substr(q + 1);
  for (const auto& f : msg) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto [it, fresh] = req.headers.emplace(name, std::string(f.value()));
    if (!fresh) it->second += ", " + std::string(f.value());  // repeated fields join as one list
  }
  req.version = msg.version();
  req.keep_alive = msg.keep_alive();
  req.body = std::move(msg.body());
  reset();
  return req;
}

}  // namespace jing::server
