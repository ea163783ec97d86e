// `jing tokenize MODEL [TEXT]` and `jing detokenize MODEL IDS`, from any GGUF with a vocabulary.
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/error.h"
#include "common/file.h"
#include "gguf/gguf.h"
#include "store/resolve.h"
#include "tokenizer/tokenizer.h"

namespace jing::cli {
namespace {

Registrar tokenize_cmd([](CLI::App& app) {
  struct Opts {
    std::string model, text, file;
    bool special = false, json = false, no_bos = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text (one 'id -> piece' per line, or --json)");
  cmd->add_option("model", o->model, "GGUF file (a vocab-only GGUF works) or model name")->required();
  cmd->add_option("text", o->text, "Text to tokenize (or --file, or standard input)");
  cmd->add_option("--file", o->file, "Read the text from a file");
  cmd->add_flag("--special", o->special, "Parse special-token text (<｜User｜>, <|im_start|>) as those tokens, and add BOS as the model asks");
  cmd->add_flag("--json", o->json, "Print a JSON array of ids");
  cmd->callback([o] {
    auto f = gguf::File::open(store::resolve_model(o->model));
    auto tok = tok::Tokenizer::from_gguf(f);
    std::string text = o->text;
    if (!o->file.empty()) {
      text = read_text_file(o->file);
    } else if (text.empty()) {
      text = read_stdin();
    }
    auto ids = tok->encode(text, o->special, o->special);
    if (o->json) {
      fmt::print("{}\n", nlohmann::json(ids).dump());
      return;
    }
    for (auto id : ids) fmt::print("{:>7} -> '{}'\n", id, tok->decode({id}));
  });
});

Registrar detokenize_cmd([](CLI::App& app) {
  auto model = std::make_shared<std::string>();
  auto ids = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand("detokenize", "Print the text of token ids (comma- or space-separated)");
  cmd->add_option("model", *model, "GGUF file or model name")->required();
  cmd->add_option("ids", *ids, "Token ids")->required();
  cmd->callback([model, ids] {
    auto f = gguf::File::open(store::resolve_model(*model));
    auto tok = tok::Tokenizer::from_gguf(f);
    std::vector<tok::Token> list;
    for (const auto& arg : *ids) {
      std::stringstream ss(arg);
      std::string item;
      while (std::getline(ss, item, ',')) {
        if (item.empty()) continue;
        size_t used = 0;
        long v = -1;
        try {
          v = std::stol(item, &used);
        } catch (const std::exception&) {
        }
        if (used != item.size() || v < 0 || v >= tok->n_vocab())
          throw Error("'" + item + "' is not a token id of this vocabulary (0.." + std::to_string(tok->n_vocab() - 1) + ")");
        list.push_back(static_cast<tok::Token>(v));
      }
    }
    std::string out = tok->decode(list);
    std::fwrite(out.data(), 1, out.size(), stdout);
  });
});

}  // namespace
}  // namespace jing::cli
