// An allocator that takes large blocks straight from the kernel (mmap) and gives
// them straight back (munmap), and leaves small ones to operator new.
//
// For hash tables that grow by doubling while millions of people join: each
// growth frees the old table, and its pages must leave the process at once. A
// caching malloc (tcmalloc, which the gateway links) keeps freed spans for
// reuse, and the old tables of a sharded map, each too small for the next
// growth of any shard, would stay resident: half as much memory again.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <memory>
#include <new>

namespace floodgate::tokenstore {

template <class T>
struct page_allocator {
    using value_type = T;

    // Blocks from this size on are mapped pages (a table of a thousand entries and up).
    // The smaller tables a map outgrew stay with malloc: with doubling, less than
    // twice this per map.
    static constexpr std::size_t mapped_from = 32 * 1024;

    page_allocator() noexcept = default;
    template <class U>
    page_allocator(const page_allocator<U>&) noexcept {}

    T* allocate(std::size_t n) {
        const std::size_t bytes = n * sizeof(T);
        if (bytes < mapped_from) return std::allocator<T>().allocate(n);
        void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        return static_cast<T*>(p);
    }

    void deallocate(T* p, std::size_t n) noexcept {
        const std::size_t bytes = n * sizeof(T);
        if (bytes < mapped_from) std::allocator<T>().deallocate(p, n);
        else ::munmap(p, bytes);
    }

    friend bool operator==(const page_allocator&, const page_allocator&) noexcept { return true; }
};

}  // namespace floodgate::tokenstore
