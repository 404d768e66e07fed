#include "upstream_pool.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cerrno>
#include <tuple>

namespace floodgate {

namespace {

// True when the server has neither closed an idle connection nor sent
// anything unasked on it (both mean: do not reuse).
bool still_open(stream& s) {
    char c;
    const ssize_t n = ::recv(s.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

tcp::socket make_socket(net::any_io_executor ex) { return tcp::socket(std::move(ex)); }

}  // namespace

upstream_connection::upstream_connection(net::any_io_executor ex, const upstream_group& g,
                                         std::size_t server_index, const generation* gn)
    : s(g.tls ? stream(make_socket(ex), *g.tls) : stream(make_socket(ex))),
      group(&g),
      server(server_index),
      gen(gn) {}

void upstream_pool::reset(const generation* gen) {
    gen_ = gen;
    idle_.clear();
    idle_.resize(gen->upstreams.size());
    for (std::size_t i = 0; i < gen->upstreams.size(); ++i)
        idle_[i].resize(gen->upstreams[i]->servers.size());
}

std::unique_ptr<upstream_connection> upstream_pool::take_idle(const upstream_group& g,
                                                              std::size_t server,
                                                              steady_clock::time_point now) {
    if (g.index >= idle_.size()) return nullptr;
    auto& idle = idle_[g.index][server];
    while (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        const auto idle_for = now - c->idle_since;
        // A peek costs a system call per request; a connection idle for less
        // than a second is almost never closed by the server, and a stale one
        // is retried on a fresh connection anyway (for requests without a body).
        if (idle_for < g.cfg.idle_timeout && (idle_for < std::chrono::seconds(1) || still_open(c->s))) {
            c->reused = true;
            return c;
        }
    }
    return nullptr;
}

std::unique_ptr<upstream_connection> upstream_pool::take_pooled(const upstream_group& g, std::size_t& server) {
    if (g.servers.empty()) return nullptr;
    const auto now = coarse_now();
    server = g.pick(now);
    return take_idle(g, server, now);
}

net::awaitable<acquire_result> upstream_pool::acquire(const upstream_group& g, bool allow_pooled,
                                                      std::optional<std::size_t> first_server) {
    acquire_result result;
    const auto now = steady_clock::now();
    for (std::size_t attempt = 0; attempt < g.servers.size(); ++attempt) {
        const std::size_t i = attempt == 0 && first_server ? *first_server : g.pick(now);
        if (allow_pooled && g.servers.size() > 0) {
            if (auto c = take_idle(g, i, now)) {
                result.conn = std::move(c);
                co_return result;
            }
        }
        auto c = std::make_unique<upstream_connection>(ex_, g, i, gen_);
        auto& server = *g.servers[i];
        // One deadline for trying every address of the server in turn.
        c->s.expires_after(g.cfg.connect_timeout);
        error_code ec = net::error::not_found;
        for (const tcp::endpoint& ep : server.addresses) {
            if (c->s.socket().is_open()) c->s.socket().close(ec);
            std::tie(ec) = co_await c->s.async_connect(ep, use_nothrow);
            if (!ec || ec == beast::error::timeout) break;
        }
        if (!ec) c->s.set_tcp_options();
        if (!ec && g.tls) {
            const std::string& name = g.cfg.tls.server_name.empty() ? g.cfg.servers[i].host
                                                                   : g.cfg.tls.server_name;
            SSL_set_tlsext_host_name(c->s.tls().native_handle(), name.c_str());
            if (g.cfg.tls.verify) c->s.tls().set_verify_callback(ssl::host_name_verification(name));
            std::tie(ec) = co_await c->s.async_handshake(ssl::stream_base::client, use_nothrow);
        }
        if (!ec) {
            server.record_success();
            result.conn = std::move(c);
            result.timed_out = false;
            co_return result;
        }
        result.timed_out = ec == beast::error::timeout;
        if (server.record_failure(steady_clock::now(), g.cfg))
            spdlog::warn("upstream {} server {} failed {} times in a row ({}); skipping it for {}ms",
                         g.cfg.name, server.label, g.cfg.max_fails, ec.message(),
                         g.cfg.fail_timeout.count());
        else
            spdlog::debug("upstream {} server {}: {}", g.cfg.name, server.label, ec.message());
    }
    co_return result;
}

void upstream_pool::release(std::unique_ptr<upstream_connection> c) {
    if (closed_ || c->gen != gen_ || c->buffer.size() != 0) return;
    const auto& g = *c->group;
    if (g.index >= idle_.size()) return;
    auto& idle = idle_[g.index][c->server];
    if (idle.size() >= g.cfg.pool_size) return;
    c->idle_since = coarse_now();
    idle.push_back(std::move(c));
}

void upstream_pool::sweep() {
    if (!gen_) return;
    const auto now = steady_clock::now();
    for (std::size_t gi = 0; gi < idle_.size(); ++gi) {
        const auto& cfg = gen_->upstreams[gi]->cfg;
        for (auto& idle : idle_[gi]) {
            std::erase_if(idle, [&](const std::unique_ptr<upstream_connection>& c) {
                return now - c->idle_since >= cfg.idle_timeout || !still_open(c->s);
            });
        }
    }
}

void upstream_pool::close_all() {
    closed_ = true;
    idle_.clear();
}

}  // namespace floodgate
