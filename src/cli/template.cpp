// `jing template MODEL --messages FILE.json`: prints the prompt the chat template renders, exactly.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "chat/model_template.h"
#include "cli/command.h"
#include "common/error.h"
#include "common/file.h"
#include "store/resolve.h"

namespace jing::cli {
namespace {

nlohmann::ordered_json parse_json_file(const std::string& path, const char* what) {
  auto j = nlohmann::ordered_json::parse(read_text_file(path), nullptr, false);
  if (j.is_discarded()) throw Error(std::string(what) + " file " + path + " is not valid JSON");
  return j;
}

Registrar reg([](CLI::App& app) {
  struct Opts {
    std::string model, messages, tools, template_file;
    bool add_generation_prompt = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("template", "Render a conversation with the model's chat template (printed exactly)");
  cmd->add_option("model", o->model, "GGUF file (a vocab-only GGUF works) or model name")->required();
  cmd->add_option("--messages", o->messages, "JSON file: an array of messages, or an object with \"messages\"")->required();
  cmd->add_option("--tools", o->tools, "JSON file with an array of tools");
  cmd->add_flag("--add-generation-prompt", o->add_generation_prompt, "End with the assistant's turn opening");
  cmd->add_option("--chat-template-file", o->template_file, "Use this Jinja template instead of the model's");
  cmd->callback([o] {
    auto f = gguf::File::open(store::resolve_model(o->model));
    std::optional<std::string> override_source;
    if (!o->template_file.empty()) override_source = read_text_file(o->template_file);
    auto mt = chat::model_template(f, override_source);
    auto messages = parse_json_file(o->messages, "messages");
    nlohmann::ordered_json tools;
    if (messages.is_object()) {
      if (messages.contains("tools")) tools = messages["tools"];
      messages = messages.value("messages", nlohmann::ordered_json::array());
    }
    if (!messages.is_array()) throw Error("--messages must hold a JSON array of messages");
    if (!o->tools.empty()) tools = parse_json_file(o->tools, "tools");
    std::string out = mt.make().render(messages, tools, o->add_generation_prompt);
    std::fwrite(out.data(), 1, out.size(), stdout);
  });
});

}  // namespace
}  // namespace jing::cli
