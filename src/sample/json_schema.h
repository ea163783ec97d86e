// JSON Schema -> GBNF, for structured outputs (OpenAI response_format json_schema, Ollama format).
//
// Supported: type (one or a list), properties + required (in the schema's order; optional ones may
// be left out), additionalProperties (false/absent: none; true or a schema: any further keys), enum,
// const, items, prefixItems, minItems/maxItems, minLength/maxLength, anyOf/oneOf, $ref into $defs or
// definitions (recursion allowed), string formats date, time, date-time and uuid, pattern (the
// regex subset of regex_gbnf.h), and the generic value for {} / true. Annotations (title, description, default, examples, ...) are ignored. Any
// other keyword (minimum, allOf, ...) is refused with a SchemaError naming it and where it
// is, so a client never gets output that silently ignores part of its schema.
#pragma once
#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace jing::sample {

struct SchemaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Several schemas in one grammar (tool calls: one per function). add() returns the rule expression
// for a schema; text() is every rule (add's expressions refer to them) plus JSON's primitives.
class JsonSchemaRules {
 public:
  JsonSchemaRules();
  ~JsonSchemaRules();
  std::string add(const nlohmann::ordered_json& schema);
  std::string text() const;

 private:
  class Converter;
  std::unique_ptr<Converter> c_;
};

// The grammar (root rule `root`) of JSON texts the schema accepts.
std::string json_schema_to_gbnf(const nlohmann::ordered_json& schema);
// Any JSON object (response_format json_object, Ollama format "json").
std::string json_object_gbnf();

}  // namespace jing::sample
