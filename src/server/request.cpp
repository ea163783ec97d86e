#include "server/request.h"

#include <cmath>

#include "common/json_depth.h"
#include "sample/gbnf.h"
#include "sample/json_schema.h"

namespace jing::server {

namespace {

const json* field(const json& b, const char* name) {
  auto it = b.find(name);
  return it == b.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& b, const char* name, double lo, double hi) {
  const json* v = field(b, name);
  if (!v->is_number()) throw ApiError(400, std::string("'") + name + "' must be a number");
  double x = v->get<double>();
  if (!(x >= lo && x <= hi)) throw ApiError(400, std::string("'") + name + "' is out of range");
  return x;
}

int64_t integer(const json& b, const char* name, int64_t lo, int64_t hi) {
  const json* v = field(b, name);
  // A float is fine when it holds a whole number (1.0, 1e3). Test that without converting to an
  // integer type: a float beyond int64 (1e28) has no conversion (it was undefined behaviour).
  if (!v->is_number() || (v->is_number_float() && v->get<double>() != std::trunc(v->get<double>())))
    throw ApiError(400, std::string("'") + name + "' must be an integer");
  double d = v->get<double>();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi))) throw ApiError(400, std::string("'") + name + "' is out of range");
  return static_cast<int64_t>(d);
}

bool boolean(const json& b, const char* name) {
  const json* v = field(b, name);
  if (!v->is_boolean()) throw ApiError(400, std::string("'") + name + "' must be true or false");
  return v->get<bool>();
}

std::string string(const json& b, const char* name) {
  const json* v = field(b, name);
  if (!v->is_string()) throw ApiError(400, std::string("'") + name + "' must be a string");
  return v->get<std::string>();
}

std::vector<std::string> stops(const json& v) {
  if (v.is_string()) return {v.get<std::string>()};
  if (!v.is_array()) throw ApiError(400, "'stop' must be a string or an array of strings");
  std::vector<std::string> out;
  for (const auto& s : v) {
    if (!s.is_string()) throw ApiError(400, "'stop' must be a string or an array of strings");
    out.push_back(s.get<std::string>());
  }
  if (out.size() > 16) throw ApiError(400, "'stop' holds more than 16 strings");
  return out;
}

// Sampling fields shared by OpenAI, llama-server and Ollama's options (names differ slightly).
void sampling(const json& b, GenerationSpec& g) {
  if (field(b, "temperature")) g.overrides.temperature = static_cast<float>(number(b, "temperature", 0, 100));
  if (field(b, "top_p")) g.overrides.top_p = static_cast<float>(number(b, "top_p", 0, 1));
  if (field(b, "top_k")) g.overrides.top_k = static_cast<int>(integer(b, "top_k", 0, 1 << 30));
  if (field(b, "min_p")) g.overrides.min_p = static_cast<float>(number(b, "min_p", 0, 1));
  if (field(b, "typical_p")) g.sampling.typical_p = static_cast<float>(number(b, "typical_p", 0, 1));
  if (field(b, "seed")) g.overrides.seed = static_cast<uint64_t>(integer(b, "seed", -(int64_t{1} << 62), int64_t{1} << 62));
  if (field(b, "frequency_penalty")) g.sampling.frequency_penalty = static_cast<float>(number(b, "frequency_penalty", -2, 2));
  if (field(b, "presence_penalty")) g.sampling.presence_penalty = static_cast<float>(number(b, "presence_penalty", -2, 2));
  for (const char* k : {"repeat_penalty", "repetition_penalty"})
    if (field(b, k)) g.overrides.repeat_penalty = static_cast<float>(number(b, k, 0, 10));
  if (field(b, "repeat_last_n")) g.sampling.repeat_last_n = static_cast<int>(integer(b, "repeat_last_n", -1, 1 << 20));
  if (const json* s = field(b, "stop")) g.stop = stops(*s);
  if (const json* lb = field(b, "logit_bias")) {
    if (!lb->is_object()) throw ApiError(400, "'logit_bias' must be an object of token id -> bias");
    for (auto it = lb->begin(); it != lb->end(); ++it) {
      int32_t id;
      try {
        size_t used = 0;
        id = std::stoi(it.key(), &used);
        if (used != it.key().size()) throw std::invalid_argument("");
      } catch (const std::exception&) {
        throw ApiError(400, "'logit_bias' keys must be token ids");
      }
      if (!it.value().is_number()) throw ApiError(400, "'logit_bias' values must be numbers");
      g.sampling.logit_bias[id] = std::clamp(it.value().get<float>(), -100.0f, 100.0f);
    }
  }
}

// The 400 for a picture sent to a model that reads text only (every model jing runs, for now).
std::string no_images(const std::string& what, const std::string& model) {
  return what + ", but " + (model.empty() ? std::string("the model") : "model '" + model + "'") +
         " is text-only: jing cannot read images (no vision support); send the message as text";
}

void messages(const json& b, GenerationSpec& g) {
  const json* m = field(b, "messages");
  if (!m || !m->is_array()) throw ApiError(400, "'messages' must be an array");
  if (m->empty()) throw ApiError(400, "'messages' is empty");
  if (m->size() > kMaxMessages)
    throw ApiError(400, "'messages' has " + std::to_string(m->size()) + " entries; at most " + std::to_string(kMaxMessages) + " are accepted");
  for (const auto& msg : *m) {
    if (!msg.is_object() || !msg.contains("role") || !msg["role"].is_string())
      throw ApiError(400, "every message needs a 'role' string");
    if (msg.contains("content") && !msg["content"].is_null() && !msg["content"].is_string() && !msg["content"].is_array())
      throw ApiError(400, "a message's 'content' must be a string or an array of parts");
  }
  // Content given as parts ([{"type":"text","text":...}]) becomes one string, the texts joined.
  json flat = json::array();
  for (size_t i = 0; i < m->size(); ++i) {
    json msg = (*m)[i];
    const std::string where = "message " + std::to_string(i + 1);
    // Ollama carries images beside the text; Open WebUI sends them when a picture is attached.
    if (const json* images = field(msg, "images"); images && !(images->is_array() && images->empty()))
      throw ApiError(400, no_images(where + " carries 'images'", g.model));
    if (msg.contains("content") && msg["content"].is_array()) {
      std::string text;
      for (const auto& part : msg["content"]) {
        const std::string type = part.is_object() && part.contains("type") && part["type"].is_string() ? part["type"].get<std::string>() : "";
        if (type == "image_url" || type == "image" || type == "input_image")
          throw ApiError(400, no_images(where + " has an '" + type + "' content part", g.model));
        if (type != "text") throw ApiError(400, where + " has a content part of type '" + type + "'; only 'text' parts are supported");
        if (!part.contains("text") || !part["text"].is_string()) throw ApiError(400, where + " has a text part without a 'text' string");
        text += part["text"].get<std::string>();
      }
      msg["content"] = text;
    }
    // Ollama returns reasoning as "thinking"; templates read "reasoning_content".
    if (msg.contains("thinking") && !msg.contains("reasoning_content")) msg["reasoning_content"] = msg["thinking"];
    flat.push_back(std::move(msg));
  }
  g.messages = std::move(flat);
}

// Structured output: llama-server's `grammar` (GBNF) and `json_schema`, OpenAI's `response_format`
// and Ollama's `format` become one compiled grammar; any problem with it is a 400 before the queue.
void constraint(const json& b, GenerationSpec& g) {
  for (const char* k : {"grammar_triggers", "grammar_lazy"})
    if (field(b, k)) throw ApiError(400, std::string("'") + k + "' (lazy grammars) is not supported; send 'grammar' alone");
  std::string gbnf, from;
  auto set = [&](std::string text, const char* name) {
    if (!from.empty()) throw ApiError(400, std::string("'") + name + "' and '" + from + "' both constrain the output; send one");
    gbnf = std::move(text);
    from = name;
  };
  try {
    if (const json* gr = field(b, "grammar")) {
      if (!gr->is_string()) throw ApiError(400, "'grammar' must be a string (GBNF)");
      if (!gr->get<std::string>().empty()) set(gr->get<std::string>(), "grammar");
    }
    if (const json* js = field(b, "json_schema")) set(sample::json_schema_to_gbnf(*js), "json_schema");
    if (const json* rf = field(b, "response_format")) {
      if (!rf->is_object()) throw ApiError(400, "'response_format' must be an object");
      const std::string type = rf->value("type", "");
      if (type == "json_object") {
        set(rf->contains("schema") ? sample::json_schema_to_gbnf((*rf)["schema"]) : sample::json_object_gbnf(), "response_format");
      } else if (type == "json_schema") {
        const json* js = rf->contains("json_schema") ? &(*rf)["json_schema"] : nullptr;
        const json* schema = js && js->is_object() && js->contains("schema") ? &(*js)["schema"]
                             : rf->contains("schema")                       ? &(*rf)["schema"]
                                                                            : nullptr;
        if (!schema) throw ApiError(400, "response_format json_schema needs 'json_schema': {'name', 'schema'}");
        set(sample::json_schema_to_gbnf(*schema), "response_format");
      } else if (type != "text" && !type.empty()) {
        throw ApiError(400, "unknown response_format type '" + type + "' (text, json_object and json_schema are)");
      }
    }
    if (const json* f = field(b, "format")) {  // Ollama: "json" or a schema
      if (f->is_string() && f->get<std::string>() == "json") set(sample::json_object_gbnf(), "format");
      else if (f->is_object()) set(sample::json_schema_to_gbnf(*f), "format");
      else if (!(f->is_string() && f->get<std::string>().empty())) throw ApiError(400, "'format' must be \"json\" or a JSON schema object");
    }
    if (!gbnf.empty()) g.grammar = std::make_shared<const sample::Grammar>(sample::parse_gbnf(gbnf));
  } catch (const sample::SchemaError& e) {
    throw ApiError(400, e.what());
  } catch (const sample::GrammarError& e) {
    throw ApiError(400, from == "grammar" ? e.what() : std::string("internal grammar for '") + from + "': " + e.what());
  } catch (const nlohmann::json::exception& e) {  // a schema field of an unexpected JSON type the checks missed
    throw ApiError(400, std::string("'") + (from.empty() ? "schema" : from) + "': " + e.what());
  }
}

void tools(const json& b, GenerationSpec& g) {
  if (const json* t = field(b, "tools")) {
    if (!t->is_array()) throw ApiError(400, "'tools' must be an array");
    if (!t->empty()) g.tools = *t;
  }
  // OpenAI's tool_choice: "auto" (default), "none", "required", or {"type":"function","function":{"name":...}}.
  if (const json* c = field(b, "tool_choice")) {
    if (c->is_string()) {
      g.tool_choice = c->get<std::string>();
      if (g.tool_choice != "auto" && g.tool_choice != "none" && g.tool_choice != "required")
        throw ApiError(400, "'tool_choice' must be \"auto\", \"none\", \"required\" or a function");
    } else if (c->is_object() && c->contains("function") && (*c)["function"].is_object() && (*c)["function"].contains("name") &&
               (*c)["function"]["name"].is_string()) {
      g.tool_choice = "function";
      g.tool_choice_name = (*c)["function"]["name"].get<std::string>();
    } else {
      throw ApiError(400, "'tool_choice' must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}");
    }
    if (g.tool_choice != "auto" && g.tool_choice != "none" && g.tools.is_null()) throw ApiError(400, "'tool_choice' asks for a tool call but 'tools' is empty");
  }
  if (field(b, "parallel_tool_calls")) g.parallel_tool_calls = boolean(b, "parallel_tool_calls");
  if (g.tool_choice == "none") g.tools = nullptr;  // the model is not told about tools and none are parsed
}

}  // namespace

json parse_body(const std::string& body) {
  if (body.empty()) throw ApiError(400, "the request body is empty; send a JSON object");
  // Checked on the text, before a value exists: deep values overflow the stack when copied.
  if (!json_depth_within(body))
    throw ApiError(400, "the JSON body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {  // syntax errors, and numbers too large to hold
    throw ApiError(400, std::string("malformed JSON: ") + e.what());
  }
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return j;
}

json parse_json_or_discarded(const std::string& text) {
  if (!json_depth_within(text)) return json(json::value_t::discarded);
  return json::parse(text, nullptr, false);
}

std::optional<double> parse_duration(const json& v) {
  if (v.is_null()) return std::nullopt;
  if (v.is_number()) {
    double s = v.get<double>();
    return s < 0 ? 1e18 : s;
  }
  if (!v.is_string()) throw ApiError(400, "'keep_alive' must be a duration like \"5m\" or a number of seconds");
  std::string s = v.get<std::string>();
  if (s.empty()) return std::nullopt;
  double total = 0;
  size_t i = 0;
  bool any = false;
  if (s[0] == '-') return 1e18;
  while (i < s.size()) {
    size_t used = 0;
    double n;
    try {
      n = std::stod(s.substr(i), &used);
    } catch (const std::exception&) {
      throw ApiError(400, "'keep_alive' must be a duration like \"5m\"");
    }
    i += used;
    double unit = 1;
    if (i < s.size()) {
      if (s.compare(i, 2, "ms") == 0) unit = 0.001, i += 2;
      else if (s[i] == 'h') unit = 3600, ++i;
      else if (s[i] == 'm') unit = 60, ++i;
      else if (s[i] == 's') unit = 1, ++i;
      else throw ApiError(400, "'keep_alive' has an unknown unit");
    }
    total += n * unit;
    any = true;
  }
  if (!any) throw ApiError(400, "'keep_alive' must be a duration like \"5m\"");
  return total;
}

GenerationSpec parse_openai_chat(const json& b) {
  GenerationSpec g;
  constraint(b, g);
  if (field(b, "model")) g.model = string(b, "model");
  messages(b, g);
  tools(b, g);
  if (field(b, "stream")) g.stream = boolean(b, "stream");
  if (const json* so = field(b, "stream_options")) {
    if (!so->is_object()) throw ApiError(400, "'stream_options' must be an object");
    if (so->contains("include_usage") && (*so)["include_usage"].is_boolean()) g.include_usage = (*so)["include_usage"].get<bool>();
  }
  sampling(b, g);
  for (const char* k : {"max_tokens", "max_completion_tokens"})
    if (field(b, k)) g.max_tokens = static_cast<int>(integer(b, k, -1, 1 << 24));
  if (field(b, "n") && integer(b, "n", 1, 128) != 1) throw ApiError(400, "'n' greater than 1 is not supported");
  if (field(b, "logprobs") && boolean(b, "logprobs")) {
    g.top_logprobs = 0;
    if (field(b, "top_logprobs")) g.top_logprobs = static_cast<int>(integer(b, "top_logprobs", 0, 20));
  }
  g.reasoning_format = field(b, "reasoning_format") ? string(b, "reasoning_format") : "";
  if (const json* ctk = field(b, "chat_template_kwargs"))
    if (ctk->is_object() && ctk->contains("enable_thinking") && (*ctk)["enable_thinking"].is_boolean()) g.think = (*ctk)["enable_thinking"].get<bool>();
  return g;
}

GenerationSpec parse_openai_completion(const json& b) {
  GenerationSpec g;
  g.chat = false;
  constraint(b, g);
  if (field(b, "model")) g.model = string(b, "model");
  const json* p = field(b, "prompt");
  if (!p) throw ApiError(400, "'prompt' is required");
  if (p->is_array()) {
    if (p->size() != 1 || !(*p)[0].is_string()) throw ApiError(400, "'prompt' arrays must hold exactly one string");
    g.prompt = (*p)[0].get<std::string>();
  } else {
    g.prompt = string(b, "prompt");
  }
  if (field(b, "stream")) g.stream = boolean(b, "stream");
  sampling(b, g);
  if (field(b, "max_tokens")) g.max_tokens = static_cast<int>(integer(b, "max_tokens", -1, 1 << 24));
  if (field(b, "logprobs")) g.top_logprobs = static_cast<int>(integer(b, "logprobs", 0, 20));
  return g;
}

namespace {
void ollama_options(const json& b, GenerationSpec& g) {
  constraint(b, g);
  if (const json* o = field(b, "options")) {
    if (!o->is_object()) throw ApiError(400, "'options' must be an object");
    sampling(*o, g);
    if (field(*o, "num_predict")) g.max_tokens = static_cast<int>(integer(*o, "num_predict", -2, 1 << 24));
    if (g.max_tokens < -1) g.max_tokens = -1;
    if (field(*o, "num_ctx")) g.num_ctx = static_cast<int>(integer(*o, "num_ctx", 16, 1 << 22));
  }
  g.stream = field(b, "stream") ? boolean(b, "stream") : true;  // Ollama streams unless told not to
  if (const json* k = field(b, "keep_alive")) g.keep_alive_seconds = parse_duration(*k);
  if (const json* t = field(b, "think")) {
    if (t->is_boolean()) g.think = t->get<bool>();
    else if (t->is_string()) g.think = t->get<std::string>() != "false";
    else throw ApiError(400, "'think' must be true or false");
  }
}
}  // namespace

GenerationSpec parse_ollama_chat(const json& b) {
  GenerationSpec g;
  g.model = field(b, "model") ? string(b, "model") : "";
  if (g.model.empty()) throw ApiError(400, "'model' is required");
  messages(b, g);
  tools(b, g);
  ollama_options(b, g);
  return g;
}

GenerationSpec parse_ollama_generate(const json& b) {
  GenerationSpec g;
  g.chat = false;
  g.model = field(b, "model") ? string(b, "model") : "";
  if (g.model.empty()) throw ApiError(400, "'model' is required");
  g.prompt = field(b, "prompt") ? string(b, "prompt") : "";
  if (const json* images = field(b, "images"); images && !(images->is_array() && images->empty()))
    throw ApiError(400, no_images("the request carries 'images'", g.model));
  if (field(b, "system")) g.system = string(b, "system");
  if (field(b, "raw")) g.raw = boolean(b, "raw");
  ollama_options(b, g);
  return g;
}

GenerationSpec parse_llama_completion(const json& b) {
  GenerationSpec g;
  g.chat = false;
  g.raw = true;
  constraint(b, g);
  g.prompt = field(b, "prompt") && (*field(b, "prompt")).is_string() ? string(b, "prompt") : "";
  if (!field(b, "prompt") || !field(b, "prompt")->is_string()) throw ApiError(400, "'prompt' must be a string");
  if (field(b, "stream")) g.stream = boolean(b, "stream");
  sampling(b, g);
  if (field(b, "n_predict")) g.max_tokens = static_cast<int>(integer(b, "n_predict", -1, 1 << 24));
  if (field(b, "n_probs")) g.top_logprobs = static_cast<int>(integer(b, "n_probs", 0, 20));
  return g;
}

std::vector<std::string> parse_embedding_inputs(const json& b, const char* name) {
  const json* v = field(b, name);
  if (!v) throw ApiError(400, std::string("'") + name + "' is required");
  std::vector<std::string> out;
  if (v->is_string()) out.push_back(v->get<std::string>());
  else if (v->is_array()) {
    for (const auto& s : *v) {
      if (!s.is_string()) throw ApiError(400, std::string("'") + name + "' must be a string or an array of strings");
      out.push_back(s.get<std::string>());
    }
  } else {
    throw ApiError(400, std::string("'") + name + "' must be a string or an array of strings");
  }
  if (out.empty()) throw ApiError(400, std::string("'") + name + "' is empty");
  for (const auto& s : out)
    if (s.empty()) throw ApiError(400, std::string("'") + name + "' holds an empty string");
  return out;
}

}  // namespace jing::server
