#pragma once
// `radixlm serve` takes SGLang's launch_server flags (python/sglang/srt/server_args.py) with SGLang's names,
// defaults and argparse's rules: `--flag value` and `--flag=value`, store-true flags, lists (nargs "+"/"*"),
// the last occurrence winning, and unique-prefix abbreviations (so `--tp 2` means `--tp-size 2` and
// `--speculative-algo` means `--speculative-algorithm`, as they do in SGLang).
//
// Every flag SGLang has is in launch_flag_table.cpp with a class: implemented; a tuning knob radixlm does not
// have (one warning line, ignored: it cannot change what a client gets); or a feature that would change
// results and radixlm lacks (a startup error naming the flag). A flag SGLang does not have is a usage error.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace radixlm::server {

enum class FlagArity {
  kNone,        // store_true (and deprecated store_const) flags
  kOne,         // exactly one value
  kOptional,    // nargs "?": a value when the next argument is not a flag
  kOneOrMore,   // nargs "+"
  kZeroOrMore,  // nargs "*"
};

enum class FlagClass {
  kImplemented,     // radixlm does what SGLang does with it
  kTuning,          // performance, kernel or deployment knob: warned about and ignored
  kChangesResults,  // radixlm lacks the feature and ignoring it would change results: startup error
  kRemoved,         // SGLang itself rejects it (a removed flag): usage error with SGLang's message
};

struct LaunchFlag {
  std::string_view name;      // "--tp-size"
  FlagArity arity;
  FlagClass cls;
  std::string_view alias_of;  // the canonical flag when this is an alias; empty otherwise
  // kChangesResults only: values (separated by '|') that mean what radixlm does anyway, so giving them is
  // fine (e.g. --disaggregation-mode null, --nnodes 1). Empty: any use is an error.
  std::string_view accepted_values;
  std::string_view note;      // why it is classed so, shown in the warning or the error
};

std::span<const LaunchFlag> launch_flag_table();

// The table's row for `name`, exact match only (aliases resolve to their own row); null when absent.
const LaunchFlag* find_launch_flag(std::string_view name);

// What `radixlm serve` runs with. Defaults are SGLang's; optional ones are "unset" as in SGLang (None), and
// `radixlm serve` derives them from the model and the device.
struct LaunchArgs {
  // Model and tokenizer.
  std::string model_path;  // empty: the bundled demo model
  std::string tokenizer_path;
  bool skip_tokenizer_init = false;
  std::string load_format = "auto";
  bool trust_remote_code = false;
  std::optional<int64_t> context_length;
  std::string json_model_override_args = "{}";
  // Memory and scheduling.
  std::optional<double> mem_fraction_static;
  std::optional<int32_t> max_running_requests;
  std::optional<int64_t> max_queued_requests;
  std::optional<int64_t> max_total_tokens;
  std::optional<int64_t> chunked_prefill_size;
  int64_t max_prefill_tokens = 16384;
  std::string schedule_policy = "fcfs";
  double schedule_conservativeness = 1.0;
  std::optional<int32_t> page_size;
  bool disable_radix_cache = false;
  bool disable_overlap_schedule = false;
  bool enable_mixed_chunk = false;
  // Parallelism and device.
  int32_t tp_size = 1;
  int32_t dp_size = 1;
  std::string device;  // empty: auto (CUDA when a GPU is usable)
  int32_t base_gpu_id = 0;
  std::optional<uint64_t> random_seed;
  // Decode CUDA graphs (--cuda-graph-max-bs-decode and its old name --cuda-graph-max-bs, and so on).
  std::optional<int32_t> cuda_graph_max_bs;
  std::vector<int32_t> cuda_graph_bs;
  bool disable_cuda_graph = false;
  // HTTP and API.
  std::string host = "127.0.0.1";
  int32_t port = 30000;
  std::string api_key;
  std::string admin_api_key;
  std::string served_model_name;
  std::string chat_template;
  std::string hf_chat_template_name;
  std::string weight_version = "default";
  bool skip_server_warmup = false;
  // Logging and metrics.
  std::string log_level = "info";
  bool log_requests = false;
  bool enable_metrics = false;
  int32_t decode_log_interval = 40;
  // radixlm's own (not SGLang flags; see the table's last section).
  int32_t cpu_threads = 0;                  // 0: every core
  double graceful_shutdown_timeout = 30.0;  // seconds in-flight requests get after SIGTERM

  // One line per tuning knob or deprecated alias given, in the order given.
  std::vector<std::string> warnings;
  // Canonical names of the flags given, in the order given, each once.
  std::vector<std::string> given;

  bool was_given(std::string_view canonical_flag) const;
  // The effective arguments with SGLang's field names (snake_case), secrets left out: /server_info's body.
  nlohmann::json to_json() const;
};

// Parses the arguments after `serve`. kInvalidArgument is a usage error (unknown or ambiguous flag, missing
// or malformed value: exit code 2, as argparse); kUnsupported names a flag that would change results
// (exit code 1). Both messages name the flag.
Expected<LaunchArgs> parse_launch_args(const std::vector<std::string>& args);

// The help text: the implemented flags, then how the others are treated.
std::string launch_args_help();

}  // namespace radixlm::server
