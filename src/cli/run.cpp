// `jing run MODEL [PROMPT]`: one-shot answer, or an interactive chat like `ollama run`.
#include <histedit.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include "cli/command.h"
#include "common/error.h"
#include "common/file.h"
#include "gguf/summary.h"
#include "runtime/session.h"
#include "sample/gbnf.h"
#include "sample/json_schema.h"
#include "store/resolve.h"

namespace jing::cli {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted = true; }

struct RunOptions {
  std::string model, prompt, system, template_file, hf, format;
  int ctx = 4096, threads = 0, max_tokens = -1;
  sample::SamplingOverrides sampling;
  bool hide_thinking = false, verbose = false, nothink = false, think = false;
  GpuFlags gpu;
};

class Printer {
 public:
  Printer(bool hide_thinking) : hide_(hide_thinking), tty_(isatty(STDOUT_FILENO)) {}
  bool operator()(const chat::TextDelta& d) {
    if (!d.reasoning.empty() && !hide_) {
      if (!in_reasoning_) {
        if (tty_) std::fputs("\033[2m", stdout);
        else std::fputs("Thinking...\n", stdout);
        in_reasoning_ = true;
      }
      std::fputs(d.reasoning.c_str(), stdout);
    }
    if (!d.content.empty()) {
      end_reasoning();
      std::fputs(d.content.c_str(), stdout);
    }
    std::fflush(stdout);
    return !g_interrupted;
  }
  void end_reasoning() {
    if (!in_reasoning_) return;
    if (tty_) std::fputs("\033[0m", stdout);
    else std::fputs("\n...done thinking.\n", stdout);
    std::fputs("\n", stdout);
    in_reasoning_ = false;
  }

 private:
  bool hide_, tty_, in_reasoning_ = false;
};

void print_stats(const runtime::GenerateStats& st) {
  auto rate = [](int n, double s) { return s > 0 ? n / s : 0.0; };
  fmt::print(stderr, "\nprompt eval count:    {} token(s) ({} cached)\n", st.prompt_tokens, st.cached_tokens);
  fmt::print(stderr, "prompt eval duration: {:.3f}s\nprompt eval rate:     {:.2f} tokens/s\n", st.prompt_seconds, rate(st.prompt_tokens, st.prompt_seconds));
  fmt::print(stderr, "eval count:           {} token(s)\neval duration:        {:.3f}s\neval rate:            {:.2f} tokens/s\n", st.generated,
             st.generate_seconds, rate(st.generated, st.generate_seconds));
}

void ask(runtime::ChatSession& s, const std::string& text, const RunOptions& o) {
  g_interrupted = false;
  Printer p(o.hide_thinking);
  auto st = s.ask(text, std::ref(p));
  p.end_reasoning();
  std::fputs(g_interrupted ? "\n^C\n" : "\n", stdout);
  std::fflush(stdout);
  if (o.verbose) print_stats(st);
}

bool set_parameter(runtime::ChatSession& s, const std::string& name, const std::string& value) {
  auto& sp = s.params().sampling;
  try {
    if (name == "temperature") sp.temperature = std::stof(value);
    else if (name == "top_k") sp.top_k = std::stoi(value);
    else if (name == "top_p") sp.top_p = std::stof(value);
    else if (name == "min_p") sp.min_p = std::stof(value);
    else if (name == "repeat_penalty") sp.repeat_penalty = std::stof(value);
    else if (name == "repeat_last_n") sp.repeat_last_n = std::stoi(value);
    else if (name == "seed") sp.seed = static_cast<uint64_t>(std::stoull(value));
    else if (name == "num_predict") s.params().max_tokens = std::stoi(value);
    else if (name == "stop") s.params().stop.push_back(value);
    else return false;
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

const char* kHelp =
    "Available Commands:\n"
    "  /set parameter NAME VALUE   temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n, seed, num_predict, stop\n"
    "  /set think | /set nothink   show the model's reasoning, or ask it not to reason\n"
    "  /show info                  show model information\n"
    "  /clear                      forget the conversation\n"
    "  /bye                        exit\n"
    "  /?, /help                   this help\n"
    "Use \"\"\" to begin and end a multi-line message.\n";

void interactive(runtime::ChatSession& s, const RunOptions& o, const std::string& model_name) {
  EditLine* el = el_init("jing", stdin, stdout, stderr);
  History* hist = history_init();
  HistEvent ev;
  history(hist, &ev, H_SETSIZE, 1000);
  el_set(el, EL_HIST, history, hist);
  el_set(el, EL_EDITOR, "emacs");
  static std::string prompt_text;
  prompt_text = ">>> ";
  el_set(el, EL_PROMPT, +[](EditLine*) -> char* { return prompt_text.data(); });
  std::string multiline;
  bool in_multiline = false;
  while (true) {
    int count = 0;
    g_interrupted = false;
    const char* raw = el_gets(el, &count);
    if (!raw) {
      if (g_interrupted) {
        std::fputs("\nUse Ctrl + d or /bye to exit.\n", stdout);
        continue;
      }
      std::fputs("\n", stdout);
      break;  // Ctrl-D / end of input
    }
    std::string line(raw);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (in_multiline) {
      auto end = line.find("\"\"\"");
      if (end == std::string::npos) {
        multiline += line + "\n";
        continue;
      }
      multiline += line.substr(0, end);
      in_multiline = false;
      prompt_text = ">>> ";
      history(hist, &ev, H_ENTER, multiline.c_str());
      ask(s, multiline, o);
      continue;
    }
    if (line.rfind("\"\"\"", 0) == 0) {
      multiline = line.substr(3);
      auto end = multiline.find("\"\"\"");
      if (end != std::string::npos) {
        ask(s, multiline.substr(0, end), o);
        continue;
      }
      if (!multiline.empty()) multiline += "\n";
      in_multiline = true;
      prompt_text = "... ";
      continue;
    }
    if (line.empty()) continue;
    history(hist, &ev, H_ENTER, line.c_str());
    if (line[0] == '/') {
      std::istringstream ss(line);
      std::string cmd, sub, name, value;
      ss >> cmd >> sub >> name;
      std::getline(ss, value);
      value.erase(0, value.find_first_not_of(' '));
      if (cmd == "/bye" || cmd == "/exit") break;
      if (cmd == "/?" || cmd == "/help") std::fputs(kHelp, stdout);
      else if (cmd == "/clear") {
        s.clear();
        std::fputs("Cleared session context\n", stdout);
      } else if (cmd == "/set" && sub == "think") {
        s.think() = true;
        std::fputs("Set 'think' mode.\n", stdout);
      } else if (cmd == "/set" && sub == "nothink") {
        s.think() = false;
        std::fputs("Set 'nothink' mode.\n", stdout);
      } else if (cmd == "/set" && sub == "parameter") {
        if (set_parameter(s, name, value)) fmt::print("Set parameter '{}' to '{}'\n", name, value);
        else fmt::print("Couldn't set parameter '{}' to '{}'\n", name, value);
      } else if (cmd == "/show" && sub == "info") {
        auto sum = gguf::summarize(s.model().file());
        fmt::print("  Model\n    architecture        {}\n    parameters          {}\n    context length      {}\n    embedding length    {}\n    quantization        {}\n",
                   sum.architecture, gguf::format_parameters(sum.parameters), s.model().n_ctx_train(), s.model().n_embd(),
                   sum.file_type.empty() ? sum.dominant_type : sum.file_type);
        (void)model_name;
      } else {
        fmt::print("Unknown command '{}'. Type /? for help\n", cmd);
      }
      continue;
    }
    ask(s, line, o);
  }
  history_end(hist);
  el_end(el);
}

// --format: "json" (any object), a JSON schema given inline, or a file holding one.
std::shared_ptr<const sample::Grammar> output_format(const std::string& spec) {
  if (spec.empty()) return nullptr;
  try {
    std::string gbnf;
    if (spec == "json") {
      gbnf = sample::json_object_gbnf();
    } else {
      const std::string text = spec.find('{') != std::string::npos ? spec : read_text_file(spec);
      auto schema = nlohmann::ordered_json::parse(text, nullptr, false);
      if (schema.is_discarded()) throw Error("--format: not \"json\" and not a JSON schema: " + spec.substr(0, 80));
      gbnf = sample::json_schema_to_gbnf(schema);
    }
    return std::make_shared<const sample::Grammar>(sample::parse_gbnf(gbnf));
  } catch (const sample::SchemaError& e) {
    throw Error(std::string("--format: ") + e.what());
  } catch (const sample::GrammarError& e) {
    throw Error(std::string("--format: ") + e.what());
  }
}

Registrar reg([](CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand("run", "Chat with a model (one-shot with PROMPT, interactive without)");
  cmd->add_option("model", o->model, "GGUF file, first part of a split model, or a model name (pulled on first use)");
  cmd->add_option("prompt", o->prompt, "Ask this and exit");
  cmd->add_option("--hf", o->hf, "Hugging Face repository OWNER/REPO[:QUANT], like llama.cpp");
  cmd->add_option("-c,--ctx-size", o->ctx, "Context size in tokens")->check(CLI::Range(16, 1 << 20));
  cmd->add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  cmd->add_option("-n,--max-tokens,--num-predict", o->max_tokens, "Most tokens to generate (-1: until done)");
  cmd->add_option("--temp,--temperature", o->sampling.temperature, "Sampling temperature (0: greedy)");
  cmd->add_option("--top-k", o->sampling.top_k, "Top-k sampling (0: off)");
  cmd->add_option("--top-p", o->sampling.top_p, "Top-p sampling (1: off)");
  cmd->add_option("--min-p", o->sampling.min_p, "Min-p sampling (0: off)");
  cmd->add_option("--repeat-penalty", o->sampling.repeat_penalty, "Repetition penalty (1: off)");
  cmd->add_option("--seed", o->sampling.seed, "Random seed");
  cmd->add_option("--system", o->system, "System prompt");
  cmd->add_option("--chat-template-file", o->template_file, "Use this Jinja chat template");
  cmd->add_flag("--hidethinking", o->hide_thinking, "Do not print the model's reasoning");
  cmd->add_flag("--nothink", o->nothink, "Ask the model not to reason (templates that support it)");
  cmd->add_flag("--think", o->think, "Ask the model to reason (the default)");
  cmd->add_flag("--verbose", o->verbose, "Print prompt and generation speed");
  cmd->add_option("--format", o->format, "Answer in JSON: \"json\", a JSON schema, or a schema file (as ollama run --format)");
  add_gpu_flags(cmd, o->gpu);
  cmd->callback([o] {
    std::string name = !o->hf.empty() ? "hf.co/" + o->hf : o->model;
    if (name.empty()) throw Error("no model given: jing run MODEL [PROMPT]");
    std::shared_ptr<const sample::Grammar> format = output_format(o->format);  // a bad schema fails before loading
    auto path = store::resolve_model(name, {.pull_if_missing = true});
    runtime::SessionOptions so;
    so.model.n_ctx = o->ctx;
    so.model.n_threads = o->threads;
    apply_gpu_flags(o->gpu, so.model);
    so.system = o->system;
    if (!o->template_file.empty()) {
      so.chat_template = read_text_file(o->template_file);
    }
    runtime::ChatSession s(path, so);
    o->sampling.apply(s.params().sampling);
    s.params().max_tokens = o->max_tokens;
    s.params().grammar = format;
    s.think() = !o->nothink;
    std::signal(SIGINT, on_sigint);
    if (!o->prompt.empty()) {
      ask(s, o->prompt, *o);
      return;
    }
    if (!isatty(STDIN_FILENO)) {  // piped input: one question
      ask(s, read_stdin(), *o);
      return;
    }
    interactive(s, *o, name);
  });
});

}  // namespace
}  // namespace jing::cli
