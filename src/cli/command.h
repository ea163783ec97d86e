// Subcommands register themselves: each src/cli/<name>.cpp holds one `Registrar` that adds its
// CLI11 subcommand, so main.cpp never changes when a command is added.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace jing::cli {

using Setup = std::function<void(CLI::App& app)>;

struct Registrar {
  explicit Registrar(Setup setup);
};

// Exit with this status from inside a callback (after printing whatever the command wants).
struct ExitCode {
  int code;
};

}  // namespace jing::cli
