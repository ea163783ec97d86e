// The chat template a model ships (tokenizer.chat_template), with the BOS/EOS strings of its
// own vocabulary, as transformers passes them.
#pragma once
#include <optional>
#include <string>

#include "chat/template.h"
#include "gguf/gguf.h"

namespace jing::chat {

struct ModelTemplate {
  std::string source;
  std::string bos, eos;
  ChatTemplate make() const { return ChatTemplate(source, bos, eos); }
};

// override_source: a template given by the user (--chat-template-file). Throws when the model
// has no template and none is given.
ModelTemplate model_template(const gguf::File& f, const std::optional<std::string>& override_source = std::nullopt);

}  // namespace jing::chat
