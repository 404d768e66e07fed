#include "access_log.hpp"

#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>

#include "gateway/text.hpp"

namespace floodgate {

void append_json_string(std::string& out, std::string_view s, bool escape_non_ascii) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    // Runs of bytes that need no escape are copied whole.
    auto plain = [escape_non_ascii](unsigned char c) {
        return c >= 0x20 && c != '"' && c != '\\' && c != 0x7f && (c < 0x80 || !escape_non_ascii);
    };
    for (std::size_t i = 0; i < s.size();) {
        std::size_t j = i;
        while (j < s.size() && plain(static_cast<unsigned char>(s[j]))) ++j;
        out.append(s.data() + i, j - i);
        if (j == s.size()) break;
        i = j + 1;
        const auto c = static_cast<unsigned char>(s[j]);
        switch (c) {
            case '"': out.append("\\\""); break;
            case '\\': out.append("\\\\"); break;
            case '\n': out.append("\\n"); break;
            case '\r': out.append("\\r"); break;
            case '\t': out.append("\\t"); break;
            default:
                // Control bytes, and non-ASCII bytes when asked, are escaped one
                // by one: the log stays valid JSON whatever a client sends.
                out.append("\\u00");
                out.push_back(hex[c >> 4]);
                out.push_back(hex[c & 15]);
        }
    }
    out.push_back('"');
}

access_log::~access_log() { flush(); }

absl::Status access_log::open(const access_log_config& cfg) {
    if (!cfg.enabled) return absl::OkStatus();
    if (!spdlog::thread_pool()) spdlog::init_thread_pool(8192, 1);
    std::shared_ptr<spdlog::sinks::sink> sink;
    try {
        if (cfg.path == "stdout")
            sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
        else if (cfg.path == "stderr")
            sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        else
            sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(cfg.path);
    } catch (const spdlog::spdlog_ex& e) {
        return absl::InvalidArgumentError(text::cat("access_log: cannot open ", cfg.path, ": ", e.what()));
    }
    sink->set_pattern("%v");
    logger_ = std::make_shared<spdlog::async_logger>("access", sink, spdlog::thread_pool(),
                                                     spdlog::async_overflow_policy::overrun_oldest);
    logger_->set_level(spdlog::level::info);
    logger_->flush_on(spdlog::level::info);
    return absl::OkStatus();
}

void access_log::write(const access_record& r) {
    if (!logger_) return;
    std::string line;
    line.reserve(256);
    // ISO 8601 UTC with milliseconds.
    const auto now = std::chrono::system_clock::now();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char ts[64];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms % 1000));
    line.append("{\"ts\":\"").append(ts).append("\",\"remote\":");
    append_json_string(line, r.remote);
    line.append(",\"method\":");
    append_json_string(line, r.method);
    line.append(",\"path\":");
    append_json_string(line, r.target);
    line.append(",\"host\":");
    append_json_string(line, r.host);
    char num[96];
    std::snprintf(num, sizeof num, ",\"status\":%u,\"bytes\":%llu,\"duration_ms\":%.3f", r.status,
                  static_cast<unsigned long long>(r.bytes), r.duration_ms);
    line.append(num);
    line.append(",\"upstream\":");
    append_json_string(line, r.upstream);
    line.append(",\"listener\":").append(std::to_string(r.listener)).append("}");
    logger_->info(line);
}

void access_log::flush() {
    if (logger_) logger_->flush();
}

}  // namespace floodgate
