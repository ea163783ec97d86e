#include "store/download.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "common/error.h"
#include "store/http.h"
#include "store/store.h"

namespace jing::store {

namespace fs = std::filesystem;

std::atomic<bool>& download_cancel_flag() {
  static std::atomic<bool> flag{false};
  return flag;
}

std::string sha256_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path.string());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) out += hex[md[i] >> 4], out += hex[md[i] & 15];
  return out;
}

namespace {

struct Chunk {
  uint64_t start = 0, end = 0;  // [start, end)
  std::atomic<uint64_t> done{0};
};

fs::path partial_path(const DownloadTask& t) { return fs::path(t.dest.string() + ".partial"); }
fs::path state_path(const DownloadTask& t) { return fs::path(t.dest.string() + ".state"); }

// The state file names what it belongs to (size + sha256), so a changed upstream file restarts.
std::vector<std::unique_ptr<Chunk>> load_state(const DownloadTask& t) {
  std::vector<std::unique_ptr<Chunk>> chunks;
  std::ifstream in(state_path(t));
  if (!in || !fs::exists(partial_path(t)) || fs::file_size(partial_path(t)) != t.size) return chunks;
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || j.value("size", uint64_t{0}) != t.size || j.value("sha256", "") != t.sha256 || !j["chunks"].is_array())
    return chunks;
  uint64_t expect = 0;
  for (const auto& c : j["chunks"]) {
    auto ch = std::make_unique<Chunk>();
    ch->start = c.at(0).get<uint64_t>();
    ch->end = c.at(1).get<uint64_t>();
    uint64_t done = c.at(2).get<uint64_t>();
    if (ch->start != expect || ch->end < ch->start || done > ch->end - ch->start) return {};
    ch->done = done;
    expect = ch->end;
    chunks.push_back(std::move(ch));
  }
  if (expect != t.size) return {};
  return chunks;
}

void save_state(const DownloadTask& t, const std::vector<std::unique_ptr<Chunk>>& chunks) {
  nlohmann::json j{{"size", t.size}, {"sha256", t.sha256}, {"url", t.url}, {"chunks", nlohmann::json::array()}};
  for (const auto& c : chunks) j["chunks"].push_back({c->start, c->end, c->done.load()});
  write_file_atomic(state_path(t), j.dump());
}

struct Transfer {
  int fd;
  Chunk* chunk;
  std::string error;
};

size_t on_data(char* p, size_t size, size_t n, void* user) {
  auto* tr = static_cast<Transfer*>(user);
  size_t len = size * n;
  uint64_t at = tr->chunk->start + tr->chunk->done;
  if (at + len > tr->chunk->end) {
    tr->error = "the server sent more data than the file holds";
    return 0;
  }
  size_t off = 0;
  while (off < len) {
    ssize_t w = pwrite(tr->fd, p + off, len - off, static_cast<off_t>(at + off));
    if (w < 0) {
      if (errno == EINTR) continue;
      tr->error = errno == ENOSPC ? "the disk is full" : std::string("write failed: ") + std::strerror(errno);
      return 0;
    }
    off += static_cast<size_t>(w);
  }
  tr->chunk->done += len;
  return len;
}

int on_progress(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) { return download_cancel_flag().load() ? 1 : 0; }

// Fetches what is left of one chunk; returns an error message or "".
std::string fetch_chunk(const DownloadTask& t, int fd, Chunk& chunk) {
  if (chunk.done == chunk.end - chunk.start) return "";
  Transfer tr{fd, &chunk, ""};
  CURL* c = curl_easy_init();
  HeaderList hl(t.headers);
  std::string range = std::to_string(chunk.start + chunk.done) + "-" + std::to_string(chunk.end - 1);
  curl_easy_setopt(c, CURLOPT_URL, t.url.c_str());
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl.get());
  curl_easy_setopt(c, CURLOPT_USERAGENT, "jing/0.1");
  curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &tr);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (!tr.error.empty()) return tr.error;
  if (rc == CURLE_ABORTED_BY_CALLBACK) return "interrupted";
  if (rc == CURLE_HTTP_RETURNED_ERROR) return "HTTP " + std::to_string(status) + " from " + t.url;
  if (rc != CURLE_OK) return std::string(curl_easy_strerror(rc));
  if (status != 206 && !(status == 200 && chunk.start == 0 && chunk.end == t.size))
    return "the server does not support ranged downloads (HTTP " + std::to_string(status) + ")";
  if (chunk.done != chunk.end - chunk.start) return "the connection closed early";
  return "";
}

}  // namespace

uint64_t bytes_already_downloaded(const DownloadTask& task) {
  if (fs::exists(task.dest)) return task.size;
  uint64_t n = 0;
  for (const auto& c : load_state(task)) n += c->done;
  return n;
}

void download(const DownloadTask& t, int connections, const std::function<void(uint64_t)>& on_bytes) {
  curl_init_once();
  if (fs::exists(t.dest) && fs::file_size(t.dest) == t.size) return;  // finished earlier
  fs::create_directories(t.dest.parent_path());
  auto chunks = load_state(t);
  if (chunks.empty()) {
    // One connection per 32 MiB (JING_DOWNLOAD_CHUNK bytes), up to `connections`.
    uint64_t chunk_bytes = 32ull << 20;
    if (const char* env = std::getenv("JING_DOWNLOAD_CHUNK"); env && std::strtoull(env, nullptr, 10) > 0) chunk_bytes = std::strtoull(env, nullptr, 10);
    int n = static_cast<int>(std::clamp<uint64_t>(t.size / chunk_bytes, 1, static_cast<uint64_t>(std::max(1, connections))));
    for (int i = 0; i < n; ++i) {
      auto c = std::make_unique<Chunk>();
      c->start = t.size * i / n;
      c->end = t.size * (i + 1) / n;
      chunks.push_back(std::move(c));
    }
    int fd = ::open(partial_path(t).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Error("cannot create " + partial_path(t).string() + ": " + std::strerror(errno));
    // Reserve the space now: a full disk is reported before any transfer, not halfway through.
    int err = t.size ? posix_fallocate(fd, 0, static_cast<off_t>(t.size)) : 0;
    ::close(fd);
    if (err) {
      fs::remove(partial_path(t));
      throw Error(err == ENOSPC ? "not enough disk space for " + t.dest.filename().string()
                                : "cannot allocate " + t.dest.filename().string() + ": " + std::strerror(err));
    }
    save_state(t, chunks);
  }

  int fd = ::open(partial_path(t).c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + partial_path(t).string() + ": " + std::strerror(errno));
  std::vector<std::string> errors(chunks.size());
  std::vector<std::thread> workers;
  std::atomic<int> running{static_cast<int>(chunks.size())};
  for (size_t i = 0; i < chunks.size(); ++i)
    workers.emplace_back([&, i] {
      errors[i] = fetch_chunk(t, fd, *chunks[i]);
      --running;
    });
  auto total_done = [&] {
    uint64_t n = 0;
    for (const auto& c : chunks) n += c->done;
    return n;
  };
  auto last_save = std::chrono::steady_clock::now();
  while (running > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (on_bytes) on_bytes(total_done());
    if (std::chrono::steady_clock::now() - last_save > std::chrono::milliseconds(500)) {
      save_state(t, chunks);
      last_save = std::chrono::steady_clock::now();
    }
  }
  for (auto& w : workers) w.join();
  fdatasync(fd);
  ::close(fd);
  save_state(t, chunks);
  if (on_bytes) on_bytes(total_done());
  for (const auto& e : errors)
    if (!e.empty()) {
      if (e == "interrupted") throw Error("download interrupted; run the same command again to resume");
      throw Error("downloading " + t.dest.filename().string() + " failed: " + e + " (run the command again to resume)");
    }

  if (!t.sha256.empty()) {
    std::string got = sha256_file(partial_path(t));
    if (got != t.sha256) {
      fs::remove(partial_path(t));
      fs::remove(state_path(t));
      throw Error("downloaded " + t.dest.filename().string() + " is corrupt: sha256 " + got + " does not match the expected " +
                  t.sha256 + "; nothing was installed");
    }
  }
  fs::rename(partial_path(t), t.dest);
  fs::remove(state_path(t));
}

}  // namespace jing::store
