/*
 * The memory behind the OTLP scanner's output vectors (_otlp_scan.c).
 *
 * Fresh memory costs a page fault per 4 KiB on first touch, and on a virtual
 * machine a fault costs 1.5-15 microseconds: in a 100k-span load (257 MB)
 * the scanner's output alone was ~60k faults, more CPU time than scanning
 * the bytes. Three things keep that down:
 *
 * - On Linux a vector of MAPPED_FROM bytes or more is its own anonymous
 *   mapping, advised to use transparent huge pages (one fault per 2 MiB where
 *   the kernel allows them; "madvise" is the usual setting).
 * - Such a vector grows with mremap: the kernel moves its pages instead of
 *   copying them into fresh ones.
 * - Freed big vectors are kept (up to CACHE_LIMIT bytes) for the next blocks,
 *   whose vectors start at the size the caller hints, so that in a long load
 *   the same pages are reused block after block. release() gives them back.
 *
 * Elsewhere big vectors are plain malloc'd memory, still cached. WORKBENCH_NO_HUGE_PAGES=1 in the
 * environment keeps the mappings on 4 KiB pages (huge pages are fewer faults, but each is 2 MiB to clear).
 */
#ifndef WORKBENCH_BUFFERS_H
#define WORKBENCH_BUFFERS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#define BUFFERS_MAPPED 1
#else
#define BUFFERS_MAPPED 0
#endif

typedef struct { uint8_t *p; size_t len, cap; } vec;

#define MAPPED_FROM ((size_t)2 << 20) /* also the granule: a huge page */
#define CACHE_SLOTS 64
#define CACHE_LIMIT ((size_t)256 << 20)

static struct { void *p; size_t cap; } cache[CACHE_SLOTS];
static size_t cached_bytes;
static PyThread_type_lock cache_lock;

static size_t round_to_granule(size_t n) { return (n + MAPPED_FROM - 1) & ~(MAPPED_FROM - 1); }

/* Fresh memory of `cap` bytes (cap >= MAPPED_FROM, a multiple of it), or NULL. */
static void *big_alloc(size_t cap) {
#if BUFFERS_MAPPED
    void *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    if (!getenv("WORKBENCH_NO_HUGE_PAGES")) madvise(p, cap, MADV_HUGEPAGE); /* where refused: 4 KiB pages */
#endif
    return p;
#else
    return malloc(cap);
#endif
}

static void big_free(void *p, size_t cap) {
#if BUFFERS_MAPPED
    munmap(p, cap);
#else
    (void)cap;
    free(p);
#endif
}

/* At least `want` bytes: a kept buffer when one fits (at most 4x too big), else fresh memory. */
static void *take(size_t want, size_t *cap) {
    if (want < MAPPED_FROM) {
        *cap = want;
        return malloc(want);
    }
    int best = -1;
    void *p = NULL;
    PyThread_acquire_lock(cache_lock, WAIT_LOCK);
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (cache[i].p && cache[i].cap >= want && cache[i].cap <= 4 * want
            && (best < 0 || cache[i].cap < cache[best].cap)) best = i;
    if (best >= 0) {
        p = cache[best].p;
        *cap = cache[best].cap;
        cached_bytes -= cache[best].cap;
        cache[best].p = NULL;
    }
    PyThread_release_lock(cache_lock);
    if (p) return p;
    *cap = round_to_granule(want);
    return big_alloc(*cap);
}

/* Give memory from take() straight back to the system, kept for no one. */
static void give_now(void *p, size_t cap) {
    if (!p) return;
    if (cap < MAPPED_FROM) free(p);
    else big_free(p, cap);
}

/* Give back memory from take(): a big buffer is kept for reuse while there is room. */
static void give(void *p, size_t cap) {
    if (!p) return;
    if (cap < MAPPED_FROM) {
        give_now(p, cap);
        return;
    }
    PyThread_acquire_lock(cache_lock, WAIT_LOCK);
    if (cached_bytes + cap <= CACHE_LIMIT) {
        for (int i = 0; i < CACHE_SLOTS; i++) {
            if (!cache[i].p) {
                cache[i].p = p;
                cache[i].cap = cap;
                cached_bytes += cap;
                p = NULL;
                break;
            }
        }
    }
    PyThread_release_lock(cache_lock);
    give_now(p, cap);
}

/* Free every kept buffer. */
static void release_cache(void) {
    PyThread_acquire_lock(cache_lock, WAIT_LOCK);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].p) big_free(cache[i].p, cache[i].cap);
        cache[i].p = NULL;
    }
    cached_bytes = 0;
    PyThread_release_lock(cache_lock);
}

static int vec_grow(vec *v, size_t extra) {
    size_t want = v->cap ? v->cap : 4096, cap;
    while (want < v->len + extra) want *= 2;
#if BUFFERS_MAPPED
    if (v->cap >= MAPPED_FROM) { /* a mapping: the kernel moves its pages, nothing is copied */
        cap = round_to_granule(want);
        void *p = mremap(v->p, v->cap, cap, MREMAP_MAYMOVE);
        if (p == MAP_FAILED) return 0;
        v->p = p;
        v->cap = cap;
        return 1;
    }
#endif
    uint8_t *p = take(want, &cap);
    if (!p) return 0;
    if (v->len) memcpy(p, v->p, v->len);
    give(v->p, v->cap);
    v->p = p;
    v->cap = cap;
    return 1;
}

/* Room for `extra` more bytes; the common case (there is room) stays inline. */
static inline int vec_reserve(vec *v, size_t extra) {
    return v->len + extra <= v->cap || vec_grow(v, extra);
}

#endif
