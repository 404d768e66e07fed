#include "site_upstream.hpp"

#include <cctype>
#include <mutex>
#include <thread>

#include "gateway/net.hpp"

namespace floodgate::itest::rooms {

namespace {

bool iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

constexpr auto nothrow = net::as_tuple(net::use_awaitable);

}  // namespace

std::optional<std::string> site_request::header(std::string_view name) const {
    for (const auto& [n, v] : headers)
        if (iequal(n, name)) return v;
    return std::nullopt;
}

struct site_upstream::impl {
    // Declared first so it is destroyed last: the suspended coroutines it
    // still owns hold sockets of this context.
    net::io_context ioc{1};
    tcp::acceptor acceptor{ioc};
    std::thread thread;
    std::uint16_t port = 0;
    mutable std::mutex mu;
    std::vector<site_request> requests;  // guarded by mu

    net::awaitable<void> serve(tcp::socket socket) {
        beast::tcp_stream stream(std::move(socket));
        beast::flat_buffer buffer;
        for (;;) {
            http::request<http::string_body> req;
            stream.expires_after(std::chrono::seconds(60));
            auto [ec, n] = co_await http::async_read(stream, buffer, req, nothrow);
            if (ec) co_return;
            site_request r;
            r.at = std::chrono::steady_clock::now();
            r.method = std::string(req.method_string());
            r.target = std::string(req.target());
            for (const auto& f : req) r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
            {
                std::lock_guard lock(mu);
                requests.push_back(r);
            }
            const bool head = req.method() == http::verb::head;
            http::response<http::string_body> res{http::status::ok, req.version()};
            res.set(http::field::content_type, "text/plain");
            if (r.target.find("release=1") != std::string::npos) res.set("Floodgate-Release", "1");
            res.body() = std::string(marker) + " " + r.method + " " + r.target + "\n";
            res.prepare_payload();
            // A HEAD answer carries no body; close rather than get the framing subtle.
            res.keep_alive(req.keep_alive() && !head);
            if (head) {
                http::response<http::empty_body> h{res.base()};
                auto [wec, wn] = co_await http::async_write(stream, h, nothrow);
                (void)wec;
                co_return;
            }
            auto [wec, wn] = co_await http::async_write(stream, res, nothrow);
            if (wec || !res.keep_alive()) co_return;
        }
    }

    net::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(nothrow);
            if (ec) co_return;
            net::co_spawn(ioc, serve(std::move(socket)), net::detached);
        }
    }
};

site_upstream::site_upstream() : impl_(std::make_unique<impl>()) {
    const tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen();
    impl_->port = impl_->acceptor.local_endpoint().port();
    net::co_spawn(impl_->ioc, impl_->accept_loop(), net::detached);
    impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

site_upstream::~site_upstream() {
    impl_->ioc.stop();
    if (impl_->thread.joinable()) impl_->thread.join();
}

std::uint16_t site_upstream::port() const { return impl_->port; }

std::vector<site_request> site_upstream::requests() const {
    std::lock_guard lock(impl_->mu);
    return impl_->requests;
}

std::size_t site_upstream::request_count() const {
    std::lock_guard lock(impl_->mu);
    return impl_->requests.size();
}

}  // namespace floodgate::itest::rooms
