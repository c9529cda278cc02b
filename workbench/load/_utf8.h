/*
 * Whole-buffer UTF-8 validation for the OTLP scanner (_otlp_scan.c).
 *
 * utf8_valid(t, len) is 1 when t[0..len) is UTF-8 as Python's decoder takes it: shortest forms
 * only, no surrogates, nothing beyond U+10FFFF. Where the CPU has AVX2 it runs the lookup
 * algorithm of Keiser and Lemire ("Validating UTF-8 in less than one instruction per byte",
 * Software: Practice and Experience 51(5), 2021; the simdjson / simdutf "lookup4" variant),
 * 32 bytes at a time: three 16-entry table lookups classify each pair of adjacent
 * bytes, and saturating subtractions mark where a third or fourth byte must be a continuation.
 * A chunk that is all ASCII costs one compare. Elsewhere a scalar loop does the same check.
 */
#ifndef WORKBENCH_UTF8_H
#define WORKBENCH_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The scalar check (also the reference for the vector one in the tests). */
static int utf8_valid_scalar(const unsigned char *t, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint64_t word;
        if (i + 8 <= len && (memcpy(&word, t + i, 8), !(word & 0x8080808080808080ull))) { i += 8; continue; }
        unsigned c = t[i];
        if (c < 0x80) { i++; continue; }
        size_t n;
        unsigned lo = 0x80, hi = 0xBF;  /* the allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) n = 1;
        else if (c >= 0xE0 && c <= 0xEF) { n = 2; if (c == 0xE0) lo = 0xA0; else if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 3; if (c == 0xF0) lo = 0x90; else if (c == 0xF4) hi = 0x8F; }
        else return 0;
        if (len - i <= n || t[i + 1] < lo || t[i + 1] > hi) return 0;
        for (size_t k = 2; k <= n; k++)
            if ((t[i + k] & 0xC0) != 0x80) return 0;
        i += n + 1;
    }
    return 1;
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define WORKBENCH_UTF8_SIMD 1

/* error classes of a (previous byte, byte) pair */
#define U8_TOO_SHORT (1 << 0)   /* a lead byte (or ASCII) where a continuation must follow a lead */
#define U8_TOO_LONG (1 << 1)    /* a continuation after ASCII */
#define U8_OVERLONG_3 (1 << 2)  /* E0 80..9F */
#define U8_TOO_LARGE (1 << 3)   /* F4 90.. and beyond */
#define U8_SURROGATE (1 << 4)   /* ED A0..BF */
#define U8_OVERLONG_2 (1 << 5)  /* C0, C1 */
#define U8_TOO_LARGE_1000 (1 << 6)
#define U8_OVERLONG_4 (1 << 6)  /* F0 80..8F */
#define U8_TWO_CONTS (1 << 7)   /* a continuation after a continuation (allowed only where a lead needs it) */
#define U8_CARRY (U8_TOO_SHORT | U8_TOO_LONG | U8_TWO_CONTS)
/* a 16-entry table in both 128-bit lanes (the byte shuffle looks up within a lane) */
#define U8_TABLE(...) _mm256_setr_epi8(__VA_ARGS__, __VA_ARGS__)

/* The bytes n = 1, 2, 3 positions before each byte of input, across the chunk edge. */
#define U8_PREV(input, previous, n) \
    _mm256_alignr_epi8((input), _mm256_permute2x128_si256((previous), (input), 0x21), 16 - (n))

__attribute__((target("avx2")))
static inline __m256i u8_errors(__m256i input, __m256i previous) {
    const __m256i low_nibble = _mm256_set1_epi8(0x0F);
    const __m256i byte_1_high_table = U8_TABLE(
        U8_TOO_LONG, U8_TOO_LONG, U8_TOO_LONG, U8_TOO_LONG, U8_TOO_LONG, U8_TOO_LONG, U8_TOO_LONG, U8_TOO_LONG,
        U8_TWO_CONTS, U8_TWO_CONTS, U8_TWO_CONTS, U8_TWO_CONTS,
        U8_TOO_SHORT | U8_OVERLONG_2, U8_TOO_SHORT, U8_TOO_SHORT | U8_OVERLONG_3 | U8_SURROGATE,
        U8_TOO_SHORT | U8_TOO_LARGE | U8_TOO_LARGE_1000 | U8_OVERLONG_4);
    const __m256i byte_1_low_table = U8_TABLE(
        U8_CARRY | U8_OVERLONG_3 | U8_OVERLONG_2 | U8_OVERLONG_4, U8_CARRY | U8_OVERLONG_2, U8_CARRY, U8_CARRY,
        U8_CARRY | U8_TOO_LARGE, U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000,
        U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000, U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000,
        U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000, U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000,
        U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000, U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000,
        U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000, U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000 | U8_SURROGATE,
        U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000, U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000);
    const __m256i byte_2_high_table = U8_TABLE(
        U8_TOO_SHORT, U8_TOO_SHORT, U8_TOO_SHORT, U8_TOO_SHORT, U8_TOO_SHORT, U8_TOO_SHORT, U8_TOO_SHORT,
        U8_TOO_SHORT,
        U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_OVERLONG_3 | U8_TOO_LARGE_1000 | U8_OVERLONG_4,
        U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_OVERLONG_3 | U8_TOO_LARGE,
        U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_SURROGATE | U8_TOO_LARGE,
        U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_SURROGATE | U8_TOO_LARGE,
        U8_TOO_SHORT, U8_TOO_SHORT, U8_TOO_SHORT, U8_TOO_SHORT);
    __m256i prev1 = U8_PREV(input, previous, 1);
    __m256i byte_1_high = _mm256_shuffle_epi8(byte_1_high_table,
                                              _mm256_and_si256(_mm256_srli_epi16(prev1, 4), low_nibble));
    __m256i byte_1_low = _mm256_shuffle_epi8(byte_1_low_table, _mm256_and_si256(prev1, low_nibble));
    __m256i byte_2_high = _mm256_shuffle_epi8(byte_2_high_table,
                                              _mm256_and_si256(_mm256_srli_epi16(input, 4), low_nibble));
    __m256i special = _mm256_and_si256(_mm256_and_si256(byte_1_high, byte_1_low), byte_2_high);
    /* a byte two after a 3- or 4-byte lead, or three after a 4-byte lead, must be a continuation:
     * there TWO_CONTS is expected, not an error */
    __m256i third = _mm256_subs_epu8(U8_PREV(input, previous, 2), _mm256_set1_epi8((char)(0xE0 - 0x80)));
    __m256i fourth = _mm256_subs_epu8(U8_PREV(input, previous, 3), _mm256_set1_epi8((char)(0xF0 - 0x80)));
    __m256i must_continue = _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8((char)0x80));
    return _mm256_xor_si256(must_continue, special);
}

__attribute__((target("avx2")))
static int utf8_valid_avx2(const unsigned char *t, size_t len) {
    __m256i previous = _mm256_setzero_si256(), error = _mm256_setzero_si256(), incomplete = error;
    /* the last three bytes of a chunk that leave a sequence open: the next chunk must continue it */
    const __m256i max_tail = _mm256_setr_epi8(
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, (char)(0xF0 - 1), (char)(0xE0 - 1), (char)(0xC0 - 1));
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        __m256i input = _mm256_loadu_si256((const __m256i *)(t + i));
        if (!_mm256_movemask_epi8(input)) {
            error = _mm256_or_si256(error, incomplete);  /* ASCII after an unfinished sequence */
        } else {
            error = _mm256_or_si256(error, u8_errors(input, previous));
            incomplete = _mm256_subs_epu8(input, max_tail);
        }
        previous = input;
    }
    /* the last bytes padded with NUL: a sequence still open at the end meets ASCII, which it may not */
    unsigned char tail[32] = {0};
    memcpy(tail, t + i, len - i);
    error = _mm256_or_si256(error, u8_errors(_mm256_loadu_si256((const __m256i *)tail), previous));
    return _mm256_testz_si256(error, error);
}
#endif

/* Whether t[0..len) is UTF-8 (shortest forms, no surrogates, at most U+10FFFF). */
static int utf8_valid(const unsigned char *t, size_t len) {
#ifdef WORKBENCH_UTF8_SIMD
    static int has_avx2 = -1;
    if (has_avx2 < 0) has_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    if (has_avx2) return utf8_valid_avx2(t, len);
#endif
    return utf8_valid_scalar(t, len);
}

#endif
