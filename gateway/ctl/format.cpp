#include "format.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <optional>
#include <vector>

#include "gateway/text.hpp"

namespace floodgate::ctl {

namespace {

// The settings in the order a person thinks of them; others (a newer server) follow.
constexpr std::string_view setting_order[] = {"rate",           "burst",         "max_active",
                                              "idle_timeout_s", "session_ttl_s", "banner"};

std::optional<double> number_of(const json::value* v) {
    if (!v || !v->is_number()) return std::nullopt;
    return v->to_number<double>();
}

std::string string_of(const json::value* v) {
    if (!v || !v->is_string()) return "-";
    return std::string(v->as_string());
}

// 0 means "no limit" for rate and max_active.
std::string limit_text(const json::value* v, std::string_view unit = {}) {
    const auto d = number_of(v);
    if (!d) return "-";
    if (*d == 0) return "unlimited";
    return text::cat(format_number(*d), unit);
}

std::string eta_text(const json::value* v) {
    const auto d = number_of(v);
    return d ? format_duration(*d) : std::string("-");
}

std::string join_list(const json::value* v) {
    if (!v || !v->is_array()) return {};
    std::vector<std::string> items;
    for (const auto& i : v->as_array())
        items.push_back(i.is_string() ? std::string(i.as_string()) : json::serialize(i));
    return text::join(items, ", ");
}

std::string quoted(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// A settings value for a person: seconds as durations, no limit as "unlimited".
std::string setting_text(std::string_view key, const json::value* v) {
    if (!v) return "-";
    if (key == "rate")
        return v->is_number() && v->to_number<double>() == 0 ? "unlimited" : format_value(v) + "/s";
    if (key == "max_active") return limit_text(v);
    if ((key == "idle_timeout_s" || key == "session_ttl_s") && v->is_number())
        return format_duration(v->to_number<double>());
    return format_value(v, true);
}

bool overridden(const json::object& room, std::string_view key) {
    const auto* o = room.if_contains("overrides");
    if (!o || !o->is_array()) return false;
    for (const auto& i : o->as_array())
        if (i.is_string() && i.as_string() == key) return true;
    return false;
}

std::string pad_right(std::string_view s, std::size_t width) {
    std::string out(s);
    if (out.size() < width) out.append(width - out.size(), ' ');
    return out;
}

std::string pad_left(std::string_view s, std::size_t width) {
    std::string out;
    if (s.size() < width) out.append(width - s.size(), ' ');
    return out.append(s);
}

}  // namespace

const json::value* field(const json::object& o, std::string_view a, std::string_view b) {
    const auto* v = o.if_contains(a);
    if (!v || b.empty()) return v;
    if (!v->is_object()) return nullptr;
    return v->as_object().if_contains(b);
}

std::string format_number(double v) {
    if (!std::isfinite(v)) return "-";
    if (v == std::floor(v) && std::fabs(v) < 1e15) return text::cat(static_cast<std::int64_t>(v));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    std::string s = buf;
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
}

std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "-";
    if (seconds < 1 && seconds > 0) return text::cat(format_number(seconds * 1000), "ms");
    auto s = static_cast<std::int64_t>(std::llround(seconds));
    if (s < 60) return text::cat(s, "s");
    char buf[48];
    if (s < 3600) {
        if (s % 60 == 0) return text::cat(s / 60, "m");
        std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60),
                      static_cast<long long>(s % 60));
        return buf;
    }
    if (s % 3600 == 0) return text::cat(s / 3600, "h");
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>((s % 3600) / 60));
    return buf;
}

std::string format_value(const json::value* v, bool quote) {
    if (!v) return "-";
    if (v->is_null()) return "null";
    if (v->is_number()) return format_number(v->to_number<double>());
    if (v->is_string()) return quote ? quoted(v->as_string()) : std::string(v->as_string());
    return json::serialize(*v);
}

std::string rooms_table(const json::object& room_list) {
    const std::vector<std::string> header = {"ROOM",       "MODE",       "LIGHT",      "WAITING",
                                             "ACTIVE",     "ARRIVALS/S", "ADMITTED/S", "RATE",
                                             "MAX_ACTIVE", "ETA"};
    // Text columns line up on the left, numbers on the right.
    const std::vector<bool> numeric = {false, false, false, true, true,
                                       true,  true,  true,  true, true};
    std::vector<std::vector<std::string>> rows{header};
    const auto* rooms = room_list.if_contains("rooms");
    if (rooms && rooms->is_array()) {
        for (const auto& rv : rooms->as_array()) {
            if (!rv.is_object()) continue;
            const auto& r = rv.as_object();
            rows.push_back({string_of(field(r, "name")), string_of(field(r, "mode")),
                            string_of(field(r, "stats", "light")),
                            format_value(field(r, "stats", "waiting")),
                            format_value(field(r, "stats", "active")),
                            format_value(field(r, "stats", "arrivals_per_s")),
                            format_value(field(r, "stats", "admitted_per_s")),
                            limit_text(field(r, "settings", "rate")),
                            limit_text(field(r, "settings", "max_active")),
                            eta_text(field(r, "stats", "eta_s"))});
        }
    }
    if (rows.size() == 1) return "no rooms\n";
    std::vector<std::size_t> width(header.size(), 0);
    for (const auto& row : rows)
        for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    std::string out;
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            if (i) line += "  ";
            line += numeric[i] ? pad_left(row[i], width[i]) : pad_right(row[i], width[i]);
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + "\n";
    }
    return out;
}

std::string room_details(const json::object& r) {
    auto line = [](std::string_view label, std::string_view value) {
        return text::cat("  ", pad_right(label, 14), value, "\n");
    };
    std::string out;
    const std::string source = string_of(field(r, "source"));
    out += text::cat("room ", string_of(field(r, "name")), " (",
                     source == "runtime" ? "created at run time" : "from the config file",
                     ", upstream ", string_of(field(r, "upstream")), ")\n");
    out += line("mode", text::cat(string_of(field(r, "mode")), overridden(r, "mode") ? " *" : ""));
    out += line("light", string_of(field(r, "stats", "light")));
    std::vector<std::string> match;
    for (const char* k : {"hosts", "paths", "exact"})
        if (auto l = join_list(field(r, "match", k)); !l.empty())
            match.push_back(text::cat(k, " ", l));
    out += line("matches", match.empty() ? "-" : text::join(match, "; "));

    out += "\nnow\n";
    out += line("waiting", format_value(field(r, "stats", "waiting")));
    out += line("active", format_value(field(r, "stats", "active")));
    const auto* eta = field(r, "stats", "eta_s");
    out += line("eta", eta && eta->is_number() ? text::cat(eta_text(eta), " for a newcomer")
                                               : std::string("- (unknown, paused or closed)"));
    out += line("arrivals", text::cat(format_value(field(r, "stats", "arrivals_per_s")), "/s"));
    out += line("called", text::cat(format_value(field(r, "stats", "called_per_s")), "/s"));
    out += line("admitted", text::cat(format_value(field(r, "stats", "admitted_per_s")), "/s"));
    out +=
        line("totals", text::cat("issued ", format_value(field(r, "stats", "issued_total")),
                                 ", admitted ", format_value(field(r, "stats", "admitted_total")),
                                 ", abandoned ", format_value(field(r, "stats", "abandoned_total")),
                                 ", no-shows ", format_value(field(r, "stats", "noshows_total"))));
    const auto* up = field(r, "stats", "upstream");
    if (up && up->is_object()) {
        const auto& u = up->as_object();
        const auto err = number_of(u.if_contains("error_rate"));
        out += line("upstream", text::cat("p50 ", format_value(u.if_contains("p50_ms")), "ms, p99 ",
                                          format_value(u.if_contains("p99_ms")), "ms, errors ",
                                          err ? format_number(*err * 100) + "%" : "-", ", ",
                                          format_value(u.if_contains("requests_per_s")), " req/s"));
    }

    out += "\nsettings (* changed at run time; it wins over the config file)\n";
    const auto* settings = r.if_contains("settings");
    if (settings && settings->is_object()) {
        const auto& s = settings->as_object();
        auto show = [&](std::string_view key) {
            std::string v = setting_text(key, s.if_contains(key));
            if (key == "banner" && v == "\"\"") v = "(none)";
            out += line(key.ends_with("_s") ? key.substr(0, key.size() - 2) : key,
                        text::cat(v, overridden(r, key) ? " *" : ""));
        };
        for (auto key : setting_order)
            if (s.contains(key)) show(key);
        for (const auto& [key, v] : s) {
            bool known = false;
            for (auto k : setting_order) known = known || k == std::string_view(key);
            if (!known) show(key);
        }
    }
    return out;
}

std::string describe_change(const json::object& before, const json::object& after) {
    std::vector<std::string> changes;
    const auto* m0 = before.if_contains("mode");
    const auto* m1 = after.if_contains("mode");
    if (m0 && m1 && *m0 != *m1)
        changes.push_back(text::cat("mode ", format_value(m0), " -> ", format_value(m1)));
    const auto* s0 = before.if_contains("settings");
    const auto* s1 = after.if_contains("settings");
    if (s0 && s1 && s0->is_object() && s1->is_object()) {
        const auto& b = s0->as_object();
        const auto& a = s1->as_object();
        auto compare = [&](std::string_view key) {
            const auto* x = b.if_contains(key);
            const auto* y = a.if_contains(key);
            if (x && y && *x == *y) return;
            if (!x && !y) return;
            changes.push_back(
                text::cat(key, " ", setting_text(key, x), " -> ", setting_text(key, y)));
        };
        for (auto key : setting_order) compare(key);
        for (const auto& [key, v] : a) {
            bool known = false;
            for (auto k : setting_order) known = known || k == std::string_view(key);
            if (!known) compare(key);
        }
    }
    return text::join(changes, ", ");
}

std::string audit_line(const json::object& e) {
    const std::string action = string_of(field(e, "action"));
    const auto* before = e.if_contains("before");
    const auto* after = e.if_contains("after");
    std::string what;
    if (action.starts_with("room.") && action != "room.create" && action != "room.delete") {
        if (before && after && before->is_object() && after->is_object())
            what = describe_change(before->as_object(), after->as_object());
        if (what.empty()) what = "no change";
    } else if (action == "room.create") {
        std::vector<std::string> match;
        if (after && after->is_object())
            for (const char* k : {"hosts", "paths", "exact"})
                if (auto l = join_list(field(after->as_object(), "match", k)); !l.empty())
                    match.push_back(text::cat(k, " ", l));
        what = match.empty() ? "created" : text::cat("created (", text::join(match, "; "), ")");
    } else if (action == "room.delete") {
        what = "deleted";
    } else if (action == "keys.rotate" && after && after->is_object()) {
        what = text::cat("new signing key ", string_of(field(after->as_object(), "kid")), ", ",
                         format_value(field(after->as_object(), "keys")), " keys verify");
    } else if (action == "config.reload" && after && after->is_object()) {
        const auto* err = field(after->as_object(), "error");
        what = err ? text::cat("refused: ", format_value(err)) : std::string("reloaded");
    } else if (after && !after->is_null()) {
        what = json::serialize(*after);
    }
    const auto* room = e.if_contains("room");
    return text::cat(string_of(field(e, "time")), "  ", string_of(field(e, "token")), "  ", action,
                     "  ", room && room->is_string() ? std::string(room->as_string()) : "-", "  ",
                     what);
}

std::string watch_line(std::int64_t unix_ms, const json::object& r) {
    const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    localtime_r(&secs, &tm);
    char clock[16];
    std::strftime(clock, sizeof clock, "%H:%M:%S", &tm);
    const std::string mode = string_of(field(r, "mode"));
    return text::cat(
        clock, "  waiting ", pad_left(format_value(field(r, "stats", "waiting")), 6), "  active ",
        pad_left(format_value(field(r, "stats", "active")), 5), "  arrivals ",
        pad_left(format_value(field(r, "stats", "arrivals_per_s")), 6), "/s  admitted ",
        pad_left(format_value(field(r, "stats", "admitted_per_s")), 6), "/s of ",
        limit_text(field(r, "settings", "rate"), "/s"), "  p99 ",
        format_value(field(r, "stats", "upstream") && field(r, "stats", "upstream")->is_object()
                         ? field(r, "stats", "upstream")->as_object().if_contains("p99_ms")
                         : nullptr),
        "ms  ", string_of(field(r, "stats", "light")),
        mode == "auto" ? std::string() : text::cat("  ", mode));
}

}  // namespace floodgate::ctl
