// llama.cpp's -ot/--override-tensor REGEX=DEVICE, read the way the engine can honour it. The
// engine places groups of tensors, not single ones: a layer (all of blk.N but its routed experts),
// a layer's routed experts with their router, the output layer (output + output_norm) and the token
// embedding. An override decides a group when it matches every tensor of it; one that matches part
// of a group must agree with where the group goes anyway, else loading fails naming the tensor.
#pragma once
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "runtime/memory_plan.h"

namespace jing::runtime {

struct TensorOverride {
  std::string spec;  // as written: "exps=CPU"
  std::regex pattern;
  int device = -1;  // -1: CPU, n: CUDAn
};
// Each spec is REGEX=DEVICE, or several joined by commas (llama.cpp's form). Throws jing::Error for
// a bad regex or device.
std::vector<TensorOverride> parse_tensor_overrides(const std::vector<std::string>& specs);

// The group a GGUF tensor belongs to (layer -1 outside blk.N, or N >= n_layer: NextN layers).
struct TensorGroup {
  enum Kind { Layer, Experts, Router, Input, Output, Other } kind = Other;
  int layer = -1;
};
TensorGroup classify_tensor(const std::string& name, int n_layer);

// What the overrides ask of one group.
struct GroupRequest {
  std::optional<Device> device;  // set when any tensor of the group matched
  int matched = 0, total = 0;    // of the tensors that make the group (a router only follows)
  std::string matched_name, unmatched_name;
  bool complete() const { return device && matched == total; }
};
struct OverrideRequests {
  std::vector<GroupRequest> layers, experts;
  GroupRequest input, output;
  std::vector<std::string> unused;  // specs that matched no tensor
};
// Matches every tensor name (first matching override wins). Throws when a group's tensors are
// sent to different devices, or a device other than the GPU in use (gpu_index) is named.
OverrideRequests match_tensor_overrides(const std::vector<TensorOverride>& overrides, const std::vector<std::string>& tensor_names,
                                        int n_layer, int gpu_index);

// An explicit -ngl: the last ngl layers on the GPU (the output layer too above the layer count,
// the embedding when every layer is there), routed experts of the first n_cpu_moe layers on the
// CPU, then the requests applied. `what` ("-ngl 40") and gpu_name word the errors.
Placement ngl_placement(int n_layer, int ngl, int n_cpu_moe, const OverrideRequests& r, const std::string& what,
                        const std::string& gpu_name);
// For the automatic placement: every request fixes its group (its unmatched tensors have no
// preference of their own); --n-cpu-moe fixes the experts it names that no request does.
Pins auto_pins(int n_layer, int n_cpu_moe, const OverrideRequests& r);

}  // namespace jing::runtime
