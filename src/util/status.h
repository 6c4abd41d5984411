// Error helpers shared by every layer: absl::Status is how errors travel (CONVENTIONS.md).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define COFFER_CONCAT_INNER(a, b) a##b
#define COFFER_CONCAT(a, b) COFFER_CONCAT_INNER(a, b)

// Returns early with the status if `expr` is not OK.
#define RETURN_IF_ERROR(expr)    \
  do {                           \
    ::absl::Status _st = (expr); \
    if (!_st.ok()) return _st;   \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(*tmp)

// ASSIGN_OR_RETURN(auto x, FunctionReturningStatusOr());
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(COFFER_CONCAT(_statusor_, __LINE__), lhs, expr)

#include <string_view>
#include <type_traits>

namespace coffer {

// String concatenation that accepts std::string_view (Debian's abseil is built with its own
// absl::string_view, which absl::StrCat requires).
namespace internal {
template <typename T>
void CatOne(std::string& out, const T& v) {
  if constexpr (std::is_same_v<T, char>) {
    out.push_back(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    out.append(v ? "true" : "false");
  } else if constexpr (std::is_arithmetic_v<T>) {
    out.append(std::to_string(v));
  } else {
    out.append(std::string_view(v));
  }
}
}  // namespace internal

template <typename... Args>
std::string Cat(const Args&... args) {
  std::string out;
  (internal::CatOne(out, args), ...);
  return out;
}

// An operation the path does not support (HTTP 405), e.g. PATCH on kv version 1.
inline absl::Status UnsupportedOperation(std::string_view detail = "") {
  return absl::UnimplementedError(detail.empty() ? std::string("unsupported operation")
                                                 : "unsupported operation: " + std::string(detail));
}

// Status message as a std::string.
inline std::string Msg(const absl::Status& s) { return std::string(s.message()); }

}  // namespace coffer
