// What operators changed at run time, kept so it survives a restart, and the
// audit log of who changed it.
//
// The config file gives every room's start values. Runtime changes (admin API
// PATCH and the pause/resume/queue-all/close actions) are kept per room as
// overrides, field by field, and win over the file: a reload re-reads the file
// but keeps the overrides; setting a field to null in a PATCH drops the
// override and the file's value applies again. Rooms created at run time are
// kept as their definitions (the keys of a room in the config file).
//
// Both live in <state_dir>/admin/: runtime.json (rewritten atomically on every
// change) and audit.log (JSON lines, appended). Without a state_dir they live
// in memory only.
//
// Everything here runs on the admin (main) thread; nothing is thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/config.hpp"

namespace floodgate {

// A room's runtime overrides: set fields win over the config file.
struct room_overrides {
    std::optional<double> rate;
    std::optional<std::uint32_t> burst;
    std::optional<std::uint64_t> max_active;
    std::optional<duration> idle_timeout;
    std::optional<duration> session_ttl;
    std::optional<room_mode> mode;
    std::optional<std::string> banner;

    bool empty() const {
        return !rate && !burst && !max_active && !idle_timeout && !session_ttl && !mode && !banner;
    }
    // Names of the set fields, as the API spells them.
    std::vector<std::string> names() const;
    void apply_to(room_config& room) const;
};

// A room's overrides as one JSON object (what runtime.json keeps per room, and what nodes sharing
// a store exchange through Redis), and back.
std::string overrides_to_json(const room_overrides& o);
absl::StatusOr<room_overrides> overrides_from_json_text(std::string_view text, const std::string& where);

class runtime_state {
public:
    // dir empty: memory only. Otherwise reads dir/runtime.json if present.
    static absl::StatusOr<runtime_state> open(std::string dir);

    // The file's config with the runtime rooms added (after the file's rooms)
    // and every override applied. A runtime room whose name the file now uses
    // is skipped (the file wins), and named in warnings.
    absl::StatusOr<config> effective(const config& file, std::vector<std::string>* warnings = nullptr) const;

    const room_overrides* overrides(const std::string& room) const;
    absl::Status set_overrides(const std::string& room, const room_overrides& o);

    bool is_runtime_room(const std::string& room) const { return rooms_.count(room) != 0; }
    const std::map<std::string, std::string>& runtime_rooms() const { return rooms_; }  // name -> definition
    // definition: the JSON body that created it (parse_room_definition()).
    absl::Status add_room(const std::string& room, std::string definition);
    absl::Status remove_room(const std::string& room);  // and its overrides

    const std::string& dir() const { return dir_; }

private:
    absl::Status save() const;

    std::string dir_;
    std::map<std::string, room_overrides> overrides_;
    std::map<std::string, std::string> rooms_;  // runtime room -> definition
};

// Who changed what: one JSON object a line, newest last.
class audit_log {
public:
    static constexpr std::size_t kept = 1000;  // entries kept in memory (and read back at start)

    // path empty: memory only.
    absl::Status open(std::string path);
    // line: one JSON object without the newline. Errors writing the file are
    // returned, the entry is kept in memory either way.
    absl::Status append(std::string line);
    // The newest n entries, oldest first.
    std::vector<std::string> last(std::size_t n) const;

private:
    std::string path_;
    std::deque<std::string> entries_;
};

}  // namespace floodgate
