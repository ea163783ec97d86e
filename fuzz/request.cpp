// libFuzzer target: any request body through every API's parser. Bad input must become an
// ApiError (an HTTP 400), never a crash or another exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace jing::server;
  const std::string body(reinterpret_cast<const char*>(data), size);
  for (int api = 0; api < 7; ++api) {
    try {
      json j = parse_body(body);
      switch (api) {
        case 0: parse_openai_chat(j); break;
        case 1: parse_openai_completion(j); break;
        case 2: parse_ollama_chat(j); break;
        case 3: parse_ollama_generate(j); break;
        case 4: parse_llama_completion(j); break;
        case 5: parse_embedding_inputs(j, "input"); break;
        default: if (j.contains("keep_alive")) parse_duration(j["keep_alive"]);
      }
    } catch (const ApiError&) {
    }
  }
  return 0;
}
