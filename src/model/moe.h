// Mixture-of-experts feed-forward: a router scores the experts for each token, the top k run,
// their outputs are mixed by the router's weights (DeepSeek-V3 / R1 routing rules included).
#pragma once
#include <vector>

#include "model/ops.h"

namespace jing::model {

struct MoeRouting {
  int n_expert = 0, n_expert_used = 0;
  int n_group = 1, n_group_used = 1;  // group-limited routing: pick groups first, then experts
  enum class Gating { Softmax = 1, Sigmoid = 2 } gating = Gating::Softmax;
  bool normalize = false;             // rescale the chosen weights to sum to 1
  float scale = 1.0f;                 // then multiply them by this
};

// Picks experts for one token from router logits; returns (expert, weight) pairs.
// bias (DeepSeek-V3's e_score_correction_bias) shifts the selection only, never the weights.
std::vector<std::pair<int, float>> route(const MoeRouting& r, const float* logits, const std::vector<float>& bias);

struct MoeWeights {
  cpu::WeightView router;            // [n_expert][n_embd]
  std::vector<float> bias;           // exp_probs_b, may be empty
  cpu::WeightView gate, up, down;    // expert 0 views of [n_expert][...] tensors
};

// Expert parallelism on CPU backends (the tests' shards; Backend::route_experts / experts_share):
// the routing alone into routes [2][n][n_used] (ids as int32 bits, ascending, then weights), and
// the mix over the pairs whose expert is in [first, first + count), `share` holding those experts.
void moe_route_into(const Ctx& c, const MoeRouting& r, const MoeWeights& w, const float* x, int64_t n, float* routes);
void moe_mix_share(const Ctx& c, const MoeRouting& r, const MoeWeights& share, int first, int count, const float* routes, const float* x,
                   int64_t n, int n_embd, int n_ff, float* out);

// out[n][n_embd] = sum over chosen experts of weight * down(silu(gate x) * up x).
void moe_ffn(const Ctx& c, const MoeRouting& r, const MoeWeights& w, const float* x, int64_t n, int n_embd, int n_ff,
             float* out);

}  // namespace jing::model
