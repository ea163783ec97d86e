// Collectives over several GPUs through NCCL (model/backend.h: Collectives). NCCL is loaded when
// a model first needs it (dlopen of libnccl.so.2, from the CUDA installation or the system), so a
// build and a binary need no NCCL where it is absent: the callers then fall back to peer copies.
// The few entry points are declared here from nccl.h's ABI (NCCL 2.x): communicators are opaque
// pointers, the unique id 128 bytes passed by value; ncclFloat32 = 7, ncclSum = 0, ncclSuccess = 0.
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/backend.h"
#include "runtime/rendezvous.h"

namespace jing::model {
namespace {

using NcclComm = void*;
using NcclResult = int;
struct NcclUniqueId {
  char internal[128];
};
constexpr int kNcclFloat32 = 7, kNcclSum = 0;
// How long the first process waits for the others to fetch the group's id (machines start apart).
constexpr std::chrono::seconds kRendezvousTimeout{300};

struct NcclApi {
  NcclResult (*get_unique_id)(NcclUniqueId*) = nullptr;
  NcclResult (*comm_init_rank)(NcclComm*, int, NcclUniqueId, int) = nullptr;
  NcclResult (*comm_destroy)(NcclComm) = nullptr;
  NcclResult (*all_reduce)(const void*, void*, size_t, int, int, NcclComm, cudaStream_t) = nullptr;
  NcclResult (*group_start)() = nullptr;
  NcclResult (*group_end)() = nullptr;
  const char* (*error_string)(NcclResult) = nullptr;
  std::string missing;  // why it could not be loaded (empty: loaded)
};

const NcclApi& nccl() {
  static const NcclApi api = [] {
    NcclApi a;
    void* lib = nullptr;
    for (const char* name : {"libnccl.so.2", "/usr/local/cuda/lib64/libnccl.so.2", "libnccl.so"})
      if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
    if (!lib) {
      a.missing = "NCCL (libnccl.so.2) not found";
      return a;
    }
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      if (!fn && a.missing.empty()) a.missing = std::string("NCCL lacks ") + name;
    };
    sym(a.get_unique_id, "ncclGetUniqueId");
    sym(a.comm_init_rank, "ncclCommInitRank");
    sym(a.comm_destroy, "ncclCommDestroy");
    sym(a.all_reduce, "ncclAllReduce");
    sym(a.group_start, "ncclGroupStart");
    sym(a.group_end, "ncclGroupEnd");
    sym(a.error_string, "ncclGetErrorString");
    return a;
  }();
  return api;
}

}  // namespace

// One communicator per GPU, made once for the model's GPUs in their order: the group's id from
// ncclGetUniqueId (here, or fetched from the first process of a group over several machines),
// then every local rank joined in one NCCL group call (one thread drives all GPUs of a machine).
class NcclCollectives : public Collectives {
 public:
  explicit NcclCollectives(std::vector<CudaBackend*> gpus) : gpus_(std::move(gpus)) {}
  ~NcclCollectives() override {
    for (NcclComm c : comms_)
      if (c) nccl().comm_destroy(c);
  }
  bool init(const GroupSetup& setup, std::string* why) {
    const int local = static_cast<int>(gpus_.size());
    if (setup.processes < 1 || setup.process < 0 || setup.process >= setup.processes || (setup.processes > 1 && setup.address.empty())) {
      if (why) *why = "a group over several processes needs an address and this process's index among them";
      return false;
    }
    // NVLink multicast (NVLS) stays off: the GPU hosts here refuse it (docs/MULTI_GPU.md).
    setenv("NCCL_NVLS_ENABLE", "0", 0);
    NcclUniqueId id{};
    if (setup.process == 0) {
      if (const NcclResult r = nccl().get_unique_id(&id); r != 0) {
        if (why) *why = std::string("ncclGetUniqueId: ") + nccl().error_string(r);
        return false;
      }
      // The others must hold the id before this process joins: its join waits for all ranks, with
      // no end of its own (the id already names this process's bootstrap socket, open since
      // ncclGetUniqueId, so the others can join it in any order after).
      if (setup.processes > 1)
        runtime::IdServer(runtime::parse_address(setup.address), std::vector<uint8_t>(id.internal, id.internal + sizeof id), setup.processes - 1,
                          kRendezvousTimeout)
            .wait();
    } else {
      const auto got = runtime::fetch_id(runtime::parse_address(setup.address), sizeof id, kRendezvousTimeout);
      std::memcpy(id.internal, got.data(), sizeof id);
    }
    comms_.assign(gpus_.size(), nullptr);
    NcclResult r = nccl().group_start();
    for (int k = 0; r == 0 && k < local; ++k) {
      gpus_[static_cast<size_t>(k)]->use();
      r = nccl().comm_init_rank(&comms_[static_cast<size_t>(k)], setup.processes * local, id, setup.process * local + k);
    }
    const NcclResult end = nccl().group_end();
    if (r != 0 || end != 0) {
      for (NcclComm& c : comms_)
        if (c) nccl().comm_destroy(c), c = nullptr;
      comms_.clear();
      if (why) *why = std::string("ncclCommInitRank: ") + nccl().error_string(r != 0 ? r : end);
      return false;
    }
    return true;
  }
  std::string name() const override { return "NCCL"; }
  bool all_reduce(const std::vector<std::pair<Backend*, float*>>& parts, size_t n) override {
    if (parts.size() != gpus_.size()) return false;
    for (size_t k = 0; k < parts.size(); ++k)
      if (parts[k].first != gpus_[k]) return false;
    // In place on every GPU's own stream, one group so the GPUs progress together (and a stream
    // capture records it like the kernels around it).
    NcclResult r = nccl().group_start();
    for (size_t k = 0; r == 0 && k < parts.size(); ++k) {
      gpus_[k]->use();
      r = nccl().all_reduce(parts[k].second, parts[k].second, n, kNcclFloat32, kNcclSum, comms_[k], gpus_[k]->s());
    }
    const NcclResult end = nccl().group_end();
    if (r != 0 || end != 0) throw Error(std::string("NCCL all-reduce: ") + nccl().error_string(r != 0 ? r : end));
    // The first GPU's stream waits for the others' part: the step a stream capture records on the
    // first GPU then holds the other GPUs' work joined back (a capture must end joined).
    for (size_t k = 1; k < parts.size(); ++k) gpus_[0]->wait_for(*gpus_[k]);
    return true;
  }

 private:
  std::vector<CudaBackend*> gpus_;
  std::vector<NcclComm> comms_;
};

std::unique_ptr<Collectives> make_gpu_collectives(const std::vector<Backend*>& gpus, std::string* why, const GroupSetup& setup) {
  std::vector<CudaBackend*> cuda_gpus;
  for (Backend* g : gpus) {
    auto* c = dynamic_cast<CudaBackend*>(g);
    if (!c) {
      if (why) *why = g->name() + " is not a CUDA GPU";
      return nullptr;
    }
    cuda_gpus.push_back(c);
  }
  if (cuda_gpus.size() * static_cast<size_t>(std::max(setup.processes, 1)) < 2) return nullptr;
  if (!nccl().missing.empty()) {
    if (why) *why = nccl().missing;
    return nullptr;
  }
  auto group = std::make_unique<NcclCollectives>(std::move(cuda_gpus));
  if (!group->init(setup, why)) return nullptr;
  return group;
}

}  // namespace jing::model
