// libFuzzer target: the GGUF parser on arbitrary bytes must either accept the file (every tensor
// inside the buffer) or throw jing::Error — never crash, read out of bounds, or throw anything else.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "common/error.h"
#include "gguf/gguf.h"
#include "gguf/summary.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = jing::gguf::File::parse(data, size, "fuzz");
    for (const auto& t : f.tensors())
      if (t.data < data || t.data + t.nbytes > data + size) std::abort();
    auto s = jing::gguf::summarize(f);
    (void)s.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const jing::Error&) {
  }
  return 0;
}
