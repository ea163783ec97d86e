#include "chat/template.h"

#include <ctime>
#include <optional>

#include "chat/jinja/eval.h"
#include "common/error.h"
#include "common/json_depth.h"

namespace jing::chat {

struct ChatTemplate::Impl {
  jinja::Template tmpl;
  std::string bos, eos;
};

ChatTemplate::ChatTemplate(const std::string& source, std::string bos, std::string eos) : impl_(std::make_unique<Impl>()) {
  impl_->tmpl = jinja::parse(source);
  impl_->bos = std::move(bos);
  impl_->eos = std::move(eos);
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

namespace {

// The messages with each tool call's string arguments that hold a JSON object parsed into that
// object; nullopt when there are none.
std::optional<nlohmann::ordered_json> with_object_arguments(const nlohmann::ordered_json& messages) {
  if (!messages.is_array()) return std::nullopt;
  std::optional<nlohmann::ordered_json> out;
  for (size_t m = 0; m < messages.size(); ++m) {
    const auto& calls = messages[m].is_object() ? messages[m].value("tool_calls", nlohmann::ordered_json()) : nlohmann::ordered_json();
    if (!calls.is_array()) continue;
    for (size_t c = 0; c < calls.size(); ++c) {
      if (!calls[c].is_object() || !calls[c].contains("function") || !calls[c]["function"].is_object()) continue;
      const auto& args = calls[c]["function"].value("arguments", nlohmann::ordered_json());
      if (!args.is_string() || !json_depth_within(args.get_ref<const std::string&>())) continue;  // deep text stays a string
      auto parsed = nlohmann::ordered_json::parse(args.get<std::string>(), nullptr, false);
      if (parsed.is_discarded() || !parsed.is_object()) continue;
      if (!out) out = messages;
      (*out)[m]["tool_calls"][c]["function"]["arguments"] = std::move(parsed);
    }
  }
  return out;
}

}  // namespace

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                 const nlohmann::ordered_json& extra) const {
  auto parsed = with_object_arguments(messages);
  if (!parsed) return render_as_given(messages, tools, add_generation_prompt, extra);
  try {
    return render_as_given(*parsed, tools, add_generation_prompt, extra);
  } catch (const Error&) {
    return render_as_given(messages, tools, add_generation_prompt, extra);  // a template written for strings
  }
}

std::string ChatTemplate::render_as_given(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                          bool add_generation_prompt, const nlohmann::ordered_json& extra) const {
  using jinja::Value;
  jinja::Globals g;
  g["messages"] = Value::from_json(messages);
  // transformers always passes tools and documents, None when absent.
  g["tools"] = Value::from_json(tools);
  g["documents"] = Value::none();
  g["add_generation_prompt"] = Value(add_generation_prompt);
  g["bos_token"] = Value(impl_->bos);
  g["eos_token"] = Value(impl_->eos);
  // The globals transformers provides.
  g["raise_exception"] = Value(jinja::Function([](jinja::CallArgs& a) -> Value {
    throw Error("chat template raised an exception: " + (a.args.empty() ? std::string() : jinja::to_string(a.args[0])));
  }));
  g["strftime_now"] = Value(jinja::Function([](jinja::CallArgs& a) {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[256];
    std::string fmt = a.args.empty() ? "%Y-%m-%d" : jinja::to_string(a.args[0]);
    size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
    return Value(std::string(buf, n));
  }));
  g["namespace"] = Value(jinja::Function([](jinja::CallArgs& a) {
    Value ns(jinja::Dict{});
    ns.is_namespace = true;
    if (!a.args.empty() && a.args[0].kind == Value::Kind::Dict)
      for (const auto& [k, v] : *a.args[0].dict) ns.set(k, v);
    for (const auto& [k, v] : a.kwargs) ns.set(k, v);
    return ns;
  }));
  g["range"] = Value(jinja::Function([](jinja::CallArgs& a) {
    int64_t start = 0, stop = 0, step = 1;
    if (a.args.size() == 1) stop = static_cast<int64_t>(a.args[0].number());
    if (a.args.size() >= 2) start = static_cast<int64_t>(a.args[0].number()), stop = static_cast<int64_t>(a.args[1].number());
    if (a.args.size() >= 3) step = static_cast<int64_t>(a.args[2].number());
    if (step == 0) jinja::runtime_error(a.pos, "range() step must not be zero");
    jinja::List out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (out.size() > 1000000) jinja::runtime_error(a.pos, "range() is too long");
      out.push_back(Value(i));
    }
    return Value(std::move(out));
  }));
  g["dict"] = Value(jinja::Function([](jinja::CallArgs& a) {
    Value d(jinja::Dict{});
    for (const auto& [k, v] : a.kwargs) d.set(k, v);
    return d;
  }));
  for (auto it = extra.begin(); it != extra.end(); ++it) g[it.key()] = Value::from_json(it.value());
  return jinja::render(impl_->tmpl, g);
}

}  // namespace jing::chat
