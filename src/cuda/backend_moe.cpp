// CudaBackend's MoE layer (backend.h): routing on the device, then the experts' products per
// (token, expert) pair for few tokens, grouped by expert for many, or through the host.
#include <algorithm>
#include <cstdlib>
#include <vector>

#include "cuda/backend.h"

namespace jing::model {

void CudaBackend::moe_ffn(const MoeRouting& r, const MoeWeights& w, const float* x, int64_t n, int n_embd, int n_ff, float* out) {
  use();
  OpProfile::Scope scope_(&prof_, "moe_ffn", s());
  const auto rp = route_params(r);
  const bool few = per_pair(r, n);
  if (moe_stays_on_device(r) && (few || grouped_formats(w))) {
    const auto [ids, wts] = reserve_moe_idx(static_cast<size_t>(n * rp.n_used));
    route_into(rp, w, x, n, few, ids, wts);
    if (few) return moe_ffn_on_device(rp, w, ids, wts, x, n, n_embd, n_ff, out);
    return moe_ffn_grouped(rp, w, ids, wts, x, n, n_embd, n_ff, out);
  }
  Buf logits(*this, static_cast<size_t>(n * r.n_expert));
  matmul_->run(w.router, x, n, logits.data());
  std::vector<float> host(static_cast<size_t>(n * r.n_expert));
  download(host.data(), logits.data(), host.size());
  std::vector<std::vector<std::pair<int32_t, float>>> users(static_cast<size_t>(r.n_expert));
  for (int64_t t = 0; t < n; ++t)
    for (auto [e, wt] : route(r, host.data() + t * r.n_expert, w.bias)) users[static_cast<size_t>(e)].push_back({static_cast<int32_t>(t), wt});
  std::vector<int32_t> rows;
  std::vector<float> weights;
  std::vector<std::pair<int, size_t>> spans;  // (expert, first index)
  for (int e = 0; e < r.n_expert; ++e) {
    if (users[static_cast<size_t>(e)].empty()) continue;
    spans.push_back({e, rows.size()});
    for (auto [t, wt] : users[static_cast<size_t>(e)]) rows.push_back(t), weights.push_back(wt);
  }
  cuda::check(cudaMemsetAsync(out, 0, static_cast<size_t>(n * n_embd) * sizeof(float), s()), "moe: clear");
  if (rows.empty()) return;
  const auto [d_rows, d_wts] = reserve_moe_idx(rows.size());
  cuda::check(cudaMemcpyAsync(d_rows, rows.data(), rows.size() * 4, cudaMemcpyHostToDevice, s()), "moe: rows");
  cuda::check(cudaMemcpyAsync(d_wts, weights.data(), weights.size() * 4, cudaMemcpyHostToDevice, s()), "moe: weights");
  size_t most = 0;
  for (size_t i = 0; i < spans.size(); ++i) most = std::max(most, (i + 1 < spans.size() ? spans[i + 1].second : rows.size()) - spans[i].second);
  Buf xs(*this, most * n_embd), g(*this, most * n_ff), u(*this, most * n_ff), d(*this, most * n_embd);
  for (size_t i = 0; i < spans.size(); ++i) {
    const auto [e, first] = spans[i];
    const int64_t m = static_cast<int64_t>((i + 1 < spans.size() ? spans[i + 1].second : rows.size()) - first);
    cuda::ops::gather_rows(xs.data(), x, d_rows + first, m, n_embd, stream_->handle());
    const cpu::WeightView ge = expert(w.gate, e), ue = expert(w.up, e), de = expert(w.down, e);
    const cpu::WeightView* ws[2] = {&ge, &ue};
    float* ys[2] = {g.data(), u.data()};
    matmul_->run_same_input(ws, ys, 2, xs.data(), m);
    cuda::ops::silu_mul(g.data(), u.data(), m * n_ff, stream_->handle());
    matmul_->run(de, g.data(), m, d.data());
    cuda::ops::scatter_add_rows(out, d.data(), d_rows + first, d_wts + first, m, n_embd, stream_->handle());
  }
}

bool CudaBackend::per_pair(const MoeRouting& r, int64_t n) {
  // Few (token, expert) pairs: each pair's products straight from the expert's weights. More (a
  // prompt): grouped by expert, each expert read once per 8 (or 64) of its tokens. (32 streams on
  // an 8-layer R1 slice, H200: per pair 2,130 t/s, grouped in items of 2 / 4 / 8 rows 1,313 /
  // 1,096 / 950; JING_MOE_PAIRS_UP_TO sets the limit for measuring.)
  static const char* rule = std::getenv("JING_MOE_PAIRS_UP_TO");
  const int64_t up_to = rule ? std::atoll(rule) : std::max(r.n_expert, 8 * r.n_expert_used);
  return n * r.n_expert_used <= up_to;
}

bool CudaBackend::route_experts(const MoeRouting& r, const MoeWeights& w, const float* x, int64_t n, float* routes) {
  if (!moe_stays_on_device(r)) return false;
  use();
  OpProfile::Scope scope_(&prof_, "route_experts", s());
  const auto rp = route_params(r);
  route_into(rp, w, x, n, per_pair(r, n), reinterpret_cast<int32_t*>(routes), routes + n * rp.n_used);
  return true;
}

void CudaBackend::route_into(const cuda::ops::MoeRouteParams& rp, const MoeWeights& w, const float* x, int64_t n, bool fuse, int32_t* ids,
                             float* wts) {
  Buf logits(*this, static_cast<size_t>(n * rp.n_expert));
  if (fuse && w.router.type == GgmlType::F32 && w.router.row_bytes == static_cast<size_t>(w.router.cols) * 4 && !std::getenv("JING_ROUTE_UNFUSED") &&
      cuda::ops::moe_router_route(rp, static_cast<const float*>(w.router.data), w.router.cols, x, n, device_vector(w.bias), logits.data(),
                                  route_done(), ids, wts, s()))
    return;
  matmul_->run(w.router, x, n, logits.data());
  cuda::ops::moe_route(rp, logits.data(), device_vector(w.bias), n, ids, wts, stream_->handle());
}

void CudaBackend::experts_share(const MoeRouting& r, const MoeWeights& share, int first, int count, const float* routes, const float* x, int64_t n,
                                int n_embd, int n_ff, float* out) {
  use();
  OpProfile::Scope scope_(&prof_, "experts_share", s());
  const auto rp = route_params(r);
  const auto* ids = reinterpret_cast<const int32_t*>(routes);
  const float* wts = routes + n * rp.n_used;
  const cuda::ops::ExpertShare sh{ids, first, count};
  if (per_pair(r, n) || !grouped_formats(share)) return moe_ffn_on_device(rp, share, ids, wts, x, n, n_embd, n_ff, out, sh);
  moe_ffn_grouped(rp, share, ids, wts, x, n, n_embd, n_ff, out, sh);
}

void CudaBackend::moe_ffn_on_device(const cuda::ops::MoeRouteParams& rp, const MoeWeights& w, const int32_t* ids, const float* wts, const float* x,
                                    int64_t n, int n_embd, int n_ff, float* out, cuda::ops::ExpertShare share) {
  const int64_t pairs = n * rp.n_used;
  Buf g(*this, static_cast<size_t>(pairs * n_ff)), u(*this, static_cast<size_t>(pairs * n_ff)), d(*this, static_cast<size_t>(pairs * n_embd));
  cuda::GemvBatch b;
  b.count = static_cast<int>(pairs), b.ids = ids, b.x_div = rp.n_used;
  if (share.ids) {  // this GPU's share: about count / n_expert of the pairs are its own
    b.id_first = share.first, b.id_count = share.count;
    b.busy = static_cast<int>(std::min<int64_t>(pairs, (pairs * share.count + rp.n_expert - 1) / rp.n_expert + rp.n_used));
  }
  expert_swiglu(w, b, x, n, pairs, n_embd, n_ff, g.data(), u.data(), d.data());
  cuda::ops::moe_combine(out, d.data(), wts, n, rp.n_used, n_embd, stream_->handle(), nullptr, share);
}

void CudaBackend::moe_ffn_grouped(const cuda::ops::MoeRouteParams& rp, const MoeWeights& w, const int32_t* ids, const float* wts, const float* x,
                                  int64_t n, int n_embd, int n_ff, float* out, cuda::ops::ExpertShare share) {
  const int first = share.ids ? share.first : 0, experts = share.ids ? share.count : rp.n_expert;
  // A prompt's many tokens go to the tensor cores (64 rows of an expert per work item), as the
  // dense products of a prompt do; fewer take the grouped decode kernels (8 rows per item).
  const bool tensor_cores = n > cuda::Matmul::kGemvTokensBlockFormats && !std::getenv("JING_MOE_GEMV") &&
                            cuda::Matmul::grouped_supported(w.gate.type) && cuda::Matmul::grouped_supported(w.up.type) &&
                            cuda::Matmul::grouped_supported(w.down.type);
  // Decode steps of many sequences spread their pairs thin (32 R1 streams: 256 pairs over 256
  // experts, one or two per chosen expert): items of at most 4 rows keep the kernel's columns few.
  static const char* rows_rule = std::getenv("JING_MOE_ITEM_ROWS");
  const int64_t pairs = n * rp.n_used;
  const int item_rows = tensor_cores ? cuda::Matmul::grouped_item_rows()
                        : rows_rule             ? std::clamp(std::atoi(rows_rule), 2, 8)
                        : pairs <= 2 * rp.n_expert ? 4
                                                   : 8;
  const int64_t max_items = cuda::ops::moe_max_items(pairs, experts, item_rows);
  Buf index(*this, static_cast<size_t>(2 * pairs + 3 * max_items));  // int32: pair rows, row tokens, work items
  auto* pair_row = reinterpret_cast<int32_t*>(index.data());
  int32_t *row_token = pair_row + pairs, *items = row_token + pairs;
  cuda::ops::moe_group(ids, n, rp.n_used, first, experts, item_rows, pair_row, row_token, items, stream_->handle());
  Buf xs(*this, static_cast<size_t>(pairs * n_embd)), g(*this, static_cast<size_t>(pairs * n_ff)), u(*this, static_cast<size_t>(pairs * n_ff)),
      d(*this, static_cast<size_t>(pairs * n_embd));
  cuda::ops::gather_rows(xs.data(), x, row_token, pairs, n_embd, stream_->handle());
  if (tensor_cores) {
    const auto size = static_cast<size_t>(pairs);
    const int count = static_cast<int>(max_items);
    const void* xh = matmul_->to_half(w.gate.type, xs.data(), size * n_embd);
    matmul_->run_grouped(w.gate, items, count, xh, g.data(), n_ff);
    if (cuda::Matmul::rounding_kind(w.up.type) != cuda::Matmul::rounding_kind(w.gate.type))
      xh = matmul_->to_half(w.up.type, xs.data(), size * n_embd);
    matmul_->run_grouped(w.up, items, count, xh, u.data(), n_ff);
    cuda::ops::silu_mul(g.data(), u.data(), pairs * n_ff, stream_->handle());
    matmul_->run_grouped(w.down, items, count, matmul_->to_half(w.down.type, g.data(), size * n_ff), d.data(), n_embd);
  } else {
    cuda::GemvBatch b;
    // The items that can hold rows (each holds one pair at least; they come first): the grid
    // covers those, so its blocks spread over them and not over empty slots.
    b.count = static_cast<int>(std::min(max_items, pairs)), b.items = items, b.item_rows = item_rows;
    expert_swiglu(w, b, xs.data(), pairs, pairs, n_embd, n_ff, g.data(), u.data(), d.data());
  }
  cuda::ops::moe_combine(out, d.data(), wts, n, rp.n_used, n_embd, stream_->handle(), pair_row, share);
}

void CudaBackend::expert_swiglu(const MoeWeights& w, cuda::GemvBatch b, const float* x, int64_t x_rows, int64_t pairs, int n_embd, int n_ff, float* g,
                                float* u, float* d) {
  b.y_stride = n_ff;
  const cpu::WeightView* gu[2] = {&w.gate, &w.up};
  float* gu_out[2] = {g, u};
  matmul_->run_batched(gu, gu_out, 2, b, x, x_rows);
  b.x_div = 1, b.y_stride = n_embd;
  const cpu::WeightView* dn[1] = {&w.down};
  float* d_out[1] = {d};
  if (const int kind = rounded_kind({{&w.down, d}}, 1, n_ff)) {
    const auto r = matmul_->rounded_buffer(static_cast<size_t>(pairs * n_ff));
    cuda::ops::silu_mul_round(g, u, pairs * n_ff, kind, r.q, r.rec, stream_->handle());
    matmul_->run_batched_rounded(dn, d_out, 1, b, r);
  } else {
    cuda::ops::silu_mul(g, u, pairs * n_ff, stream_->handle());
    matmul_->run_batched(dn, d_out, 1, b, g, pairs);
  }
}

std::pair<int32_t*, float*> CudaBackend::reserve_moe_idx(size_t n) {
  if (moe_idx_cap_ < n) {
    if (moe_idx_) cudaFree(moe_idx_);
    ++reallocations_;
    moe_idx_cap_ = std::max<size_t>(n, 1024);
    cuda::check(cudaMalloc(&moe_idx_, moe_idx_cap_ * 8), "cudaMalloc (moe)");
  }
  auto* ids = static_cast<int32_t*>(moe_idx_);
  return {ids, reinterpret_cast<float*>(ids + moe_idx_cap_)};
}

}  // namespace jing::model
