#pragma once
// Errors as values at boundaries that can fail (files, network, user input). Broken internal invariants
// use RADIXLM_CHECK instead, which aborts with a message.

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace radixlm {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // the caller's input is wrong (bad flag, malformed request, bad config value)
  kNotFound,          // a file, tensor or key that must exist does not
  kIoError,           // the OS refused (open, read, mmap)
  kCorruptData,       // a file's content is inconsistent (truncated, overlapping, bad header)
  kUnsupported,       // well-formed but not something radixlm implements
  kOutOfRange,        // a number outside the range it may take
  kResourceExhausted, // out of memory, pages, queue slots
  kInternal,          // a bug: should not happen
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return {}; }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "CorruptData: model.safetensors: tensor 'x': ..." — what a user sees.
  std::string to_string() const;

  // Adds context in front of the message: status.with_context("model.safetensors").
  Status with_context(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename... Args>
Status make_error(StatusCode code, fmt::format_string<Args...> format, Args&&... args) {
  return Status(code, fmt::format(format, std::forward<Args>(args)...));
}

// A value or the Status that explains why there is none (std::expected arrives only in C++23).
template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose, like std::expected
  Expected(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) status_ = Status(StatusCode::kInternal, "Expected built from an ok Status");
  }

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Status& status() const { return status_; }

  T& value() & { check(); return *value_; }
  const T& value() const& { check(); return *value_; }
  T&& value() && { check(); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void check() const {
    if (!value_) {
      std::fprintf(stderr, "radixlm: value() on an error: %s\n", status_.to_string().c_str());
      std::abort();
    }
  }
  std::optional<T> value_;
  Status status_;
};

}  // namespace radixlm

// Return the error of a Status-returning expression from the enclosing function.
#define RADIXLM_RETURN_IF_ERROR(expr)                 \
  do {                                                \
    ::radixlm::Status radixlm_status_ = (expr);       \
    if (!radixlm_status_.ok()) return radixlm_status_; \
  } while (0)

#define RADIXLM_CONCAT_INNER(a, b) a##b
#define RADIXLM_CONCAT(a, b) RADIXLM_CONCAT_INNER(a, b)
// RADIXLM_ASSIGN_OR_RETURN(auto x, expected_expr): unwraps or returns the error.
#define RADIXLM_ASSIGN_OR_RETURN(lhs, expr) \
  RADIXLM_ASSIGN_OR_RETURN_IMPL(RADIXLM_CONCAT(radixlm_expected_, __LINE__), lhs, expr)
#define RADIXLM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

// An invariant of radixlm's own code; failing it is a bug, so it aborts with where and why.
#define RADIXLM_CHECK(cond, ...)                                                              \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "radixlm: check failed at %s:%d: %s %s\n", __FILE__, __LINE__, #cond, \
                   ::fmt::format("" __VA_ARGS__).c_str());                                    \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)
