// A chat with a model held in process: the model, its tokenizer and chat template, sampling
// defaults from the GGUF, and the conversation so far. `jing run` drives it; each turn reuses
// the cached prompt prefix.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/model_template.h"
#include "chat/reasoning.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "tokenizer/tokenizer.h"

namespace jing::runtime {

struct SessionOptions {
  model::ModelOptions model;
  std::optional<std::string> chat_template;  // overrides the model's
  std::string system;                        // system prompt, if any
};

class ChatSession {
 public:
  ChatSession(const std::filesystem::path& path, const SessionOptions& opts);

  // Sampling defaults: DeepSeek's advice for R1 unless the GGUF (general.sampling.*) says otherwise.
  GenerateParams& params() { return params_; }
  bool& think() { return think_; }
  model::Model& model() { return *model_; }
  const tok::Tokenizer& tokenizer() const { return *tok_; }
  const nlohmann::ordered_json& messages() const { return messages_; }

  // Adds the user's message, generates the answer (streamed as reasoning/content deltas), and
  // keeps the answer in the conversation. Returns the generation's statistics.
  GenerateStats ask(const std::string& user, const std::function<bool(const chat::TextDelta&)>& on_delta);
  void clear();

 private:
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<tok::Tokenizer> tok_;
  chat::ModelTemplate template_;
  GenerateParams params_;
  nlohmann::ordered_json messages_ = nlohmann::ordered_json::array();
  std::string system_;
  std::vector<int32_t> cached_;
  bool think_ = true;
};

// Sampling defaults read from a GGUF's general.sampling.* keys over DeepSeek's R1 advice.
sample::SamplingParams default_sampling(const gguf::File& f);

}  // namespace jing::runtime
