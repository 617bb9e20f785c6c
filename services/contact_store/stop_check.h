// How a long read (a filter's evaluation, a record scan, an export) learns that its caller has
// gone: cancelled, or past its deadline. It then stops with CANCELLED.
#pragma once

#include <functional>

namespace contacts::store {

// Returns true once the caller has gone. An empty StopCheck never stops.
using StopCheck = std::function<bool()>;

}  // namespace contacts::store
