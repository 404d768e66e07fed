#include "room_runtime.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <unistd.h>

#include "tokenstore/token.hpp"

namespace floodgate {

tokenstore::room_policy policy_of(const room_config& cfg) {
    tokenstore::room_policy p;
    p.rate = cfg.rate;
    p.burst = cfg.burst;
    p.max_active = cfg.max_active;
    p.idle_timeout = cfg.idle_timeout.count();
    p.session_ttl = cfg.session_ttl.count();
    p.claim_window = cfg.claim_window.count();
    p.abandon_after = cfg.abandon_after.count();
    p.paused = cfg.mode == room_mode::paused;
    return p;
}

std::string effective_node_id(const config& cfg) {
    if (!cfg.node_id.empty()) return cfg.node_id;
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "node");
    return std::string(host) + ":" + std::to_string(::getpid());
}

room_runtime::room_runtime(std::string name, std::unique_ptr<tokenstore::journal> journal,
                           std::shared_ptr<shared_room> shared,
                           std::unique_ptr<tokenstore::waiting_room> wr, double rate)
    : name_(std::move(name)),
      id_(tokenstore::room_id(name_)),
      journal_(std::move(journal)),
      shared_(std::move(shared)),
      wr_(std::move(wr)),
      call_rate_(rate) {}

absl::StatusOr<std::shared_ptr<room_runtime>> room_runtime::create(const room_config& cfg, millis now,
                                                                   const std::string& journal_dir,
                                                                   const shared_store* store) {
    tokenstore::waiting_room::options opts;
    opts.policy = policy_of(cfg);
    opts.queue.abandon_after = cfg.abandon_after.count();
    std::unique_ptr<tokenstore::journal> journal;
    std::shared_ptr<shared_room> shared;
    if (store != nullptr && store->conn) {
        shared_room::options so{.room = cfg.name, .node_id = store->node_id, .abandon_after = cfg.abandon_after.count()};
        if (store->on_settings)
            so.on_settings = [f = store->on_settings, room = cfg.name](const std::string& s) { f(room, s); };
        shared = shared_room::create(store->conn, std::move(so));
        opts.seqs = shared.get();
    } else if (!journal_dir.empty()) {
        auto j = tokenstore::journal::open({.dir = journal_dir});
        if (!j.ok()) return j.status();
        journal = std::move(*j);
        for (const auto& w : journal->report().warnings)
            spdlog::warn("room {}: journal: {}", cfg.name, w);
        opts.restore = journal->restored();
        opts.journal = journal.get();
    }
    auto wr = tokenstore::waiting_room::create(opts, now);
    if (!wr.ok()) return wr.status();
    if (journal) {
        // Before anyone can join: the restored state becomes the new generation's snapshot.
        if (auto st = journal->start(**wr, now); !st.ok()) return st;
        const auto& rep = journal->report();
        if (rep.found) {
            const auto st = (*wr)->snapshot();
            const std::uint64_t unconfirmed_from = std::min((*wr)->queue().unconfirmed_from(), st.issued);
            const std::uint64_t unconfirmed = st.issued - std::max(unconfirmed_from, st.cursor);
            spdlog::info("room {}: restored from {} in {:.1f} ms: {} waiting from seq {}, {} active, {} calls "
                         "pending; {} seqs reserved before the crash may never have been handed out "
                         "(not called before their holder polls); numbering resumes at {}; last record "
                         "{:.1f} s before this start",
                         cfg.name, journal_dir, rep.read_ms, st.waiting - std::min(st.waiting, unconfirmed),
                         st.cursor, st.active, st.calls_pending, unconfirmed, st.issued,
                         static_cast<double>(now - rep.last_record_at) / 1000.0);
        }
    }
    if (shared) {
        shared->attach(wr->get());
        shared->start();
    }
    std::shared_ptr<room_runtime> rt(
        new room_runtime(cfg.name, std::move(journal), std::move(shared), std::move(*wr), cfg.rate));
    if (store != nullptr) rt->on_store_failure_ = store->on_failure;
    return rt;
}

tokenstore::waiting_room::join_result room_runtime::join(millis now, std::string_view identity,
                                                         bool allow_direct) {
    // Several nodes: only the lease holder calls people, so nobody is admitted directly.
    auto j = wr_->join(now, identity, allow_direct && !shared_);
    // With an identity, the caller first claims it across nodes (gate_result::joined_seq) and
    // marks the place seen only if it stands: one given up at once is never called anywhere.
    if (shared_ && identity.empty() && j.outcome == tokenstore::waiting_room::join_outcome::queued)
        shared_->saw(j.seq, now);
    return j;
}

tokenstore::waiting_room::poll_result room_runtime::poll(std::uint64_t seq, millis now,
                                                         std::string_view identity) {
    auto p = wr_->poll(seq, now, identity);
    if (shared_) {
        if (p.st == tokenstore::ring::state::waiting) shared_->saw(seq, now);
        if (p.pass) {
            p.pass->slot = shared_->global_slot(p.pass->slot);
            // Other devices of this person, on any node, hear "already admitted" while the
            // session may still be in use.
            if (!identity.empty()) shared_->note_admitted(identity, *p.pass, wr_->policy().idle_timeout);
        }
    }
    return p;
}

bool room_runtime::touch(tokenstore::lease l, millis now) {
    return shared_ ? shared_->touch(l, now) : wr_->touch(l, now);
}

bool room_runtime::release(tokenstore::lease l, tokenstore::release_reason why) {
    return shared_ ? shared_->release(l, why) : wr_->release(l, why);
}

void room_runtime::leave_shared() {
    if (shared_) shared_->stop();
}

void room_runtime::close_journal(millis now) {
    if (!journal_ || journal_closed_) return;
    journal_closed_ = true;
    if (auto st = journal_->close(*wr_, now); !st.ok())
        spdlog::error("room {}: journal: {}", name_, std::string(st.message()));
}

void room_runtime::apply(const room_config& cfg, millis now) {
    wr_->set_policy(policy_of(cfg), now);
    if (!measured_) call_rate_.store(cfg.rate, std::memory_order_relaxed);
}

millis room_runtime::tick(millis now) {
    // A follower's calls are the cursor moving: they make its ETAs as the holder's do.
    const std::uint64_t followed = shared_ ? shared_->before_tick(now) : 0;
    const auto report = wr_->tick(now);
    if (shared_) shared_->after_tick(now);
    if (journal_ && !journal_closed_) {
        // Errors are logged (at most every 10 s) and serving goes on: a full disk must not
        // stop the queue, only its durability.
        if (auto st = journal_->after_tick(*wr_, now); !st.ok() && now - journal_error_logged_ >= 10'000) {
            spdlog::error("room {}: journal: {}", name_, std::string(st.message()));
            journal_error_logged_ = now;
        }
    }
    if (window_start_ == 0) window_start_ = now;
    window_calls_ += report.called + followed;
    const millis span = now - window_start_;
    if (span >= 1000) {
        // Exponential smoothing with a time constant of about ten seconds.
        const double measured = 1000.0 * static_cast<double>(window_calls_) / static_cast<double>(span);
        const double alpha = std::min(1.0, static_cast<double>(span) / 10'000.0);
        const double prev = call_rate_.load(std::memory_order_relaxed);
        if (window_calls_ > 0 || measured_) {
            call_rate_.store(measured_ ? prev + alpha * (measured - prev) : measured,
                             std::memory_order_relaxed);
            measured_ = true;
        }
        window_start_ = now;
        window_calls_ = 0;
    }
    // A shared room also follows the others: at least 20 times a second.
    const millis interval = shared_ ? std::min<millis>(50, wr_->tick_interval()) : wr_->tick_interval();
    return now + std::max<millis>(1, interval);
}

absl::StatusOr<std::shared_ptr<room_runtime>> room_registry::get_or_create(const room_config& cfg,
                                                                           millis now) {
    std::lock_guard lock(mu_);
    auto it = rooms_.find(cfg.name);
    if (it != rooms_.end()) {
        it->second->apply(cfg, now);
        return it->second;
    }
    auto r = room_runtime::create(cfg, now, state_dir_.empty() ? std::string() : state_dir_ + "/rooms/" + cfg.name,
                                  store_.conn ? &store_ : nullptr);
    if (!r.ok()) return r.status();
    rooms_.emplace(cfg.name, *r);
    cv_.notify_all();
    return *r;
}

void room_registry::remove(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = rooms_.find(name);
    if (it == rooms_.end()) return;
    it->second->leave_shared();
    rooms_.erase(it);
    if (state_dir_.empty() || store_.conn) return;
    const std::string dir = state_dir_ + "/rooms/" + name;
    const std::string aside = state_dir_ + "/rooms/.deleted-" + name + "-" + std::to_string(tokenstore::wall_clock_ms());
    if (std::rename(dir.c_str(), aside.c_str()) != 0 && errno != ENOENT)
        spdlog::warn("room {}: cannot move {} aside: {}", name, dir, std::strerror(errno));
}

std::vector<std::shared_ptr<room_runtime>> room_registry::list() {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<room_runtime>> out;
    out.reserve(rooms_.size());
    for (const auto& [name, room] : rooms_) out.push_back(room);
    return out;
}

void room_registry::start(std::string state_dir) {
    {
        std::lock_guard lock(mu_);
        state_dir_ = std::move(state_dir);
    }
    if (thread_.joinable()) return;
    thread_ = std::thread([this] { run(); });
}

void room_registry::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mu_);
    const millis now = tokenstore::wall_clock_ms();
    for (auto& [name, room] : rooms_) {
        room->close_journal(now);
        room->leave_shared();
    }
}

// The admitter: ticks every room at the interval its policy asks for.
void room_registry::run() {
    std::map<std::string, millis> next;
    std::unique_lock lock(mu_);
    while (!stopping_) {
        const millis now = tokenstore::wall_clock_ms();
        millis wake = now + 100;
        for (auto& [name, room] : rooms_) {
            millis& at = next[name];
            if (at <= now) at = room->tick(now);
            wake = std::min(wake, at);
        }
        cv_.wait_for(lock, std::chrono::milliseconds(std::max<millis>(1, wake - now)));
    }
}

}  // namespace floodgate
