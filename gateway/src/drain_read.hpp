// A read buffer that tells Asio's reactor when a read emptied the socket.
//
// Asio (1.26, Boost 1.81) reads a stream socket "speculatively": each new
// async_read_some first tries recv() at once and only waits for epoll if that
// finds nothing. On a keep-alive connection that first try almost always
// fails: after the gateway answers a request, the client has not sent the
// next one yet, and after it forwards a request, the upstream has not
// answered yet. That is one wasted system call per read, two per proxied
// request.
//
// The reactor has a flag for this (try_speculative_, cleared when an
// operation reports "done_and_exhausted"), but Asio's receive operation only
// reports it at end of stream. A read through drain_buffer reports it when
// the kernel says nothing is left: the socket has TCP_INQ set
// (enable_unread_count), so recvmsg() returns how many bytes are still queued
// after the read, and 0 means the queue is empty and no end of stream is
// pending (after a FIN the kernel reports 1). The next read then waits for
// epoll's next edge, which new data or a FIN always brings. A fewer-bytes-
// than-asked read alone would not do: it may also have taken the peer's FIN,
// after which no edge comes (nginx and HAProxy use EPOLLRDHUP for this, which
// Asio does not register). Without the count (TCP_INQ not set or not
// supported) a read behaves exactly as Asio's.
//
// This relies on Asio's internals, so it is used only with the version it was
// written for and the epoll reactor; anywhere else drain_buffer is an ordinary
// buffer and reads behave as before.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/reactive_socket_recv_op.hpp>
#include <boost/asio/version.hpp>

namespace floodgate::stream_detail {

struct drain_buffer : boost::asio::mutable_buffer {
    explicit drain_buffer(const boost::asio::mutable_buffer& b) : mutable_buffer(b) {}
};

// send() and recvmsg() as bare system calls. In a process with more than one
// thread, glibc's send() and recvmsg() are cancellation points: each call
// switches asynchronous cancellation on and off around the system call, two
// atomic operations. Floodgate never cancels a thread, and syscall() is not a
// cancellation point. Same results and errno.
inline ssize_t send_nocancel(int fd, const void* data, std::size_t size, int flags) {
    return ::syscall(SYS_sendto, fd, data, size, flags, nullptr, 0);
}
inline ssize_t recvmsg_nocancel(int fd, msghdr* msg, int flags) { return ::syscall(SYS_recvmsg, fd, msg, flags); }

// Asks the kernel to report, with each recvmsg(), how many bytes are left unread.
inline void enable_unread_count(int fd) {
#if defined(TCP_INQ)
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_INQ, &one, sizeof one);  // unsupported: reads behave as Asio's
#else
    (void)fd;
#endif
}

}  // namespace floodgate::stream_detail

#if BOOST_ASIO_VERSION == 102600 && defined(BOOST_ASIO_HAS_EPOLL) && \
    !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && defined(TCP_CM_INQ)

namespace boost::asio::detail {

// Asio's reactive_socket_recv_op_base for one buffer, reading with recvmsg() to
// learn what is left, and "exhausted" when nothing is.
template <>
class reactive_socket_recv_op_base<floodgate::stream_detail::drain_buffer> : public reactor_op {
public:
    reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                                 socket_ops::state_type state, const floodgate::stream_detail::drain_buffer& buffer,
                                 socket_base::message_flags flags, func_type complete_func)
        : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
          socket_(socket),
          state_(state),
          buffer_(buffer),
          flags_(flags) {}

    static status do_perform(reactor_op* base) {
        auto* o = static_cast<reactive_socket_recv_op_base*>(base);
        const bool stream = (o->state_ & socket_ops::stream_oriented) != 0;
        iovec iov{o->buffer_.data(), o->buffer_.size()};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
        for (;;) {
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            const ssize_t n = floodgate::stream_detail::recvmsg_nocancel(o->socket_, &msg, o->flags_);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) return not_done;
                o->ec_ = boost::system::error_code(errno, boost::asio::error::get_system_category());
                o->bytes_transferred_ = 0;
                return done;
            }
            o->bytes_transferred_ = static_cast<std::size_t>(n);
            if (n == 0 && stream) {
                o->ec_ = boost::asio::error::eof;
                return done_and_exhausted;
            }
            o->ec_ = boost::system::error_code();
            for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level != IPPROTO_TCP || c->cmsg_type != TCP_CM_INQ) continue;
                int unread = 1;
                std::memcpy(&unread, CMSG_DATA(c), sizeof unread);
                if (unread == 0) return done_and_exhausted;
            }
            return done;
        }
    }

private:
    socket_type socket_;
    socket_ops::state_type state_;
    floodgate::stream_detail::drain_buffer buffer_;
    socket_base::message_flags flags_;
};

}  // namespace boost::asio::detail

#endif
