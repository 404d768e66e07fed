// SipHash-2-4 with a 128-bit key: a fast keyed hash for short inputs. The tokenstore uses it for
// client binding (so a binding in a token cannot be reversed or forged without the key) and to
// shard identities (so nobody can aim many identities at one shard).
//
//   siphash h(k0, k1);
//   h.update(ip_prefix);
//   h.update(user_agent);
//   std::uint64_t v = h.finish();
//
// update() is a byte stream: update("ab"); update("c") equals update("abc"). Separate fields
// with a length or a delimiter yourself (see hmac_key::binding).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace floodgate::tokenstore {

class siphash {
public:
    siphash(std::uint64_t k0, std::uint64_t k1) noexcept
        : v0_(0x736f6d6570736575ULL ^ k0),
          v1_(0x646f72616e646f6dULL ^ k1),
          v2_(0x6c7967656e657261ULL ^ k0),
          v3_(0x7465646279746573ULL ^ k1) {}

    void update(std::string_view s) noexcept {
        const auto* p = reinterpret_cast<const unsigned char*>(s.data());
        std::size_t n = s.size();
        total_ += n;
        while (n > 0 && fill_ != 0) {
            tail_ |= std::uint64_t(*p++) << (8 * fill_);
            --n;
            if (++fill_ == 8) {
                block(tail_);
                tail_ = 0;
                fill_ = 0;
            }
        }
        while (n >= 8) {
            std::uint64_t m;
            std::memcpy(&m, p, 8);  // little-endian hosts only (x86-64, arm64)
            block(m);
            p += 8;
            n -= 8;
        }
        while (n > 0) {
            tail_ |= std::uint64_t(*p++) << (8 * fill_);
            ++fill_;
            --n;
        }
    }

    void update_u64(std::uint64_t v) noexcept {
        char b[8];
        std::memcpy(b, &v, 8);
        update(std::string_view(b, 8));
    }

    std::uint64_t finish() noexcept {
        block(tail_ | (std::uint64_t(total_ & 0xff) << 56));
        v2_ ^= 0xff;
        for (int i = 0; i < 4; ++i) round();
        return v0_ ^ v1_ ^ v2_ ^ v3_;
    }

    static std::uint64_t hash(std::uint64_t k0, std::uint64_t k1, std::string_view s) noexcept {
        siphash h(k0, k1);
        h.update(s);
        return h.finish();
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int b) noexcept { return (x << b) | (x >> (64 - b)); }

    void round() noexcept {
        v0_ += v1_;
        v1_ = rotl(v1_, 13);
        v1_ ^= v0_;
        v0_ = rotl(v0_, 32);
        v2_ += v3_;
        v3_ = rotl(v3_, 16);
        v3_ ^= v2_;
        v0_ += v3_;
        v3_ = rotl(v3_, 21);
        v3_ ^= v0_;
        v2_ += v1_;
        v1_ = rotl(v1_, 17);
        v1_ ^= v2_;
        v2_ = rotl(v2_, 32);
    }

    void block(std::uint64_t m) noexcept {
        v3_ ^= m;
        round();
        round();
        v0_ ^= m;
    }

    std::uint64_t v0_, v1_, v2_, v3_;
    std::uint64_t tail_ = 0;
    std::uint64_t total_ = 0;
    unsigned fill_ = 0;
};

}  // namespace floodgate::tokenstore
