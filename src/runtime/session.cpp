#include "runtime/session.h"

#include "common/error.h"

namespace jing::runtime {

sample::SamplingParams default_sampling(const gguf::File& f) {
  sample::SamplingParams s;  // temperature 0.6, top-p 0.95: DeepSeek's advice for R1
  if (auto v = f.get_float("general.sampling.temp")) s.temperature = static_cast<float>(*v);
  if (auto v = f.get_float("general.sampling.top_p")) s.top_p = static_cast<float>(*v);
  if (auto v = f.get_int("general.sampling.top_k")) s.top_k = static_cast<int>(*v);
  if (auto v = f.get_float("general.sampling.min_p")) s.min_p = static_cast<float>(*v);
  if (auto v = f.get_float("general.sampling.penalty_repeat")) s.repeat_penalty = static_cast<float>(*v);
  return s;
}

ChatSession::ChatSession(const std::filesystem::path& path, const SessionOptions& opts) : system_(opts.system) {
  model_ = model::Model::load(path, opts.model);
  tok_ = tok::Tokenizer::from_gguf(model_->file());
  template_ = chat::model_template(model_->file(), opts.chat_template);
  template_.make();  // a template that does not parse fails here, before the first question
  params_.sampling = default_sampling(model_->file());
  params_.n_batch = opts.model.n_batch;
  clear();
}

void ChatSession::clear() {
  messages_ = nlohmann::ordered_json::array();
  if (!system_.empty()) messages_.push_back({{"role", "system"}, {"content", system_}});
}

GenerateStats ChatSession::ask(const std::string& user, const std::function<bool(const chat::TextDelta&)>& on_delta) {
  messages_.push_back({{"role", "user"}, {"content", user}});
  nlohmann::ordered_json extra = {{"enable_thinking", think_}};
  std::string prompt;
  try {
    prompt = template_.make().render(messages_, nullptr, true, extra);
  } catch (...) {
    messages_.erase(messages_.size() - 1);
    throw;
  }
  // Templates that open the think block themselves (R1's newer ones end in "<think>\n").
  const auto tail = prompt.substr(prompt.size() > 16 ? prompt.size() - 16 : 0);
  const bool opened = tail.find("<think>") != std::string::npos && tail.find("</think>") == std::string::npos;
  chat::ReasoningParser parser(opened);
  params_.grammar_after_think = opened;  // with --format, R1 still thinks first
  if (params_.grammar && !params_.grammar_tokens) params_.grammar_tokens = sample::TokenIndex::build(*tok_);  // once per session
  auto ids = tok_->encode(prompt, true, true);
  std::string answer;
  bool keep_going = true;
  auto st = generate(*model_, *tok_, 0, ids, cached_, params_, [&](const std::string& text) {
    auto d = parser.push(text);
    answer += d.content;
    if (!d.empty()) keep_going = on_delta(d);
    return keep_going;
  });
  auto d = parser.finish();
  answer += d.content;
  if (!d.empty()) on_delta(d);
  messages_.push_back({{"role", "assistant"}, {"content", answer}});
  return st;
}

}  // namespace jing::runtime
