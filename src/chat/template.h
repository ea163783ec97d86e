// Chat templates: the Jinja2 subset real chat templates use, rendered as Hugging Face's
// apply_chat_template does. (Contract shared by run and server; implemented in src/chat.)
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace jing::chat {

class ChatTemplate {
 public:
  // Parses the template; throws jing::Error with line and column on a syntax error.
  ChatTemplate(const std::string& source, std::string bos_token, std::string eos_token);
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // messages: OpenAI-style [{role, content, reasoning_content?, tool_calls?, ...}];
  // tools: array or null; extra: more variables (e.g. enable_thinking).
  // Throws jing::Error with the template's message when it calls raise_exception.
  // A tool call's arguments arrive from OpenAI clients as a JSON string, while templates are written
  // for an object (Hugging Face's convention): strings holding a JSON object are parsed first, and
  // the messages go in as sent only when the template raises on the objects.
  std::string render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;
  // Exactly the values given, as transformers' apply_chat_template renders them.
  std::string render_as_given(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools, bool add_generation_prompt,
                              const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace jing::chat
