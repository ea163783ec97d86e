#include "test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "common/error.h"
#ifdef JING_WITH_CUDA
#include "cuda/device.h"
#endif

namespace jing::test {

std::filesystem::path fixtures_dir() {
  if (const char* env = std::getenv("JING_FIXTURES"); env && *env)
    return std::filesystem::exists(env) ? std::filesystem::path(env) : std::filesystem::path();
  std::filesystem::path p = JING_FIXTURES_DIR;
  return std::filesystem::exists(p) ? p : std::filesystem::path();
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() / ("jing-test-" + std::to_string(rd()) + std::to_string(getpid()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

bool have_gpu() {
#ifdef JING_WITH_CUDA
  return cuda::available();
#else
  return false;
#endif
}

int gpu_count() {
#ifdef JING_WITH_CUDA
  return cuda::available() ? cuda::device_count() : 0;
#else
  return 0;
#endif
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<float> read_f32(const std::filesystem::path& p) {
  std::string bytes = read_file(p);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}


CommandResult run_jing(const std::vector<std::string>& args) { return run_program(JING_BINARY, args); }

CommandResult run_program(const std::string& program, const std::vector<std::string>& args) {
  TempDir tmp;
  const std::string out_path = (tmp / "out").string(), err_path = (tmp / "err").string();
  std::fflush(nullptr);  // else the child's freopen writes out a copy of the parent's buffered output
  pid_t pid = fork();
  if (pid == 0) {
    FILE* o = std::freopen(out_path.c_str(), "w", stdout);
    FILE* e = std::freopen(err_path.c_str(), "w", stderr);
    (void)o;
    (void)e;
    std::vector<char*> argv;
    std::string bin = program;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(bin.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

}  // namespace jing::test
