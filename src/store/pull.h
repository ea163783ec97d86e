// `jing pull`: resolves a model name on the hub, downloads every file (all parts of a split
// model) resumably and verified, and installs it in the store atomically.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "store/hub.h"
#include "store/store.h"

namespace jing::store {

struct PullEvent {
  std::string status;  // "pulling manifest", "downloading <file>", "verifying sha256 digest", "success"
  std::string file;
  uint64_t total = 0, completed = 0;
};

struct PullOptions {
  int connections = 4;                            // parallel Range connections for large files
  bool progress_bars = true;                      // draw bars on stderr
  std::function<void(const PullEvent&)> on_event;  // for /api/pull's streamed progress
};

Entry pull(Store& store, const ModelRef& ref, const Hub& hub, const PullOptions& opts);

}  // namespace jing::store
