#include "admin_client.hpp"

#include <cctype>

#include "gateway/text.hpp"

namespace floodgate::ctl {

namespace {

constexpr std::chrono::seconds connect_timeout{5};
constexpr std::chrono::seconds io_timeout{30};
// /metrics and a long audit log are the largest answers; far below this.
constexpr std::uint64_t body_limit = std::uint64_t{64} * 1024 * 1024;

// "Connection refused" -> "connection refused", as in the middle of a sentence.
std::string lower_first(std::string s) {
    if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
    return s;
}

// Splits a server-sent-events byte stream into events. Fed in pieces as they
// arrive; an event ends at an empty line.
class sse_splitter {
public:
    // False once the handler asked to stop.
    bool feed(std::string_view bytes, const admin_client::event_handler& on_event) {
        pending_.append(bytes);
        for (;;) {
            const std::size_t nl = pending_.find('\n');
            if (nl == std::string::npos) return true;
            std::string line = pending_.substr(0, nl);
            pending_.erase(0, nl + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.empty()) {
                if (has_data_ && !on_event(event_.empty() ? "message" : event_, data_))
                    return false;
                event_.clear();
                data_.clear();
                has_data_ = false;
                continue;
            }
            if (line.front() == ':') continue;  // a comment (keep-alive)
            const std::size_t colon = line.find(':');
            const std::string field = line.substr(0, colon);
            std::string value = colon == std::string::npos ? std::string() : line.substr(colon + 1);
            if (!value.empty() && value.front() == ' ') value.erase(0, 1);
            if (field == "event") {
                event_ = value;
            } else if (field == "data") {
                if (has_data_) data_ += '\n';
                data_ += value;
                has_data_ = true;
            }
        }
    }

private:
    std::string pending_, event_, data_;
    bool has_data_ = false;
};

}  // namespace

admin_client::admin_client(admin_address at, std::string token)
    : at_(std::move(at)), token_(std::move(token)) {}

void admin_client::run() {
    ioc_.restart();
    ioc_.run();
}

std::string admin_client::describe(const error_code& ec, std::chrono::seconds deadline) const {
    if (ec == beast::error::timeout) return text::cat("no answer within ", deadline.count(), " s");
    return lower_first(ec.message());
}

bool admin_client::connect(beast::tcp_stream& s, api_reply& out) {
    tcp::resolver resolver(ioc_);
    error_code ec;
    tcp::resolver::results_type endpoints;
    resolver.async_resolve(at_.host, at_.port,
                           [&](const error_code& e, tcp::resolver::results_type r) {
                               ec = e;
                               endpoints = std::move(r);
                           });
    run();
    if (ec) {
        out.transport_error =
            text::cat("cannot resolve ", at_.host, ": ", lower_first(ec.message()));
        return false;
    }
    s.expires_after(connect_timeout);
    s.async_connect(endpoints, [&](const error_code& e, const tcp::endpoint&) { ec = e; });
    run();
    if (ec) {
        out.transport_error = describe(ec, connect_timeout);
        return false;
    }
    return true;
}

http::request<http::string_body> admin_client::make_request(http::verb method,
                                                            std::string_view target,
                                                            std::string body) const {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, at_.text());
    req.set(http::field::user_agent, "floodgatectl");
    if (!token_.empty()) req.set(http::field::authorization, text::cat("Bearer ", token_));
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.keep_alive(false);
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
}

api_reply admin_client::request(http::verb method, std::string_view target, std::string body) {
    api_reply out;
    beast::tcp_stream s(ioc_);
    if (!connect(s, out)) return out;
    auto req = make_request(method, target, std::move(body));
    error_code ec;
    s.expires_after(io_timeout);
    http::async_write(s, req, [&](const error_code& e, std::size_t) { ec = e; });
    run();
    if (ec) {
        out.transport_error = describe(ec, io_timeout);
        return out;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> p;
    p.body_limit(body_limit);
    s.expires_after(io_timeout);
    http::async_read(s, buffer, p, [&](const error_code& e, std::size_t) { ec = e; });
    run();
    if (ec) {
        out.transport_error = describe(ec, io_timeout);
        return out;
    }
    out.status = p.get().result_int();
    out.body = std::move(p.get().body());
    error_code ignored;
    s.socket().shutdown(tcp::socket::shutdown_both, ignored);
    return out;
}

api_reply admin_client::follow(std::string_view target, const event_handler& on_event,
                               std::chrono::seconds idle) {
    api_reply out;
    beast::tcp_stream s(ioc_);
    if (!connect(s, out)) return out;
    auto req = make_request(http::verb::get, target, {});
    req.set(http::field::accept, "text/event-stream");
    error_code ec;
    s.expires_after(io_timeout);
    http::async_write(s, req, [&](const error_code& e, std::size_t) { ec = e; });
    run();
    if (ec) {
        out.transport_error = describe(ec, io_timeout);
        return out;
    }
    // The body is endless: read it piece by piece into a fixed buffer (Beast's
    // buffer_body), as it arrives, instead of waiting for its end.
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> p;
    p.body_limit(boost::none);
    s.expires_after(io_timeout);
    http::async_read_header(s, buffer, p, [&](const error_code& e, std::size_t) { ec = e; });
    run();
    if (ec) {
        out.transport_error = describe(ec, io_timeout);
        return out;
    }
    out.status = p.get().result_int();
    const bool events = out.status == 200;
    sse_splitter sse;
    char chunk[16 * 1024];
    while (!p.is_done()) {
        p.get().body().data = chunk;
        p.get().body().size = sizeof chunk;
        s.expires_after(events ? idle : io_timeout);
        // read_some: hand over what has arrived; read() would wait for a full chunk.
        http::async_read_some(s, buffer, p, [&](const error_code& e, std::size_t) { ec = e; });
        run();
        if (ec == http::error::need_buffer) ec = {};
        const std::string_view got(chunk, sizeof chunk - p.get().body().size);
        if (!events) {
            out.body.append(got);
        } else if (!sse.feed(got, on_event)) {
            error_code ignored;
            s.socket().shutdown(tcp::socket::shutdown_both, ignored);
            return out;
        }
        if (ec) {
            out.status = 0;
            out.transport_error =
                ec == beast::error::timeout
                    ? text::cat("the event stream fell silent for ", idle.count(), " s")
                    : text::cat("the event stream broke: ", lower_first(ec.message()));
            return out;
        }
    }
    if (events) {
        out.status = 0;
        out.transport_error = "the admin API closed the event stream";
    }
    return out;
}

}  // namespace floodgate::ctl
