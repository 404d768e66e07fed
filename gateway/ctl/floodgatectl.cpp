// floodgatectl: the operators' command line for floodgate's admin API, in the
// habit of haproxy's runtime API and `nginx -s`. Each command is one or two
// requests to the admin listener; what it prints is what a person on call
// needs (a table, "before -> after", one line a second), or with --json the
// API's own JSON.
//
// The one thing not to get wrong: the exit code tells a script what happened
// (0 ok, 1 the API refused, 2 usage error, 3 cannot reach the API), and a
// usage error is caught before anything is sent, so a typo never changes a
// room.
//
//   floodgatectl rooms
//   floodgatectl set-rate sale 50 --burst 10
//   FLOODGATE_TOKEN_FILE=~/.floodgate-token floodgatectl watch sale
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "admin_client.hpp"
#include "cli_args.hpp"
#include "format.hpp"
#include "gateway/text.hpp"

namespace floodgate::ctl {

namespace {

enum exit_code : int { exit_ok = 0, exit_refused = 1, exit_usage = 2, exit_unreachable = 3 };

struct context;
using handler = int (*)(context&);

struct command_spec {
    std::string_view name{};
    std::string_view synopsis{};  // arguments and options after the command's name
    std::string_view summary{};   // one line, for the command list
    std::string_view details{};   // the rest of `help COMMAND`
    std::vector<std::string_view> options{};
    std::size_t min_args = 0;
    std::size_t max_args = 0;  // SIZE_MAX: any number
    handler run = nullptr;
};

struct context {
    const command_spec& cmd;
    cli_args& args;
    admin_client client;
};

const std::vector<command_spec>& commands();

// ---- usage --------------------------------------------------------------------------------

constexpr std::string_view global_usage_head =
    "usage: floodgatectl [--admin HOST:PORT] [--token TOKEN | --token-file FILE] [--json] "
    "COMMAND ...\n"
    "\n"
    "Steers floodgate's waiting rooms through its admin API (admin.address).\n"
    "\n"
    "commands:\n";

constexpr std::string_view global_usage_tail =
    "\n"
    "options (before or after the command):\n"
    "  --admin HOST:PORT   the admin listener; default $FLOODGATE_ADMIN, else 127.0.0.1:9090\n"
    "  --token TOKEN       a bearer token from admin.tokens_file; default $FLOODGATE_TOKEN\n"
    "  --token-file FILE   a file holding the token; default $FLOODGATE_TOKEN_FILE\n"
    "  --json              print the API's JSON as it is\n"
    "  --                  the rest are arguments (a banner that starts with '-')\n"
    "\n"
    "exit codes: 0 ok, 1 the API refused, 2 usage error (nothing was sent), 3 cannot reach "
    "the API\n"
    "`floodgatectl help COMMAND` explains one command.\n";

std::string global_usage() {
    std::string out(global_usage_head);
    for (const auto& c : commands()) {
        std::string left = text::cat(c.name, c.synopsis.empty() ? "" : " ", c.synopsis);
        if (left.size() < 34)
            left.append(34 - left.size(), ' ');
        else
            left += "  ";
        out += text::cat("  ", left, c.summary, "\n");
    }
    return out + std::string(global_usage_tail);
}

std::string command_usage(const command_spec& c) {
    return text::cat("usage: floodgatectl [options] ", c.name, c.synopsis.empty() ? "" : " ",
                     c.synopsis, "\n\n", c.summary, ".\n", c.details.empty() ? "" : "\n",
                     c.details);
}

const command_spec* find_command(std::string_view name) {
    for (const auto& c : commands())
        if (c.name == name) return &c;
    return nullptr;
}

int usage(std::string_view message, const command_spec* c) {
    std::cerr << "floodgatectl: " << message << "\n\n";
    if (c)
        std::cerr << command_usage(*c);
    else
        std::cerr << global_usage();
    return exit_usage;
}

int usage(context& c, std::string_view message) {
    return usage(message, &c.cmd);
}

// ---- values -------------------------------------------------------------------------------

std::optional<double> parse_number(std::string_view s) {
    double d = 0;
    if (s.empty() || s.front() == '+') return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(d)) return std::nullopt;
    return d;
}

std::optional<std::int64_t> parse_whole(std::string_view s) {
    std::int64_t v = 0;
    if (s.empty()) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

// Seconds, or a number with a unit: 250ms, 30s, 5m, 1h.
std::optional<double> parse_seconds(std::string_view s) {
    if (auto d = parse_number(s)) return d;
    struct unit {
        std::string_view suffix;
        double factor;
    };
    for (auto u : {unit{"ms", 0.001}, unit{"s", 1}, unit{"m", 60}, unit{"h", 3600}}) {
        if (!s.ends_with(u.suffix)) continue;
        if (auto d = parse_number(s.substr(0, s.size() - u.suffix.size()))) return *d * u.factor;
        return std::nullopt;
    }
    return std::nullopt;
}

// Whole numbers go out as JSON integers, which the API's whole-number fields want.
json::value number_value(double d) {
    if (d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<std::int64_t>(d);
    return d;
}

bool valid_room_name(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    for (char ch : s)
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            return false;
    return true;
}

std::optional<std::string> room_arg(context& c, int& rc) {
    const std::string& room = c.args.args.at(0);
    if (valid_room_name(room)) return room;
    rc = usage(
        c, text::cat("ROOM: a room name is 1 to 64 of a-z, 0-9, '_' and '-', got \"", room, "\""));
    return std::nullopt;
}

std::string room_target(std::string_view room, std::string_view action = {}) {
    return text::cat("/admin/v1/rooms/", room, action.empty() ? "" : "/", action);
}

// ---- answers ------------------------------------------------------------------------------

std::optional<json::object> parse_object(std::string_view body) {
    json::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object()) return std::nullopt;
    return std::move(v.as_object());
}

int unreachable(context& c, const api_reply& r) {
    std::cerr << "floodgatectl: cannot reach the admin API at " << c.args.admin.text() << ": "
              << r.transport_error << "; is floodgate running, and is admin.address right?";
    if (c.args.admin_source == "FLOODGATE_ADMIN")
        std::cerr << " (the address comes from " << c.args.admin_source << ")";
    std::cerr << "\n";
    return exit_unreachable;
}

// The API said no: say why in words a person can act on. The API's own JSON
// goes to stdout with --json, for scripts.
int refused(context& c, const api_reply& r, std::string_view room = {}) {
    const auto err = parse_object(r.body);
    // Every refusal of the admin API is an Error object; anything else came from
    // something else listening there (the public listener, a proxy).
    if (!err || !err->contains("error")) {
        std::cerr << "floodgatectl: the answer from " << c.args.admin.text() << " (HTTP "
                  << r.status << ") is not the admin API's; is --admin the admin listener "
                  << "(admin.address), not the public one?\n";
        return exit_unreachable;
    }
    if (c.args.json) std::cout << r.body << (r.body.ends_with("\n") ? "" : "\n");
    std::string message = format_value(field(*err, "message"));
    const std::string fld = format_value(field(*err, "field"));
    if (fld != "-" && !message.starts_with(fld)) message = text::cat(fld, ": ", message);
    std::cerr << "floodgatectl: ";
    switch (r.status) {
        case 401:
            if (c.args.token.empty())
                std::cerr << "no token given; pass --token or --token-file, or set FLOODGATE_TOKEN "
                             "or FLOODGATE_TOKEN_FILE";
            else
                std::cerr << "the token was refused; check --token / FLOODGATE_TOKEN (or "
                             "--token-file / FLOODGATE_TOKEN_FILE)";
            if (message.find("no admin tokens") != std::string::npos)
                std::cerr << "\nthe API says: " << message;
            break;
        case 403:
            std::cerr << "not allowed: " << message << "; changes need an operator token";
            break;
        case 400:
            std::cerr << "the API refused the request: " << message;
            break;
        case 404:
            if (!room.empty())
                std::cerr << "no room named \"" << room << "\"; `floodgatectl rooms` lists them";
            else
                std::cerr << "not found: " << message << " (is floodgate as new as floodgatectl?)";
            break;
        case 422:
            std::cerr << "the config file is invalid, so the running configuration is kept: "
                      << message;
            break;
        default:
            std::cerr << "the API answered " << r.status << ": " << message;
    }
    std::cerr << "\n";
    return exit_refused;
}

// A reply that should be a JSON object and is not: the listener is something else.
int not_json(context& c) {
    std::cerr << "floodgatectl: the answer from " << c.args.admin.text()
              << " is not the admin API's JSON; is --admin the admin listener (admin.address), "
                 "not the public one?\n";
    return exit_unreachable;
}

// GET, then on 200 hands the parsed object to `show`.
template <class Show>
int get_and_show(context& c, const std::string& target, std::string_view room, Show show) {
    auto r = c.client.request(http::verb::get, target);
    if (!r.reached()) return unreachable(c, r);
    if (r.status != 200) return refused(c, r, room);
    if (c.args.json) {
        std::cout << r.body << (r.body.ends_with("\n") ? "" : "\n");
        return exit_ok;
    }
    auto o = parse_object(r.body);
    if (!o) return not_json(c);
    show(*o);
    return exit_ok;
}

// A change to one room: reads it first, so that what changed can be shown as
// "before -> after" (and an unknown room is named before anything is sent).
int change_room(context& c, const std::string& room, http::verb method, const std::string& target,
                std::string body, const std::vector<std::string>& asked) {
    std::optional<json::object> before;
    if (!c.args.json) {
        auto b = c.client.request(http::verb::get, room_target(room));
        if (!b.reached()) return unreachable(c, b);
        if (b.status != 200) return refused(c, b, room);
        before = parse_object(b.body);
        if (!before) return not_json(c);
    }
    auto r = c.client.request(method, target, std::move(body));
    if (!r.reached()) return unreachable(c, r);
    if (r.status != 200) return refused(c, r, room);
    if (c.args.json) {
        std::cout << r.body << (r.body.ends_with("\n") ? "" : "\n");
        return exit_ok;
    }
    auto after = parse_object(r.body);
    if (!after) return not_json(c);
    if (auto what = describe_change(*before, *after); !what.empty()) {
        std::cout << room << ": " << what << "\n";
        return exit_ok;
    }
    // Nothing differs: say what it already is.
    std::vector<std::string> now;
    for (const auto& key : asked) {
        const auto* v = key == "mode" ? after->if_contains("mode") : field(*after, "settings", key);
        now.push_back(
            text::cat(key, " ", key == "banner" ? format_value(v, true) : format_value(v)));
    }
    std::cout << room << ": no change (" << text::join(now, ", ") << ")\n";
    return exit_ok;
}

// ---- commands -----------------------------------------------------------------------------

int cmd_rooms(context& c) {
    return get_and_show(c, "/admin/v1/rooms", {},
                        [](const json::object& o) { std::cout << rooms_table(o); });
}

int cmd_room(context& c) {
    int rc = 0;
    auto room = room_arg(c, rc);
    if (!room) return rc;
    return get_and_show(c, room_target(*room), *room,
                        [](const json::object& o) { std::cout << room_details(o); });
}

int cmd_set_rate(context& c) {
    int rc = 0;
    auto room = room_arg(c, rc);
    if (!room) return rc;
    auto rate = parse_number(c.args.args[1]);
    if (!rate)
        return usage(c, text::cat("RATE must be a number of people per second (0: no rate limit), "
                                  "got \"",
                                  c.args.args[1], "\""));
    json::object patch{{"rate", number_value(*rate)}};
    std::vector<std::string> asked{"rate"};
    if (auto it = c.args.options.find("--burst"); it != c.args.options.end()) {
        auto burst = parse_whole(it->second);
        if (!burst)
            return usage(
                c, text::cat("--burst must be a whole number of people, got \"", it->second, "\""));
        patch["burst"] = *burst;
        asked.push_back("burst");
    }
    return change_room(c, *room, http::verb::patch, room_target(*room), json::serialize(patch),
                       asked);
}

int cmd_set_max_active(context& c) {
    int rc = 0;
    auto room = room_arg(c, rc);
    if (!room) return rc;
    auto n = parse_whole(c.args.args[1]);
    if (!n)
        return usage(c, text::cat("N must be a whole number of people (0: no limit), got \"",
                                  c.args.args[1], "\""));
    return change_room(c, *room, http::verb::patch, room_target(*room),
                       json::serialize(json::object{{"max_active", *n}}), {"max_active"});
}

// field=value as the PATCH body wants it; nullopt (and a usage message) when
// the value cannot be what the field needs.
std::optional<json::value> patch_value(std::string_view key, std::string_view value,
                                       std::string& problem) {
    if (value == "null") return json::value(nullptr);
    if (key == "rate") {
        if (auto d = parse_number(value)) return number_value(*d);
        problem = "rate must be a number of people per second (0: no rate limit) or null";
    } else if (key == "burst" || key == "max_active") {
        if (auto n = parse_whole(value)) return json::value(*n);
        problem = text::cat(key, " must be a whole number or null");
    } else if (key == "idle_timeout_s" || key == "session_ttl_s") {
        if (auto d = parse_seconds(value)) return number_value(*d);
        problem = text::cat(key, " must be seconds (90, 1.5) or a duration (30s, 5m, 1h) or null");
    } else if (key == "mode") {
        // The room commands say queue-all; the API says queue_all.
        return json::value(value == "queue-all" ? std::string_view("queue_all") : value);
    } else if (key == "banner") {
        return json::value(value);
    } else {
        // A field this floodgatectl does not know (a newer server?): let the API judge it.
        if (auto d = parse_number(value)) return number_value(*d);
        if (value == "true" || value == "false") return json::value(value == "true");
        return json::value(value);
    }
    if (problem.empty()) problem = text::cat(key, ": bad value");
    problem += text::cat(", got \"", value, "\"");
    return std::nullopt;
}

int cmd_set(context& c) {
    int rc = 0;
    auto room = room_arg(c, rc);
    if (!room) return rc;
    json::object patch;
    std::vector<std::string> asked;
    for (std::size_t i = 1; i < c.args.args.size(); ++i) {
        const std::string& kv = c.args.args[i];
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0)
            return usage(c, text::cat("expected field=value, got \"", kv, "\""));
        const std::string key = kv.substr(0, eq);
        std::string problem;
        auto v = patch_value(key, std::string_view(kv).substr(eq + 1), problem);
        if (!v) return usage(c, problem);
        if (!patch.contains(key)) asked.push_back(key);
        patch[key] = std::move(*v);
    }
    return change_room(c, *room, http::verb::patch, room_target(*room), json::serialize(patch),
                       asked);
}

int cmd_banner(context& c) {
    int rc = 0;
    auto room = room_arg(c, rc);
    if (!room) return rc;
    std::vector<std::string> words(c.args.args.begin() + 1, c.args.args.end());
    return change_room(c, *room, http::verb::patch, room_target(*room),
                       json::serialize(json::object{{"banner", text::join(words, " ")}}),
                       {"banner"});
}

int cmd_mode(context& c) {
    int rc = 0;
    auto room = room_arg(c, rc);
    if (!room) return rc;
    return change_room(c, *room, http::verb::post, room_target(*room, c.cmd.name), {}, {"mode"});
}

int cmd_create_room(context& c) {
    const std::string& path = c.args.args[0];
    std::string text;
    if (path == "-") {
        text.assign(std::istreambuf_iterator<char>(std::cin), {});
    } else {
        std::ifstream in(path, std::ios::binary);
        if (!in) return usage(c, text::cat("cannot read ", path, ": ", std::strerror(errno)));
        text.assign(std::istreambuf_iterator<char>(in), {});
    }
    json::error_code ec;
    auto def = json::parse(text, ec);
    if (ec) return usage(c, text::cat(path, " is not valid JSON: ", ec.message()));
    if (!def.is_object())
        return usage(c, text::cat(path, " must hold one JSON object (a room definition)"));
    const auto* name = def.as_object().if_contains("name");
    const std::string room = name && name->is_string() ? std::string(name->as_string()) : "";
    auto r = c.client.request(http::verb::post, "/admin/v1/rooms", json::serialize(def));
    if (!r.reached()) return unreachable(c, r);
    if (r.status != 201) return refused(c, r);
    if (c.args.json) {
        std::cout << r.body << (r.body.ends_with("\n") ? "" : "\n");
        return exit_ok;
    }
    auto created = parse_object(r.body);
    if (!created) return not_json(c);
    std::cout << "created room " << format_value(field(*created, "name")) << " (mode "
              << format_value(field(*created, "mode")) << ", rate "
              << format_value(field(*created, "settings", "rate")) << "/s); `floodgatectl room "
              << (room.empty() ? format_value(field(*created, "name")) : room) << "` shows it\n";
    return exit_ok;
}

int cmd_delete_room(context& c) {
    int rc = 0;
    auto room = room_arg(c, rc);
    if (!room) return rc;
    auto r = c.client.request(http::verb::delete_, room_target(*room));
    if (!r.reached()) return unreachable(c, r);
    if (r.status != 204 && r.status != 200) return refused(c, r, *room);
    if (!c.args.json) std::cout << "deleted room " << *room << "\n";
    return exit_ok;
}

int cmd_rotate_keys(context& c) {
    auto r = c.client.request(http::verb::post, "/admin/v1/keys/rotate");
    if (!r.reached()) return unreachable(c, r);
    if (r.status != 200) return refused(c, r);
    if (c.args.json) {
        std::cout << r.body << (r.body.ends_with("\n") ? "" : "\n");
        return exit_ok;
    }
    auto o = parse_object(r.body);
    if (!o) return not_json(c);
    std::cout << "new signing key " << format_value(field(*o, "kid")) << "; "
              << format_value(field(*o, "keys"))
              << " keys verify (passes and tickets already issued stay valid)\n";
    return exit_ok;
}

int cmd_reload(context& c) {
    auto r = c.client.request(http::verb::post, "/admin/v1/reload");
    if (!r.reached()) return unreachable(c, r);
    if (r.status != 200) return refused(c, r);
    if (c.args.json)
        std::cout << r.body << (r.body.ends_with("\n") ? "" : "\n");
    else
        std::cout << "reloaded the config file (runtime changes still win over it)\n";
    return exit_ok;
}

int cmd_audit(context& c) {
    std::string target = "/admin/v1/audit";
    if (auto it = c.args.options.find("--limit"); it != c.args.options.end()) {
        auto n = parse_whole(it->second);
        if (!n || *n < 1)
            return usage(
                c, text::cat("--limit must be a whole number from 1, got \"", it->second, "\""));
        target += text::cat("?limit=", *n);
    }
    return get_and_show(c, target, {}, [](const json::object& o) {
        const auto* entries = o.if_contains("entries");
        if (!entries || !entries->is_array() || entries->as_array().empty()) {
            std::cout << "no changes yet\n";
            return;
        }
        for (const auto& e : entries->as_array())
            if (e.is_object()) std::cout << audit_line(e.as_object()) << "\n";
    });
}

int cmd_watch(context& c) {
    int rc = 0;
    auto room = room_arg(c, rc);
    if (!room) return rc;
    std::int64_t count = -1;
    if (auto it = c.args.options.find("--count"); it != c.args.options.end()) {
        auto n = parse_whole(it->second);
        if (!n || *n < 1)
            return usage(
                c, text::cat("--count must be a whole number from 1, got \"", it->second, "\""));
        count = *n;
    }
    // The room must exist, and the token be good, before the stream starts.
    auto first = c.client.request(http::verb::get, room_target(*room));
    if (!first.reached()) return unreachable(c, first);
    if (first.status != 200) return refused(c, first, *room);

    std::int64_t printed = 0;
    bool skipped_first = false;
    bool gone = false;
    auto on_event = [&](std::string_view event, std::string_view data) {
        if (event == "audit") {
            auto e = parse_object(data);
            if (!e || format_value(field(*e, "room")) != *room) return true;
            if (c.args.json)
                std::cout << data << "\n";
            else
                std::cout << "          " << audit_line(*e) << "\n";
            std::cout.flush();
            return true;
        }
        if (event != "stats") return true;
        // The stream opens with the state of the moment and then ticks once a
        // second; printing from the first tick keeps the lines a second apart.
        if (!skipped_first) {
            skipped_first = true;
            return true;
        }
        auto list = parse_object(data);
        if (!list) return true;
        const auto* rooms = list->if_contains("rooms");
        const json::object* r = nullptr;
        if (rooms && rooms->is_array())
            for (const auto& rv : rooms->as_array())
                if (rv.is_object() && format_value(field(rv.as_object(), "name")) == *room)
                    r = &rv.as_object();
        if (!r) {
            gone = true;
            return false;
        }
        const auto* t = list->if_contains("time");
        if (c.args.json)
            std::cout << json::serialize(*r) << "\n";
        else
            std::cout << watch_line(t && t->is_int64() ? t->as_int64() : 0, *r) << "\n";
        std::cout.flush();
        return count < 0 || ++printed < count;
    };
    auto r = c.client.follow("/admin/v1/stream", on_event);
    if (gone) {
        std::cerr << "floodgatectl: room \"" << *room
                  << "\" is gone (deleted, or removed by a reload)\n";
        return exit_refused;
    }
    if (!r.reached()) {
        std::cerr << "floodgatectl: lost the admin API at " << c.args.admin.text() << ": "
                  << r.transport_error << "\n";
        return exit_unreachable;
    }
    if (r.status != 200) return refused(c, r);
    return exit_ok;
}

int cmd_metrics(context& c) {
    auto r = c.client.request(http::verb::get, "/metrics");
    if (!r.reached()) return unreachable(c, r);
    if (r.status != 200) return refused(c, r);
    std::cout << r.body;
    return exit_ok;
}

int cmd_help(context& c) {
    if (c.args.args.empty()) {
        std::cout << global_usage();
        return exit_ok;
    }
    const command_spec* cmd = find_command(c.args.args[0]);
    if (!cmd) return usage(text::cat("no command named \"", c.args.args[0], "\""), nullptr);
    std::cout << command_usage(*cmd);
    return exit_ok;
}

constexpr std::size_t any = SIZE_MAX;

// clang-format off
const std::vector<command_spec>& commands() {
    static const std::vector<command_spec> list = {
        {.name = "rooms", .synopsis = "",
         .summary = "Every room: mode, light, queue, flow, rate, ETA",
         .details = "RATE and MAX_ACTIVE say \"unlimited\" for 0; ETA is a newcomer's expected wait\n"
                    "('-' when unknown, paused or closed).\n",
         .run = cmd_rooms},
        {.name = "room", .synopsis = "ROOM",
         .summary = "Everything about one room",
         .details = "Settings changed at run time (they win over the config file) are marked '*'.\n",
         .min_args = 1, .max_args = 1, .run = cmd_room},
        {.name = "set-rate", .synopsis = "ROOM RATE [--burst N]",
         .summary = "People called per second (0: no rate limit)",
         .details = "RATE must be a number (else exit 2, nothing sent); the API checks its range\n"
                    "(exit 1). --burst N lets up to N be called at once after a quiet spell.\n"
                    "Prints what changed: sale: rate 2/s -> 50/s\n"
                    "example: floodgatectl set-rate sale 50 --burst 10\n",
         .options = {"--burst"}, .min_args = 2, .max_args = 2, .run = cmd_set_rate},
        {.name = "set-max-active", .synopsis = "ROOM N",
         .summary = "Admitted people at once (0: no limit)",
         .details = "example: floodgatectl set-max-active sale 2000\n",
         .min_args = 2, .max_args = 2, .run = cmd_set_max_active},
        {.name = "set", .synopsis = "ROOM FIELD=VALUE ...",
         .summary = "Any PATCH field; FIELD=null: the config file's value",
         .details = "fields: rate, burst, max_active, idle_timeout_s, session_ttl_s (seconds, or\n"
                    "        30s, 5m, 1h), mode (auto, queue_all, paused, closed), banner\n"
                    "examples: floodgatectl set sale rate=80 burst=20 max_active=3000\n"
                    "          floodgatectl set sale rate=null    # the config file's rate again\n"
                    "          floodgatectl set sale 'banner=Sold out at 10:00'\n",
         .min_args = 2, .max_args = any, .run = cmd_set},
        {.name = "banner", .synopsis = "ROOM TEXT...",
         .summary = "The waiting page's banner (\"\" clears it)",
         .details = "The words of TEXT are joined with spaces. `set ROOM banner=null` goes back to\n"
                    "the config file's banner.\n"
                    "example: floodgatectl banner sale 'Tickets for Saturday are sold out'\n",
         .min_args = 2, .max_args = any, .run = cmd_banner},
        {.name = "pause", .synopsis = "ROOM",
         .summary = "Nobody is called; people keep their place",
         .details = "Prints the mode before and after: sale: mode auto -> paused\n",
         .min_args = 1, .max_args = 1, .run = cmd_mode},
        {.name = "resume", .synopsis = "ROOM",
         .summary = "Mode auto: calls at the rate, lets in while there is room",
         .details = "Prints the mode before and after: sale: mode paused -> auto\n",
         .min_args = 1, .max_args = 1, .run = cmd_mode},
        {.name = "queue-all", .synopsis = "ROOM",
         .summary = "Everyone queues, even when there is room",
         .details = "Before a sale opens: early arrivals queue in arrival order until `resume`.\n",
         .min_args = 1, .max_args = 1, .run = cmd_mode},
        {.name = "close", .synopsis = "ROOM",
         .summary = "The closed page; no new tickets",
         .details = "Prints the mode before and after: sale: mode auto -> closed\n",
         .min_args = 1, .max_args = 1, .run = cmd_mode},
        {.name = "create-room", .synopsis = "FILE.json",
         .summary = "A room at run time from a JSON definition ('-': stdin)",
         .details = "The definition is a room as in the config file plus its name, e.g.\n"
                    "  {\"name\": \"concert\", \"match\": {\"paths\": [\"/concert\"]},\n"
                    "   \"admission\": {\"rate\": 20, \"max_active\": 500}, \"mode\": \"queue_all\"}\n",
         .min_args = 1, .max_args = 1, .run = cmd_create_room},
        {.name = "delete-room", .synopsis = "ROOM",
         .summary = "Removes a room created at run time",
         .details = "Rooms from the config file are removed there, then `floodgatectl reload`.\n",
         .min_args = 1, .max_args = 1, .run = cmd_delete_room},
        {.name = "rotate-keys", .synopsis = "",
         .summary = "A new token signing key; older keys keep verifying",
         .run = cmd_rotate_keys},
        {.name = "reload", .synopsis = "",
         .summary = "Re-reads the config file; a bad one is refused",
         .details = "Runtime changes (set, pause, ...) still win over the file, field by field.\n",
         .run = cmd_reload},
        {.name = "audit", .synopsis = "[--limit N]",
         .summary = "The newest changes: who, what, before -> after",
         .details = "One line a change, oldest first: time (UTC), token name, action, room, what\n"
                    "changed. --limit N: the newest N (default 100).\n",
         .options = {"--limit"}, .run = cmd_audit},
        {.name = "watch", .synopsis = "ROOM [--count N]",
         .summary = "One line a second: queue, flow vs rate, p99, light",
         .details = "Follows the admin API's event stream until Ctrl-C, or for N lines. Changes to\n"
                    "the room are shown as they happen, indented.\n"
                    "example: floodgatectl watch sale\n",
         .options = {"--count"}, .min_args = 1, .max_args = 1, .run = cmd_watch},
        {.name = "metrics", .synopsis = "",
         .summary = "The Prometheus metrics, as they are",
         .run = cmd_metrics},
        {.name = "help", .synopsis = "[COMMAND]",
         .summary = "This text, or one command's",
         .max_args = 1, .run = cmd_help},
    };
    return list;
}
// clang-format on

int run(int argc, char** argv) {
    std::vector<std::string> raw(argv + 1, argv + argc);
    auto parsed = parse_cli_args(raw, process_env());
    if (auto* e = std::get_if<usage_error>(&parsed)) {
        if (e->command.empty()) {
            std::cerr << "floodgatectl: " << e->message << "\n";
            return exit_usage;
        }
        return usage(e->message, find_command(e->command));
    }
    cli_args& args = std::get<cli_args>(parsed);
    if (args.command.empty()) {
        if (args.help) {
            std::cout << global_usage();
            return exit_ok;
        }
        return usage("no command given", nullptr);
    }
    const command_spec* cmd = find_command(args.command);
    if (!cmd) return usage(text::cat("no command named \"", args.command, "\""), nullptr);
    if (args.help) {
        std::cout << command_usage(*cmd);
        return exit_ok;
    }
    for (const auto& [name, value] : args.options) {
        bool allowed = false;
        for (auto o : cmd->options) allowed = allowed || o == name;
        if (!allowed) return usage(text::cat(cmd->name, " has no option ", name), cmd);
    }
    if (args.args.size() < cmd->min_args)
        return usage(text::cat("missing arguments: ", cmd->name, " ", cmd->synopsis), cmd);
    if (args.args.size() > cmd->max_args) return usage("too many arguments", cmd);
    context c{*cmd, args, admin_client(args.admin, args.token)};
    return cmd->run(c);
}

}  // namespace

}  // namespace floodgate::ctl

int main(int argc, char** argv) {
    try {
        return floodgate::ctl::run(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "floodgatectl: " << e.what() << "\n";
        return 1;
    }
}
