// How floodgatectl shows the admin API's JSON to a person: the rooms table,
// one room in full, a change as "before -> after", an audit entry and a
// `watch` line. Pure functions from JSON (as deploy/openapi.yaml describes it)
// to text; nothing here does I/O.
//
// The one thing not to get wrong: these read answers from a server that may
// be older or newer than this tool, so a missing or oddly typed field shows
// as "-" and never throws.
//
//   std::cout << rooms_table(json::parse(body).as_object());
//   // ROOM  MODE       LIGHT   WAITING  ACTIVE  ARRIVALS/S  ADMITTED/S  RATE  MAX_ACTIVE  ETA
//   // sale  queue_all  yellow     1234      40        12.5          48    50         200  25s
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>

namespace floodgate::ctl {

namespace json = boost::json;

// 50, 12.5, 0.33 (at most two decimals, no trailing zeros).
std::string format_number(double v);
// 45s, 3m20s, 2h05m.
std::string format_duration(double seconds);
// A field as text: numbers via format_number, strings quoted when `quote`, "-" when absent.
std::string format_value(const json::value* v, bool quote = false);

// GET /admin/v1/rooms as a table, one room a line, with a header.
std::string rooms_table(const json::object& room_list);
// GET /admin/v1/rooms/{room} in full, in sections.
std::string room_details(const json::object& room);
// What a change did to a room's mode and settings: "mode queue_all -> paused",
// "rate 2 -> 50, burst 1 -> 10"; empty when nothing differs.
std::string describe_change(const json::object& before, const json::object& after);
// One audit entry: "2024-05-01T09:58:00.120Z  alice  room.patch  sale  rate 2 -> 50".
std::string audit_line(const json::object& entry);
// One `watch` line for the room from a stats event (a RoomList):
// "10:00:01  waiting 1234  active 40  arrivals 12.5/s  admitted 48/s of 50/s  p99 80ms  green".
std::string watch_line(std::int64_t unix_ms, const json::object& room);
// A field of a nested object, or nullptr: field(room, "stats", "waiting").
const json::value* field(const json::object& o, std::string_view a, std::string_view b = {});

}  // namespace floodgate::ctl
