#include "store/progress.h"

#include <unistd.h>

#include <algorithm>

#include "gguf/summary.h"

namespace jing::store {

ProgressBar::ProgressBar(std::string label, uint64_t total, uint64_t already, std::FILE* out)
    : label_(std::move(label)), total_(total), start_bytes_(already), out_(out), tty_(isatty(fileno(out)) != 0),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void ProgressBar::update(uint64_t done) {
  auto now = std::chrono::steady_clock::now();
  if (tty_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  draw(done, false);
}

void ProgressBar::finish(const std::string& note) {
  draw(total_, true);
  if (!note.empty()) std::fprintf(out_, "%s\n", note.c_str());
}

void ProgressBar::draw(uint64_t done, bool final) {
  last_draw_ = std::chrono::steady_clock::now();
  double secs = std::chrono::duration<double>(last_draw_ - start_).count();
  double rate = secs > 0.2 ? (done - std::min(done, start_bytes_)) / secs : 0;
  int percent = total_ ? static_cast<int>(100.0 * done / total_) : 100;
  std::string eta = "--";
  if (rate > 0 && done < total_) {
    auto s = static_cast<long>((total_ - done) / rate);
    eta = s >= 3600 ? std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m"
                    : std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  }
  std::string sizes = gguf::format_bytes(done) + " / " + gguf::format_bytes(total_);
  std::string speed = gguf::format_bytes(static_cast<uint64_t>(rate)) + "/s";
  if (tty_) {
    const int width = 30;
    int fill = total_ ? static_cast<int>(width * static_cast<double>(done) / total_) : width;
    std::string bar = std::string(std::clamp(fill, 0, width), '#') + std::string(width - std::clamp(fill, 0, width), ' ');
    std::fprintf(out_, "\r\033[K%s [%s] %3d%% %s %s ETA %s", label_.c_str(), bar.c_str(), percent, sizes.c_str(), speed.c_str(),
                 final ? "0s" : eta.c_str());
    if (final) std::fprintf(out_, "\n");
  } else if (final || percent / 10 != last_percent_line_ / 10) {
    // Plain output (logs, pipes): one line per 10%.
    last_percent_line_ = percent;
    std::fprintf(out_, "%s: %d%% %s %s ETA %s\n", label_.c_str(), percent, sizes.c_str(), speed.c_str(), final ? "0s" : eta.c_str());
  }
  std::fflush(out_);
}

}  // namespace jing::store
