#include "chat/model_template.h"

#include "common/error.h"

namespace jing::chat {

ModelTemplate model_template(const gguf::File& f, const std::optional<std::string>& override_source) {
  ModelTemplate t;
  if (override_source) t.source = *override_source;
  else if (auto s = f.get_string("tokenizer.chat_template")) t.source = *s;
  else throw Error("the model has no chat template (tokenizer.chat_template); pass one with --chat-template-file");
  const gguf::Array* tokens = f.get_array("tokenizer.ggml.tokens");
  auto token = [&](const char* key) -> std::string {
    auto id = f.get_int(key);
    if (!tokens || !id || *id < 0 || *id >= static_cast<int64_t>(tokens->items.size())) return "";
    return tokens->items[static_cast<size_t>(*id)].as_string();
  };
  t.bos = token("tokenizer.ggml.bos_token_id");
  t.eos = token("tokenizer.ggml.eos_token_id");
  return t;
}

}  // namespace jing::chat
