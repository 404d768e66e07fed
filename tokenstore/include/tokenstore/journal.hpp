// One waiting room's journal: the little state that must survive kill -9, kept in a directory of
// its own (the gateway uses <state_dir>/rooms/<room>/), so that a restarted gateway gives every
// waiting user their place back, every admitted user their slot, and calls nobody in a burst.
//
//   auto j = journal::open({.dir = state_dir + "/rooms/vaccine"});   // absl::StatusOr
//   waiting_room::options o{.policy = policy};
//   o.restore = (*j)->restored();  // nullopt for a new room
//   o.journal = j->get();          // the room reports admissions, releases, seq ranges
//   auto room = waiting_room::create(o, now);
//   (*j)->start(**room, now);      // before the room is used: snapshot, fresh log
//   // the admitter thread, after every room->tick(now):
//   absl::Status st = (*j)->after_tick(**room, now);
//   // a graceful stop, once nothing else uses the room:
//   (*j)->close(**room, now);
//
// What is kept. Tickets and passes are signed and self-contained, so a room needs only: the
// reserved seq limit (hi), next_seq, the cursor, where the no-show accounting stands
// ("settled"), claimed calls and abandoned tickets past that point, and every active slot
// (slot, generation, held, acquired_at, last_touch). Not kept: heartbeats (every waiting
// ticket counts as seen at the restore), the identity map, counters, the rate budget (it
// restarts empty) and live policy changes (the config file's values apply again).
//
// When it is written, and what a crash can cost:
//   * joins: nothing. Seqs come from ranges reserved ahead (hi/lo): a `reserve` record, fsynced,
//     before any seq of the range is handed out; the admitter reserves the next range when half
//     of the current one is used, so a join practically never waits. A range lasts about 1 s of
//     joins (64 to 2^20 seqs). After a crash the room numbers from the limit on, so no seq is
//     ever handed out twice; the unused rest of the range stays "unconfirmed" (see
//     ring::options::unconfirmed_from): not called before its holder polls, abandoned after a
//     grace if nobody does.
//   * admissions and releases: one record each, written (not fsynced) on the request thread
//     before the pass is minted, so kill -9 never loses a pass that reached a browser.
//   * the admitter's progress (next_seq, cursor, settled) and abandoned marks: every
//     write_every (50 ms) on the admitter thread. Calls made in the last 50 ms before a crash
//     are made again, in order; a claim of such a call (its admit record) moves the cursor
//     past it on restore. Abandonments of the last 50 ms are found again by the sweep.
//   * fdatasync every sync_every (1 s) and for every reserve record: a power cut (not kill -9)
//     can also lose the last second of admissions, releases and progress, never a seq range.
//   * a snapshot every snapshot_every (60 s) or when the log passes snapshot_bytes: a new log
//     generation starts, the snapshot is written beside it and renamed into place, older logs
//     are deleted.
//
// Files (0600, directory 0700): `snapshot` (generation S) and `log.<G>` (12 digits) for the
// records after snapshot G. Restore reads the snapshot (none: an empty room, S = 0), then every
// log with G >= S in order: a crash at any point of a compaction leaves a readable set.
//
// Format (binary, little-endian). A file starts with 8 bytes of magic ("FGJLOG01" or
// "FGJSNP01") and the generation (u64). Then frames: u32 length n, u32 CRC-32C of the n bytes,
// then n bytes: a type byte and its fields as LEB128 varints (u64). A snapshot file holds one
// frame. Records:
//   1 reserve   hi                                  seqs below hi may be handed out
//   2 progress  next_seq cursor settled at_ms
//   3 abandoned count first delta...                ascending seqs
//   4 admit     seq+1 (0: direct) slot gen at_ms
//   5 release   slot gen
//  16 snapshot  next_seq cursor settled seq_limit at_ms
//               count claimed (first delta...)  count abandoned (first delta...)
//               count slots (slot_delta gen held [acquired_s last_touch_s])...
// Replay is idempotent (counters take the max, sets the union, a slot the newest generation),
// which is what lets a snapshot be taken while request threads keep writing the new log.
// A frame that is cut short or fails its CRC ends its file: the rest is ignored and reported
// (a torn tail after kill -9 or a power cut). A frame with a good CRC that does not decode, a
// bad magic or a bad snapshot is an error naming the file and the offset.
//
// Cost: nothing per join; a 12-byte reserve record (fsynced) per range; about 25 bytes per
// 50 ms while the queue moves; about 20 bytes per admission and 12 per release. Measured
// (journal_test.cpp, 1M joins at 100k/s): 4.4 KB in all, 0.004 bytes per join; restoring
// 900k waiting with 100k abandoned (a 100 KB snapshot) takes about 60 ms.
//
// Thread-safety: the observer calls come from any thread (one mutex, one write() each);
// start(), after_tick() and close() from one thread, the room's admitter. The one thing not
// to get wrong: start() must run before the room serves anyone, and the journal must outlive
// the room (it is the room's observer).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tokenstore/clock.hpp"
#include "tokenstore/mutex.hpp"
#include "tokenstore/waiting_room.hpp"

namespace floodgate::tokenstore {

class journal final : public waiting_room::observer {
public:
    struct options {
        std::string dir;                          // created (with parents) if missing
        millis write_every = 50;                  // progress and abandoned marks, at most this often
        millis sync_every = 1'000;                // fdatasync of the log while it has new records
        millis snapshot_every = 60'000;
        std::uint64_t snapshot_bytes = 16u << 20;  // a log this long triggers a snapshot early
        std::uint64_t min_range = 64;             // seqs reserved at once, adapted to ~2 s of joins
        std::uint64_t max_range = 1u << 20;
        millis unconfirmed_grace = 30'000;        // see ring::options::unconfirmed_grace
    };

    // What open() found.
    struct read_report {
        bool found = false;  // a snapshot or a log record existed
        std::uint64_t snapshot_generation = 0;
        std::uint64_t snapshot_bytes = 0;
        std::uint64_t logs = 0;
        std::uint64_t log_bytes = 0;
        std::uint64_t records = 0;
        std::uint64_t ignored_bytes = 0;    // torn or corrupt tails
        std::vector<std::string> warnings;  // "<dir>/log.000000000003: offset 4711: ..."
        millis last_record_at = 0;          // the newest time a record carried (about the crash)
        double read_ms = 0;
    };

    struct counters {
        std::uint64_t bytes_written = 0;
        std::uint64_t records_written = 0;
        std::uint64_t ranges_reserved = 0;
        std::uint64_t syncs = 0;
        std::uint64_t snapshots = 0;
        std::uint64_t write_errors = 0;
        std::uint64_t log_bytes = 0;  // the current log file's size
        std::uint64_t reserved_limit = 0;
    };

    // Reads the directory (creating it if missing): the newest snapshot and the logs after it.
    static absl::StatusOr<std::unique_ptr<journal>> open(const options& opts);
    ~journal() override;  // closes the files and writes nothing: a destructor is no clean stop
    journal(const journal&) = delete;
    journal& operator=(const journal&) = delete;

    // The state to create the room from; nullopt when the directory held nothing.
    const std::optional<waiting_room::restore_options>& restored() const { return restored_; }
    const read_report& report() const { return report_; }

    // Before the room serves anyone: writes a snapshot of it as the new generation and starts a
    // fresh log (the files read by open() are deleted once the snapshot is in place).
    absl::Status start(const waiting_room& room, millis now);
    // The admitter thread, after every room.tick(): progress, abandoned marks, fsync, snapshots.
    // Returns the first error since the last call (a request thread's too); keeps going anyway.
    absl::Status after_tick(waiting_room& room, millis now);
    // A clean stop, once nothing else touches the room: a last snapshot, fsync, close. It
    // knows every seq handed out, so the next start has no unconfirmed range.
    absl::Status close(const waiting_room& room, millis now);

    counters stats() const ABSL_LOCKS_EXCLUDED(mu_);
    const std::string& dir() const { return opts_.dir; }

    // waiting_room::observer
    std::uint64_t reserve_seqs(std::uint64_t seq, millis now) override;
    void on_admit(std::optional<std::uint64_t> seq, lease l, millis now) override;
    void on_release(lease l) noexcept override;

private:
    explicit journal(const options& opts);

    absl::Status read_dir();
    absl::Status compact(const waiting_room& room, millis now, bool final = false)
        ABSL_LOCKS_EXCLUDED(mu_);
    absl::Status append_locked(const void* data, std::size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
    void note_error_locked(absl::Status st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
    std::string log_path(std::uint64_t gen) const;

    const options opts_;
    std::optional<waiting_room::restore_options> restored_;
    read_report report_;

    mutable mutex mu_;
    int fd_ ABSL_GUARDED_BY(mu_) = -1;
    std::uint64_t gen_ ABSL_GUARDED_BY(mu_) = 0;
    std::uint64_t log_bytes_ ABSL_GUARDED_BY(mu_) = 0;
    bool dirty_ ABSL_GUARDED_BY(mu_) = false;
    std::uint64_t hi_ ABSL_GUARDED_BY(mu_) = 0;
    std::uint64_t range_ ABSL_GUARDED_BY(mu_) = 0;
    millis last_reserve_at_ ABSL_GUARDED_BY(mu_) = 0;
    absl::Status error_ ABSL_GUARDED_BY(mu_);
    counters counters_ ABSL_GUARDED_BY(mu_);

    // The admitter thread only.
    std::vector<std::uint64_t> pending_dead_;
    std::uint64_t written_next_ = 0, written_cursor_ = 0, written_settled_ = 0;
    bool progress_written_ = false;
    millis last_write_ = 0;
    millis last_sync_ = 0;
    millis last_snapshot_ = 0;
    std::uint64_t max_gen_seen_ = 0;
};

// CRC-32C (Castagnoli) of data, as the journal frames use it: crc32c("123456789") = 0xE3069283.
std::uint32_t crc32c(std::string_view data, std::uint32_t crc = 0) noexcept;

}  // namespace floodgate::tokenstore
