// GGUF metadata values: every scalar type, strings, and (nested) arrays.
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace jing::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* value_type_name(ValueType t);

struct Value;
struct Array {
  ValueType elem_type = ValueType::UINT8;
  std::vector<Value> items;
};

// A value keeps the exact GGUF type it was read with (or will be written as), so files round-trip.
struct Value {
  ValueType type = ValueType::UINT8;
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> data;

  static Value u8(uint8_t v) { return {ValueType::UINT8, uint64_t{v}}; }
  static Value u16(uint16_t v) { return {ValueType::UINT16, uint64_t{v}}; }
  static Value u32(uint32_t v) { return {ValueType::UINT32, uint64_t{v}}; }
  static Value u64(uint64_t v) { return {ValueType::UINT64, v}; }
  static Value i8(int8_t v) { return {ValueType::INT8, int64_t{v}}; }
  static Value i16(int16_t v) { return {ValueType::INT16, int64_t{v}}; }
  static Value i32(int32_t v) { return {ValueType::INT32, int64_t{v}}; }
  static Value i64(int64_t v) { return {ValueType::INT64, v}; }
  static Value f32(float v) { return {ValueType::FLOAT32, double{v}}; }
  static Value f64(double v) { return {ValueType::FLOAT64, v}; }
  static Value boolean(bool v) { return {ValueType::BOOL, v}; }
  static Value str(std::string v) { return {ValueType::STRING, std::move(v)}; }
  static Value array(ValueType elem, std::vector<Value> items) {
    return {ValueType::ARRAY, Array{elem, std::move(items)}};
  }
  static Value string_array(const std::vector<std::string>& items);

  bool is_integer() const;
  bool is_number() const { return is_integer() || type == ValueType::FLOAT32 || type == ValueType::FLOAT64; }
  // Conversions throw jing::Error naming the expected and actual type.
  int64_t as_int() const;
  uint64_t as_uint() const;
  double as_float() const;  // any number
  bool as_bool() const;
  const std::string& as_string() const;
  const Array& as_array() const;

  friend bool operator==(const Value& a, const Value& b);
};

inline bool operator==(const Array& a, const Array& b) { return a.elem_type == b.elem_type && a.items == b.items; }
inline bool operator==(const Value& a, const Value& b) { return a.type == b.type && a.data == b.data; }

}  // namespace jing::gguf
