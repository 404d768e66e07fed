#include "tokenstore/journal.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "tokenstore/file_io.hpp"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace floodgate::tokenstore {
namespace {

constexpr std::size_t magic_size = 8;
constexpr std::size_t header_size = magic_size + 8;
constexpr char log_magic[magic_size + 1] = "FGJLOG01";
constexpr char snapshot_magic[magic_size + 1] = "FGJSNP01";
constexpr std::size_t frame_head = 8;                // u32 length, u32 crc
constexpr std::uint32_t max_frame = 1u << 30;         // a bigger length is a torn or bad frame

enum record : std::uint8_t {
    rec_reserve = 1,
    rec_progress = 2,
    rec_abandoned = 3,
    rec_admit = 4,
    rec_release = 5,
    rec_snapshot = 16,
};

// ---- CRC-32C ------------------------------------------------------------------------------

constexpr std::array<std::uint32_t, 256> make_crc_table() {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        t[i] = c;
    }
    return t;
}
constexpr std::array<std::uint32_t, 256> crc_table = make_crc_table();

std::uint32_t crc32c_soft(std::uint32_t c, const unsigned char* p, std::size_t n) noexcept {
    while (n-- > 0) c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t crc32c_hw(std::uint32_t c, const unsigned char* p,
                                                          std::size_t n) noexcept {
    std::uint64_t c64 = c;
    while (n >= 8) {
        std::uint64_t v;
        std::memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    c = static_cast<std::uint32_t>(c64);
    while (n-- > 0) c = _mm_crc32_u8(c, *p++);
    return c;
}
const bool have_sse42 = __builtin_cpu_supports("sse4.2");
#endif

// ---- encoding -----------------------------------------------------------------------------

void put_u32(unsigned char* p, std::uint32_t v) noexcept {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put_u64(unsigned char* p, std::uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
std::uint32_t get_u32(const unsigned char* p) noexcept {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}
std::uint64_t get_u64(const unsigned char* p) noexcept {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

// A record being built: frame head, type, varints. Small records live on the stack (the
// request-thread ones must not allocate: on_release is noexcept).
template <std::size_t N>
struct small_record {
    unsigned char buf[N];
    std::size_t n = frame_head;

    explicit small_record(record type) noexcept { buf[n++] = type; }
    void varint(std::uint64_t v) noexcept {
        while (v >= 0x80) {
            buf[n++] = static_cast<unsigned char>(v | 0x80);
            v >>= 7;
        }
        buf[n++] = static_cast<unsigned char>(v);
    }
    // Fills in the frame head; returns the whole frame's size.
    std::size_t seal() noexcept {
        const std::size_t len = n - frame_head;
        put_u32(buf, static_cast<std::uint32_t>(len));
        put_u32(buf + 4, crc32c({reinterpret_cast<const char*>(buf + frame_head), len}));
        return n;
    }
};

struct big_record {
    std::string buf;

    explicit big_record(record type) {
        buf.assign(frame_head, '\0');
        buf.push_back(static_cast<char>(type));
    }
    void varint(std::uint64_t v) {
        while (v >= 0x80) {
            buf.push_back(static_cast<char>(v | 0x80));
            v >>= 7;
        }
        buf.push_back(static_cast<char>(v));
    }
    // An ascending list: count, first, then differences.
    void seqs(const std::vector<std::uint64_t>& v) {
        varint(v.size());
        std::uint64_t prev = 0;
        for (std::size_t i = 0; i < v.size(); ++i) {
            varint(i == 0 ? v[i] : v[i] - prev);
            prev = v[i];
        }
    }
    // Appends the sealed frame to out.
    void seal_into(std::string& out) {
        const std::size_t len = buf.size() - frame_head;
        auto* p = reinterpret_cast<unsigned char*>(buf.data());
        put_u32(p, static_cast<std::uint32_t>(len));
        put_u32(p + 4, crc32c(std::string_view(buf).substr(frame_head)));
        out.append(buf);
    }
};

struct reader {
    const unsigned char* p;
    const unsigned char* end;
    bool ok = true;

    std::uint64_t varint() noexcept {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p == end) break;
            const unsigned char b = *p++;
            v |= std::uint64_t(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return v;
        }
        ok = false;
        return 0;
    }
    std::uint8_t byte() noexcept {
        if (p == end) {
            ok = false;
            return 0;
        }
        return *p++;
    }
    // A list written by big_record::seqs; appends to out. Counts are checked against the bytes
    // left, so a bad count cannot make us allocate the moon.
    void seqs(std::vector<std::uint64_t>& out) {
        const std::uint64_t count = varint();
        if (!ok || count > std::uint64_t(end - p)) {
            ok = false;
            return;
        }
        std::uint64_t prev = 0;
        for (std::uint64_t i = 0; i < count && ok; ++i) {
            const std::uint64_t d = varint();
            prev = i == 0 ? d : prev + d;
            out.push_back(prev);
        }
    }
    bool done() const noexcept { return ok && p == end; }
};

std::string errno_text(int e) { return std::strerror(e); }

absl::Status io_error(const std::string& path, std::string_view what, int e) {
    return absl::InternalError("journal " + path + ": " + std::string(what) + ": " + errno_text(e));
}

absl::Status make_dirs(const std::string& dir) {
    if (dir.empty()) return absl::InvalidArgumentError("journal: no directory given");
    for (std::size_t pos = 1; pos <= dir.size(); ++pos) {
        if (pos != dir.size() && dir[pos] != '/') continue;
        const std::string part = dir.substr(0, pos);
        if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
            return io_error(part, "cannot create the directory", errno);
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return io_error(dir, "cannot stat", errno);
    if (!S_ISDIR(st.st_mode))
        return absl::FailedPreconditionError("journal " + dir + ": not a directory");
    return absl::OkStatus();
}

absl::StatusOr<std::string> read_whole(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_error(path, "cannot open", errno);
    std::string out;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(std::size_t(st.st_size));
    char buf[1 << 16];
    for (;;) {
        const ssize_t r = ::read(fd, buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR) continue;
            const int e = errno;
            ::close(fd);
            return io_error(path, "cannot read", e);
        }
        if (r == 0) break;
        out.append(buf, std::size_t(r));
    }
    ::close(fd);
    return out;
}

absl::Status write_all(int fd, const void* data, std::size_t n) {
    const auto* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return absl::ErrnoToStatus(errno, "write");
        }
        p += w;
        n -= std::size_t(w);
    }
    return absl::OkStatus();
}

std::string header(const char* magic, std::uint64_t gen) {
    std::string h(magic, magic_size);
    unsigned char g[8];
    put_u64(g, gen);
    h.append(reinterpret_cast<const char*>(g), 8);
    return h;
}

// The state being rebuilt from a snapshot and logs.
struct replay {
    waiting_room::durable_state st;
    absl::flat_hash_map<std::uint32_t, active_slots::slot_state> slots;
    std::uint64_t seq_limit = 0;
    millis last_at = 0;
    bool any = false;

    void admit(std::uint64_t seq_plus1, std::uint64_t slot, std::uint64_t gen, millis at) {
        if (seq_plus1 != 0) {
            const std::uint64_t seq = seq_plus1 - 1;
            st.claimed.push_back(seq);
            // A claim proves the walk passed seq, even if its progress record was lost.
            st.cursor = std::max(st.cursor, seq + 1);
        }
        auto& s = slots[static_cast<std::uint32_t>(slot)];
        s.slot = static_cast<std::uint32_t>(slot);
        if (gen >= s.gen) {
            s.gen = static_cast<std::uint32_t>(gen);
            s.held = true;
            s.acquired_at = s.last_touch = at / 1000 * 1000;  // the slots' 1 s resolution
        }
        last_at = std::max(last_at, at);
    }

    void release(std::uint64_t slot, std::uint64_t gen) {
        auto& s = slots[static_cast<std::uint32_t>(slot)];
        s.slot = static_cast<std::uint32_t>(slot);
        if (gen >= s.gen) {
            s.gen = static_cast<std::uint32_t>(gen);
            s.held = false;
            s.acquired_at = s.last_touch = 0;
        }
    }

    // One record; false if it does not decode.
    bool apply(std::string_view payload) {
        reader r{reinterpret_cast<const unsigned char*>(payload.data()),
                 reinterpret_cast<const unsigned char*>(payload.data()) + payload.size()};
        const std::uint8_t type = r.byte();
        switch (type) {
            case rec_reserve: {
                const std::uint64_t hi = r.varint();
                if (!r.done()) return false;
                seq_limit = std::max(seq_limit, hi);
                break;
            }
            case rec_progress: {
                const std::uint64_t n = r.varint(), c = r.varint(), s = r.varint();
                const millis at = millis(r.varint());
                if (!r.done()) return false;
                st.next_seq = std::max(st.next_seq, n);
                st.cursor = std::max(st.cursor, c);
                st.settled = std::max(st.settled, s);
                last_at = std::max(last_at, at);
                break;
            }
            case rec_abandoned:
                r.seqs(st.abandoned);
                if (!r.done()) return false;
                break;
            case rec_admit: {
                const std::uint64_t seq = r.varint(), slot = r.varint(), gen = r.varint();
                const millis at = millis(r.varint());
                if (!r.done() || slot >= active_slots::max_slots || gen > 0xffffffffu) return false;
                admit(seq, slot, gen, at);
                break;
            }
            case rec_release: {
                const std::uint64_t slot = r.varint(), gen = r.varint();
                if (!r.done() || slot >= active_slots::max_slots || gen > 0xffffffffu) return false;
                release(slot, gen);
                break;
            }
            case rec_snapshot: {
                st.next_seq = std::max(st.next_seq, r.varint());
                st.cursor = std::max(st.cursor, r.varint());
                st.settled = std::max(st.settled, r.varint());
                seq_limit = std::max(seq_limit, r.varint());
                last_at = std::max(last_at, millis(r.varint()));
                r.seqs(st.claimed);
                r.seqs(st.abandoned);
                const std::uint64_t count = r.varint();
                if (!r.ok || count > std::uint64_t(r.end - r.p)) return false;
                std::uint64_t slot = 0;
                for (std::uint64_t i = 0; i < count && r.ok; ++i) {
                    slot += r.varint();
                    const std::uint64_t gen = r.varint();
                    const bool held = r.byte() != 0;
                    if (slot >= active_slots::max_slots || gen > 0xffffffffu) return false;
                    active_slots::slot_state s{.slot = static_cast<std::uint32_t>(slot),
                                               .gen = static_cast<std::uint32_t>(gen),
                                               .held = held};
                    if (held) {
                        s.acquired_at = millis(r.varint()) * 1000;
                        s.last_touch = millis(r.varint()) * 1000;
                    }
                    slots[s.slot] = s;
                }
                if (!r.done()) return false;
                break;
            }
            default: return false;
        }
        any = true;
        return true;
    }

    waiting_room::restore_options finish(millis grace) {
        waiting_room::restore_options out;
        waiting_room::durable_state& s = st;
        s.settled = std::min(s.settled, s.cursor);
        s.next_seq = std::max(s.next_seq, s.cursor);
        seq_limit = std::max(seq_limit, s.next_seq);
        auto tidy = [](std::vector<std::uint64_t>& v, std::uint64_t lo, std::uint64_t hi) {
            std::sort(v.begin(), v.end());
            v.erase(std::unique(v.begin(), v.end()), v.end());
            v.erase(std::remove_if(v.begin(), v.end(),
                                   [&](std::uint64_t x) { return x < lo || x >= hi; }),
                    v.end());
        };
        tidy(s.claimed, s.settled, s.cursor);
        tidy(s.abandoned, s.settled, seq_limit);
        // A claimed ticket was not abandoned (a claim needs a call, a call a live ticket).
        if (!s.claimed.empty()) {
            std::vector<std::uint64_t> kept;
            kept.reserve(s.abandoned.size());
            std::set_difference(s.abandoned.begin(), s.abandoned.end(), s.claimed.begin(),
                                s.claimed.end(), std::back_inserter(kept));
            s.abandoned = std::move(kept);
        }
        s.slots.clear();
        s.slots.reserve(slots.size());
        for (const auto& [slot, v] : slots) s.slots.push_back(v);
        std::sort(s.slots.begin(), s.slots.end(),
                  [](const auto& a, const auto& b) { return a.slot < b.slot; });
        out.state = std::move(s);
        out.seq_limit = seq_limit;
        out.unconfirmed_grace = grace;
        return out;
    }
};

struct parse_result {
    std::uint64_t records = 0;
    std::uint64_t ignored = 0;
};

// Replays the frames of one file from `from`. A torn or corrupt frame ends the file (reported
// in `warning`); a good frame that does not decode is an error.
absl::StatusOr<parse_result> replay_frames(const std::string& path, std::string_view data,
                                           std::size_t from, replay& rp, std::string& warning) {
    parse_result pr;
    std::size_t off = from;
    while (off < data.size()) {
        const auto* p = reinterpret_cast<const unsigned char*>(data.data() + off);
        const std::size_t left = data.size() - off;
        std::string why;
        if (left < frame_head) {
            why = "a frame head cut short";
        } else {
            const std::uint32_t len = get_u32(p);
            if (len == 0 || len > max_frame || len > left - frame_head)
                why = "a frame cut short or a bad length (" + std::to_string(len) + ")";
            else if (crc32c(data.substr(off + frame_head, len)) != get_u32(p + 4))
                why = "a frame whose CRC does not match";
            if (why.empty()) {
                if (!rp.apply(data.substr(off + frame_head, len)))
                    return absl::DataLossError("journal " + path + ": offset " +
                                               std::to_string(off) +
                                               ": a record that does not decode (type " +
                                               std::to_string(p[frame_head]) + ")");
                ++pr.records;
                off += frame_head + len;
                continue;
            }
        }
        pr.ignored = left;
        warning = path + ": offset " + std::to_string(off) + ": " + why + "; the last " +
                  std::to_string(left) + " bytes are ignored (a torn tail)";
        break;
    }
    return pr;
}

}  // namespace

std::uint32_t crc32c(std::string_view data, std::uint32_t crc) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    std::uint32_t c = ~crc;
#if defined(__x86_64__)
    if (have_sse42) return ~crc32c_hw(c, p, data.size());
#endif
    return ~crc32c_soft(c, p, data.size());
}

// ---- open and restore ----------------------------------------------------------------------

journal::journal(const options& opts) : opts_(opts) {}

journal::~journal() {
    mutex_lock lock(mu_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

std::string journal::log_path(std::uint64_t gen) const {
    char name[32];
    std::snprintf(name, sizeof name, "log.%012llu", static_cast<unsigned long long>(gen));
    return opts_.dir + "/" + name;
}

absl::StatusOr<std::unique_ptr<journal>> journal::open(const options& opts) {
    options o = opts;
    while (o.dir.size() > 1 && o.dir.back() == '/') o.dir.pop_back();
    if (o.min_range < 1) o.min_range = 1;
    if (o.max_range < o.min_range) o.max_range = o.min_range;
    if (auto st = make_dirs(o.dir); !st.ok()) return st;
    std::unique_ptr<journal> j(new journal(o));
    if (auto st = j->read_dir(); !st.ok()) return st;
    return j;
}

absl::Status journal::read_dir() {
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::pair<std::uint64_t, std::string>> logs;
    DIR* d = ::opendir(opts_.dir.c_str());
    if (d == nullptr) return io_error(opts_.dir, "cannot list the directory", errno);
    while (const dirent* e = ::readdir(d)) {
        const std::string_view name = e->d_name;
        if (name.size() == 16 && name.substr(0, 4) == "log." &&
            name.find_first_not_of("0123456789", 4) == std::string_view::npos)
            logs.emplace_back(std::stoull(std::string(name.substr(4))), std::string(name));
    }
    ::closedir(d);
    std::sort(logs.begin(), logs.end());

    replay rp;
    const std::string snap_path = opts_.dir + "/snapshot";
    std::uint64_t snap_gen = 0;
    if (::access(snap_path.c_str(), F_OK) == 0) {
        auto data = read_whole(snap_path);
        if (!data.ok()) return data.status();
        if (data->size() < header_size ||
            std::memcmp(data->data(), snapshot_magic, magic_size) != 0)
            return absl::DataLossError("journal " + snap_path +
                                       ": offset 0: not a Floodgate journal snapshot (bad magic)");
        snap_gen = get_u64(reinterpret_cast<const unsigned char*>(data->data() + magic_size));
        std::string warning;
        auto pr = replay_frames(snap_path, *data, header_size, rp, warning);
        if (!pr.ok()) return pr.status();
        // Snapshots are renamed into place only once complete and synced: a bad one is damage.
        if (!warning.empty() || pr->records != 1)
            return absl::DataLossError(
                "journal " + (warning.empty() ? snap_path + ": offset " +
                                                    std::to_string(header_size) +
                                                    ": expected exactly one snapshot record"
                                              : warning) +
                " (move the directory away to start the room empty)");
        report_.snapshot_bytes = data->size();
        ++report_.records;
    }
    report_.snapshot_generation = snap_gen;
    max_gen_seen_ = snap_gen;

    std::uint64_t expect = snap_gen;
    for (const auto& [gen, name] : logs) {
        max_gen_seen_ = std::max(max_gen_seen_, gen);
        if (gen < snap_gen) continue;  // already in the snapshot; deleted by the next start()
        const std::string path = opts_.dir + "/" + name;
        auto data = read_whole(path);
        if (!data.ok()) return data.status();
        ++report_.logs;
        report_.log_bytes += data->size();
        if (data->size() < header_size) {
            // Created, but the crash came before its header was complete: nothing in it.
            if (!data->empty())
                report_.warnings.push_back(path + ": offset 0: a header cut short; ignored");
            report_.ignored_bytes += data->size();
            continue;
        }
        if (std::memcmp(data->data(), log_magic, magic_size) != 0)
            return absl::DataLossError("journal " + path +
                                       ": offset 0: not a Floodgate journal log (bad magic)");
        const std::uint64_t hgen =
            get_u64(reinterpret_cast<const unsigned char*>(data->data() + magic_size));
        if (hgen != gen)
            return absl::DataLossError("journal " + path + ": offset 8: the header says generation " +
                                       std::to_string(hgen) + ", the name " + std::to_string(gen));
        if (gen != expect)
            report_.warnings.push_back(path + ": generation " + std::to_string(gen) +
                                       " follows " + std::to_string(expect) +
                                       " (a log is missing)");
        expect = gen + 1;
        std::string warning;
        auto pr = replay_frames(path, *data, header_size, rp, warning);
        if (!pr.ok()) return pr.status();
        report_.records += pr->records;
        report_.ignored_bytes += pr->ignored;
        if (!warning.empty()) report_.warnings.push_back(std::move(warning));
    }

    report_.found = rp.any;
    report_.last_record_at = rp.last_at;
    if (rp.any) restored_ = rp.finish(opts_.unconfirmed_grace);
    {
        mutex_lock lock(mu_);
        hi_ = restored_ ? restored_->seq_limit : 0;
        range_ = opts_.min_range;
    }
    report_.read_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    return absl::OkStatus();
}

// ---- writing --------------------------------------------------------------------------------

void journal::note_error_locked(absl::Status st) {
    ++counters_.write_errors;
    if (error_.ok()) error_ = std::move(st);
}

absl::Status journal::append_locked(const void* data, std::size_t n) {
    if (fd_ < 0)
        return absl::FailedPreconditionError("journal " + opts_.dir +
                                             ": not started (or closed); a record was dropped");
    if (auto st = write_all(fd_, data, n); !st.ok()) {
        // Cut the partial frame off, so that later records stay readable.
        const int e = errno;
        if (::ftruncate(fd_, off_t(log_bytes_)) != 0) {
        }
        return io_error(log_path(gen_), "write at offset " + std::to_string(log_bytes_) + " failed",
                        e);
    }
    log_bytes_ += n;
    dirty_ = true;
    counters_.bytes_written += n;
    ++counters_.records_written;
    return absl::OkStatus();
}

std::uint64_t journal::reserve_seqs(std::uint64_t seq, millis now) {
    mutex_lock lock(mu_);
    // Size the range to a second or so of joins: double while a range lasts less, halve when it
    // lasts long (fewer seqs left unconfirmed by a crash, still few fsyncs).
    if (last_reserve_at_ != 0) {
        const millis lasted = now - last_reserve_at_;
        if (lasted < 1'000) range_ = std::min(range_ * 2, opts_.max_range);
        else if (lasted > 10'000) range_ = std::max(range_ / 2, opts_.min_range);
    }
    last_reserve_at_ = now;
    const std::uint64_t hi = std::max(seq + range_, hi_);
    small_record<32> rec(rec_reserve);
    rec.varint(hi);
    const std::size_t n = rec.seal();
    if (auto st = append_locked(rec.buf, n); !st.ok()) {
        note_error_locked(std::move(st));
    } else if (::fdatasync(fd_) != 0) {
        note_error_locked(io_error(log_path(gen_), "fdatasync", errno));
    } else {
        dirty_ = false;
        ++counters_.syncs;
    }
    // On failure the range is handed out anyway (serving goes on); the error is reported.
    hi_ = hi;
    ++counters_.ranges_reserved;
    counters_.reserved_limit = hi;
    return hi;
}

void journal::on_admit(std::optional<std::uint64_t> seq, lease l, millis now) {
    small_record<64> rec(rec_admit);
    rec.varint(seq ? *seq + 1 : 0);
    rec.varint(l.slot);
    rec.varint(l.gen);
    rec.varint(static_cast<std::uint64_t>(std::max<millis>(now, 0)));
    const std::size_t n = rec.seal();
    mutex_lock lock(mu_);
    if (auto st = append_locked(rec.buf, n); !st.ok()) note_error_locked(std::move(st));
}

void journal::on_release(lease l) noexcept {
    small_record<32> rec(rec_release);
    rec.varint(l.slot);
    rec.varint(l.gen);
    const std::size_t n = rec.seal();
    mutex_lock lock(mu_);
    if (fd_ < 0) return;  // not started: nothing to keep yet
    if (write_all(fd_, rec.buf, n).ok()) {
        log_bytes_ += n;
        dirty_ = true;
        counters_.bytes_written += n;
        ++counters_.records_written;
        return;
    }
    ++counters_.write_errors;
    if (::ftruncate(fd_, off_t(log_bytes_)) != 0) {
    }
    // error_ is a Status (it allocates): remember only that it happened, cheaply.
    if (error_.ok()) error_ = absl::Status(absl::StatusCode::kInternal, "journal write failed");
}

absl::Status journal::start(const waiting_room& room, millis now) {
    ::unlink((opts_.dir + "/snapshot.tmp").c_str());
    {
        mutex_lock lock(mu_);
        gen_ = max_gen_seen_;
    }
    last_write_ = last_sync_ = now;
    return compact(room, now);
}

absl::Status journal::compact(const waiting_room& room, millis now, bool final) {
    last_snapshot_ = now;
    // 1. A new log generation: records from now on go there.
    int old_fd = -1;
    std::uint64_t gen = 0;
    {
        mutex_lock lock(mu_);
        gen = gen_ + 1;
        const std::string path = log_path(gen);
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
                              0600);
        if (fd < 0) return io_error(path, "cannot create", errno);
        const std::string h = header(log_magic, gen);
        if (auto st = write_all(fd, h.data(), h.size()); !st.ok()) {
            const int e = errno;
            ::close(fd);
            ::unlink(path.c_str());
            return io_error(path, "cannot write the header", e);
        }
        old_fd = std::exchange(fd_, fd);
        gen_ = gen;
        log_bytes_ = h.size();
        dirty_ = true;
        counters_.log_bytes = log_bytes_;
    }
    sync_directory(opts_.dir);
    if (old_fd >= 0) {
        ::fdatasync(old_fd);
        ::close(old_fd);
    }
    // 2. The snapshot: everything the old logs said is in the room by now (abandoned marks
    // not written yet included).
    const waiting_room::durable_state st = room.snapshot_state();
    std::uint64_t limit = 0;
    {
        mutex_lock lock(mu_);
        limit = hi_;
    }
    // A clean stop knows every seq handed out: give the rest of the range back, so that the
    // next start has nothing unconfirmed (an earlier crash's unconfirmed range stays).
    if (final) limit = std::min(limit, room.queue().next_seq());
    big_record rec(rec_snapshot);
    rec.varint(st.next_seq);
    rec.varint(st.cursor);
    rec.varint(st.settled);
    rec.varint(std::max(limit, st.next_seq));
    rec.varint(static_cast<std::uint64_t>(std::max<millis>(now, 0)));
    rec.seqs(st.claimed);
    rec.seqs(st.abandoned);
    rec.varint(st.slots.size());
    std::uint32_t prev = 0;
    for (const auto& s : st.slots) {
        rec.varint(s.slot - prev);
        prev = s.slot;
        rec.varint(s.gen);
        rec.buf.push_back(s.held ? 1 : 0);
        if (s.held) {
            rec.varint(static_cast<std::uint64_t>(std::max<millis>(s.acquired_at / 1000, 0)));
            rec.varint(static_cast<std::uint64_t>(std::max<millis>(s.last_touch / 1000, 0)));
        }
    }
    std::string file = header(snapshot_magic, gen);
    rec.seal_into(file);
    // On a failure the logs stay: the old snapshot plus every log after it still restores
    // everything.
    auto snapshot_error = [](const replace_error& e) {
        static constexpr const char* what[] = {"cannot create", "write", "fsync",
                                               "cannot rename the new snapshot into place"};
        return io_error(e.file, what[e.step], e.error);
    };
    if (auto wst = replace_file(opts_.dir + "/snapshot", file, snapshot_error); !wst.ok())
        return wst;
    // 3. Logs older than the snapshot are in it.
    DIR* d = ::opendir(opts_.dir.c_str());
    if (d != nullptr) {
        std::vector<std::string> old;
        while (const dirent* e = ::readdir(d)) {
            const std::string_view name = e->d_name;
            if (name.size() == 16 && name.substr(0, 4) == "log." &&
                name.find_first_not_of("0123456789", 4) == std::string_view::npos &&
                std::stoull(std::string(name.substr(4))) < gen)
                old.emplace_back(name);
        }
        ::closedir(d);
        for (const auto& name : old) ::unlink((opts_.dir + "/" + name).c_str());
    }
    pending_dead_.clear();
    mutex_lock lock(mu_);
    ++counters_.snapshots;
    return absl::OkStatus();
}

absl::Status journal::after_tick(waiting_room& room, millis now) {
    absl::Status result;
    std::vector<std::uint64_t> dead = room.queue().take_abandoned();
    if (pending_dead_.empty()) pending_dead_ = std::move(dead);
    else pending_dead_.insert(pending_dead_.end(), dead.begin(), dead.end());

    if (now - last_write_ >= opts_.write_every || pending_dead_.size() >= 65'536) {
        const ring& q = room.queue();
        const std::uint64_t cursor = q.cursor();
        const std::uint64_t next =
            std::max(cursor, std::min({q.next_seq(), room.seq_limit(), q.unconfirmed_from()}));
        const std::uint64_t settled = q.settled();
        const bool moved = !progress_written_ || next != written_next_ ||
                           cursor != written_cursor_ || settled != written_settled_;
        if (moved || !pending_dead_.empty()) {
            std::string out;
            if (!pending_dead_.empty()) {
                std::sort(pending_dead_.begin(), pending_dead_.end());
                pending_dead_.erase(std::unique(pending_dead_.begin(), pending_dead_.end()),
                                    pending_dead_.end());
                big_record rec(rec_abandoned);
                rec.seqs(pending_dead_);
                rec.seal_into(out);
            }
            big_record rec(rec_progress);
            rec.varint(next);
            rec.varint(cursor);
            rec.varint(settled);
            rec.varint(static_cast<std::uint64_t>(std::max<millis>(now, 0)));
            rec.seal_into(out);
            mutex_lock lock(mu_);
            if (auto st = append_locked(out.data(), out.size()); !st.ok()) {
                note_error_locked(std::move(st));
            } else {
                pending_dead_.clear();
                written_next_ = next;
                written_cursor_ = cursor;
                written_settled_ = settled;
                progress_written_ = true;
            }
        }
        last_write_ = now;
    }

    if (now - last_sync_ >= opts_.sync_every) {
        int fd = -1;
        std::uint64_t gen = 0;
        {
            mutex_lock lock(mu_);
            if (dirty_) fd = fd_;
            dirty_ = false;
            gen = gen_;
        }
        // Without the lock: only this thread closes the file, and writers need not wait.
        if (fd >= 0) {
            if (::fdatasync(fd) != 0) {
                mutex_lock lock(mu_);
                note_error_locked(io_error(log_path(gen), "fdatasync", errno));
            } else {
                mutex_lock lock(mu_);
                ++counters_.syncs;
            }
        }
        last_sync_ = now;
    }

    std::uint64_t log_bytes = 0;
    {
        mutex_lock lock(mu_);
        log_bytes = log_bytes_;
    }
    // A long log snapshots early, but not more than once a second (a full disk would fail it
    // on every tick).
    if (now - last_snapshot_ >= opts_.snapshot_every ||
        (log_bytes >= opts_.snapshot_bytes && now - last_snapshot_ >= 1'000)) {
        if (auto st = compact(room, now); !st.ok()) result = st;
        progress_written_ = false;
    }
    mutex_lock lock(mu_);
    counters_.log_bytes = log_bytes_;
    if (!error_.ok()) {
        if (result.ok()) result = std::move(error_);
        error_ = absl::OkStatus();
    }
    return result;
}

absl::Status journal::close(const waiting_room& room, millis now) {
    absl::Status st = compact(room, now, /*final=*/true);
    mutex_lock lock(mu_);
    if (fd_ >= 0) {
        if (::fdatasync(fd_) != 0 && st.ok()) st = io_error(log_path(gen_), "fdatasync", errno);
        ::close(fd_);
        fd_ = -1;
    }
    return st;
}

journal::counters journal::stats() const {
    mutex_lock lock(mu_);
    counters c = counters_;
    c.log_bytes = log_bytes_;
    c.reserved_limit = hi_;
    return c;
}

}  // namespace floodgate::tokenstore
