// Download progress for people: a redrawn bar (bytes, rate, ETA) on a terminal, plain lines otherwise.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace jing::store {

class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total, uint64_t already, std::FILE* out = stderr);
  void update(uint64_t done);
  void finish(const std::string& note = "");

 private:
  void draw(uint64_t done, bool final);
  std::string label_;
  uint64_t total_, start_bytes_;
  std::FILE* out_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int last_percent_line_ = -1;
};

}  // namespace jing::store
