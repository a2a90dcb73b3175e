#pragma once
// `radixlm bench serving` lives under the `bench` command (bench_command.cpp), which calls this to add it.

#include <functional>

#include <CLI/CLI.hpp>

namespace radixlm::apps {

struct BenchSubcommand {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

BenchSubcommand add_bench_serving(CLI::App& bench);

}  // namespace radixlm::apps
