/*
 * The arguments of the scanner module's functions over an Arrow string_view array (_encode.h,
 * _json_text.h, _json_objects.h): (views, n, data, valid): n 16-byte views, the tuple of their data buffers, and a
 * byte per string (0: null) or None. The buffers are untrusted: every view is bounds-checked.
 * view_write writes a view (those functions' results; the scanner stores its strings' views with
 * view_store, _otlp_scan.c, and uses view_write only where SSE2 is missing).
 */
#ifndef WORKBENCH_VIEWS_H
#define WORKBENCH_VIEWS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    Py_buffer views, valid;  /* valid.obj is NULL when every string is valid */
    Py_buffer *data;
    Py_ssize_t n, n_data, got;
    const char *who;  /* the function's name, for errors */
} view_args;

static void views_release(view_args *a) {
    for (Py_ssize_t k = 0; k < a->got; k++) PyBuffer_Release(&a->data[k]);
    free(a->data);
    a->data = NULL;
    a->got = 0;
    if (a->valid.obj) PyBuffer_Release(&a->valid);
    if (a->views.obj) PyBuffer_Release(&a->views);
}

/* 1 with every buffer held (release with views_release), 0 with an exception set (nothing held) */
static int views_acquire(PyObject *args, const char *who, view_args *a) {
    PyObject *data, *valid_obj;
    memset(a, 0, sizeof *a);
    a->who = who;
    if (!PyArg_ParseTuple(args, "y*nO!O", &a->views, &a->n, &PyTuple_Type, &data, &valid_obj)) return 0;
    a->n_data = PyTuple_GET_SIZE(data);
    if (!(a->data = calloc((size_t)a->n_data + 1, sizeof(Py_buffer)))) { PyErr_NoMemory(); goto fail; }
    for (; a->got < a->n_data; a->got++)
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(data, a->got), &a->data[a->got], PyBUF_SIMPLE) < 0) goto fail;
    if (valid_obj != Py_None && PyObject_GetBuffer(valid_obj, &a->valid, PyBUF_SIMPLE) < 0) goto fail;
    if (a->n < 0 || a->views.len < a->n * 16 || (a->valid.obj && a->valid.len < a->n)) {
        PyErr_Format(PyExc_ValueError, "%s: buffers shorter than n", who);
        goto fail;
    }
    return 1;
fail:
    views_release(a);
    return 0;
}

/* Whether string i is not null. */
static inline int view_is_valid(const view_args *a, Py_ssize_t i) {
    return !a->valid.obj || ((const unsigned char *)a->valid.buf)[i];
}

enum { VIEW_NEGATIVE = 1, VIEW_OUTSIDE = 2 };  /* what is wrong with a bad view (view_locate) */

/* The bytes of string i and their length; NULL when its view is bad, with *bad set to VIEW_NEGATIVE (a
 * negative length) or VIEW_OUTSIDE (it points outside its data buffer). It sets no exception, so it may
 * run without the GIL: the caller reports *bad with view_raise once it holds the GIL again. */
static inline const unsigned char *view_locate(const view_args *a, Py_ssize_t i, int32_t *len, int *bad) {
    const unsigned char *view = (const unsigned char *)a->views.buf + i * 16;
    int32_t buffer, offset;
    memcpy(len, view, 4);
    if (*len < 0) {
        *bad = VIEW_NEGATIVE;
        return NULL;
    }
    if (*len <= 12) return view + 4;
    memcpy(&buffer, view + 8, 4);
    memcpy(&offset, view + 12, 4);
    if (buffer < 0 || buffer >= a->n_data || offset < 0 || (Py_ssize_t)offset + *len > a->data[buffer].len) {
        *bad = VIEW_OUTSIDE;
        return NULL;
    }
    return (const unsigned char *)a->data[buffer].buf + offset;
}

/* The ValueError for a bad view that view_locate found (with the GIL held). */
static void view_raise(const view_args *a, int bad) {
    PyErr_Format(PyExc_ValueError, bad == VIEW_NEGATIVE ? "%s: a negative length"
                                                        : "%s: a view points outside its data buffer", a->who);
}

/* view_locate with the GIL held: NULL with a ValueError for a bad view. */
static const unsigned char *view_text(const view_args *a, Py_ssize_t i, int32_t *len) {
    int bad = 0;
    const unsigned char *text = view_locate(a, i, len, &bad);
    if (!text) view_raise(a, bad);
    return text;
}

/* The bytes of string i (NULL when null) and their length, for an array whose views view_locate has
 * already passed: no check at all (_span_index.h). */
static inline const unsigned char *view_text_unchecked(const view_args *a, Py_ssize_t i, int32_t *len) {
    const unsigned char *view = (const unsigned char *)a->views.buf + i * 16;
    int32_t buffer, offset;
    if (!view_is_valid(a, i)) return NULL;
    memcpy(len, view, 4);
    if (*len <= 12) return view + 4;
    memcpy(&buffer, view + 8, 4);
    memcpy(&offset, view + 12, 4);
    return (const unsigned char *)a->data[buffer].buf + offset;
}

/* Write the 16-byte view of a string of `len` bytes at `text`: the bytes inline when 12 or fewer, else
 * their first four, data buffer 0 and `offset`, where the caller keeps them (view_text's inverse). */
static inline void view_write(unsigned char *view, int32_t len, const unsigned char *text, int32_t offset) {
    const int32_t buffer_index = 0;
    memset(view, 0, 16);
    memcpy(view, &len, 4);
    if (len <= 12) {
        memcpy(view + 4, text, (size_t)len);
        return;
    }
    memcpy(view + 4, text, 4);
    memcpy(view + 8, &buffer_index, 4);
    memcpy(view + 12, &offset, 4);
}

#endif
