// Time in the tokenstore is a plain integer that the caller passes in: milliseconds since the
// Unix epoch. Nothing in the library reads a clock by itself, so tests drive a manual clock and
// the gateway passes one reading per request.
//
//   floodgate::tokenstore::millis now = floodgate::tokenstore::wall_clock_ms();
//   auto r = room.poll(seq, now);
//
// Do not mix in a steady clock: tokens carry Unix seconds and must agree across nodes.
#pragma once

#include <chrono>
#include <cstdint>

namespace floodgate::tokenstore {

using millis = std::int64_t;  // milliseconds since the Unix epoch

inline millis wall_clock_ms() noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace floodgate::tokenstore
