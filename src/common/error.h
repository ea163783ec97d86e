// One exception type for every user-facing failure: the message is what the user reads.
#pragma once
#include <stdexcept>
#include <string>

namespace jing {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace jing
