/*
 * Checks over the strings of an Arrow string_view array for the OTLP mapping (_otlp_columns.py), which
 * polars ran as regular expressions: a loop over each string's bytes, stopping at the first that
 * decides, instead of a regex engine per string (10k timestamps: 0.6 ms -> 0.03 ms). Arguments: _views.h.
 */
#ifndef WORKBENCH_TEXT_CHECKS_H
#define WORKBENCH_TEXT_CHECKS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "_views.h"

static int all_digits(const unsigned char *s, int32_t len) {
    for (int32_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* ^[+-]?[0-9]{1,18}$: an integer the reference reader takes from text (INT_TEXT) */
static int is_int_text(const unsigned char *s, int32_t len) {
    int32_t sign = len > 0 && (s[0] == '+' || s[0] == '-');
    return len - sign >= 1 && len - sign <= 18 && all_digits(s + sign, len - sign);
}

/* ^([0-9]{1,18}|[1-8][0-9]{18})$ or empty: a timestamp in nanoseconds below 9e18, or none (_NANOS) */
static int is_nanos_text(const unsigned char *s, int32_t len) {
    if (len > 19 || (len == 19 && (s[0] < '1' || s[0] > '8'))) return 0;
    return all_digits(s, len);
}

/* A byte per string: check(text) where it is valid, else if_null; NULL with an exception set. The loop runs
 * without the GIL: the mapping calls this on the parse workers, where the GIL is the scarce thing. */
static PyObject *checked_texts(PyObject *args, const char *who, int (*check)(const unsigned char *, int32_t),
                               unsigned char if_null) {
    view_args a;
    if (!views_acquire(args, who, &a)) return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, a.n);
    int bad = 0;
    if (out) {
        unsigned char *ok = (unsigned char *)PyBytes_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < a.n && !bad; i++) {
            int32_t len;
            const unsigned char *text = view_is_valid(&a, i) ? view_locate(&a, i, &len, &bad) : NULL;
            ok[i] = text ? (unsigned char)check(text, len) : if_null;
        }
        Py_END_ALLOW_THREADS
        if (bad) {
            view_raise(&a, bad);
            Py_CLEAR(out);
        }
    }
    views_release(&a);
    return out;
}

/* int_texts(views, n, data, valid) -> bytes: 1 per string of INT_TEXT's form, 0 otherwise or null */
static PyObject *int_texts(PyObject *self, PyObject *args) {
    return checked_texts(args, "int_texts", is_int_text, 0);
}

/* nanos_texts(views, n, data, valid) -> bytes: 1 per string of _NANOS' form, empty or null; 0 otherwise */
static PyObject *nanos_texts(PyObject *self, PyObject *args) {
    return checked_texts(args, "nanos_texts", is_nanos_text, 1);
}

/* has_upper(views, n, data, valid) -> bool: whether a string holds [A-Z] or a byte beyond ASCII */
static PyObject *has_upper(PyObject *self, PyObject *args) {
    view_args a;
    if (!views_acquire(args, "has_upper", &a)) return NULL;
    int found = 0, bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < a.n && !found && !bad; i++) {
        int32_t len;
        const unsigned char *text = view_is_valid(&a, i) ? view_locate(&a, i, &len, &bad) : NULL;
        for (int32_t k = 0; text && k < len; k++) {
            if ((text[k] >= 'A' && text[k] <= 'Z') || text[k] >= 0x80) {
                found = 1;
                break;
            }
        }
    }
    Py_END_ALLOW_THREADS
    if (bad) view_raise(&a, bad);
    views_release(&a);
    return bad ? NULL : PyBool_FromLong(found);
}

#endif
