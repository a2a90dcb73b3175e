#pragma once
// Logging goes through spdlog; this sets the level and format once for the whole process.

#include <string_view>

#include <spdlog/spdlog.h>

#include "core/status.h"

namespace radixlm {

// Levels as SGLang's --log-level spells them: debug, info, warning, error, critical.
Status init_logging(std::string_view level);

}  // namespace radixlm
