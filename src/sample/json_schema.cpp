#include "sample/json_schema.h"

#include <map>
#include <set>
#include <vector>

#include "sample/gbnf.h"
#include "sample/regex_gbnf.h"

namespace jing::sample {

namespace {

using json = nlohmann::ordered_json;

// JSON's own grammar (RFC 8259; dates and times as RFC 3339, leap second included) with bounded whitespace: one space, or a newline and up to 20
// spaces/tabs of indentation, between tokens, so a model cannot pad forever.
constexpr const char* kPrimitives = R"(ws ::= ([ ] | "\n" [ \t]{0,20})?
json-plain ::= [^"\\\x00-\x1F\x7F]
json-char ::= json-plain | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
json-string ::= "\"" json-char* "\"" ws
json-int ::= "-"? ("0" | [1-9] [0-9]{0,15})
json-integer ::= json-int ws
json-number ::= json-int ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,4})? ws
json-boolean ::= ("true" | "false") ws
json-null ::= "null" ws
json-value ::= json-object | json-array | json-string | json-number | json-boolean | json-null
json-object ::= "{" ws (json-string ":" ws json-value ("," ws json-string ":" ws json-value)*)? "}" ws
json-array ::= "[" ws (json-value ("," ws json-value)*)? "]" ws
json-date ::= [0-9]{4} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [12] [0-9] | "3" [01])
json-time ::= ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" ([0-5] [0-9] | "60") ("." [0-9]{1,6})? ("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])
json-hex4 ::= [0-9a-fA-F]{4}
json-uuid ::= "\"" json-hex4 json-hex4 "-" json-hex4 "-" json-hex4 "-" json-hex4 "-" json-hex4 json-hex4 json-hex4 "\"" ws
)";

const std::set<std::string> kAnnotations = {"title", "description", "default", "examples", "$schema", "$id", "$comment",
                                            "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "strict"};

}  // namespace

// Rules of several schemas in one grammar (their names never collide), primitives once at the end.
class JsonSchemaRules::Converter {
 public:
  std::string add(const json& schema) {
    root_ = &schema;
    refs_.clear();  // a "$ref" is relative to the schema it is in
    return visit(schema, "#");
  }
  std::string text() const {
    std::string out;
    for (const auto& r : rules_) out += r + "\n";
    return out + kPrimitives;
  }

 private:
  const json* root_ = nullptr;
  std::vector<std::string> rules_;
  std::map<std::string, std::string> by_body_;  // identical bodies share one rule
  std::map<std::string, std::string> refs_;     // "$ref" target -> rule name
  size_t n_refs_ = 0;
  int depth_ = 0;

  [[noreturn]] static void fail(const std::string& where, const std::string& what) {
    throw SchemaError("json schema at " + where + ": " + what);
  }

  std::string rule(const std::string& body) {
    auto it = by_body_.find(body);
    if (it != by_body_.end()) return it->second;
    const std::string name = "s" + std::to_string(rules_.size());
    by_body_[body] = name;
    rules_.push_back(name + " ::= " + body);
    return name;
  }

  // The rule expression (a name or a primitive) for one schema.
  std::string visit(const json& s, const std::string& at) {
    // Nesting is bounded by the request's JSON depth limit, but "$ref" chains are not.
    if (++depth_ > 256) fail(at, "nested deeper than 256 schemas (through '$ref's)");
    struct Leave {
      int& d;
      ~Leave() { --d; }
    } leave{depth_};
    if (s.is_boolean()) {
      if (!s.get<bool>()) fail(at, "the schema 'false' accepts nothing");
      return "json-value";
    }
    if (!s.is_object()) fail(at, "a schema must be an object or a boolean");
    for (const auto& [k, v] : s.items()) {
      static const std::set<std::string> known = {"type", "properties", "required", "additionalProperties", "enum", "const",
                                                  "items", "prefixItems", "minItems", "maxItems", "minLength", "maxLength",
                                                  "anyOf", "oneOf", "$ref", "format", "nullable", "pattern"};
      if (!known.count(k) && !kAnnotations.count(k)) fail(at, "'" + k + "' is not supported for structured output");
    }
    if (s.contains("$ref")) return ref(s["$ref"], at);
    if (s.contains("const")) return rule(gbnf_literal(s["const"].dump()) + " ws");
    if (s.contains("enum")) {
      if (!s["enum"].is_array() || s["enum"].empty()) fail(at, "'enum' must be a non-empty array");
      std::string body;
      for (const auto& v : s["enum"]) body += (body.empty() ? "" : " | ") + gbnf_literal(v.dump());
      return rule("(" + body + ") ws");
    }
    for (const char* k : {"anyOf", "oneOf"})
      if (s.contains(k)) {
        if (!s[k].is_array() || s[k].empty()) fail(at, std::string("'") + k + "' must be a non-empty array");
        std::string body;
        for (size_t i = 0; i < s[k].size(); ++i) body += (i ? " | " : "") + visit(s[k][i], at + "/" + k + "/" + std::to_string(i));
        return rule(body);
      }
    if (!s.contains("type")) {
      if (s.contains("properties")) return object(s, at);
      if (s.contains("items") || s.contains("prefixItems")) return array(s, at);
      return "json-value";
    }
    std::vector<std::string> types;
    if (s["type"].is_string()) types.push_back(s["type"].get<std::string>());
    else if (s["type"].is_array())
      for (const auto& t : s["type"]) types.push_back(t.is_string() ? t.get<std::string>() : "?");
    if (s.contains("nullable")) {
      if (!s["nullable"].is_boolean()) fail(at, "'nullable' must be true or false");
      if (s["nullable"].get<bool>()) types.push_back("null");
    }
    if (types.empty()) fail(at, "'type' must be a string or an array of strings");
    std::string body;
    for (const auto& t : types) body += (body.empty() ? "" : " | ") + typed(s, t, at);
    return types.size() == 1 ? body : rule(body);
  }

  std::string typed(const json& s, const std::string& type, const std::string& at) {
    if (type == "object") return object(s, at);
    if (type == "array") return array(s, at);
    if (type == "string") return string(s, at);
    if (type == "integer") return "json-integer";
    if (type == "number") return "json-number";
    if (type == "boolean") return "json-boolean";
    if (type == "null") return "json-null";
    fail(at, "unknown type '" + type + "'");
  }

  static int bound(const json& s, const char* key, const std::string& at, int dflt) {
    if (!s.contains(key)) return dflt;
    if (!s[key].is_number_unsigned() || s[key].get<uint64_t>() > 1000) fail(at, std::string("'") + key + "' must be an integer from 0 to 1000");
    return s[key].get<int>();
  }
  static std::string repeat(int min, int max) {  // GBNF bounds; max < 0: unbounded
    if (max < 0) return min == 0 ? "*" : min == 1 ? "+" : "{" + std::to_string(min) + ",}";
    return "{" + std::to_string(min) + "," + std::to_string(max) + "}";
  }

  std::string string(const json& s, const std::string& at) {
    if (s.contains("format")) {
      const std::string f = s["format"].is_string() ? s["format"].get<std::string>() : "";
      if (f == "date") return rule("\"\\\"\" json-date \"\\\"\" ws");
      if (f == "time") return rule("\"\\\"\" json-time \"\\\"\" ws");
      if (f == "date-time") return rule("\"\\\"\" json-date \"T\" json-time \"\\\"\" ws");
      if (f == "uuid") return "json-uuid";
      fail(at, "string format '" + f + "' is not supported (date, time, date-time and uuid are)");
    }
    const int min = bound(s, "minLength", at, 0), max = bound(s, "maxLength", at, -1);
    if (max >= 0 && max < min) fail(at, "maxLength is below minLength");
    if (s.contains("pattern")) {
      if (!s["pattern"].is_string()) fail(at, "'pattern' must be a string");
      if (min > 0 || max >= 0) fail(at, "'pattern' together with minLength/maxLength is not supported");
      try {
        return rule("\"\\\"\" " + regex_to_gbnf(s["pattern"].get<std::string>(), "json-plain") + " \"\\\"\" ws");
      } catch (const std::invalid_argument& e) {
        fail(at, e.what());
      }
    }
    if (min == 0 && max < 0) return "json-string";
    return rule("\"\\\"\" json-char" + repeat(min, max) + " \"\\\"\" ws");
  }

  std::string array(const json& s, const std::string& at) {
    int min = bound(s, "minItems", at, 0), max = bound(s, "maxItems", at, -1);
    if (max >= 0 && max < min) fail(at, "maxItems is below minItems");
    std::string body = "\"[\" ws ";
    if (s.contains("prefixItems")) {
      if (!s["prefixItems"].is_array()) fail(at, "'prefixItems' must be an array");
      const auto& p = s["prefixItems"];
      if (s.contains("items") && !(s["items"].is_boolean() && !s["items"].get<bool>()))
        fail(at, "'items' beside 'prefixItems' is only supported as false");
      std::string seq;
      for (size_t i = 0; i < p.size(); ++i) seq += (i ? " \",\" ws " : "") + visit(p[i], at + "/prefixItems/" + std::to_string(i));
      return rule(body + (p.empty() ? "" : seq + " ") + "\"]\" ws");
    }
    const std::string item = s.contains("items") ? visit(s["items"], at + "/items") : "json-value";
    if (max == 0) return rule(body + "\"]\" ws");
    // item ("," item){min-1,max-1}, optional as a whole when min is 0.
    const std::string more = rule("\",\" ws " + item);
    const std::string list = item + " " + more + repeat(std::max(min, 1) - 1, max < 0 ? -1 : max - 1);
    return rule(body + (min == 0 ? "(" + list + ")?" : list) + " \"]\" ws");
  }

  std::string object(const json& s, const std::string& at) {
    const json& props = s.contains("properties") ? s["properties"] : json::object();
    if (!props.is_object()) fail(at, "'properties' must be an object");
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) fail(at, "'required' must be an array");
      for (const auto& r : s["required"]) {
        if (!r.is_string() || !props.contains(r.get<std::string>())) fail(at, "'required' names a property that is not in 'properties'");
        required.insert(r.get<std::string>());
      }
    }
    std::string extra;  // further keys: additionalProperties true or a schema
    if (s.contains("additionalProperties")) {
      const json& a = s["additionalProperties"];
      if (!(a.is_boolean() && !a.get<bool>())) extra = "json-string \":\" ws " + visit(a, at + "/additionalProperties");
    } else if (props.empty()) {
      extra = "json-string \":\" ws json-value";  // a bare {"type": "object"}: any object
    }
    // kv_i: one property; rest_i: properties i.. after at least one was written (each after a comma);
    // first_i: properties i.. before any was written. Optional properties may be skipped, in order.
    std::vector<std::string> kv;
    std::vector<bool> req;
    for (const auto& [name, sub] : props.items()) {
      kv.push_back(gbnf_literal(json(name).dump()) + " ws \":\" ws " + visit(sub, at + "/properties/" + name));
      req.push_back(required.count(name) > 0);
    }
    // Expressions, "" meaning nothing: rest_i = properties i.. after one was written (each after a
    // comma), first_i = properties i.. before any was. Optional ones may be left out, in order.
    auto cat = [](const std::string& a, const std::string& b) { return a.empty() ? b : b.empty() ? a : a + " " + b; };
    std::string rest = extra.empty() ? "" : rule("(\",\" ws " + extra + ")*");
    std::string first = extra.empty() ? "" : rule("(" + extra + " (\",\" ws " + extra + ")*)?");
    for (size_t i = kv.size(); i-- > 0;) {
      const std::string comma_kv = "\",\" ws " + kv[i];
      const std::string new_first = req[i] ? rule(cat(kv[i], rest)) : rule(cat(kv[i], rest) + " | " + (first.empty() ? "\"\"" : first));
      rest = rule(cat(req[i] ? comma_kv : "(" + comma_kv + ")?", rest));
      first = new_first;
    }
    return rule(cat("\"{\" ws", first) + " \"}\" ws");
  }

  std::string ref(const json& r, const std::string& at) {
    if (!r.is_string()) fail(at, "'$ref' must be a string");
    const std::string target = r.get<std::string>();
    if (auto it = refs_.find(target); it != refs_.end()) return it->second;
    // Local references only: "#" or "#/a/b" as a JSON pointer into this schema.
    if (target.empty() || target[0] != '#') fail(at, "only local '$ref's (\"#/$defs/...\") are supported, not '" + target + "'");
    const json* node = root_;
    try {
      node = &root_->at(json::json_pointer(target.substr(1)));
    } catch (const std::exception&) {
      fail(at, "'$ref' " + target + " points at nothing");
    }
    // Named before it is visited, so a recursive reference finds the name.
    const std::string name = "ref" + std::to_string(n_refs_++);
    refs_[target] = name;
    const std::string body = visit(*node, target);
    rules_.push_back(name + " ::= " + body);
    return name;
  }
};

JsonSchemaRules::JsonSchemaRules() : c_(std::make_unique<Converter>()) {}
JsonSchemaRules::~JsonSchemaRules() = default;
std::string JsonSchemaRules::add(const nlohmann::ordered_json& schema) { return c_->add(schema); }
std::string JsonSchemaRules::text() const { return c_->text(); }

std::string json_schema_to_gbnf(const nlohmann::ordered_json& schema) {
  JsonSchemaRules rules;
  const std::string top = rules.add(schema);
  return "root ::= " + top + "\n" + rules.text();
}

std::string json_object_gbnf() { return std::string("root ::= json-object\n") + kPrimitives; }

}  // namespace jing::sample
