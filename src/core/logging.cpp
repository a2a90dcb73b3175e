#include "core/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace radixlm {

Status init_logging(std::string_view level) {
  spdlog::level::level_enum parsed;
  if (level == "debug") parsed = spdlog::level::debug;
  else if (level == "info") parsed = spdlog::level::info;
  else if (level == "warning" || level == "warn") parsed = spdlog::level::warn;
  else if (level == "error") parsed = spdlog::level::err;
  else if (level == "critical") parsed = spdlog::level::critical;
  else return make_error(StatusCode::kInvalidArgument, "unknown log level '{}'", level);
  // Logs go to stderr so that stdout stays clean for JSON output of the subcommands.
  auto logger = spdlog::get("radixlm");
  if (!logger) logger = spdlog::stderr_color_mt("radixlm");
  logger->set_pattern("[%Y-%m-%d %H:%M:%S] %^%l%$ %v");
  logger->set_level(parsed);
  spdlog::set_default_logger(logger);
  return Status::ok_status();
}

}  // namespace radixlm
