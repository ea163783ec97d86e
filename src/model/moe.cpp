#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace jing::model {

std::vector<std::pair<int, float>> route(const MoeRouting& r, const float* logits, const std::vector<float>& bias) {
  const int E = r.n_expert;
  std::vector<float> probs(logits, logits + E);
  if (r.gating == MoeRouting::Gating::Sigmoid) {
    for (auto& p : probs) p = 1.0f / (1.0f + std::exp(-p));
  } else {
    softmax(probs.data(), E);
  }
  std::vector<float> select = probs;
  if (!bias.empty())
    for (int e = 0; e < E; ++e) select[static_cast<size_t>(e)] += bias[static_cast<size_t>(e)];

  if (r.n_group > 1) {
    // A group scores the sum of its two best experts; experts outside the best groups drop out.
    const int per = E / r.n_group;
    std::vector<std::pair<float, int>> groups;
    for (int g = 0; g < r.n_group; ++g) {
      std::vector<float> v(select.begin() + g * per, select.begin() + (g + 1) * per);
      std::partial_sort(v.begin(), v.begin() + std::min(2, per), v.end(), std::greater<>());
      groups.push_back({v[0] + (per > 1 ? v[1] : 0.0f), g});
    }
    std::partial_sort(groups.begin(), groups.begin() + r.n_group_used, groups.end(), std::greater<>());
    std::vector<bool> keep(static_cast<size_t>(r.n_group), false);
    for (int i = 0; i < r.n_group_used; ++i) keep[static_cast<size_t>(groups[static_cast<size_t>(i)].second)] = true;
    for (int e = 0; e < E; ++e)
      if (!keep[static_cast<size_t>(e / per)]) select[static_cast<size_t>(e)] = -INFINITY;
  }

  std::vector<int> order(static_cast<size_t>(E));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + r.n_expert_used, order.end(),
                    [&](int a, int b) { return select[static_cast<size_t>(a)] > select[static_cast<size_t>(b)]; });
  std::vector<std::pair<int, float>> chosen;
  float sum = 0;
  for (int i = 0; i < r.n_expert_used; ++i) {
    const int e = order[static_cast<size_t>(i)];
    chosen.push_back({e, probs[static_cast<size_t>(e)]});
    sum += probs[static_cast<size_t>(e)];
  }
  for (auto& [e, w] : chosen) {
    if (r.normalize) w /= std::max(sum, 6.103515625e-5f);
    w *= r.scale;
  }
  return chosen;
}

void moe_route_into(const Ctx& c, const MoeRouting& r, const MoeWeights& w, const float* x, int64_t n, float* routes) {
  std::vector<float> logits(static_cast<size_t>(n * r.n_expert));
  matmul(c, w.router, x, n, logits.data());
  auto* ids = reinterpret_cast<int32_t*>(routes);
  float* weights = routes + n * r.n_expert_used;
  for (int64_t t = 0; t < n; ++t) {
    auto chosen = route(r, logits.data() + t * r.n_expert, w.bias);
    std::sort(chosen.begin(), chosen.end());
    for (size_t j = 0; j < chosen.size(); ++j) ids[t * r.n_expert_used + static_cast<int64_t>(j)] = chosen[j].first, weights[t * r.n_expert_used + static_cast<int64_t>(j)] = chosen[j].second;
  }
}

void moe_mix_share(const Ctx& c, const MoeRouting& r, const MoeWeights& share, int first, int count, const float* routes, const float* x,
                   int64_t n, int n_embd, int n_ff, float* out) {
  const auto* ids = reinterpret_cast<const int32_t*>(routes);
  const float* weights = routes + n * r.n_expert_used;
  std::vector<std::vector<std::pair<int64_t, float>>> users(static_cast<size_t>(count));
  for (int64_t p = 0; p < n * r.n_expert_used; ++p)
    if (const int e = ids[p] - first; e >= 0 && e < count) users[static_cast<size_t>(e)].push_back({p / r.n_expert_used, weights[p]});
  std::fill(out, out + n * n_embd, 0.0f);
  std::vector<float> xs, gate, up, down;
  for (int e = 0; e < count; ++e) {
    const auto& u = users[static_cast<size_t>(e)];
    if (u.empty()) continue;
    const int64_t m = static_cast<int64_t>(u.size());
    xs.resize(static_cast<size_t>(m * n_embd)), gate.resize(static_cast<size_t>(m * n_ff)), up.resize(gate.size()), down.resize(xs.size());
    for (int64_t i = 0; i < m; ++i) std::copy_n(x + u[static_cast<size_t>(i)].first * n_embd, n_embd, xs.begin() + i * n_embd);
    matmul(c, expert(share.gate, e), xs.data(), m, gate.data());
    matmul(c, expert(share.up, e), xs.data(), m, up.data());
    silu_mul(gate.data(), up.data(), m * n_ff);
    matmul(c, expert(share.down, e), gate.data(), m, down.data());
    for (int64_t i = 0; i < m; ++i) {
      float* o = out + u[static_cast<size_t>(i)].first * n_embd;
      for (int d = 0; d < n_embd; ++d) o[d] += u[static_cast<size_t>(i)].second * down[static_cast<size_t>(i * n_embd + d)];
    }
  }
}

void moe_ffn(const Ctx& c, const MoeRouting& r, const MoeWeights& w, const float* x, int64_t n, int n_embd, int n_ff,
             float* out) {
  if (n == 1) {
    // One token: its experts' products in two parallel regions (gate and up, then down) rather
    // than three per expert, each too small to keep the threads busy alone.
    // In ascending expert order: the mix below adds them as the batched path does.
    std::vector<float> logits(static_cast<size_t>(r.n_expert));
    matmul(c, w.router, x, 1, logits.data());
    auto chosen = route(r, logits.data(), w.bias);
    std::sort(chosen.begin(), chosen.end());
    const int k = static_cast<int>(chosen.size());
    std::vector<float> gate(static_cast<size_t>(k * n_ff)), up(gate.size()), down(static_cast<size_t>(k * n_embd));
    std::vector<cpu::WeightView> ws;
    std::vector<const float*> xs;
    std::vector<float*> ys;
    for (int j = 0; j < k; ++j) {
      ws.push_back(expert(w.gate, chosen[j].first)), xs.push_back(x), ys.push_back(gate.data() + j * n_ff);
      ws.push_back(expert(w.up, chosen[j].first)), xs.push_back(x), ys.push_back(up.data() + j * n_ff);
    }
    cpu::matvecs(ws.data(), xs.data(), ys.data(), 2 * k, c.n_threads);
    silu_mul(gate.data(), up.data(), static_cast<int64_t>(k) * n_ff);
    ws.clear(), xs.clear(), ys.clear();
    for (int j = 0; j < k; ++j)
      ws.push_back(expert(w.down, chosen[j].first)), xs.push_back(gate.data() + j * n_ff), ys.push_back(down.data() + j * n_embd);
    cpu::matvecs(ws.data(), xs.data(), ys.data(), k, c.n_threads);
    std::fill(out, out + n_embd, 0.0f);
    for (int j = 0; j < k; ++j)
      for (int d = 0; d < n_embd; ++d) out[d] += chosen[j].second * down[static_cast<size_t>(j * n_embd + d)];
    return;
  }
  // Several tokens: routed, then each expert's tokens together, so each expert's weights are
  // read once per call (every expert being this call's share).
  std::vector<float> routes(static_cast<size_t>(2 * n * r.n_expert_used));
  moe_route_into(c, r, w, x, n, routes.data());
  moe_mix_share(c, r, w, 0, r.n_expert, routes.data(), x, n, n_embd, n_ff, out);
}

}  // namespace jing::model
