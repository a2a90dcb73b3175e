// radixlm: one binary, one subcommand per job (DESIGN §1). Subcommands register themselves; see
// command_registry.h.

#include <algorithm>
#include <cstdio>
#include <exception>

#include "apps/command_registry.h"
#include "core/logging.h"

namespace radixlm::apps {

std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}

}  // namespace radixlm::apps

int main(int argc, char** argv) {
  using namespace radixlm::apps;
  CLI::App app{"radixlm: an LLM serving engine"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warning, error, critical")->capture_default_str();

  auto& commands = command_registry();
  std::sort(commands.begin(), commands.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  std::function<int()> run;
  for (auto& command : commands) {
    CLI::App* sub = app.add_subcommand(command.name, command.description);
    auto runner = command.setup(*sub);
    sub->callback([&run, runner] { run = runner; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (auto status = radixlm::init_logging(log_level); !status.ok()) {
    std::fprintf(stderr, "radixlm: %s\n", status.to_string().c_str());
    return 2;
  }
  try {
    return run ? run() : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "radixlm: error: %s\n", e.what());
    return 1;
  }
}
