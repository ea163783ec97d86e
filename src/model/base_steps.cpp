// BaseModel's steps over GPU segments (base.h): a one-token step recorded as one CUDA graph per
// segment, and batches pipelined through the segments in parts. (Placement and the plain forward
// pass are in base.cpp.)
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "model/base.h"

namespace jing::model {

int BaseModel::micro_batches(const Batch& b, size_t segments) const {
  if (segments < 2) return 1;
  const int64_t n = static_cast<int64_t>(b.size());
  const bool several = b.several_sequences();
  const int64_t parts = static_cast<int64_t>(2 * segments);
  const bool decode_like = several && n >= 4 * parts && n <= kPipelineMaxTokens;  // not a prompt chunk's many tokens
  const int64_t want = micro_batches_forced_ > 0 ? micro_batches_forced_ : pipeline_decode_ && decode_like ? parts : 1;
  return static_cast<int>(std::clamp<int64_t>(want, 1, n));
}

std::vector<float> BaseModel::pipelined(const Batch& b, const std::vector<Segment>& segs, int parts) {
  const int64_t n = static_cast<int64_t>(b.size());
  struct Part {
    Batch batch;
    Buf logits;
    int64_t rows = 0;
  };
  std::vector<Part> done(static_cast<size_t>(parts));
  for (int p = 0; p < parts; ++p) {
    Part& part = done[static_cast<size_t>(p)];
    for (int64_t i = n * p / parts; i < n * (p + 1) / parts; ++i) {
      const auto k = static_cast<size_t>(i);
      part.batch.add(b.tokens[k], b.pos[k], b.seq[k], b.want_logits[k]);
    }
    const int64_t m = static_cast<int64_t>(part.batch.size());
    // Each GPU starts on this part as soon as its own queue reaches it: the first GPU takes the
    // next part while the second still runs this one (all launches are asynchronous; only the
    // downloads below wait).
    Buf x;
    for (size_t k = 0; k < segs.size(); ++k) {
      Backend& g = *segs[k].be;
      g.begin(part.batch);
      if (k == 0) {
        x = Buf(g, static_cast<size_t>(m * n_embd_));
        g.embed(tok_embd_view_, part.batch.tokens, x.data());
      } else {
        x = move_to(g, std::move(x));
      }
      layers(x, part.batch, segs[k].first, segs[k].end);
    }
    const Buf picked = output_rows(part.batch, x, part.rows);
    if (part.rows == 0) continue;
    Backend& ob = *segs.back().be;
    part.logits = Buf(ob, static_cast<size_t>(part.rows * n_vocab_));
    ob.matmul(output_placed_, picked.data(), part.rows, part.logits.data());
  }
  int64_t rows = 0;
  for (const Part& part : done) rows += part.rows;
  std::vector<float> logits(static_cast<size_t>(rows * n_vocab_));
  float* at = logits.data();
  for (const Part& part : done)
    if (part.rows) segs.back().be->download(at, part.logits.data(), part.logits.size()), at += part.logits.size();
  return logits;
}

std::vector<BaseModel::Segment> BaseModel::gpu_segments() const {
  std::vector<Segment> segs;
  if (!gpu_ || layer_be_.empty() || input_be_ != layer_be_.front() || output_be_ != layer_be_.back()) return {};
  for (size_t l = 0; l < layer_be_.size(); ++l) {
    Backend* be = layer_be_[l];
    if (be == cpu_.get() || expert_be_[l] != be) return {};
    if (segs.empty() || segs.back().be != be) segs.push_back({be, static_cast<int>(l), static_cast<int>(l)});
    segs.back().end = static_cast<int>(l) + 1;
  }
  return segs;
}

std::vector<Backend*> BaseModel::expert_parallel_gpus() const {
  // Measured on R1 UD-IQ1_S over two H200s (docs/PERFORMANCE.md): shared-out experts serve
  // prompts and many streams faster than whole layers per GPU, and one stream slower (each MoE
  // layer crosses between the GPUs: 76.6 against 84.7 t/s). So a model loaded for many sequences
  // (more than the server's default 4 slots: --parallel 5 and up, bench --np 5 and up) shares
  // them out; fewer keep layers whole. JING_EXPERT_PARALLEL=0/1 forces either.
  const char* asked = std::getenv("JING_EXPERT_PARALLEL");
  const bool want = asked ? std::string(asked) != "0" : opts_.n_seq > 4;
  if (want && !gpu_ && !cpu_row_shards_.empty()) return split_group();  // the tests' CPU shards (ModelOptions::cpu_row_shards)
  if (more_gpus_.empty() || !want || !expert_parallel_fits_ || gpu_segments().empty()) return {};
  return split_group();
}

std::vector<float> BaseModel::decode_step(const Batch& b) {
  const auto segs = gpu_segments();
  if (step_x_.size() != segs.size()) {
    step_x_.clear();
    for (const auto& seg : segs) step_x_.emplace_back(*seg.be, static_cast<size_t>(n_embd_));
    step_logits_ = Buf(*segs.back().be, static_cast<size_t>(n_vocab_));
  }
  // Positions and sequences to each device (outside the record: the record reads them there).
  for (const auto& seg : segs) seg.be->begin(b);
  for (size_t k = 1; k < row_shards_.size(); ++k) row_shards_[k]->begin(b);  // a row split's other shards
  segs.front().be->embed(tok_embd_view_, b.tokens, step_x_.front().data());
  for (size_t k = 0; k < segs.size(); ++k) {
    Backend& g = *segs[k].be;
    if (k > 0)  // the previous GPU's result crosses to this one, outside both records
      copy_between(g, step_x_[k].data(), *segs[k - 1].be, step_x_[k - 1].data(), static_cast<size_t>(n_embd_));
    auto run = [&] {
      layers(step_x_[k], b, segs[k].first, segs[k].end);
      if (k + 1 < segs.size()) return;
      Buf h(g, static_cast<size_t>(n_embd_));
      g.rms_norm(step_x_[k].data(), output_norm_placed_, h.data(), 1, n_embd_, norm_eps_);
      g.matmul(output_placed_, h.data(), 1, step_logits_.data());
    };
    // The first step runs plainly (buffers reach their sizes); the second is recorded, then
    // replayed: one record per GPU segment.
    const int key = 1 + g.step_variant();
    auto record = [&] {
      if (!g.capture_begin()) return false;
      try {
        run();
      } catch (...) {  // the stream must leave capture, or every later call on it fails too
        g.capture_end(Backend::kDiscard);
        throw;
      }
      g.capture_end(key);
      return g.replay(key);
    };
    if (steps_run_ == 0 || !(g.replay(key) || record())) {
      if (steps_run_ > 0) graphs_ok_ = false;  // no recording here: plain launches from now on
      run();
    }
  }
  ++steps_run_;
  std::vector<float> logits(static_cast<size_t>(n_vocab_));
  segs.back().be->download(logits.data(), step_logits_.data(), logits.size());
  return logits;
}

}  // namespace jing::model
