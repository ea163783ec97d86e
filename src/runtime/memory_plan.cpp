#include "runtime/memory_plan.h"

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/error.h"

namespace jing::runtime {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20, kGiB = uint64_t{1} << 30;

bool shown_in_gib(uint64_t bytes) { return bytes >= kGiB - kMiB / 20; }  // what would print as "1024.0 MiB" too

// A part's bytes as a number in the unit format_gib() chose for the total ("85.1").
std::string in_unit_of(uint64_t bytes, uint64_t total) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / static_cast<double>(shown_in_gib(total) ? kGiB : kMiB));
  return buf;
}

std::string parts(const Usage& u) {
  const uint64_t t = u.total();
  return "weights " + in_unit_of(u.weights, t) + ", KV cache " + in_unit_of(u.kv, t) + ", compute " + in_unit_of(u.compute, t);
}

// "a", "a or b", "a, b or c"
std::string either(const std::vector<std::string>& options) {
  std::string s;
  for (size_t i = 0; i < options.size(); ++i) s += (i == 0 ? "" : i + 1 == options.size() ? " or " : ", ") + options[i];
  return s;
}

std::optional<Device> pinned(const std::vector<std::optional<Device>>& v, int i) {
  return static_cast<size_t>(i) < v.size() ? v[static_cast<size_t>(i)] : std::nullopt;
}

}  // namespace

Placement Placement::all(int n_layer, Device d) {
  Placement p;
  p.layers.assign(static_cast<size_t>(n_layer), d);
  p.experts.assign(static_cast<size_t>(n_layer), d);
  p.input = p.output = d;
  return p;
}

int Placement::layers_on(Device d) const { return static_cast<int>(std::count(layers.begin(), layers.end(), d)); }

bool Placement::uses(Device d) const {
  return output == d || std::find(layers.begin(), layers.end(), d) != layers.end() ||
         std::find(experts.begin(), experts.end(), d) != experts.end();
}

Usage usage_on(Device d, const ModelSizes& s, const Placement& p) {
  Usage u;
  const int n = s.n_layer();
  for (int i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(i);
    if (p.layers.at(k) == d) u.weights += s.layer_bytes[k];
    if (p.experts.at(k) == d) u.weights += s.expert_bytes[k];
  }
  if (p.input == d) u.weights += s.input_bytes;
  if (p.output == d) u.weights += s.output_bytes - (s.tied_output && p.input == d ? std::min(s.input_bytes, s.output_bytes) : 0);
  // The GPU keeps a cache for its own layers; the CPU's spans every layer once it holds any.
  if (p.layers_on(d) > 0) u.kv = d == Device::Gpu ? static_cast<uint64_t>(p.layers_on(d)) * s.kv_layer_gpu : static_cast<uint64_t>(n) * s.kv_layer_cpu;
  if (p.uses(d)) u.compute = d == Device::Gpu ? s.compute_gpu : s.compute_cpu;
  return u;
}

Usage row_split_usage(const ModelSizes& s, int k, int parts) {
  Usage u;
  const auto share = [parts](uint64_t bytes) { return (bytes + static_cast<uint64_t>(parts) - 1) / static_cast<uint64_t>(parts); };
  uint64_t layers = 0;
  for (int i = 0; i < s.n_layer(); ++i) layers += s.layer_bytes[static_cast<size_t>(i)] + s.expert_bytes[static_cast<size_t>(i)];
  u.weights = share(layers) + (k == 0 ? s.input_bytes + s.output_bytes - (s.tied_output ? std::min(s.input_bytes, s.output_bytes) : 0) : 0);
  u.kv = share(static_cast<uint64_t>(s.n_layer()) * s.kv_layer_gpu);
  u.compute = s.compute_gpu;
  return u;
}

void check_fits(const ModelSizes& s, const Placement& p, const Budget& b, const std::string& what) {
  if (p.uses(Device::Gpu)) {
    const Usage u = usage_on(Device::Gpu, s, p);
    if (u.total() > b.gpu) {
      std::vector<std::string> fixes;
      if (what.rfind("-ot", 0) == 0) {
        fixes.push_back("send fewer tensors there with -ot");
      } else {
        if (p.layers_on(Device::Gpu) > 0) fixes.push_back("lower --n-gpu-layers");
        bool experts_on_gpu = false;
        for (int i = 0; i < s.n_layer(); ++i) experts_on_gpu |= s.has_experts(i) && p.experts[static_cast<size_t>(i)] == Device::Gpu;
        if (experts_on_gpu) fixes.push_back("add --cpu-moe / --n-cpu-moe N");
      }
      if (u.kv > 0) fixes.push_back("lower --ctx-size / --parallel");
      if (what.rfind("-ngl ", 0) == 0 && what != "-ngl auto") fixes.push_back("leave -ngl out to place automatically");
      throw Error(what + " needs " + format_gib(u.total()) + " on " + b.gpu_name + " (" + parts(u) + "), " + format_gib(b.gpu) +
                  (b.gpu_capped ? " allowed by --gpu-memory: " : " free: ") + either(fixes));
    }
  }
  if (b.ram) {
    const Usage u = usage_on(Device::Cpu, s, p);
    if (u.total() > *b.ram)
      throw Error(what + " with --no-mmap needs " + format_gib(u.total()) + " of RAM (" + parts(u) + "), " + format_gib(*b.ram) +
                  " available: drop --no-mmap (the file is then mapped, not copied)" +
                  (p.layers_on(Device::Cpu) > 0 ? " or put more layers on the GPU" : ""));
  }
}

Placement auto_place(const ModelSizes& s, const Pins& pins, const Budget& b) {
  const int n = s.n_layer();
  Placement p = Placement::all(n, Device::Gpu);
  for (int i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(i);
    if (auto d = pinned(pins.layers, i)) p.layers[k] = *d;
    p.experts[k] = pinned(pins.experts, i).value_or(p.layers[k]);  // unpinned experts start with their layer
  }
  if (pins.input) p.input = *pins.input;
  if (pins.output) p.output = *pins.output;
  auto fits = [&] { return usage_on(Device::Gpu, s, p).total() <= b.gpu; };
  if (fits()) return p;
  // The embedding table first: a token reads one row of it, which costs the CPU nothing.
  if (!pins.input && p.input == Device::Gpu) {
    p.input = Device::Cpu;
    if (fits()) return p;
  }
  // Routed experts next: most of an MoE layer's bytes, few of them read per token.
  for (int i = 0; i < n; ++i) {
    auto& e = p.experts[static_cast<size_t>(i)];
    if (!s.has_experts(i) || pinned(pins.experts, i) || e != Device::Gpu) continue;
    e = Device::Cpu;
    if (fits()) return p;
  }
  // Then whole layers, the first ones first (as -ngl counts from the last).
  for (int i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(i);
    if (pinned(pins.layers, i) || p.layers[k] != Device::Gpu) continue;
    p.layers[k] = Device::Cpu;
    if (!pinned(pins.experts, i)) p.experts[k] = Device::Cpu;
    if (p.layers_on(Device::Gpu) > 0 && fits()) return p;
  }
  if (!pins.output) p.output = Device::Cpu;  // not one layer fits: the GPU stays unused
  Budget gpu_only = b;
  gpu_only.ram.reset();
  check_fits(s, p, gpu_only, "-ot");  // what it pins to the GPU does not fit
  return p;
}

uint64_t compute_estimate(Device d, int n_batch, uint64_t act_floats, int n_vocab) {
  const uint64_t tokens = static_cast<uint64_t>(std::max(n_batch, 1));
  const uint64_t bytes = tokens * act_floats * sizeof(float) * 2 + tokens * static_cast<uint64_t>(std::max(n_vocab, 0)) * sizeof(float);
  return d == Device::Gpu ? 512 * kMiB + bytes : bytes;
}

std::string layer_ranges(const std::vector<int>& layers) {
  std::string s;
  for (size_t i = 0; i < layers.size();) {
    size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
    if (!s.empty()) s += ", ";
    s += std::to_string(layers[i]) + (j > i ? "-" + std::to_string(layers[j]) : "");
    i = j + 1;
  }
  return s;
}

std::vector<std::string> describe(const ModelSizes& s, const Placement& p, const Budget& b) {
  std::vector<std::string> lines;
  for (Device d : {Device::Gpu, Device::Cpu}) {
    if (!p.uses(d) && p.input != d) continue;
    std::vector<int> layers, experts;  // experts: those living away from their layer
    for (int i = 0; i < s.n_layer(); ++i) {
      const auto k = static_cast<size_t>(i);
      if (p.layers[k] == d) layers.push_back(i);
      else if (s.has_experts(i) && p.experts[k] == d) experts.push_back(i);
    }
    std::vector<std::string> what;
    if (!layers.empty()) what.push_back((layers.size() == 1 ? "layer " : "layers ") + layer_ranges(layers));
    if (!experts.empty()) what.push_back("routed experts of layer" + std::string(experts.size() == 1 ? " " : "s ") + layer_ranges(experts));
    if (p.output == d) what.push_back("output layer");
    if (p.input == d) what.push_back("token embedding");
    const Usage u = usage_on(d, s, p);
    std::string line = (d == Device::Gpu ? b.gpu_name : std::string("CPU")) + ": ";
    for (size_t i = 0; i < what.size(); ++i) line += (i ? ", " : "") + what[i];
    line += "; " + format_gib(u.weights) + " weights";
    if (d == Device::Cpu && !b.ram) line += " (mapped)";
    line += " + " + format_gib(u.kv) + " KV cache + " + format_gib(u.compute) + " compute";
    if (d == Device::Gpu) line += " of " + format_gib(b.gpu) + (b.gpu_capped ? " allowed" : " free");
    else if (b.ram) line += " of " + format_gib(*b.ram) + " available";
    lines.push_back(line);
  }
  return lines;
}

uint64_t parse_size(const std::string& text, const std::string& flag) {
  const char* start = text.c_str();
  char* end = nullptr;
  const double value = std::strtod(start, &end);
  std::string unit(end ? end : start);
  unit.erase(std::remove(unit.begin(), unit.end(), ' '), unit.end());
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::pair<const char*, double> kUnits[] = {
      {"b", 1.0},      {"k", 1024.0},       {"kib", 1024.0},      {"kb", 1e3},        {"m", 1048576.0},         {"mib", 1048576.0},
      {"mb", 1e6},     {"g", 1073741824.0}, {"gib", 1073741824.0}, {"gb", 1e9},        {"t", 1099511627776.0},   {"tib", 1099511627776.0},
      {"tb", 1e12}};
  double scale = 0;
  for (const auto& [name, s] : kUnits)
    if (unit == name) scale = s;
  const double bytes = value * scale;
  if (end == start || !std::isfinite(value) || value < 0 || scale == 0 || bytes >= 9.2e18)
    throw Error(flag + " '" + text + "' is not a size: give a number and a unit, e.g. 60GiB or 512MiB");
  return static_cast<uint64_t>(bytes);
}

uint64_t peak_rss_bytes() {
  rusage u{};
  return getrusage(RUSAGE_SELF, &u) == 0 ? static_cast<uint64_t>(u.ru_maxrss) * 1024 : 0;  // ru_maxrss is in KiB on Linux
}

std::string format_gib(uint64_t bytes) {
  char buf[32];
  if (shown_in_gib(bytes)) std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / kGiB);
  else std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / kMiB);
  return buf;
}

}  // namespace jing::runtime
