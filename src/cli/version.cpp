#include <cstdio>

#include "cli/command.h"

namespace {
jing::cli::Registrar reg([](CLI::App& app) {
  app.add_subcommand("version", "Print Jing's version")->callback([] { std::printf("jing version 0.1.0\n"); });
});
}  // namespace
