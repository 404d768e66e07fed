// The booking site's data: a fixed programme of performances, each with a
// number of seats, and the reservations made so far (only counted; the demo
// keeps no list of names).
//
// Thread-safe: every I/O thread books through the same object. One mutex
// guards the seat counts; the critical sections are a few instructions long.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace floodgate::demo {

struct performance {
    std::string id;      // "sch-1003"
    std::string time;    // "Sat 4 Oct 19:30"
    std::string title;   // "Seoul Philharmonic: Mahler 5"
    unsigned seats = 0;
    unsigned remaining = 0;
};

enum class reserve_outcome { reserved, sold_out, no_such_slot };

struct reservation {
    reserve_outcome outcome = reserve_outcome::no_such_slot;
    std::string id;           // "SCH-000042" when reserved
    performance slot;         // the performance after the booking
};

class booking_state {
public:
    explicit booking_state(unsigned seats_per_performance);

    // A copy of the programme with current seat counts.
    std::vector<performance> performances() const;

    // Takes one seat of `slot_id` for `name` (already validated by the caller).
    reservation reserve(std::string_view slot_id, std::string_view name);

private:
    mutable std::mutex mutex_;
    std::vector<performance> programme_ ABSL_GUARDED_BY(mutex_);
    std::uint64_t next_reservation_ ABSL_GUARDED_BY(mutex_) = 1;
};

}  // namespace floodgate::demo
