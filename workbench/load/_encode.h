/*
 * Dictionary encoding of an Arrow string_view array for the OTLP scanner module (_otlp_scan.c):
 * the attribute keys of a block, a few distinct strings repeated ~100k times. pyarrow's own
 * encoding would import pyarrow.compute (~30 ms) inside every fresh process's first load.
 */
#ifndef WORKBENCH_ENCODE_H
#define WORKBENCH_ENCODE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_views.h"

/* encode(views, n, data, valid) -> (codes, distinct): the int64 code of each of the n strings (its index
 * among the distinct strings in the order they first appear; -1 where valid, a byte per string, is 0),
 * and the distinct strings as bytes. The arguments: _views.h.
 * Spans list their attributes in the same order, so each string is first compared with the one that
 * followed the previous string last time; only a miss is hashed (2.3 -> 1.0 ms for 113k keys). */
static PyObject *encode(PyObject *self, PyObject *args) {
    view_args a;
    if (!views_acquire(args, "encode", &a)) return NULL;
    Py_ssize_t n = a.n;
    PyObject *codes = NULL, *distinct = NULL, *result = NULL;
    size_t cap = 64, n_distinct = 0;
    struct entry { const unsigned char *p; uint32_t len; uint64_t hash; } *entries = NULL;
    int32_t *slots = NULL, *follower = NULL;  /* follower[d]: the code that came after code d last time */
    int32_t previous = -1;
    if (!(codes = PyBytes_FromStringAndSize(NULL, n * 8))) goto done;
    int64_t *code = (int64_t *)PyBytes_AS_STRING(codes);
    slots = malloc(cap * sizeof *slots);
    entries = malloc((cap / 2) * sizeof *entries);
    follower = malloc((cap / 2) * sizeof *follower);
    if (!slots || !entries || !follower) { PyErr_NoMemory(); goto done; }
    memset(slots, -1, cap * sizeof *slots);
    int bad = 0, no_memory = 0;
    Py_BEGIN_ALLOW_THREADS  /* the mapping encodes on the parse workers, where the GIL is the scarce thing */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!view_is_valid(&a, i)) { code[i] = -1; continue; }
        int32_t len;
        const unsigned char *text = view_locate(&a, i, &len, &bad);
        if (!text) break;
        if (previous >= 0 && follower[previous] >= 0) {
            const struct entry *guess = &entries[follower[previous]];
            if (guess->len == (uint32_t)len && !memcmp(guess->p, text, (size_t)len)) {
                code[i] = previous = follower[previous];
                continue;
            }
        }
        uint64_t hash = 14695981039346656037ull;  /* FNV-1a */
        for (int32_t k = 0; k < len; k++) hash = (hash ^ text[k]) * 1099511628211ull;
        size_t at = (size_t)hash & (cap - 1);
        while (slots[at] >= 0) {
            struct entry *e = &entries[slots[at]];
            if (e->hash == hash && e->len == (uint32_t)len && !memcmp(e->p, text, (size_t)len)) break;
            at = (at + 1) & (cap - 1);
        }
        if (slots[at] < 0) {
            if (n_distinct + 1 > cap / 2) {  /* keep the table at most half full: grow and re-place */
                size_t bigger = cap * 2;
                int32_t *more = malloc(bigger * sizeof *more);
                void *grown = realloc(entries, (bigger / 2) * sizeof *entries);
                if (grown) entries = grown;
                int32_t *longer = grown ? realloc(follower, (bigger / 2) * sizeof *follower) : NULL;
                if (longer) follower = longer;
                if (!more || !grown || !longer) {
                    free(more);
                    no_memory = 1;
                    break;
                }
                memset(more, -1, bigger * sizeof *more);
                for (size_t d = 0; d < n_distinct; d++) {
                    size_t to = (size_t)entries[d].hash & (bigger - 1);
                    while (more[to] >= 0) to = (to + 1) & (bigger - 1);
                    more[to] = (int32_t)d;
                }
                free(slots);
                slots = more;
                cap = bigger;
                at = (size_t)hash & (cap - 1);
                while (slots[at] >= 0) at = (at + 1) & (cap - 1);
            }
            entries[n_distinct] = (struct entry){text, (uint32_t)len, hash};
            follower[n_distinct] = -1;
            slots[at] = (int32_t)n_distinct++;
        }
        if (previous >= 0) follower[previous] = slots[at];
        code[i] = previous = slots[at];
    }
    Py_END_ALLOW_THREADS
    if (bad || no_memory) {
        if (bad) view_raise(&a, bad);
        else PyErr_NoMemory();
        goto done;
    }
    if (!(distinct = PyList_New((Py_ssize_t)n_distinct))) goto done;
    for (size_t d = 0; d < n_distinct; d++) {
        PyObject *text = PyBytes_FromStringAndSize((const char *)entries[d].p, entries[d].len);
        if (!text) goto done;
        PyList_SET_ITEM(distinct, (Py_ssize_t)d, text);
    }
    result = PyTuple_Pack(2, codes, distinct);
done:
    Py_XDECREF(codes);
    Py_XDECREF(distinct);
    free(slots);
    free(entries);
    free(follower);
    views_release(&a);
    return result;
}

#endif
