#include <cstdio>
#include <vector>

#include "cli/command.h"
#include "common/error.h"

namespace jing::cli {

static std::vector<Setup>& registry() {
  static std::vector<Setup> setups;
  return setups;
}

Registrar::Registrar(Setup setup) { registry().push_back(std::move(setup)); }

}  // namespace jing::cli

int main(int argc, char** argv) {
  CLI::App app{"jing: run DeepSeek-R1 and its distills locally"};
  app.name("jing");
  app.require_subcommand(1);
  for (const auto& setup : jing::cli::registry()) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const jing::cli::ExitCode& e) {
    return e.code;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
