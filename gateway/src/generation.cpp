#include "generation.hpp"

#include <spdlog/spdlog.h>

#include <fstream>
#include <limits>
#include <sstream>

#include "access_log.hpp"
#include "dashboard/assets.hpp"

#include "gateway/text.hpp"

namespace floodgate {

bool upstream_server::record_failure(steady_clock::time_point now, const upstream_config& cfg) {
    const auto fails = consecutive_fails.fetch_add(1, std::memory_order_relaxed) + 1;
    if (fails < cfg.max_fails) return false;
    consecutive_fails.store(0, std::memory_order_relaxed);
    const auto until = now + std::chrono::duration_cast<steady_clock::duration>(cfg.fail_timeout);
    ejected_until_ns.store(until.time_since_epoch().count(), std::memory_order_relaxed);
    return true;
}

std::size_t upstream_group::pick(steady_clock::time_point now) const {
    const std::size_t n = servers.size();
    const std::size_t start = next.fetch_add(1, std::memory_order_relaxed) % n;
    std::size_t soonest = start;
    std::int64_t soonest_ns = std::numeric_limits<std::int64_t>::max();
    for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = (start + k) % n;
        if (!servers[i]->ejected(now)) return i;
        const auto ns = servers[i]->ejected_until_ns.load(std::memory_order_relaxed);
        if (ns < soonest_ns) {
            soonest_ns = ns;
            soonest = i;
        }
    }
    return soonest;
}

const upstream_group* generation::find_upstream(std::string_view name) const {
    for (const auto& u : upstreams)
        if (u->cfg.name == name) return u.get();
    return nullptr;
}

const room_binding* generation::find_room(std::string_view name) const {
    for (const auto& r : rooms)
        if (r.cfg->name == name) return &r;
    return nullptr;
}

absl::StatusOr<std::shared_ptr<const generation>> build_generation(
    std::shared_ptr<const config> cfg, room_registry& registry,
    std::shared_ptr<tokenstore::key_ring> keys) {
    auto gen = std::make_shared<generation>();
    gen->cfg = cfg;
    gen->keys = std::move(keys);
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    for (const auto& uc : cfg->upstreams) {
        auto g = std::make_unique<upstream_group>();
        g->index = gen->upstreams.size();
        g->cfg = uc;
        for (const auto& ep : uc.servers) {
            auto s = std::make_unique<upstream_server>();
            s->label = ep.to_string();
            error_code ec;
            auto results = resolver.resolve(ep.host, std::to_string(ep.port),
                                            tcp::resolver::numeric_service, ec);
            if (ec)
                return absl::InvalidArgumentError(text::cat("upstreams.", uc.name, ": cannot resolve ",
                                                            s->label, ": ", ec.message()));
            for (const auto& r : results) s->addresses.push_back(r.endpoint());
            g->servers.push_back(std::move(s));
        }
        if (uc.tls.enabled) {
            auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
            ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                             ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
            error_code ec;
            if (!uc.tls.ca_file.empty()) {
                ctx->load_verify_file(uc.tls.ca_file, ec);
                if (ec)
                    return absl::InvalidArgumentError(text::cat("upstreams.", uc.name, ".tls.ca: cannot load ",
                                                                uc.tls.ca_file, ": ", ec.message()));
            } else {
                ctx->set_default_verify_paths(ec);
            }
            ctx->set_verify_mode(uc.tls.verify ? ssl::verify_peer : ssl::verify_none);
            g->tls = std::move(ctx);
        }
        gen->upstreams.push_back(std::move(g));
    }
    if (!cfg->default_upstream.empty()) gen->default_upstream = gen->find_upstream(cfg->default_upstream);

    const auto* builtin = dashboard::find_asset("waiting.html");
    const millis now = tokenstore::wall_clock_ms();
    for (std::size_t i = 0; i < cfg->rooms.size(); ++i) {
        const room_config& rc = cfg->rooms[i];
        room_binding b;
        b.cfg = &rc;
        b.upstream = gen->find_upstream(rc.upstream);
        b.pass_cookie = text::cat("fg_pass_", rc.name);
        b.ticket_cookie = text::cat("fg_ticket_", rc.name);
        b.status_head = "{\"room\":";
        append_json_string(b.status_head, rc.name);
        b.status_head += ",\"state\":\"";
        if (!rc.page_template.empty()) {
            std::ifstream in(rc.page_template, std::ios::binary);
            if (!in)
                return absl::InvalidArgumentError(text::cat("rooms.", rc.name, ".page.template: cannot read ",
                                                            rc.page_template));
            std::ostringstream ss;
            ss << in.rdbuf();
            b.page_template = ss.str();
        } else if (builtin) {
            b.page_template = std::string(builtin->data);
        }
        auto rt = registry.get_or_create(rc, now);
        if (!rt.ok())
            return absl::InvalidArgumentError(text::cat("rooms.", rc.name, ": ", std::string(rt.status().message())));
        b.rt = *rt;
        room_match m;
        m.hosts = rc.hosts;
        m.prefixes = rc.paths;
        m.exact = rc.exact;
        m.methods = rc.methods;
        m.case_insensitive = rc.case_insensitive;
        if (auto e = gen->routes.add(i, std::move(m)); e != path::path_error::ok)
            return absl::InvalidArgumentError(text::cat("rooms.", rc.name, ".match: a path is not valid (",
                                                        path::to_string(e), ")"));
        gen->rooms.push_back(std::move(b));
    }
    return std::shared_ptr<const generation>(std::move(gen));
}

}  // namespace floodgate
