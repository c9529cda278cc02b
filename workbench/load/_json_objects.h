/*
 * A span's leftover attributes as one JSON object, for the OTLP scanner module (_otlp_scan.c).
 *
 * json_objects(rows, key_ids, prefixes, values, tails, n_rows) -> (views, data, bitmap, null_count)
 *   rows, key_ids: int64 buffers of m elements, rows ascending: element i is key key_ids[i] of row rows[i];
 *   prefixes:      a tuple of bytes, the `"key":` text of each key id;
 *   values:        the (views, n, data, valid) arguments (_views.h) of the m values' JSON text;
 *   tails:         a tuple of such arguments, each of n_rows strings: ready `"key":value` pieces (null: none).
 * Row r's object holds its elements in the order their keys first appear in the row, each key once with its
 * last value (a dict's order, as the reference reader builds it), then its tail pieces in order. A null
 * value leaves its key out. A row without a piece is null. The result is a string_view array: 16-byte
 * views, one data buffer, a validity bitmap and its null count. ValueError for rows out of order, a key id
 * without a prefix, a view outside its buffer, or more than 2 GiB of text (int32 view offsets).
 *
 * One pass finds each row's pieces and its length, a second writes each object once (polars needed
 * three copies of the text: the pieces, their join, and the braces).
 */
#ifndef WORKBENCH_JSON_OBJECTS_H
#define WORKBENCH_JSON_OBJECTS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_views.h"

typedef struct {
    const unsigned char *text;
    int32_t len;
} piece;

static int int64_buffer(PyObject *obj, Py_buffer *b, Py_ssize_t *n, const char *what) {
    if (PyObject_GetBuffer(obj, b, PyBUF_SIMPLE) < 0) return 0;
    if (b->len % 8) {
        PyErr_Format(PyExc_ValueError, "json_objects: %s is not a buffer of int64", what);
        PyBuffer_Release(b);
        b->obj = NULL;
        return 0;
    }
    *n = b->len / 8;
    return 1;
}

/* String i of a (text NULL for a null); 0 with *bad set for a bad view (view_locate: no exception). */
static int piece_of(const view_args *a, Py_ssize_t i, piece *p, int *bad) {
    p->text = NULL;
    p->len = 0;
    if (!view_is_valid(a, i)) return 1;
    return (p->text = view_locate(a, i, &p->len, bad)) != NULL;
}

enum { OBJECTS_UNORDERED = 1, OBJECTS_OUT_OF_RANGE, OBJECTS_BAD_VALUE, OBJECTS_BAD_TAIL, OBJECTS_TOO_BIG };

static unsigned char *put(unsigned char *at, const piece *p) {
    memcpy(at, p->text, (size_t)p->len);
    return at + p->len;
}

static PyObject *json_objects(PyObject *self, PyObject *args) {
    PyObject *rows_obj, *keys_obj, *prefixes, *values_obj, *tails_obj, *result = NULL;
    PyObject *out_views = NULL, *out_data = NULL, *out_bitmap = NULL;
    Py_ssize_t n_rows;
    if (!PyArg_ParseTuple(args, "OOO!O!O!n", &rows_obj, &keys_obj, &PyTuple_Type, &prefixes, &PyTuple_Type,
                          &values_obj, &PyTuple_Type, &tails_obj, &n_rows))
        return NULL;
    Py_buffer rows_b = {0}, keys_b = {0};
    view_args values = {0};
    Py_ssize_t m = 0, m_keys = 0, n_tails = PyTuple_GET_SIZE(tails_obj), got_tails = 0;
    Py_ssize_t n_keys = PyTuple_GET_SIZE(prefixes);
    view_args *tails = calloc((size_t)n_tails + 1, sizeof *tails);
    piece *prefix = calloc((size_t)n_keys + 1, sizeof *prefix);
    /* per key: the row (+1) it was last seen in, and its place among that row's pieces */
    Py_ssize_t *stamp = calloc((size_t)n_keys + 1, sizeof *stamp), *slot = calloc((size_t)n_keys + 1, sizeof *slot);
    /* per row: its first element, how many distinct keys it has, its object's length (-1: null);
     * chosen[first[r] + j]: the element that gives row r's j-th key its (last) value */
    Py_ssize_t *first = NULL, *count = NULL, *lengths = NULL, *chosen = NULL;
    piece *values_text = NULL;
    if (!tails || !prefix || !stamp || !slot) { PyErr_NoMemory(); goto done; }
    if (!int64_buffer(rows_obj, &rows_b, &m, "rows") || !int64_buffer(keys_obj, &keys_b, &m_keys, "key_ids"))
        goto done;
    if (!views_acquire(values_obj, "json_objects", &values)) goto done;
    for (; got_tails < n_tails; got_tails++)
        if (!views_acquire(PyTuple_GET_ITEM(tails_obj, got_tails), "json_objects", &tails[got_tails])) goto done;
    if (n_rows < 0 || m_keys != m || values.n != m) {
        PyErr_SetString(PyExc_ValueError, "json_objects: rows, key_ids and values differ in length");
        goto done;
    }
    for (Py_ssize_t t = 0; t < n_tails; t++)
        if (tails[t].n != n_rows) {
            PyErr_SetString(PyExc_ValueError, "json_objects: a tail is not n_rows long");
            goto done;
        }
    for (Py_ssize_t k = 0; k < n_keys; k++) {
        PyObject *text = PyTuple_GET_ITEM(prefixes, k);
        if (!PyBytes_Check(text) || PyBytes_GET_SIZE(text) > INT32_MAX) {
            PyErr_SetString(PyExc_TypeError, "json_objects: prefixes must be bytes");
            goto done;
        }
        prefix[k].text = (const unsigned char *)PyBytes_AS_STRING(text);
        prefix[k].len = (int32_t)PyBytes_GET_SIZE(text);
    }
    first = calloc((size_t)n_rows + 1, sizeof *first);
    count = calloc((size_t)n_rows + 1, sizeof *count);
    lengths = malloc(((size_t)n_rows + 1) * sizeof *lengths);
    chosen = malloc(((size_t)m + 1) * sizeof *chosen);
    values_text = malloc(((size_t)m + 1) * sizeof *values_text);
    if (!first || !count || !lengths || !chosen || !values_text) { PyErr_NoMemory(); goto done; }
    const int64_t *rows = rows_b.buf, *key_ids = keys_b.buf;
    Py_ssize_t total = 0, nulls = 0;
    int error = 0, bad = 0, bad_tail = 0;
    /* pass 1, without the GIL (the mapping runs on the parse workers, where the GIL is the scarce thing):
     * each row's keys in the order they first appear, each with its last element */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0, r = -1; i < m && !error; i++) {
        int64_t row = rows[i], key = key_ids[i];
        if (row < r) error = OBJECTS_UNORDERED;
        else if (row >= n_rows || key < 0 || key >= n_keys) error = OBJECTS_OUT_OF_RANGE;
        else if (!piece_of(&values, i, &values_text[i], &bad)) error = OBJECTS_BAD_VALUE;
        if (error) break;
        if (row != r) first[r = (Py_ssize_t)row] = i;
        if (stamp[key] != r + 1) {
            stamp[key] = r + 1;
            slot[key] = count[r]++;
        }
        chosen[first[r] + slot[key]] = i;
    }
    /* ... and the length of its object */
    for (Py_ssize_t r = 0; r < n_rows && !error; r++) {
        Py_ssize_t len = 0, pieces = 0;
        for (Py_ssize_t j = 0; j < count[r]; j++) {
            Py_ssize_t i = chosen[first[r] + j];
            if (!values_text[i].text) continue;  /* a null value: the key is left out */
            len += prefix[key_ids[i]].len + values_text[i].len;
            pieces++;
        }
        for (Py_ssize_t t = 0; t < n_tails && !error; t++) {
            piece p;
            if (!piece_of(&tails[t], r, &p, &bad)) {
                error = OBJECTS_BAD_TAIL;
                bad_tail = (int)t;
            } else if (p.text) {
                len += p.len;
                pieces++;
            }
        }
        lengths[r] = pieces ? len + pieces + 1 : -1;  /* the braces, and a comma between two pieces */
        if (!pieces) nulls++;
        else if (lengths[r] > 12) total += lengths[r];
        if (lengths[r] > INT32_MAX || total > INT32_MAX) error = OBJECTS_TOO_BIG;
    }
    Py_END_ALLOW_THREADS
    switch (error) {
    case 0: break;
    case OBJECTS_UNORDERED: PyErr_SetString(PyExc_ValueError, "json_objects: rows out of order"); goto done;
    case OBJECTS_OUT_OF_RANGE:
        PyErr_SetString(PyExc_ValueError, "json_objects: a row or key id out of range");
        goto done;
    case OBJECTS_BAD_VALUE: view_raise(&values, bad); goto done;
    case OBJECTS_BAD_TAIL: view_raise(&tails[bad_tail], bad); goto done;
    default: PyErr_SetString(PyExc_ValueError, "json_objects: more than 2 GiB of text"); goto done;
    }
    out_views = PyBytes_FromStringAndSize(NULL, n_rows * 16);
    out_data = PyBytes_FromStringAndSize(NULL, total);
    out_bitmap = PyBytes_FromStringAndSize(NULL, (n_rows + 7) / 8);
    if (!out_views || !out_data || !out_bitmap) goto done;
    unsigned char *view = (unsigned char *)PyBytes_AS_STRING(out_views);
    unsigned char *base = (unsigned char *)PyBytes_AS_STRING(out_data), *at = base;
    unsigned char *bitmap = (unsigned char *)PyBytes_AS_STRING(out_bitmap);
    /* pass 2: each object written once (every view was checked in pass 1) */
    Py_BEGIN_ALLOW_THREADS
    memset(view, 0, (size_t)n_rows * 16);
    memset(bitmap, 0, (size_t)(n_rows + 7) / 8);
    unsigned char small[12];
    for (Py_ssize_t r = 0; r < n_rows; r++, view += 16) {
        if (lengths[r] < 0) continue;
        bitmap[r >> 3] |= (unsigned char)(1u << (r & 7));
        int32_t len = (int32_t)lengths[r];
        unsigned char *start = len <= 12 ? small : at, *o = start;
        *o++ = '{';
        for (Py_ssize_t j = 0; j < count[r]; j++) {
            Py_ssize_t i = chosen[first[r] + j];
            if (!values_text[i].text) continue;
            if (o - start > 1) *o++ = ',';
            o = put(put(o, &prefix[key_ids[i]]), &values_text[i]);
        }
        for (Py_ssize_t t = 0; t < n_tails; t++) {
            piece p;
            piece_of(&tails[t], r, &p, &bad);  /* checked in pass 1 */
            if (!p.text) continue;
            if (o - start > 1) *o++ = ',';
            o = put(o, &p);
        }
        *o++ = '}';
        view_write(view, len, start, (int32_t)(start - base));
        if (len > 12) at = o;
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(OOOn)", out_views, out_data, out_bitmap, nulls);
done:
    Py_XDECREF(out_views);
    Py_XDECREF(out_data);
    Py_XDECREF(out_bitmap);
    for (Py_ssize_t t = 0; t < got_tails; t++) views_release(&tails[t]);
    views_release(&values);
    if (rows_b.obj) PyBuffer_Release(&rows_b);
    if (keys_b.obj) PyBuffer_Release(&keys_b);
    free(tails);
    free(prefix);
    free(stamp);
    free(slot);
    free(first);
    free(count);
    free(lengths);
    free(chosen);
    free(values_text);
    return result;
}

#endif
