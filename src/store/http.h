// Small libcurl helpers shared by the hub client and the downloader.
#pragma once
#include <curl/curl.h>

#include <map>
#include <string>
#include <vector>

#include "common/error.h"

namespace jing::store {

void curl_init_once();

struct HttpResponse {
  long status = 0;
  std::string body;
  std::multimap<std::string, std::string> headers;  // lower-case names
};

// The server could not be reached at all (no connection, name not resolved, timed out).
struct Unreachable : Error {
  using Error::Error;
};

// GET with redirects followed; throws Unreachable on transport failure (not on HTTP status).
HttpResponse http_get(const std::string& url, const std::vector<std::string>& headers);

// A curl_slist built from header lines, freed with the object.
class HeaderList {
 public:
  explicit HeaderList(const std::vector<std::string>& lines);
  ~HeaderList();
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

}  // namespace jing::store
