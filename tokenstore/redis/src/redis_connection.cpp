#include "tokenstore/redis/redis_connection.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <random>
#include <utility>

namespace floodgate::tokenstore::redis {

namespace {

class redis_category_impl : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "redis"; }
    std::string message(int ev) const override {
        switch (static_cast<redis_errc>(ev)) {
        case redis_errc::not_connected: return "not connected to redis";
        case redis_errc::timed_out: return "redis command timed out";
        case redis_errc::connection_lost: return "redis connection lost";
        case redis_errc::protocol: return "redis protocol error";
        case redis_errc::stopped: return "redis connection stopped";
        case redis_errc::overloaded: return "too many redis commands in flight";
        case redis_errc::not_primary: return "the redis node is not the primary";
        case redis_errc::no_primary: return "the sentinel named no primary";
        }
        return "unknown redis error";
    }
};

redis_reply convert(const redisReply* r) {
    redis_reply out;
    switch (r->type) {
    case REDIS_REPLY_STRING:
        out.type = redis_reply::kind::string;
        out.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_STATUS:
        out.type = redis_reply::kind::status;
        out.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_ERROR:
        out.type = redis_reply::kind::error;
        out.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        out.type = redis_reply::kind::integer;
        out.integer = r->integer;
        break;
    case REDIS_REPLY_ARRAY:
        out.type = redis_reply::kind::array;
        out.elements.reserve(r->elements);
        for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
        break;
    default: out.type = redis_reply::kind::nil; break;
    }
    return out;
}

// The answer to SENTINEL get-master-addr-by-name: [host, port], or nil for an unknown name.
std::optional<redis_connection::address> primary_address(const redis_reply& r) {
    if (r.type != redis_reply::kind::array || r.elements.size() != 2 ||
        !r.elements[0].is_string() || !r.elements[1].is_string()) {
        return std::nullopt;
    }
    const std::string& p = r.elements[1].str;
    unsigned port = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || end != p.data() + p.size() || port == 0 || port > 65535)
        return std::nullopt;
    return redis_connection::address{r.elements[0].str, static_cast<std::uint16_t>(port)};
}

}  // namespace

std::string to_string(const redis_connection::address& a) {
    if (a.host.find(':') != std::string::npos) return "[" + a.host + "]:" + std::to_string(a.port);
    return a.host + ":" + std::to_string(a.port);
}

const boost::system::error_category& redis_category() noexcept {
    static const redis_category_impl cat;
    return cat;
}

std::shared_ptr<redis_connection> redis_connection::create(net::any_io_executor ex, options opts) {
    return std::shared_ptr<redis_connection>(new redis_connection(std::move(ex), std::move(opts)));
}

redis_connection::redis_connection(net::any_io_executor ex, options opts)
    : opts_(std::move(opts)),
      strand_(net::make_strand(ex)),
      socket_(strand_),
      resolver_(strand_),
      retry_timer_(strand_),
      watchdog_(strand_),
      connect_timer_(strand_),
      check_timer_(strand_),
      reader_(redisReaderCreate()),
      in_(16 * 1024),
      backoff_(opts_.backoff_min) {}

redis_connection::~redis_connection() {
    if (reader_ != nullptr) redisReaderFree(reader_);
}

void redis_connection::start() {
    net::post(strand_, [self = shared_from_this()] {
        if (self->stopped_) return;
        self->do_connect();
        self->do_watchdog();
    });
}

void redis_connection::stop() {
    net::post(strand_, [self = shared_from_this()] {
        if (self->stopped_) return;
        self->stopped_ = true;
        self->connected_ = false;
        self->ready_ = false;
        ++self->attempt_;
        error_code ignored;
        self->socket_.close(ignored);
        self->resolver_.cancel();
        self->retry_timer_.cancel();
        self->watchdog_.cancel();
        self->connect_timer_.cancel();
        self->check_timer_.cancel();
        if (self->check_) self->check_->stop();
        self->fail_all(redis_errc::stopped);
        self->set_state(state::down, {});
    });
}

void redis_connection::command(std::vector<std::string> args, handler h) {
    net::post(strand_,
              [self = shared_from_this(), args = std::move(args), h = std::move(h)]() mutable {
                  // Still in the handshake (Sentinel: ROLE not answered yet) is not connected.
                  if (!self->ready_ && !self->stopped_)
                      return h(make_error_code(redis_errc::not_connected), {});
                  self->enqueue(args, std::move(h));
              });
}

redis_connection::status_report redis_connection::status() const {
    mutex_lock lock(mu_);
    status_report r = report_;
    r.st = state_.load(std::memory_order_acquire);
    return r;
}

void redis_connection::set_state(state s, std::string_view error) {
    mutex_lock lock(mu_);
    state_.store(s, std::memory_order_release);
    if (!error.empty()) report_.last_error = std::string(error);
    if (s == state::connected) ++report_.connects;
}

void redis_connection::enqueue(const std::vector<std::string>& args, handler h) {
    if (!connected_) {
        h(stopped_ ? make_error_code(redis_errc::stopped) : make_error_code(redis_errc::not_connected),
          {});
        return;
    }
    if (in_flight_.size() >= opts_.max_in_flight) {
        h(make_error_code(redis_errc::overloaded), {});
        return;
    }
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    char* cmd = nullptr;
    const int n = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), lens.data());
    if (n < 0 || cmd == nullptr) {
        h(make_error_code(redis_errc::protocol), {});
        return;
    }
    out_.append(cmd, static_cast<std::size_t>(n));
    redisFreeCommand(cmd);
    in_flight_.push_back({std::move(h), std::chrono::steady_clock::now()});
    do_write();
}

void redis_connection::do_connect() {
    if (sentinel_mode()) return do_connect_to(opts_.sentinels[sentinel_], phase::asking_sentinel);
    do_connect_to({opts_.host, opts_.port}, phase::handshake);
}

void redis_connection::do_connect_to(const address& where, phase p) {
    const std::uint64_t gen = ++attempt_;
    phase_ = p;
    target_ = where;
    // The connect timer bounds resolve + connect: an unreachable host must not hold the
    // connection in "connecting" for the kernel's SYN timeout.
    connect_timer_.expires_after(opts_.connect_timeout);
    connect_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
        if (ec || gen != self->attempt_ || self->connected_) return;
        self->fail(make_error_code(redis_errc::timed_out), "connect");
    });
    resolver_.async_resolve(
        target_.host, std::to_string(target_.port),
        [self = shared_from_this(), gen](error_code ec,
                                         const tcp::resolver::results_type& results) {
            if (gen != self->attempt_ || self->stopped_) return;
            if (ec) return self->fail(ec, "resolve");
            net::async_connect(self->socket_, results,
                               [self, gen](error_code ec2, const tcp::endpoint&) {
                                   if (gen != self->attempt_ || self->stopped_) return;
                                   self->on_connect(ec2);
                               });
        });
}

void redis_connection::on_connect(error_code ec) {
    if (ec) return fail(ec, "connect");
    connect_timer_.cancel();
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    if (reader_ != nullptr) redisReaderFree(reader_);
    reader_ = redisReaderCreate();  // a fresh parser: no half reply from the last connection
    out_.clear();
    connected_ = true;
    const std::uint64_t gen = attempt_;
    auto check = [self = shared_from_this(), gen](error_code e, redis_reply r) {
        if (gen != self->attempt_) return;
        if (!e && r.is_error()) self->fail(make_error_code(redis_errc::protocol), r.str);
    };
    if (phase_ == phase::asking_sentinel) {
        if (!opts_.sentinel_password.empty()) enqueue({"AUTH", opts_.sentinel_password}, check);
        enqueue({"SENTINEL", "get-master-addr-by-name", opts_.master_name},
                [self = shared_from_this(), gen](error_code e, redis_reply r) {
                    if (gen != self->attempt_ || e) return;  // e: fail() already runs
                    self->on_primary_address(r);
                });
    } else {
        if (!opts_.password.empty()) enqueue({"AUTH", opts_.password}, check);
        if (opts_.db != 0) enqueue({"SELECT", std::to_string(opts_.db)}, check);
        // Without Sentinel the node is trusted to be the primary, and commands pipeline behind
        // the handshake at once. With Sentinel they wait for ROLE: a node that is no longer the
        // primary must not see them.
        if (sentinel_mode()) {
            enqueue({"ROLE"}, [self = shared_from_this(), gen](error_code e, redis_reply r) {
                if (gen != self->attempt_ || e) return;
                self->on_role(r);
            });
        } else {
            set_ready();
        }
    }
    do_read();
}

void redis_connection::on_primary_address(const redis_reply& r) {
    if (r.is_error()) return fail(make_error_code(redis_errc::protocol), r.str);
    const auto primary = primary_address(r);
    if (!primary) {
        return fail(make_error_code(redis_errc::no_primary),
                    "SENTINEL get-master-addr-by-name " + opts_.master_name);
    }
    asked_ = 0;
    close_socket();
    fail_all(make_error_code(redis_errc::connection_lost));  // none left in flight; to be sure
    do_connect_to(*primary, phase::handshake);
}

void redis_connection::on_role(const redis_reply& r) {
    if (r.type == redis_reply::kind::array && !r.elements.empty() &&
        r.elements[0].str == "master") {
        return set_ready();
    }
    std::string role = r.is_error() ? r.str : "?";
    if (r.type == redis_reply::kind::array && !r.elements.empty()) role = r.elements[0].str;
    fail(make_error_code(redis_errc::not_primary), "ROLE of " + to_string(target_) + " is " + role);
}

void redis_connection::set_ready() {
    ready_ = true;
    backoff_ = opts_.backoff_min;
    const std::string primary = to_string(target_);
    {
        mutex_lock lock(mu_);
        if (!report_.primary.empty() && report_.primary != primary) ++report_.primary_changes;
        report_.primary = primary;
    }
    set_state(state::connected, {});
    if (!sentinel_mode()) return;
    // Ask the sentinel that named this primary, not another one: sentinels may disagree for a
    // moment, and the connection must not flap between their views.
    if (!check_ || checked_ != sentinel_) {
        if (check_) check_->stop();
        checked_ = sentinel_;
        options o;
        o.host = opts_.sentinels[checked_].host;
        o.port = opts_.sentinels[checked_].port;
        o.password = opts_.sentinel_password;
        o.connect_timeout = opts_.connect_timeout;
        o.command_timeout = opts_.command_timeout;
        o.backoff_min = opts_.backoff_min;
        o.backoff_max = opts_.backoff_max;
        check_ = create(strand_.get_inner_executor(), std::move(o));
        check_->start();
    }
    do_check_primary();
}

void redis_connection::do_check_primary() {
    const std::uint64_t gen = attempt_;
    check_timer_.expires_after(opts_.sentinel_check);
    check_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
        if (ec || gen != self->attempt_ || self->stopped_) return;
        self->check_->command({"SENTINEL", "get-master-addr-by-name", self->opts_.master_name},
                              [self, gen](error_code e, redis_reply r) {
                                  // On the checking connection's strand: back to ours.
                                  net::post(self->strand_, [self, gen, e, r = std::move(r)] {
                                      self->on_check_primary(gen, e, r);
                                  });
                              });
    });
}

void redis_connection::on_check_primary(std::uint64_t gen, error_code ec, const redis_reply& r) {
    if (gen != attempt_ || stopped_) return;  // this connection is gone already
    // No answer (the sentinel is unreachable) is no news: the primary is kept.
    if (const auto primary = primary_address(r);
        !ec && primary && (primary->host != target_.host || primary->port != target_.port)) {
        return fail(make_error_code(redis_errc::not_primary),
                    "the sentinel now names " + to_string(*primary));
    }
    do_check_primary();
}

void redis_connection::close_socket() {
    ++attempt_;  // every completion of this socket is now stale
    connected_ = false;
    ready_ = false;
    error_code ignored;
    socket_.close(ignored);
    connect_timer_.cancel();
    writing_.clear();
    out_.clear();
}

void redis_connection::do_write() {
    if (!connected_ || !writing_.empty() || out_.empty()) return;
    // Everything queued so far goes out in one write: that is the pipelining.
    writing_.swap(out_);
    const std::uint64_t gen = attempt_;
    net::async_write(socket_, net::buffer(writing_),
                     [self = shared_from_this(), gen](error_code ec, std::size_t n) {
                         if (gen != self->attempt_) return;
                         self->on_write(ec, n);
                     });
}

void redis_connection::on_write(error_code ec, std::size_t) {
    writing_.clear();
    if (ec) return fail(ec, "write");
    do_write();
}

void redis_connection::do_read() {
    const std::uint64_t gen = attempt_;
    socket_.async_read_some(net::buffer(in_), [self = shared_from_this(), gen](error_code ec,
                                                                                std::size_t n) {
        if (gen != self->attempt_) return;
        self->on_read(ec, n);
    });
}

void redis_connection::on_read(error_code ec, std::size_t n) {
    if (ec) return fail(ec, "read");
    if (redisReaderFeed(reader_, in_.data(), n) != REDIS_OK) {
        return fail(make_error_code(redis_errc::protocol), "parse");
    }
    const std::uint64_t gen = attempt_;
    for (;;) {
        void* raw = nullptr;
        if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
            return fail(make_error_code(redis_errc::protocol), "parse");
        }
        if (raw == nullptr) break;
        redis_reply reply = convert(static_cast<redisReply*>(raw));
        freeReplyObject(raw);
        if (in_flight_.empty()) return fail(make_error_code(redis_errc::protocol), "unexpected reply");
        handler h = std::move(in_flight_.front().h);
        in_flight_.pop_front();
        // The primary was demoted under us (a failover): the caller still gets its error reply,
        // then the connection asks the sentinels again.
        const bool demoted =
            sentinel_mode() && reply.is_error() && reply.str.starts_with("READONLY");
        h({}, std::move(reply));
        if (gen != attempt_) return;  // the handler failed or stopped the connection
        if (demoted)
            return fail(make_error_code(redis_errc::not_primary),
                        "READONLY from " + to_string(target_));
    }
    do_read();
}

void redis_connection::do_watchdog() {
    const auto period = std::max(std::chrono::milliseconds(10), opts_.command_timeout / 4);
    watchdog_.expires_after(period);
    watchdog_.async_wait([self = shared_from_this()](error_code ec) {
        if (ec || self->stopped_) return;
        if (self->connected_ && !self->in_flight_.empty() &&
            std::chrono::steady_clock::now() - self->in_flight_.front().sent >
                self->opts_.command_timeout) {
            {
                mutex_lock lock(self->mu_);
                ++self->report_.timeouts;
            }
            self->fail(make_error_code(redis_errc::timed_out), "command");
        }
        self->do_watchdog();
    });
}

void redis_connection::fail(error_code ec, std::string_view what) {
    if (stopped_) return;
    close_socket();
    {
        mutex_lock lock(mu_);
        ++report_.failures;
    }
    const bool asking = phase_ == phase::asking_sentinel;
    set_state(state::reconnecting,
              (asking ? "sentinel " + to_string(target_) + ": " : std::string()) +
                  std::string(what) + ": " + ec.message());
    fail_all(ec == make_error_code(redis_errc::timed_out) ? ec
                                                          : make_error_code(redis_errc::connection_lost));
    if (sentinel_mode()) {
        // The next sentinel is asked at once; only a round in which every sentinel failed, or a
        // failed primary, backs off. The round after a failed primary starts at the next sentinel,
        // in case the one that answered was stale.
        sentinel_ = (sentinel_ + 1) % opts_.sentinels.size();
        if (asking && ++asked_ < opts_.sentinels.size()) return do_connect();
        asked_ = 0;
    }
    // Exponential backoff with jitter, so many nodes do not reconnect in lockstep.
    static thread_local std::minstd_rand rng{std::random_device{}()};
    const auto base = backoff_;
    backoff_ = std::min(opts_.backoff_max, backoff_ * 2);
    const auto delay = base / 2 + std::chrono::milliseconds(rng() % (base.count() / 2 + 1));
    const std::uint64_t gen = attempt_;
    retry_timer_.expires_after(delay);
    retry_timer_.async_wait([self = shared_from_this(), gen](error_code e) {
        if (e || self->stopped_ || gen != self->attempt_) return;
        self->do_connect();
    });
}

void redis_connection::fail_all(error_code ec) {
    // Handlers may issue new commands (they post), so take the queue out first.
    std::deque<pending> failed;
    failed.swap(in_flight_);
    for (auto& p : failed) p.h(ec, {});
}

}  // namespace floodgate::tokenstore::redis
