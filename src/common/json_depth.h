// Nesting depth of JSON text, found by scanning the bytes (strings skipped) before any parser
// builds a value: nlohmann's values copy and compare recursively, so a body nested tens of
// thousands deep would overflow the stack in the first copy. Callers refuse text deeper than a limit.
#pragma once
#include <string_view>

namespace jing {

inline constexpr int kMaxJsonDepth = 128;

// True when no array/object in `text` nests deeper than max_depth levels.
inline bool json_depth_within(std::string_view text, int max_depth = kMaxJsonDepth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

}  // namespace jing
