// Helpers shared by the tests: fixture paths (skip when absent), temp dirs, running the binary.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace jing::test {

// ../shared/fixtures (or $JING_FIXTURES); empty when absent.
std::filesystem::path fixtures_dir();
// A fixture file's path; the calling test is skipped with a clear message when it is missing.
#define JING_FIXTURE_OR_SKIP(var, rel)                                                   \
  const std::filesystem::path var = ::jing::test::fixtures_dir() / (rel);                \
  if (::jing::test::fixtures_dir().empty() || !std::filesystem::exists(var))             \
  GTEST_SKIP() << "fixture " << (rel) << " not found (set JING_FIXTURES or provide ../shared/fixtures)"

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs the built `jing` binary with arguments (no shell), capturing output.
CommandResult run_jing(const std::vector<std::string>& args);
// Runs any program (looked up on PATH when it has no slash); exit code 127 when it cannot start.
CommandResult run_program(const std::string& program, const std::vector<std::string>& args);

std::string read_file(const std::filesystem::path& p);

// True when this build has CUDA and a GPU answers (GPU tests skip otherwise).
bool have_gpu();
int gpu_count();  // CUDA GPUs this machine has (0 without CUDA)
// The message of the jing::Error that f throws; empty when it throws none.
std::string error_of(const std::function<void()>& f);
std::vector<float> read_f32(const std::filesystem::path& p);

}  // namespace jing::test
