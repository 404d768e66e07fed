#include "admin_state.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "gateway/text.hpp"
#include "tokenstore/file_io.hpp"

namespace floodgate {

namespace json = boost::json;

namespace {

// runtime.json replaced whole (see tokenstore/file_io.hpp), with this file's own error wording.
absl::Status write_file_atomically(const std::string& path, std::string_view data) {
    using tokenstore::replace_error;
    return tokenstore::replace_file(path, data, [&](const replace_error& e) {
        const std::string why = std::strerror(e.error);
        if (e.step == replace_error::create || e.step == replace_error::write)
            return absl::InternalError(text::cat("cannot write ", e.file, ": ", why));
        return absl::InternalError(text::cat("cannot replace ", path, ": ", why));
    });
}

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

json::object to_json(const room_overrides& o) {
    json::object j;
    if (o.rate) j["rate"] = *o.rate;
    if (o.burst) j["burst"] = *o.burst;
    if (o.max_active) j["max_active"] = *o.max_active;
    if (o.idle_timeout) j["idle_timeout_ms"] = o.idle_timeout->count();
    if (o.session_ttl) j["session_ttl_ms"] = o.session_ttl->count();
    if (o.mode) j["mode"] = to_string(*o.mode);
    if (o.banner) j["banner"] = *o.banner;
    return j;
}

// The file was written by save(); anything else in it is reported, not guessed at.
absl::StatusOr<room_overrides> overrides_from_json(const json::value& v, const std::string& where) {
    room_overrides o;
    if (!v.is_object()) return absl::InvalidArgumentError(where + ": expected an object");
    try {
        for (const auto& [k, val] : v.as_object()) {
            if (k == "rate") o.rate = json::value_to<double>(val);
            else if (k == "burst") o.burst = json::value_to<std::uint32_t>(val);
            else if (k == "max_active") o.max_active = json::value_to<std::uint64_t>(val);
            else if (k == "idle_timeout_ms") o.idle_timeout = duration(json::value_to<std::int64_t>(val));
            else if (k == "session_ttl_ms") o.session_ttl = duration(json::value_to<std::int64_t>(val));
            else if (k == "mode") {
                o.mode = parse_room_mode(json::value_to<std::string>(val));
                if (!o.mode) return absl::InvalidArgumentError(where + ": unknown mode");
            } else if (k == "banner") o.banner = json::value_to<std::string>(val);
            else return absl::InvalidArgumentError(text::cat(where, ": unknown field \"", std::string(k), "\""));
        }
    } catch (const std::exception& e) {
        return absl::InvalidArgumentError(text::cat(where, ": ", e.what()));
    }
    return o;
}

}  // namespace

std::vector<std::string> room_overrides::names() const {
    std::vector<std::string> n;
    if (rate) n.push_back("rate");
    if (burst) n.push_back("burst");
    if (max_active) n.push_back("max_active");
    if (idle_timeout) n.push_back("idle_timeout_s");
    if (session_ttl) n.push_back("session_ttl_s");
    if (mode) n.push_back("mode");
    if (banner) n.push_back("banner");
    return n;
}

void room_overrides::apply_to(room_config& room) const {
    if (rate) room.rate = *rate;
    if (burst) room.burst = *burst;
    if (max_active) room.max_active = *max_active;
    if (idle_timeout) room.idle_timeout = *idle_timeout;
    if (session_ttl) room.session_ttl = *session_ttl;
    if (mode) room.mode = *mode;
    if (banner) room.banner = *banner;
}

std::string overrides_to_json(const room_overrides& o) { return json::serialize(to_json(o)); }

absl::StatusOr<room_overrides> overrides_from_json_text(std::string_view text, const std::string& where) {
    json::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec) return absl::InvalidArgumentError(where + ": not JSON: " + ec.message());
    return overrides_from_json(v, where);
}

absl::StatusOr<runtime_state> runtime_state::open(std::string dir) {
    runtime_state s;
    s.dir_ = std::move(dir);
    if (s.dir_.empty()) return s;
    ::mkdir(s.dir_.c_str(), 0700);
    const std::string path = s.dir_ + "/runtime.json";
    auto text = read_file(path);
    if (!text) return s;
    json::error_code ec;
    json::value v = json::parse(*text, ec);
    if (ec || !v.is_object())
        return absl::DataLossError(text::cat(path, ": not valid JSON (", ec.message(),
                                             "); fix or remove it to start without runtime changes"));
    const auto& root = v.as_object();
    if (const auto* rooms = root.if_contains("rooms"); rooms && rooms->is_object()) {
        for (const auto& [name, def] : rooms->as_object()) {
            if (!def.is_string())
                return absl::DataLossError(text::cat(path, ": rooms.", std::string(name), ": expected a string"));
            s.rooms_[std::string(name)] = std::string(def.as_string());
        }
    }
    if (const auto* ov = root.if_contains("overrides"); ov && ov->is_object()) {
        for (const auto& [name, o] : ov->as_object()) {
            auto parsed = overrides_from_json(o, text::cat(path, ": overrides.", std::string(name)));
            if (!parsed.ok()) return absl::DataLossError(std::string(parsed.status().message()));
            s.overrides_[std::string(name)] = std::move(*parsed);
        }
    }
    return s;
}

absl::Status runtime_state::save() const {
    if (dir_.empty()) return absl::OkStatus();
    json::object root;
    root["version"] = 1;
    json::object rooms;
    for (const auto& [name, def] : rooms_) rooms[name] = def;
    root["rooms"] = std::move(rooms);
    json::object ov;
    for (const auto& [name, o] : overrides_) ov[name] = to_json(o);
    root["overrides"] = std::move(ov);
    return write_file_atomically(dir_ + "/runtime.json", json::serialize(root) + "\n");
}

absl::StatusOr<config> runtime_state::effective(const config& file, std::vector<std::string>* warnings) const {
    config c = file;
    for (const auto& [name, def] : rooms_) {
        if (file.find_room(name)) {
            if (warnings)
                warnings->push_back(text::cat("room ", name, " was created at run time and is now in the "
                                              "config file too; the file's definition is used"));
            continue;
        }
        auto rc = parse_room_definition(def, text::cat("runtime room ", name), file);
        if (!rc.ok()) {
            if (warnings)
                warnings->push_back(text::cat("runtime room ", name, " no longer fits the config (",
                                              std::string(rc.status().message()), "); it is not served"));
            continue;
        }
        c.rooms.push_back(std::move(*rc));
    }
    for (auto& room : c.rooms)
        if (auto it = overrides_.find(room.name); it != overrides_.end()) it->second.apply_to(room);
    return c;
}

const room_overrides* runtime_state::overrides(const std::string& room) const {
    auto it = overrides_.find(room);
    return it == overrides_.end() ? nullptr : &it->second;
}

absl::Status runtime_state::set_overrides(const std::string& room, const room_overrides& o) {
    if (o.empty()) overrides_.erase(room);
    else overrides_[room] = o;
    return save();
}

absl::Status runtime_state::add_room(const std::string& room, std::string definition) {
    rooms_[room] = std::move(definition);
    return save();
}

absl::Status runtime_state::remove_room(const std::string& room) {
    rooms_.erase(room);
    overrides_.erase(room);
    return save();
}

absl::Status audit_log::open(std::string path) {
    path_ = std::move(path);
    entries_.clear();
    if (path_.empty()) return absl::OkStatus();
    std::ifstream in(path_, std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        entries_.push_back(std::move(line));
        if (entries_.size() > kept) entries_.pop_front();
    }
    return absl::OkStatus();
}

absl::Status audit_log::append(std::string line) {
    absl::Status st = absl::OkStatus();
    if (!path_.empty()) {
        const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        const std::string out = line + "\n";
        if (fd < 0 || ::write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size()) || ::fsync(fd) != 0)
            st = absl::InternalError(text::cat("cannot append to ", path_, ": ", std::strerror(errno)));
        if (fd >= 0) ::close(fd);
    }
    entries_.push_back(std::move(line));
    if (entries_.size() > kept) entries_.pop_front();
    return st;
}

std::vector<std::string> audit_log::last(std::size_t n) const {
    n = std::min(n, entries_.size());
    return {entries_.end() - static_cast<std::ptrdiff_t>(n), entries_.end()};
}

}  // namespace floodgate
