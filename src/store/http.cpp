#include "store/http.h"

#include <algorithm>
#include <mutex>

#include "common/error.h"

namespace jing::store {

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

HeaderList::HeaderList(const std::vector<std::string>& lines) {
  for (const auto& l : lines) list_ = curl_slist_append(list_, l.c_str());
}
HeaderList::~HeaderList() { curl_slist_free_all(list_); }

namespace {

size_t on_body(char* p, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(p, size * n);
  return size * n;
}

size_t on_header(char* p, size_t size, size_t n, void* user) {
  std::string line(p, size * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon), value = line.substr(colon + 1);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    auto trim = [](std::string& s) {
      s.erase(0, s.find_first_not_of(" \t"));
      s.erase(s.find_last_not_of(" \t\r\n") + 1);
    };
    trim(value);
    static_cast<HttpResponse*>(user)->headers.emplace(name, value);
  }
  return size * n;
}

}  // namespace

HttpResponse http_get(const std::string& url, const std::vector<std::string>& headers) {
  curl_init_once();
  HttpResponse r;
  CURL* c = curl_easy_init();
  if (!c) throw Error("cannot start an HTTP client");
  HeaderList hl(headers);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl.get());
  curl_easy_setopt(c, CURLOPT_USERAGENT, "jing/0.1");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) throw Unreachable("cannot reach " + url + ": " + curl_easy_strerror(rc));
  return r;
}

}  // namespace jing::store
