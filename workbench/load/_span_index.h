/*
 * The span graph of a load for the OTLP scanner module (_otlp_scan.c): which rows are the same span,
 * which row is each span's parent, which rows are the same trace. anomalies.span_graph hashed polars
 * structs of the ids and sorted the hashes (15-40 ms at 100k spans, and a collision could mis-set a
 * flag); a hash table over the strings' views, which compares the strings themselves, is exact.
 */
#ifndef WORKBENCH_SPAN_INDEX_H
#define WORKBENCH_SPAN_INDEX_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_buffers.h"
#include "_views.h"

#define NULL_TEXT_HASH 0x9ae16a3b2f90404fULL

static inline uint64_t fmix64(uint64_t h) {  /* murmur3's finaliser: every bit of h moves the low bits */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

/* tests/load/test_span_graph.py mirrors the word steps to build two ids with the same hash */
static inline uint64_t text_hash(const unsigned char *p, int32_t len) {
    if (!p) return NULL_TEXT_HASH;
    uint64_t h = 0x243f6a8885a308d3ULL ^ (uint64_t)len, word;
    int32_t k = 0;
    for (; k + 8 <= len; k += 8) {
        memcpy(&word, p + k, 8);
        h = (h ^ word) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    if (k < len) {
        word = 0;
        memcpy(&word, p + k, (size_t)(len - k));
        h = (h ^ word) * 0x9e3779b97f4a7c15ULL;
    }
    return fmix64(h);
}

static inline int same_text(const view_args *a, Py_ssize_t i, const view_args *b, Py_ssize_t j) {
    int32_t len_a = 0, len_b = 0;
    const unsigned char *x = view_text_unchecked(a, i, &len_a), *y = view_text_unchecked(b, j, &len_b);
    if (!x || !y) return !x && !y;  /* null equals null only */
    return len_a == len_b && !memcmp(x, y, (size_t)len_a);
}

/* The hash of every string of a (NULL_TEXT_HASH for null) into out; 0 with a ValueError for a bad view. */
static int hash_texts(const view_args *a, uint64_t *out) {
    for (Py_ssize_t i = 0; i < a->n; i++) {
        int32_t len = 0;
        const unsigned char *text = NULL;
        if (view_is_valid(a, i) && !(text = view_text(a, i, &len))) return 0;
        out[i] = text_hash(text, len);
    }
    return 1;
}

/* Open addressing, at most half full; a slot holds a key's hash and its first row (-1: empty), so that a
 * probe past another key reads no string. */
typedef struct { uint64_t hash; int64_t row; } slot;
typedef struct { slot *slots; size_t mask, bytes; } row_table;

/* The slots come from _buffers.h, on huge pages where the system has them (every probe lands on a random
 * one; 12.4 -> 9.5 ms at 100k spans), and go straight back to the system (give_now): the scanner's
 * cache is for its blocks. */
static int table_init(row_table *t, Py_ssize_t n) {
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap <<= 1;
    t->mask = cap - 1;
    if (!(t->slots = take(cap * sizeof *t->slots, &t->bytes))) return 0;
    memset(t->slots, 0xff, cap * sizeof *t->slots);
    return 1;
}

/* First rows: first[i] is the first row whose key equals row i's (keys: the strings of `one` and, when
 * `two` is not NULL, of `two` at the same row; `hash` their combined hashes). */
static void first_rows(const view_args *one, const view_args *two, const uint64_t *hash, row_table *t,
                       int64_t *first) {
    for (Py_ssize_t i = 0; i < one->n; i++) {
        size_t at = (size_t)hash[i] & t->mask;
        slot *s;
        while ((s = &t->slots[at])->row >= 0) {
            if (s->hash == hash[i] && same_text(one, s->row, one, i) && (!two || same_text(two, s->row, two, i)))
                break;
            at = (at + 1) & t->mask;
        }
        if (s->row < 0) *s = (slot){hash[i], i};
        first[i] = s->row;
    }
}

static inline uint64_t pair_hash(uint64_t trace, uint64_t span) {
    return fmix64(trace ^ (span * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL));
}

/* span_index(trace, span, parent) -> (node, parent_row, trace_row), each the bytes of n int64 values. The
 * arguments are the (views, n, data, valid) of three string_view columns of n rows (_views.h).
 * node[i]: the first row with row i's (trace, span) pair; parent_row[i]: that of the pair (trace[i],
 * parent[i]), -1 where parent[i] is null or no row has that pair; trace_row[i]: the first row with row i's
 * trace. Strings are compared, not only hashed; a null equals a null and nothing else. */
static PyObject *span_index(PyObject *self, PyObject *args) {
    PyObject *columns[3], *result = NULL, *out[3] = {NULL, NULL, NULL};
    view_args trace, span, parent;
    int held = 0, ok = 0;
    Py_ssize_t n = 0;
    int64_t *node, *parent_row, *trace_row;
    uint64_t *trace_hash = NULL, *key = NULL, *parent_key = NULL;
    row_table pairs = {NULL, 0, 0}, traces = {NULL, 0, 0};
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyTuple_Type, &columns[0], &PyTuple_Type, &columns[1], &PyTuple_Type,
                          &columns[2]))
        return NULL;
    if (!views_acquire(columns[0], "span_index", &trace)) return NULL;
    held = 1;
    if (!views_acquire(columns[1], "span_index", &span)) goto done;
    held = 2;
    if (!views_acquire(columns[2], "span_index", &parent)) goto done;
    held = 3;
    n = trace.n;
    if (span.n != n || parent.n != n) {
        PyErr_SetString(PyExc_ValueError, "span_index: columns of different lengths");
        goto done;
    }
    for (int k = 0; k < 3; k++)
        if (!(out[k] = PyBytes_FromStringAndSize(NULL, n * 8))) goto done;
    node = (int64_t *)PyBytes_AS_STRING(out[0]);
    parent_row = (int64_t *)PyBytes_AS_STRING(out[1]);
    trace_row = (int64_t *)PyBytes_AS_STRING(out[2]);
    size_t bytes = (size_t)(n ? n : 1) * sizeof(uint64_t);
    if (!(trace_hash = malloc(bytes)) || !(key = malloc(bytes)) || !(parent_key = malloc(bytes)) ||
        !table_init(&pairs, n) || !table_init(&traces, n)) {
        PyErr_NoMemory();
        goto done;
    }
    /* every view is checked here, with the GIL; the loops below read them with view_text_unchecked */
    if (!hash_texts(&trace, trace_hash) || !hash_texts(&span, key) || !hash_texts(&parent, parent_key)) goto done;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        key[i] = pair_hash(trace_hash[i], key[i]);
        parent_key[i] = pair_hash(trace_hash[i], parent_key[i]);
    }
    first_rows(&trace, NULL, trace_hash, &traces, trace_row);
    first_rows(&trace, &span, key, &pairs, node);
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t row = -1;
        if (view_is_valid(&parent, i)) {
            size_t at = (size_t)parent_key[i] & pairs.mask;
            const slot *s;
            while ((row = (s = &pairs.slots[at])->row) >= 0) {
                if (s->hash == parent_key[i] && same_text(&trace, row, &trace, i) && same_text(&span, row, &parent, i))
                    break;
                at = (at + 1) & pairs.mask;
            }
        }
        parent_row[i] = row;
    }
    Py_END_ALLOW_THREADS
    ok = 1;
done:
    if (ok) result = PyTuple_Pack(3, out[0], out[1], out[2]);
    for (int k = 0; k < 3; k++) Py_XDECREF(out[k]);
    free(trace_hash);
    free(key);
    free(parent_key);
    give_now(pairs.slots, pairs.bytes);
    give_now(traces.slots, traces.bytes);
    if (held >= 3) views_release(&parent);
    if (held >= 2) views_release(&span);
    if (held >= 1) views_release(&trace);
    return result;
}

#endif
