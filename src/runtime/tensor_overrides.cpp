#include "runtime/tensor_overrides.h"

#include <cctype>

#include "common/error.h"

namespace jing::runtime {
namespace {

const char* const kWhatMoves =
    "the engine moves a layer's tensors together (-ot 'blk\\.3\\.=CPU'), a layer's routed experts with their router "
    "('blk\\.3\\.ffn_.*_exps=CPU', or 'exps=CPU' for every layer) and the output layer whole (output, output_norm)";

// "CPU" -> -1, "CUDA2" -> 2; nullopt for anything else.
std::optional<int> parse_device(const std::string& s) {
  std::string u;
  for (char c : s) u += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (u == "CPU") return -1;
  if (u.size() > 4 && u.size() < 8 && u.rfind("CUDA", 0) == 0 && u.find_first_not_of("0123456789", 4) == std::string::npos)
    return std::stoi(u.substr(4));
  return std::nullopt;
}

std::optional<int> device_suffix(const std::string& piece) {
  const auto eq = piece.rfind('=');
  return eq == std::string::npos ? std::nullopt : parse_device(piece.substr(eq + 1));
}

TensorOverride parse_one(const std::string& spec) {
  const auto eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0) throw Error("-ot '" + spec + "': expected REGEX=DEVICE, e.g. exps=CPU");
  TensorOverride o;
  o.spec = spec;
  const auto dev = parse_device(spec.substr(eq + 1));
  if (!dev) throw Error("-ot '" + spec + "': unknown device '" + spec.substr(eq + 1) + "' (CPU, or CUDA0, CUDA1, ...)");
  o.device = *dev;
  try {
    o.pattern = std::regex(spec.substr(0, eq), std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw Error("-ot '" + spec + "': invalid regular expression '" + spec.substr(0, eq) + "' (" + e.what() + ")");
  }
  return o;
}

}  // namespace

std::vector<TensorOverride> parse_tensor_overrides(const std::vector<std::string>& specs) {
  std::vector<TensorOverride> out;
  for (const auto& spec : specs) {
    // Commas separate overrides only where the text before them ends in =DEVICE: a regex may
    // hold commas of its own ("a{1,2}=CPU").
    std::string cur;
    for (size_t start = 0;;) {
      const auto comma = spec.find(',', start);
      const std::string piece = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      cur = cur.empty() ? piece : cur + "," + piece;
      if (device_suffix(cur)) out.push_back(parse_one(cur)), cur.clear();
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (!cur.empty() || spec.empty()) parse_one(cur);  // throws with the reason
  }
  return out;
}

TensorGroup classify_tensor(const std::string& name, int n_layer) {
  auto starts = [&](const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; };
  if (starts(name, "token_embd.")) return {TensorGroup::Input};
  if (starts(name, "output.") || starts(name, "output_norm.")) return {TensorGroup::Output};
  if (!starts(name, "blk.")) return {};
  const auto dot = name.find('.', 4);
  if (dot == std::string::npos || dot == 4 || dot > 12 || name.find_first_not_of("0123456789", 4) != dot) return {};
  const int layer = std::stoi(name.substr(4, dot - 4));
  if (layer >= n_layer) return {};  // NextN prediction layers: not run
  const std::string rest = name.substr(dot + 1);
  if (rest.find("_exps") != std::string::npos) return {TensorGroup::Experts, layer};
  if (starts(rest, "ffn_gate_inp") || starts(rest, "exp_probs_b")) return {TensorGroup::Router, layer};
  return {TensorGroup::Layer, layer};
}

OverrideRequests match_tensor_overrides(const std::vector<TensorOverride>& overrides, const std::vector<std::string>& tensor_names,
                                        int n_layer, int gpu_index) {
  OverrideRequests r;
  r.layers.resize(static_cast<size_t>(n_layer));
  r.experts.resize(static_cast<size_t>(n_layer));
  std::vector<bool> used(overrides.size(), false);
  const std::string gpu_name = "CUDA" + std::to_string(gpu_index);
  auto name_of = [&](Device d) { return d == Device::Gpu ? gpu_name : std::string("CPU"); };
  for (const auto& name : tensor_names) {
    const TensorGroup g = classify_tensor(name, n_layer);
    GroupRequest* q = nullptr;
    switch (g.kind) {
      case TensorGroup::Layer: q = &r.layers[static_cast<size_t>(g.layer)]; break;
      case TensorGroup::Experts:
      case TensorGroup::Router: q = &r.experts[static_cast<size_t>(g.layer)]; break;
      case TensorGroup::Input: q = &r.input; break;
      case TensorGroup::Output: q = &r.output; break;
      case TensorGroup::Other: break;  // rope_freqs and the like go wherever the layers run
    }
    const bool counts = q && g.kind != TensorGroup::Router;  // a router follows its experts
    if (counts) ++q->total;
    size_t i = 0;
    while (i < overrides.size() && !std::regex_search(name, overrides[i].pattern)) ++i;
    if (i == overrides.size()) {
      if (counts && q->unmatched_name.empty()) q->unmatched_name = name;
      continue;
    }
    used[i] = true;
    if (!q) continue;
    const int dev_index = overrides[i].device;
    if (dev_index >= 0 && dev_index != gpu_index)
      throw Error("-ot '" + overrides[i].spec + "' names CUDA" + std::to_string(dev_index) + " but the model uses " + gpu_name +
                  ": one GPU at a time (pick it with --device CUDA" + std::to_string(dev_index) + ")");
    const Device dev = dev_index < 0 ? Device::Cpu : Device::Gpu;
    if (q->device && *q->device != dev)
      throw Error("-ot puts " + q->matched_name + " on " + name_of(*q->device) + " but " + name + " on " + name_of(dev) + ": " + kWhatMoves);
    if (q->matched_name.empty()) q->matched_name = name;
    q->device = dev;
    if (counts) ++q->matched;
  }
  for (size_t i = 0; i < overrides.size(); ++i)
    if (!used[i]) r.unused.push_back(overrides[i].spec);
  return r;
}

Placement ngl_placement(int n_layer, int ngl, int n_cpu_moe, const OverrideRequests& r, const std::string& what,
                        const std::string& gpu_name) {
  auto name_of = [&](Device d) { return d == Device::Gpu ? gpu_name : std::string("CPU"); };
  // A request decides its group when complete; a partial one must agree with the default.
  auto apply = [&](const GroupRequest& q, Device def) {
    if (!q.device || q.complete() || *q.device == def) return q.device.value_or(def);
    throw Error("-ot puts " + q.matched_name + " on " + name_of(*q.device) + " but not " + q.unmatched_name + ", which " + what +
                " places on " + name_of(def) + ": " + kWhatMoves);
  };
  Placement p = Placement::all(n_layer, Device::Cpu);
  for (int i = 0; i < n_layer; ++i) {
    const auto k = static_cast<size_t>(i);
    p.layers[k] = apply(r.layers.at(k), i >= n_layer - ngl ? Device::Gpu : Device::Cpu);
    p.experts[k] = apply(r.experts.at(k), i < n_cpu_moe ? Device::Cpu : p.layers[k]);
  }
  p.output = apply(r.output, ngl > n_layer ? Device::Gpu : Device::Cpu);
  p.input = apply(r.input, n_layer > 0 && p.layers_on(Device::Gpu) == n_layer ? Device::Gpu : Device::Cpu);
  return p;
}

Pins auto_pins(int n_layer, int n_cpu_moe, const OverrideRequests& r) {
  Pins p;
  p.layers.resize(static_cast<size_t>(n_layer));
  p.experts.resize(static_cast<size_t>(n_layer));
  for (int i = 0; i < n_layer; ++i) {
    const auto k = static_cast<size_t>(i);
    p.layers[k] = r.layers.at(k).device;
    p.experts[k] = r.experts.at(k).device;
    if (!p.experts[k] && i < n_cpu_moe) p.experts[k] = Device::Cpu;
  }
  p.input = r.input.device;
  p.output = r.output.device;
  return p;
}

}  // namespace jing::runtime
