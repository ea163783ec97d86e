#include "store/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace jing::store {

namespace fs = std::filesystem;

void write_file_atomic(const fs::path& path, const std::string& data) {
  fs::create_directories(path.parent_path());
  fs::path tmp = path;
  tmp += ".tmp" + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot write " + tmp.string() + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      int err = errno;
      ::close(fd);
      fs::remove(tmp);
      throw Error("cannot write " + path.string() + ": " + std::strerror(err));
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || ::close(fd) != 0) {
    fs::remove(tmp);
    throw Error("cannot write " + path.string() + ": " + std::strerror(errno));
  }
  fs::rename(tmp, path);
}

FileLock::FileLock(const fs::path& path) {
  fs::create_directories(path.parent_path());
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot open lock " + path.string() + ": " + std::strerror(errno));
  while (flock(fd_, LOCK_EX) != 0)
    if (errno != EINTR) throw Error("cannot lock " + path.string() + ": " + std::strerror(errno));
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

Store::Store(fs::path root) : root_(std::move(root)) {}

Store Store::open_default() {
  if (const char* env = std::getenv("JING_MODELS"); env && *env) return Store(env);
  const char* home = std::getenv("HOME");
  return Store(fs::path(home && *home ? home : ".") / ".jing" / "models");
}

fs::path Store::lock_path(const ModelRef& ref) const {
  std::string flat = ref.store_dir().string();
  for (auto& c : flat)
    if (c == '/') c = '+';
  return root_ / ".locks" / (flat + ".lock");
}

std::optional<Entry> Store::read_entry(const fs::path& dir) const {
  std::ifstream in(dir / "manifest.json");
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("files") || !j["files"].is_array() || j["files"].empty())
    return std::nullopt;
  Entry e;
  e.dir = dir;
  e.name = j.value("name", "");
  e.quant = j.value("quant", "");
  e.modified = j.value("modified", int64_t{0});
  for (const auto& f : j["files"]) {
    if (!f.is_string()) return std::nullopt;
    std::string name = f.get<std::string>();
    std::error_code ec;
    auto size = fs::file_size(dir / name, ec);
    if (ec) return std::nullopt;  // a file went missing: not a usable model
    e.files.push_back(name);
    e.size += size;
  }
  e.manifest = std::move(j);
  return e;
}

std::vector<Entry> Store::list() const {
  std::vector<Entry> out;
  std::error_code ec;
  if (!fs::exists(root_, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(root_, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const auto& p = it->path();
    if (it->is_directory() && p.filename().string().starts_with(".")) {
      it.disable_recursion_pending();
      continue;
    }
    if (p.filename() == "manifest.json")
      if (auto e = read_entry(p.parent_path())) out.push_back(std::move(*e));
  }
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return out;
}

std::optional<Entry> Store::find(const ModelRef& ref) const { return read_entry(root_ / ref.store_dir()); }

Entry Store::install(const ModelRef& ref, const fs::path& staged, const std::vector<std::string>& files, nlohmann::json manifest) {
  fs::path dir = root_ / ref.store_dir();
  fs::create_directories(dir);
  fs::remove(dir / "manifest.json");
  for (const auto& f : files) fs::rename(staged / f, dir / f);
  manifest["name"] = ref.display();
  manifest["files"] = files;
  manifest["modified"] = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  write_file_atomic(dir / "manifest.json", manifest.dump(2));
  auto e = read_entry(dir);
  if (!e) throw Error("installing " + ref.display() + " failed: the store entry cannot be read back");
  return *e;
}

void Store::remove(const ModelRef& ref) {
  auto e = find(ref);
  if (!e) throw Error("model '" + ref.display() + "' not found");
  FileLock lock(lock_path(ref));
  fs::remove(e->dir / "manifest.json");  // first: from here on the model is gone
  for (const auto& f : e->files) fs::remove(e->dir / f);
  std::error_code ec;
  fs::remove(e->dir, ec);  // only if empty
  for (fs::path p = e->dir.parent_path(); p != root_ && p.string().size() > root_.string().size(); p = p.parent_path())
    if (!fs::remove(p, ec)) break;
}

Entry Store::copy(const ModelRef& from, const ModelRef& to) {
  auto src = find(from);
  if (!src) throw Error("model '" + from.display() + "' not found");
  if (find(to)) throw Error("model '" + to.display() + "' already exists");
  FileLock lock(lock_path(to));
  fs::path staging = downloads_dir() / ("copy-" + std::to_string(getpid()));
  fs::create_directories(staging);
  for (const auto& f : src->files) {
    std::error_code ec;
    fs::create_hard_link(src->dir / f, staging / f, ec);
    if (ec) fs::copy_file(src->dir / f, staging / f, fs::copy_options::overwrite_existing);
  }
  auto e = install(to, staging, src->files, src->manifest);
  fs::remove_all(staging);
  return e;
}

}  // namespace jing::store
