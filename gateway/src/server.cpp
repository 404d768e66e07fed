#include "server.hpp"

#include "tokenstore/redis/redis_url.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <openssl/rand.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>

#include "tokenstore/base64url.hpp"

#include "gateway/text.hpp"
#include "stream.hpp"

namespace floodgate {

namespace {

using reuse_port = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

absl::StatusOr<tcp::endpoint> resolve_one(const endpoint& ep) {
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    error_code ec;
    auto results = resolver.resolve(ep.host, std::to_string(ep.port),
                                    tcp::resolver::numeric_service | tcp::resolver::passive, ec);
    if (ec || results.empty())
        return absl::InvalidArgumentError(text::cat("cannot resolve ", ep.to_string(), ": ", ec.message()));
    return results.begin()->endpoint();
}

absl::StatusOr<tcp::acceptor> make_acceptor(net::io_context& ioc, const tcp::endpoint& ep, bool share) {
    tcp::acceptor a(ioc);
    error_code ec;
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec && share) a.set_option(reuse_port(true), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
        std::ostringstream where;
        where << ep;
        return absl::UnavailableError(text::cat("cannot listen on ", where.str(), ": ", ec.message()));
    }
    return a;
}

spdlog::level::level_enum level_of(const std::string& name) { return spdlog::level::from_str(name); }

}  // namespace

server::server(server_options opts) : opts_(std::move(opts)) {}

server::~server() {
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

absl::Status server::bind_listeners(const config& cfg) {
    for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
        auto l = std::make_unique<listener_state>();
        l->index = i;
        l->cfg = cfg.listeners[i];
        const std::string where = text::cat("listen[", i, "]");
        if (l->cfg.tls) {
            auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
            ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                             ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                             ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
            error_code ec;
            ctx->use_certificate_chain_file(l->cfg.tls->cert_file, ec);
            if (ec)
                return absl::InvalidArgumentError(text::cat(where, ".tls.cert: cannot load ",
                                                            l->cfg.tls->cert_file, ": ", ec.message()));
            ctx->use_private_key_file(l->cfg.tls->key_file, ssl::context::pem, ec);
            if (ec)
                return absl::InvalidArgumentError(text::cat(where, ".tls.key: cannot load ",
                                                            l->cfg.tls->key_file, ": ", ec.message()));
            l->tls = std::move(ctx);
        }
        auto ep = resolve_one(l->cfg.address);
        if (!ep.ok()) return absl::InvalidArgumentError(text::cat(where, ": ", std::string(ep.status().message())));
        tcp::endpoint bind_to = *ep;
        for (auto& w : workers_) {
            auto a = make_acceptor(w->ioc(), bind_to, /*share=*/true);
            if (!a.ok()) return absl::UnavailableError(text::cat(where, ": ", std::string(a.status().message())));
            // With port 0 the first bind picks the port; the others share it.
            bind_to = a->local_endpoint();
            w->add_acceptor(*l, std::move(*a));
        }
        l->bound = bind_to;
        listeners_.push_back(std::move(l));
    }
    if (cfg.admin.enabled) {
        auto ep = resolve_one(cfg.admin.address);
        if (!ep.ok()) return absl::InvalidArgumentError(text::cat("admin: ", std::string(ep.status().message())));
        auto a = make_acceptor(main_ioc_, *ep, /*share=*/false);
        if (!a.ok()) return absl::UnavailableError(text::cat("admin: ", std::string(a.status().message())));
        admin_endpoint_ = a->local_endpoint();
        admin_ = std::make_unique<admin_server>(main_ioc_, std::move(*a), *this,
                                                cfg.state_dir.empty() ? std::string()
                                                                      : cfg.state_dir + "/admin/audit.log");
    }
    return absl::OkStatus();
}

absl::Status server::write_ports_file() const {
    if (opts_.ports_file.empty()) return absl::OkStatus();
    std::ostringstream out;
    for (const auto& l : listeners_) out << "listen " << l->index << " " << l->bound << "\n";
    if (admin_) out << "admin " << admin_endpoint_ << "\n";
    const std::string tmp = opts_.ports_file + ".tmp";
    {
        std::ofstream f(tmp, std::ios::trunc);
        f << out.str();
        if (!f) return absl::InternalError(text::cat("cannot write ", tmp));
    }
    if (std::rename(tmp.c_str(), opts_.ports_file.c_str()) != 0)
        return absl::InternalError(text::cat("cannot rename ", tmp, " to ", opts_.ports_file));
    return absl::OkStatus();
}

// Token keys: keys_file if configured, else <state_dir>/token-keys (made on
// first start, mode 0600), else a random key kept in memory only, which
// means tickets and passes do not survive a restart.
absl::Status server::load_keys(const config& cfg) {
    std::string path = cfg.keys_file;
    if (path.empty() && !cfg.state_dir.empty()) {
        ::mkdir(cfg.state_dir.c_str(), 0700);
        path = cfg.state_dir + "/token-keys";
    }
    if (!path.empty()) {
        auto ring = tokenstore::key_ring::load_or_generate(path);
        if (!ring.ok()) return ring.status();
        keys_ = std::move(*ring);
        return absl::OkStatus();
    }
    if (!cfg.rooms.empty())
        spdlog::warn("no state_dir or keys_file: token keys live in memory, so tickets and passes "
                     "do not survive a restart");
    unsigned char secret[32];
    if (RAND_bytes(secret, sizeof secret) != 1) return absl::InternalError("RAND_bytes failed");
    std::string text = "m1 ";
    tokenstore::base64url::encode(secret, sizeof secret, text);
    auto ring = tokenstore::key_ring::parse(text, "(generated key)");
    if (!ring.ok()) return ring.status();
    keys_ = std::move(*ring);
    return absl::OkStatus();
}

absl::Status server::load_tokens(const config& cfg) {
    if (!cfg.admin.enabled) {
        tokens_ = std::make_shared<const admin_tokens>();
        return absl::OkStatus();
    }
    auto t = admin_tokens::load(cfg.admin);
    if (!t.ok()) return t.status();
    if ((*t)->empty())
        spdlog::warn("admin API: no tokens (set admin.tokens_file or ${}); every request but /healthz and "
                     "/readyz gets 401",
                     cfg.admin.tokens_env);
    tokens_ = std::move(*t);
    return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const generation>> server::build_effective(std::shared_ptr<const config> file_cfg) {
    std::vector<std::string> warnings;
    auto eff = runtime_.effective(*file_cfg, &warnings);
    if (!eff.ok()) return eff.status();
    for (const auto& w : warnings) spdlog::warn("{}", w);
    return build_generation(std::make_shared<const config>(std::move(*eff)), rooms_, keys_);
}

void server::install(std::shared_ptr<const generation> gen) {
    gen_ = std::move(gen);
    for (auto& w : workers_)
        net::post(w->ioc(), [wp = w.get(), g = gen_] { wp->set_generation(g); });
}

absl::Status server::apply_runtime() {
    auto gen = build_effective(file_cfg_);
    if (!gen.ok()) return gen.status();
    install(*gen);
    // Rooms shared with other nodes: changed settings go to them too.
    for (const auto& r : rooms_.list()) {
        if (!r->shared()) continue;
        const room_overrides* o = runtime_.overrides(r->name());
        std::string s = overrides_to_json(o ? *o : room_overrides{});
        // A room this node has not heard about yet counts as having none, so a node that just
        // started never overwrites the others' settings with its own empty ones.
        auto [it, fresh] = shared_settings_.try_emplace(r->name(), overrides_to_json(room_overrides{}));
        if (it->second == s) continue;
        it->second = s;
        r->shared()->publish_settings(std::move(s));
    }
    return absl::OkStatus();
}

void server::apply_remote_settings(const std::string& room, const std::string& settings) {
    if (auto it = shared_settings_.find(room); it != shared_settings_.end() && it->second == settings) return;
    auto o = overrides_from_json_text(settings, "settings of room " + room + " from Redis");
    if (!o.ok()) {
        spdlog::warn("{}", std::string(o.status().message()));
        return;
    }
    const room_overrides* cur = runtime_.overrides(room);
    const room_overrides previous = cur ? *cur : room_overrides{};
    shared_settings_[room] = settings;
    if (auto st = runtime_.set_overrides(room, *o); !st.ok()) {
        spdlog::warn("room {}: settings from another node: {}", room, std::string(st.message()));
        return;
    }
    if (auto st = apply_runtime(); !st.ok()) {
        (void)runtime_.set_overrides(room, previous);
        spdlog::warn("room {}: settings from another node not applied: {}", room, std::string(st.message()));
        return;
    }
    spdlog::info("room {}: settings changed on another node applied: {}", room, settings);
}

void server::announce_room(const std::string& room, std::optional<std::string> definition) {
    if (!rooms_catalog_) return;
    if (definition) {
        rooms_catalog_->set(room, *definition);
        return;
    }
    rooms_catalog_->erase(room);
    // A room of the same name made later starts with the settings of its own definition.
    store_->command({"DEL", "fg:{" + room + "}:config"}, [](error_code, tokenstore::redis::redis_reply) {});
}

absl::StatusOr<std::string> server::rotate_keys() {
    if (!keys_catalog_) return keys_->rotate();
    // Several nodes: the key verifies here now; every node (this one too) signs with it once it
    // has read it back from Redis and 2 s have passed, so no node sees a kid it does not know.
    auto made = keys_->generate();
    if (!made.ok()) return made.status();
    if (auto st = keys_->add_verifying(made->first, made->second); !st.ok())
        spdlog::warn("token key {}: {}; it is kept in memory and in Redis", made->first, std::string(st.message()));
    keys_catalog_->set(made->first, text::cat(tokenstore::wall_clock_ms(), " ", made->second));
    spdlog::info("token key {} made; every node signs with it about 2 s after Redis has it", made->first);
    return made->first;
}

void server::learn_shared_key(const std::string& kid, const std::string& value) {
    const std::size_t sp = value.find(' ');
    std::uint64_t made_at = 0;
    if (sp == std::string::npos || !text::parse_u64(std::string_view(value).substr(0, sp), made_at)) {
        spdlog::warn("token key {} in Redis is not \"<unix ms> <secret>\"; ignored", kid);
        return;
    }
    if (auto st = keys_->add_verifying(kid, std::string_view(value).substr(sp + 1));
        !st.ok() && st.code() != absl::StatusCode::kAlreadyExists) {
        spdlog::warn("token key {} from another node: {}", kid, std::string(st.message()));
        if (!keys_->find(kid)) return;
    }
    shared_keys_[kid] = value;
    sign_timer_.expires_after(std::chrono::seconds(2));
    sign_timer_.async_wait([this](error_code ec) {
        if (ec) return;
        // The newest key rotated through any node signs (by the time it was made).
        std::string newest;
        std::uint64_t newest_at = 0;
        for (const auto& [k, v] : shared_keys_) {
            std::uint64_t at = 0;
            if (text::parse_u64(std::string_view(v).substr(0, v.find(' ')), at) && at >= newest_at) {
                newest_at = at;
                newest = k;
            }
        }
        if (newest.empty() || keys_->signing_key().kid() == newest) return;
        if (keys_->sign_with(newest)) spdlog::info("token key {} signs from now on", newest);
    });
}

void server::add_remote_room(const std::string& room, const std::string& definition) {
    if (file_cfg_->find_room(room)) {
        spdlog::warn("room {}: created at run time on another node, but this node's config file has a room of "
                     "that name; the file's room is served here",
                     room);
        return;
    }
    if (auto st = runtime_.add_room(room, definition); !st.ok())
        spdlog::warn("room {}: created on another node; not saved here: {}", room, std::string(st.message()));
    if (auto st = apply_runtime(); !st.ok()) {
        (void)runtime_.remove_room(room);
        spdlog::warn("room {}: created on another node; not served here: {}", room, std::string(st.message()));
        return;
    }
    spdlog::info("room {}: created at run time on another node; served here too", room);
}

void server::remove_remote_room(const std::string& room) {
    if (!runtime_.is_runtime_room(room)) return;
    if (auto st = runtime_.remove_room(room); !st.ok())
        spdlog::warn("room {}: deleted on another node; not saved here: {}", room, std::string(st.message()));
    if (auto st = apply_runtime(); !st.ok()) {
        spdlog::warn("room {}: deleted on another node; still served here: {}", room, std::string(st.message()));
        return;
    }
    rooms_.remove(room);
    shared_settings_.erase(room);
    spdlog::info("room {}: deleted on another node; no longer served here", room);
}

void server::watch_store() {
    const auto st = store_->status();
    if (!st.primary.empty() && st.primary != store_primary_) {
        if (store_primary_.empty()) spdlog::info("shared store: using the Redis node at {}", st.primary);
        else spdlog::warn("shared store: moved from the Redis node at {} to {} (a failover)", store_primary_, st.primary);
        store_primary_ = st.primary;
    }
    store_watch_.expires_after(std::chrono::seconds(1));
    store_watch_.async_wait([this](error_code ec) {
        if (!ec) watch_store();
    });
}

absl::Status server::start(std::shared_ptr<const config> cfg) {
    spdlog::set_level(level_of(cfg->log_level));
    if (auto st = load_keys(*cfg); !st.ok()) return st;
    if (auto st = load_tokens(*cfg); !st.ok()) return st;
    {
        if (!cfg->state_dir.empty()) ::mkdir(cfg->state_dir.c_str(), 0700);
        auto rt = runtime_state::open(cfg->state_dir.empty() ? std::string() : cfg->state_dir + "/admin");
        if (!rt.ok()) return rt.status();
        runtime_ = std::move(*rt);
    }
    if (cfg->shared_store()) {
        auto url = tokenstore::redis::parse_redis_url(cfg->store);
        if (!url.ok()) return absl::InvalidArgumentError("store: " + std::string(url.status().message()));
        const std::string node = effective_node_id(*cfg);
        // The node's id on every log line, so that merged logs of several nodes stay readable.
        spdlog::default_logger()->set_pattern("%Y-%m-%dT%H:%M:%S.%e " + node + " %l %v");
        // On the main thread's io_context: Redis I/O never runs on an I/O thread.
        store_ = tokenstore::redis::redis_connection::create(main_ioc_.get_executor(), *url);
        store_->start();
        rooms_.set_shared_store({.conn = store_,
                                 .node_id = node,
                                 .on_failure = cfg->store_failure,
                                 // On the connection's strand, i.e. this (the main) thread.
                                 .on_settings = [this](const std::string& room, const std::string& s) {
                                     apply_remote_settings(room, s);
                                 }});
        rooms_catalog_ = shared_catalog::create(
            store_, "rooms",
            {.local = [this] { return runtime_.runtime_rooms(); },
             .add = [this](const std::string& room, const std::string& def) { add_remote_room(room, def); },
             .remove = [this](const std::string& room) { remove_remote_room(room); },
             .announced = [](const std::string& room, bool created) {
                 spdlog::info("room {}: {}, announced to every node", room, created ? "created" : "deleted");
             }});
        keys_catalog_ = shared_catalog::create(
            store_, "keys",
            {.local = [this] { return shared_keys_; },
             .add = [this](const std::string& kid, const std::string& v) { learn_shared_key(kid, v); },
             .remove = [](const std::string&) {}});  // keys are never taken out of a running ring
        spdlog::info("rooms are shared through Redis at {} as node {}; store_failure: {}",
                     tokenstore::redis::describe(*url), node, to_string(cfg->store_failure));
    }
    rooms_.start(cfg->state_dir);
    file_cfg_ = cfg;
    auto gen = build_effective(cfg);
    if (!gen.ok()) return gen.status();
    gen_ = *gen;
    if (rooms_catalog_) {
        rooms_catalog_->start();
        keys_catalog_->start();
        net::post(main_ioc_, [this] { watch_store(); });
    }
    if (auto st = access_log_.open(cfg->access_log); !st.ok()) return st;

    unsigned n = cfg->threads ? cfg->threads : std::max(1u, std::thread::hardware_concurrency());
    metrics_ = std::make_unique<metrics_hub>(n);
    for (unsigned i = 0; i < n; ++i) {
        workers_.push_back(std::make_unique<worker>(i, access_log_, *metrics_));
        workers_.back()->set_generation(gen_);
    }
    if (auto st = bind_listeners(*cfg); !st.ok()) return st;
    if (auto st = write_ports_file(); !st.ok()) return st;

    for (auto& w : workers_) w->start();
    if (admin_)
        if (auto st = admin_->start(); !st.ok()) return st;
    running_ = workers_.size();
    for (auto& w : workers_) {
        threads_.emplace_back([this, wp = w.get()] {
            wp->ioc().run();
            running_.fetch_sub(1);
        });
    }
    for (const auto& l : listeners_) {
        std::ostringstream where;
        where << l->bound;
        spdlog::info("listening on {}{} with {} threads", where.str(), l->tls ? " (TLS)" : "", n);
    }
    if (admin_) {
        std::ostringstream where;
        where << admin_endpoint_;
        spdlog::info("admin listener on {}", where.str());
    }
    return absl::OkStatus();
}

absl::Status server::reload() {
    auto fail = [](const absl::Status& st) {
        spdlog::error("reload failed, keeping the running configuration: {}", std::string(st.message()));
        return st;
    };
    auto c = load_config_file(opts_.config_path);
    if (!c.ok()) return fail(c.status());
    auto cfg = std::make_shared<const config>(std::move(*c));
    auto tokens = cfg->admin.enabled ? admin_tokens::load(cfg->admin)
                                     : absl::StatusOr<std::shared_ptr<const admin_tokens>>(
                                           std::make_shared<const admin_tokens>());
    if (!tokens.ok()) return fail(tokens.status());
    auto gen = build_effective(cfg);
    if (!gen.ok()) return fail(gen.status());
    const auto& old = *file_cfg_;
    if (cfg->listeners.size() != old.listeners.size() || cfg->threads != old.threads ||
        cfg->admin.address.to_string() != old.admin.address.to_string() || cfg->state_dir != old.state_dir)
        spdlog::warn("reload: changes to listen, admin, threads and state_dir take effect after a restart");
    spdlog::set_level(level_of(cfg->log_level));
    file_cfg_ = cfg;
    tokens_ = std::move(*tokens);
    install(*gen);
    spdlog::info("configuration reloaded from {}", opts_.config_path);
    return absl::OkStatus();
}

net::awaitable<void> server::signal_loop() {
    for (;;) {
        auto [ec, sig] = co_await signals_.async_wait(use_nothrow);
        if (ec) co_return;
        if (sig == SIGHUP) {
            (void)reload();
            continue;
        }
        spdlog::info("signal {}: shutting down (grace {}ms)", sig,
                     gen_->cfg->timeouts.shutdown_grace.count());
        co_await shutdown();
        co_return;
    }
}

net::awaitable<void> server::shutdown() {
    stopping_ = true;
    // Hand every cursor lease over now: another node calls on without waiting for it to expire.
    for (const auto& r : rooms_.list()) r->leave_shared();
    if (admin_) admin_->stop();
    for (auto& w : workers_) net::post(w->ioc(), [wp = w.get()] { wp->begin_shutdown(); });
    const auto deadline = steady_clock::now() + gen_->cfg->timeouts.shutdown_grace;
    bool forced = false;
    net::steady_timer t(main_ioc_);
    while (running_.load() > 0) {
        if (!forced && steady_clock::now() >= deadline) {
            spdlog::warn("shutdown grace period over; closing the remaining connections");
            for (auto& w : workers_) net::post(w->ioc(), [wp = w.get()] { wp->force_close(); });
            forced = true;
        }
        t.expires_after(std::chrono::milliseconds(20));
        co_await t.async_wait(use_nothrow);
    }
    if (store_) {
        // Let the lease hand-over reach Redis before the main loop ends.
        t.expires_after(std::chrono::milliseconds(50));
        co_await t.async_wait(use_nothrow);
        rooms_catalog_->stop();
        keys_catalog_->stop();
        sign_timer_.cancel();
        store_watch_.cancel();
        store_->stop();
    }
    main_ioc_.stop();
}

int server::run() {
    auto c = load_config_file(opts_.config_path);
    if (!c.ok()) {
        std::fprintf(stderr, "floodgate: %s\n", std::string(c.status().message()).c_str());
        return 1;
    }
    auto cfg = std::make_shared<const config>(std::move(*c));
    if (auto st = start(cfg); !st.ok()) {
        std::fprintf(stderr, "floodgate: %s\n", std::string(st.message()).c_str());
        stopping_ = true;
        for (auto& w : workers_) {
            net::post(w->ioc(), [wp = w.get()] { wp->begin_shutdown(); });
            w->ioc().stop();
        }
        return 1;
    }
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    signals_.add(SIGHUP);
    net::co_spawn(main_ioc_, signal_loop(), net::detached);
    main_ioc_.run();
    for (auto& t : threads_) t.join();
    threads_.clear();
    access_log_.flush();
    spdlog::info("stopped");
    return 0;
}

}  // namespace floodgate
