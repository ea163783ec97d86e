// Request bodies of the OpenAI, Ollama and llama-server APIs, parsed into one generation spec.
// Everything a client sends is checked here; a bad field is an ApiError naming it (HTTP 400).
#pragma once
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <memory>

#include "sample/gbnf.h"
#include "sample/sampler.h"

namespace jing::server {

using json = nlohmann::ordered_json;

// Most messages one chat request may hold (rendering stays linear, but a body of 100k tiny
// messages is not a conversation).
inline constexpr size_t kMaxMessages = 8192;

struct ApiError : std::runtime_error {
  int status;
  std::string type;
  ApiError(int s, const std::string& msg, std::string t = "invalid_request_error") : std::runtime_error(msg), status(s), type(std::move(t)) {}
};

struct GenerationSpec {
  std::string model;
  bool chat = true;                 // messages through the chat template, or a raw prompt
  json messages = json::array();
  json tools;                       // null when none (or tool_choice "none")
  std::string tool_choice = "auto";  // auto, none, required, function (tool_choice_name)
  std::string tool_choice_name;
  bool parallel_tool_calls = true;
  std::string prompt;               // completions
  bool raw = false;                 // Ollama generate: skip the template
  std::string system;               // Ollama generate
  bool stream = false;
  bool include_usage = false;
  sample::SamplingParams sampling;    // penalties, logit bias, typical-p: always the client's
  sample::SamplingOverrides overrides;  // temperature, top-k/p, min-p, seed, repeat penalty: when given
  int max_tokens = -1;
  std::vector<std::string> stop;
  int top_logprobs = -1;            // -1: no logprobs
  std::optional<bool> think;        // Ollama's think / our enable_thinking
  std::string reasoning_format;     // "deepseek" (split), "none" (leave <think> in content)
  std::optional<double> keep_alive_seconds;
  std::optional<int> num_ctx;
  std::shared_ptr<const sample::Grammar> grammar;  // structured output, when asked for
};

// Parses JSON text; malformed JSON or a non-object body is a 400 with the parser's message.
json parse_body(const std::string& body);
// JSON text that may be anything (model output): a discarded value when it does not parse or
// nests too deep to copy safely.
json parse_json_or_discarded(const std::string& text);

GenerationSpec parse_openai_chat(const json& body);
GenerationSpec parse_openai_completion(const json& body);
GenerationSpec parse_ollama_chat(const json& body);
GenerationSpec parse_ollama_generate(const json& body);
GenerationSpec parse_llama_completion(const json& body);  // llama-server's /completion
// The inputs of /v1/embeddings and /api/embed: a string or an array of strings.
std::vector<std::string> parse_embedding_inputs(const json& body, const char* field);
// Ollama keep_alive: "5m", "1h", "30s", a number of seconds, or -1 (forever).
std::optional<double> parse_duration(const json& v);

}  // namespace jing::server
