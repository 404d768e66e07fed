// Child processes for the integration tests: the floodgate binary under test
// (gateway_process), one-shot runs such as `floodgate --check-config`
// (run_process), temporary directories and a self-signed test certificate.
//
// The one thing not to get wrong: every process a test starts must be gone
// when the test ends, whatever happens. gateway_process kills its child by
// pid in the destructor (SIGTERM, then SIGKILL after a grace), and children
// get PR_SET_PDEATHSIG so that even a crashed test binary leaves nothing
// behind.
//
//   test_upstream up;
//   gateway_process gw(make_config({.servers = up.address()}));
//   http_client c(gw.port());
//   CHECK(c.get("/echo").result_int() == 200);
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace floodgate::itest {

using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

// A fresh directory under $TMPDIR (or /tmp); removed with its contents on
// destruction.
class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::string& path() const { return path_; }
    std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

private:
    std::string path_;
};

// Writes through a temporary file and rename(), so a reader never sees half.
void write_file(const std::string& path, std::string_view text);
// The whole file, or "" when it cannot be read.
std::string read_file(const std::string& path);
std::string replace_all(std::string text, std::string_view from, std::string_view to);
// The last `max` bytes of text (with a marker when cut).
std::string tail(std::string_view text, std::size_t max = 8192);

// The floodgate binary the tests run (FLOODGATE_BIN, set by CMake).
std::string floodgate_bin();

struct process_result {
    int exit_code = -1;  // the exit status, 128 + signal when killed, -1 when timed out
    bool timed_out = false;
    std::string out;
    std::string err;
};

// Runs argv[0] with the arguments, waits at most `timeout` (then kills it).
// `env` sets variables on top of the test process's own environment (an empty
// value blanks one):  run_process({ctl, "rooms"}, 10s, {{"FLOODGATE_TOKEN", t}}).
using env_vars = std::vector<std::pair<std::string, std::string>>;
process_result run_process(const std::vector<std::string>& argv, ms timeout = 10s,
                           const env_vars& env = {});

// How many Catch2 assertions have failed so far in this process; the harness
// prints a gateway's output only when one failed during its lifetime.
std::size_t failed_assertions();

// The parts of a gateway config that tests change. Every listen and admin
// address is 127.0.0.1:0, so tests can run in parallel.
struct config_parts {
    std::string servers{};   // "127.0.0.1:1234, 127.0.0.1:5678"
    std::string limits{};    // inside limits: {...}, e.g. "body_bytes: 1k"
    std::string timeouts{};  // inside timeouts: {...}; shutdown_grace defaults to 1s
    std::string upstream{};  // more keys of upstreams.app, e.g. "response_timeout: 500ms"
    std::string listen = "{address: 127.0.0.1:0}";  // one list element
    std::string access_log = "stdout";
    unsigned threads = 1;
    std::string extra{};  // more top-level lines
};

// A complete YAML config with one upstream "app" that is the default.
std::string make_config(const config_parts& parts);

// The real floodgate binary, started with a config written to a fresh temp
// dir. "{dir}" in the config text is replaced with that directory. The
// constructor returns once the ports file exists (every socket is bound) and
// fails the test, showing floodgate's output, if it does not appear in time.
class gateway_process {
public:
    explicit gateway_process(std::string config_yaml, ms start_timeout = 10s);
    ~gateway_process();
    gateway_process(const gateway_process&) = delete;
    gateway_process& operator=(const gateway_process&) = delete;

    std::uint16_t port(std::size_t listener_index = 0) const;
    std::uint16_t admin_port() const;
    pid_t pid() const { return pid_; }
    const std::string& dir() const { return dir_.path(); }
    std::string config_path() const { return dir_.file("floodgate.yaml"); }

    // Replaces the config file ("{dir}" substituted); send SIGHUP to reload it.
    void rewrite_config(std::string config_yaml);
    void signal(int sig);
    // The exit status (128 + signal if killed) once the process has ended
    // within `timeout`; nullopt while it is still running.
    std::optional<int> wait_exit(ms timeout);
    bool running();
    // VmHWM from /proc/<pid>/status: the peak resident set, in kB (-1 if gone).
    long rss_high_water_kb() const;

    std::string stdout_text() const { return read_file(dir_.file("stdout")); }
    std::string stderr_text() const { return read_file(dir_.file("stderr")); }
    // Both outputs, trimmed, for failure messages.
    std::string logs() const;

private:
    void kill_and_reap(ms grace);
    bool read_ports_file();

    std::size_t failures_at_start_ = 0;
    temp_dir dir_;
    pid_t pid_ = -1;
    std::optional<int> exit_status_;
    std::map<std::size_t, std::uint16_t> ports_;
    std::uint16_t admin_port_ = 0;
};

// A self-signed certificate for CN localhost with SAN DNS:localhost and
// IP:127.0.0.1, made with the openssl CLI. It is its own CA: clients verify
// against cert_file.
struct test_cert {
    std::string cert_file;
    std::string key_file;
};
test_cert make_test_cert(const std::string& dir, std::string_view name = "test");

}  // namespace floodgate::itest
