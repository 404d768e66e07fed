#include "process.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <catch2/catch.hpp>

namespace floodgate::itest {

namespace {

// Counts failed assertions (and unexpected exceptions) in this process.
std::atomic<std::size_t> g_failures{0};

struct failure_listener : Catch::TestEventListenerBase {
    using TestEventListenerBase::TestEventListenerBase;
    bool assertionEnded(Catch::AssertionStats const& stats) override {
        if (!stats.assertionResult.isOk()) ++g_failures;
        return true;
    }
};
CATCH_REGISTER_LISTENER(failure_listener)

// Tests write to sockets the gateway may have closed; the error is the answer.
const bool sigpipe_ignored = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
}();

// fork + exec with stdout/stderr to files. Only async-signal-safe calls
// between fork and exec: the test process has threads (test upstreams).
// With `env`, the child's environment is ours with those variables set; it is
// built here, before fork, because setenv is not async-signal-safe.
pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path, const env_vars& env = {}) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_strings;
    std::vector<char*> envp;
    if (!env.empty()) {
        for (char** e = environ; *e; ++e) {
            const std::string_view entry(*e);
            const std::string_view name = entry.substr(0, entry.find('='));
            bool replaced = false;
            for (const auto& [k, v] : env) replaced = replaced || k == name;
            if (!replaced) env_strings.emplace_back(entry);
        }
        for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
        for (auto& s : env_strings) envp.push_back(s.data());
        envp.push_back(nullptr);
    }
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid > 0) return pid;

    // Child. Die with the test process (the forking thread is Catch's main thread).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) ::_exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    // Sockets of the test process (upstreams, clients) must not leak into
    // the gateway: a client's close() would otherwise never reach it.
    if (::syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
        for (int fd = 3; fd < 4096; ++fd) ::close(fd);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &dfl, nullptr);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (envp.empty())
        ::execv(args[0], args.data());
    else
        ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
}

int decode_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

// Polls waitpid until the child ends or the timeout passes.
std::optional<int> wait_for(pid_t pid, ms timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int status = 0;
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return decode_status(status);
        if (r < 0 && errno != EINTR) return -1;  // not our child any more
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(10ms);
    }
}

}  // namespace

std::size_t failed_assertions() {
    return g_failures;
}

temp_dir::temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/floodgate-itest-XXXXXX";
    if (!::mkdtemp(templ.data()))
        throw std::runtime_error("mkdtemp " + templ + ": " + std::strerror(errno));
    path_ = templ;
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

void write_file(const std::string& path, std::string_view text) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        if (!out) throw std::runtime_error("cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
        throw std::runtime_error("cannot rename " + tmp + ": " + std::strerror(errno));
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
    if (from.empty()) return text;
    for (std::size_t pos = 0; (pos = text.find(from, pos)) != std::string::npos; pos += to.size())
        text.replace(pos, from.size(), to);
    return text;
}

std::string tail(std::string_view text, std::size_t max) {
    if (text.size() <= max) return std::string(text);
    return "[... " + std::to_string(text.size() - max) + " bytes cut ...]\n" +
           std::string(text.substr(text.size() - max));
}

std::string floodgate_bin() {
    return FLOODGATE_BIN;
}

process_result run_process(const std::vector<std::string>& argv, ms timeout, const env_vars& env) {
    temp_dir dir;
    process_result r;
    const pid_t pid = spawn(argv, dir.file("out"), dir.file("err"), env);
    auto status = wait_for(pid, timeout);
    if (!status) {
        ::kill(pid, SIGKILL);
        status = wait_for(pid, 5s);
        r.timed_out = true;
        r.exit_code = -1;
    } else {
        r.exit_code = *status;
    }
    r.out = read_file(dir.file("out"));
    r.err = read_file(dir.file("err"));
    return r;
}

std::string make_config(const config_parts& p) {
    std::string timeouts = p.timeouts;
    if (timeouts.find("shutdown_grace") == std::string::npos)
        timeouts += std::string(timeouts.empty() ? "" : ", ") + "shutdown_grace: 1s";
    std::ostringstream y;
    y << "threads: " << p.threads << "\n"
      << "listen: [" << p.listen << "]\n"
      << "admin: {address: 127.0.0.1:0}\n"
      << "log_level: info\n"
      << "access_log: " << p.access_log << "\n"
      << "timeouts: {" << timeouts << "}\n";
    if (!p.limits.empty()) y << "limits: {" << p.limits << "}\n";
    y << "upstreams:\n"
      << "  app: {servers: [" << p.servers << "]" << (p.upstream.empty() ? "" : ", " + p.upstream)
      << "}\n"
      << "default_upstream: app\n";
    if (!p.extra.empty()) y << p.extra << "\n";
    return y.str();
}

gateway_process::gateway_process(std::string config_yaml, ms start_timeout)
    : failures_at_start_(failed_assertions()) {
    write_file(config_path(), replace_all(std::move(config_yaml), "{dir}", dir_.path()));
    pid_ = spawn({floodgate_bin(), "--config", config_path(), "--ports-file", dir_.file("ports")},
                 dir_.file("stdout"), dir_.file("stderr"));
    const auto deadline = std::chrono::steady_clock::now() + start_timeout;
    for (;;) {
        if (read_ports_file()) return;
        if (auto status = wait_for(pid_, 0ms)) {
            exit_status_ = status;
            FAIL("floodgate exited with status " << *status << " before writing its ports file\n"
                                                 << "config:\n"
                                                 << read_file(config_path()) << logs());
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            kill_and_reap(0ms);
            FAIL("floodgate did not write its ports file within "
                 << start_timeout.count() << " ms\nconfig:\n"
                 << read_file(config_path()) << logs());
        }
        std::this_thread::sleep_for(20ms);
    }
}

gateway_process::~gateway_process() {
    kill_and_reap(2s);
    // Only worth reading when an assertion failed while this gateway ran.
    if (failed_assertions() != failures_at_start_ || std::uncaught_exceptions() > 0)
        std::cerr << "---- floodgate (pid " << pid_ << ", config " << config_path() << ")\n"
                  << read_file(config_path()) << logs() << "---- end of floodgate output\n";
}

bool gateway_process::read_ports_file() {
    std::ifstream in(dir_.file("ports"));
    if (!in) return false;
    std::string line;
    std::map<std::size_t, std::uint16_t> ports;
    std::uint16_t admin = 0;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string kind, a, b;
        ls >> kind >> a >> b;
        const std::string& addr = kind == "listen" ? b : a;
        const auto colon = addr.rfind(':');
        if (colon == std::string::npos) continue;
        const auto port = static_cast<std::uint16_t>(std::stoul(addr.substr(colon + 1)));
        if (kind == "listen")
            ports[std::stoul(a)] = port;
        else if (kind == "admin")
            admin = port;
    }
    if (ports.empty()) return false;
    ports_ = std::move(ports);
    admin_port_ = admin;
    return true;
}

std::uint16_t gateway_process::port(std::size_t listener_index) const {
    auto it = ports_.find(listener_index);
    if (it == ports_.end())
        throw std::runtime_error("the ports file has no listener " +
                                 std::to_string(listener_index));
    return it->second;
}

std::uint16_t gateway_process::admin_port() const {
    if (admin_port_ == 0) throw std::runtime_error("the ports file has no admin line");
    return admin_port_;
}

void gateway_process::rewrite_config(std::string config_yaml) {
    write_file(config_path(), replace_all(std::move(config_yaml), "{dir}", dir_.path()));
}

void gateway_process::signal(int sig) {
    if (!exit_status_ && pid_ > 0) ::kill(pid_, sig);
}

std::optional<int> gateway_process::wait_exit(ms timeout) {
    if (!exit_status_ && pid_ > 0) exit_status_ = wait_for(pid_, timeout);
    return exit_status_;
}

bool gateway_process::running() {
    return !wait_exit(0ms).has_value();
}

long gateway_process::rss_high_water_kb() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

std::string gateway_process::logs() const {
    return "---- floodgate stdout:\n" + tail(stdout_text()) + "\n---- floodgate stderr:\n" +
           tail(stderr_text()) + "\n";
}

void gateway_process::kill_and_reap(ms grace) {
    if (exit_status_ || pid_ <= 0) return;
    if (grace > 0ms) {
        ::kill(pid_, SIGTERM);
        exit_status_ = wait_for(pid_, grace);
        if (exit_status_) return;
    }
    ::kill(pid_, SIGKILL);
    exit_status_ = wait_for(pid_, 10s);
}

test_cert make_test_cert(const std::string& dir, std::string_view name) {
    test_cert c{dir + "/" + std::string(name) + ".crt", dir + "/" + std::string(name) + ".key"};
    auto r = run_process({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", c.key_file, "-out",
                          c.cert_file, "-days", "2", "-subj", "/CN=localhost", "-addext",
                          "subjectAltName=DNS:localhost,IP:127.0.0.1"},
                         30s);
    if (r.exit_code != 0)
        throw std::runtime_error("openssl req failed (" + std::to_string(r.exit_code) +
                                 "): " + r.err);
    return c;
}

}  // namespace floodgate::itest
