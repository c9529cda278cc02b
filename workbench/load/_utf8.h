/*
 * Whole-buffer UTF-8 validation for the OTLP scanner (_otlp_scan.c).
 *
 * utf8_valid(t, len) is 1 when t[0..len) is UTF-8 as Python's decoder takes it: shortest forms
 * only, no surrogates, nothing beyond U+10FFFF. Where the CPU has SSSE3 it runs the lookup
 * algorithm of Keiser and Lemire ("Validating UTF-8 in less than one instruction per byte",
 * Software: Practice and Experience 51(5), 2021; the simdjson / simdutf "lookup4" variant):
 * three 16-entry table lookups classify each pair of adjacent bytes, and one saturating
 * subtraction marks where a third or fourth byte must be a continuation. Text that is ASCII
 * 16 bytes at a time costs one compare. Elsewhere a scalar loop does the same check.
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
#include <tmmintrin.h>
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

__attribute__((target("ssse3")))
static inline __m128i u8_prev(__m128i input, __m128i previous, int n) {
    switch (n) {  /* the bytes n positions back, across the chunk boundary */
    case 1: return _mm_alignr_epi8(input, previous, 15);
    case 2: return _mm_alignr_epi8(input, previous, 14);
    default: return _mm_alignr_epi8(input, previous, 13);
    }
}

__attribute__((target("ssse3")))
static inline __m128i u8_errors(__m128i input, __m128i previous) {
    const __m128i low_nibble = _mm_set1_epi8(0x0F);
    const __m128i byte_1_high_table = _mm_setr_epi8(
        U8_TOO_LONG, U8_TOO_LONG, U8_TOO_LONG, U8_TOO_LONG, U8_TOO_LONG, U8_TOO_LONG, U8_TOO_LONG, U8_TOO_LONG,
        U8_TWO_CONTS, U8_TWO_CONTS, U8_TWO_CONTS, U8_TWO_CONTS,
        U8_TOO_SHORT | U8_OVERLONG_2, U8_TOO_SHORT, U8_TOO_SHORT | U8_OVERLONG_3 | U8_SURROGATE,
        U8_TOO_SHORT | U8_TOO_LARGE | U8_TOO_LARGE_1000 | U8_OVERLONG_4);
    const __m128i byte_1_low_table = _mm_setr_epi8(
        U8_CARRY | U8_OVERLONG_3 | U8_OVERLONG_2 | U8_OVERLONG_4, U8_CARRY | U8_OVERLONG_2, U8_CARRY, U8_CARRY,
        U8_CARRY | U8_TOO_LARGE, U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000,
        U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000, U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000,
        U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000, U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000,
        U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000, U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000,
        U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000, U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000 | U8_SURROGATE,
        U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000, U8_CARRY | U8_TOO_LARGE | U8_TOO_LARGE_1000);
    const __m128i byte_2_high_table = _mm_setr_epi8(
        U8_TOO_SHORT, U8_TOO_SHORT, U8_TOO_SHORT, U8_TOO_SHORT, U8_TOO_SHORT, U8_TOO_SHORT, U8_TOO_SHORT,
        U8_TOO_SHORT,
        U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_OVERLONG_3 | U8_TOO_LARGE_1000 | U8_OVERLONG_4,
        U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_OVERLONG_3 | U8_TOO_LARGE,
        U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_SURROGATE | U8_TOO_LARGE,
        U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_SURROGATE | U8_TOO_LARGE,
        U8_TOO_SHORT, U8_TOO_SHORT, U8_TOO_SHORT, U8_TOO_SHORT);
    __m128i prev1 = u8_prev(input, previous, 1);
    __m128i byte_1_high = _mm_shuffle_epi8(byte_1_high_table, _mm_and_si128(_mm_srli_epi16(prev1, 4), low_nibble));
    __m128i byte_1_low = _mm_shuffle_epi8(byte_1_low_table, _mm_and_si128(prev1, low_nibble));
    __m128i byte_2_high = _mm_shuffle_epi8(byte_2_high_table, _mm_and_si128(_mm_srli_epi16(input, 4), low_nibble));
    __m128i special = _mm_and_si128(_mm_and_si128(byte_1_high, byte_1_low), byte_2_high);
    /* a byte two after a 3- or 4-byte lead, or three after a 4-byte lead, must be a continuation:
     * there TWO_CONTS is expected, not an error */
    __m128i third = _mm_subs_epu8(u8_prev(input, previous, 2), _mm_set1_epi8((char)(0xE0 - 0x80)));
    __m128i fourth = _mm_subs_epu8(u8_prev(input, previous, 3), _mm_set1_epi8((char)(0xF0 - 0x80)));
    __m128i must_continue = _mm_and_si128(_mm_or_si128(third, fourth), _mm_set1_epi8((char)0x80));
    return _mm_xor_si128(must_continue, special);
}

__attribute__((target("ssse3")))
static int utf8_valid_ssse3(const unsigned char *t, size_t len) {
    __m128i previous = _mm_setzero_si128(), error = _mm_setzero_si128();
    /* a chunk ending in the middle of a sequence: the next chunk must continue it */
    const __m128i max_tail = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                           (char)(0xF0 - 1), (char)(0xE0 - 1), (char)(0xC0 - 1));
    __m128i incomplete = _mm_setzero_si128();
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        __m128i input = _mm_loadu_si128((const __m128i *)(t + i));
        if (!_mm_movemask_epi8(input)) {
            error = _mm_or_si128(error, incomplete);  /* ASCII after an unfinished sequence */
        } else {
            error = _mm_or_si128(error, u8_errors(input, previous));
            incomplete = _mm_subs_epu8(input, max_tail);
        }
        previous = input;
    }
    /* the last bytes padded with NUL: a sequence still open at the end meets ASCII, which it may not */
    unsigned char tail[16] = {0};
    memcpy(tail, t + i, len - i);
    error = _mm_or_si128(error, u8_errors(_mm_loadu_si128((const __m128i *)tail), previous));
    return _mm_movemask_epi8(_mm_cmpeq_epi8(error, _mm_setzero_si128())) == 0xFFFF;
}
#endif

/* Whether t[0..len) is UTF-8 (shortest forms, no surrogates, at most U+10FFFF). */
static int utf8_valid(const unsigned char *t, size_t len) {
#ifdef WORKBENCH_UTF8_SIMD
    static int has_ssse3 = -1;
    if (has_ssse3 < 0) has_ssse3 = __builtin_cpu_supports("ssse3") ? 1 : 0;
    if (has_ssse3) return utf8_valid_ssse3(t, len);
#endif
    return utf8_valid_scalar(t, len);
}

#endif
