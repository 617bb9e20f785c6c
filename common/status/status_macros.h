// RETURN_IF_ERROR / ASSIGN_OR_RETURN: Debian's Abseil (20220623) has neither, so we define them
// once here. Both evaluate their expression exactly once.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CONTACTS_STATUS_CONCAT_INNER(a, b) a##b
#define CONTACTS_STATUS_CONCAT(a, b) CONTACTS_STATUS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::absl::Status _status_or_error = (expr);  \
    if (!_status_or_error.ok()) {              \
      return _status_or_error;                 \
    }                                          \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  CONTACTS_ASSIGN_OR_RETURN_IMPL(CONTACTS_STATUS_CONCAT(_status_or_value_, __LINE__), lhs, expr)

#define CONTACTS_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                                   \
  if (!statusor.ok()) {                                     \
    return std::move(statusor).status();                    \
  }                                                         \
  lhs = *std::move(statusor)
