#include "booking_state.hpp"

#include <cstdio>

namespace floodgate::demo {

booking_state::booking_state(unsigned seats) {
    const struct {
        const char* id;
        const char* time;
        const char* title;
    } programme[] = {
        {"sch-1001", "Fri 3 Oct 19:30", "Seoul Philharmonic: Mahler Symphony No. 5"},
        {"sch-1002", "Sat 4 Oct 15:00", "Family matinee: The Nutcracker Suite"},
        {"sch-1003", "Sat 4 Oct 19:30", "Gayageum & Strings: New Sanjo"},
        {"sch-1004", "Sun 5 Oct 17:00", "Chamber evening: Beethoven Quartets"},
        {"sch-1005", "Fri 10 Oct 20:00", "Han River Jazz Orchestra"},
        {"sch-1006", "Sat 11 Oct 19:30", "Season finale: Beethoven Symphony No. 9"},
    };
    std::lock_guard lock(mutex_);
    for (const auto& p : programme) programme_.push_back({p.id, p.time, p.title, seats, seats});
}

std::vector<performance> booking_state::performances() const {
    std::lock_guard lock(mutex_);
    return programme_;
}

reservation booking_state::reserve(std::string_view slot_id, std::string_view /*name*/) {
    std::lock_guard lock(mutex_);
    reservation r;
    for (auto& p : programme_) {
        if (p.id != slot_id) continue;
        r.slot = p;
        if (p.remaining == 0) {
            r.outcome = reserve_outcome::sold_out;
            return r;
        }
        --p.remaining;
        r.slot.remaining = p.remaining;
        char id[32];
        std::snprintf(id, sizeof id, "SCH-%06llu",
                      static_cast<unsigned long long>(next_reservation_++));
        r.id = id;
        r.outcome = reserve_outcome::reserved;
        return r;
    }
    r.outcome = reserve_outcome::no_such_slot;
    return r;
}

}  // namespace floodgate::demo
