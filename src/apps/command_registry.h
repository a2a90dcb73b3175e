#pragma once
// Each subcommand lives in its own `<name>_command.cpp` and registers itself here, so adding a subcommand
// touches one new file and no shared list. The command files are compiled straight into the radixlm
// executable (not a static library), which is what keeps their static registrars from being dropped.

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace radixlm::apps {

struct Command {
  std::string name;
  // Adds the subcommand's flags to `sub`; returns the function that runs it (its exit code).
  std::function<std::function<int()>(CLI::App& sub)> setup;
  std::string description;
};

std::vector<Command>& command_registry();

struct CommandRegistrar {
  explicit CommandRegistrar(Command command) { command_registry().push_back(std::move(command)); }
};

}  // namespace radixlm::apps
