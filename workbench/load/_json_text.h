/*
 * JSON string literals for the OTLP scanner module (_otlp_scan.c): the string values kept in a span's
 * `attributes` column, quoted and escaped exactly as orjson escapes them (the reference reader's
 * encoder): `"` and `\` with a backslash; \b \f \n \r \t short; other bytes below 0x20 as \u00XX
 * (lowercase hex); everything else, DEL and UTF-8 included, as it is. polars' JSON encoder gives the
 * same text through a struct column, three passes and three copies per string.
 */
#ifndef WORKBENCH_JSON_TEXT_H
#define WORKBENCH_JSON_TEXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_views.h"

/* the length of each byte once escaped (1, 2 or 6) */
static unsigned char json_escaped_len[256];

static void json_text_init(void) {
    for (int c = 0; c < 256; c++) json_escaped_len[c] = 1;
    for (int c = 0; c < 0x20; c++) json_escaped_len[c] = 6;
    json_escaped_len['\b'] = json_escaped_len['\f'] = json_escaped_len['\n'] = 2;
    json_escaped_len['\r'] = json_escaped_len['\t'] = 2;
    json_escaped_len['"'] = json_escaped_len['\\'] = 2;
}

static unsigned char *json_write_escaped(unsigned char *out, const unsigned char *text, int32_t len) {
    static const char hex[] = "0123456789abcdef";
    *out++ = '"';
    for (int32_t k = 0; k < len; k++) {
        unsigned char c = text[k];
        if (json_escaped_len[c] == 1) { *out++ = c; continue; }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        default:
            *out++ = 'u'; *out++ = '0'; *out++ = '0';
            *out++ = (unsigned char)hex[c >> 4]; *out++ = (unsigned char)hex[c & 15];
        }
    }
    *out++ = '"';
    return out;
}

/* json_strings(views, n, data, valid) -> (views, data): the n strings of a string_view array (arguments:
 * _views.h) as JSON string literals, a string_view array of one data buffer. A null string gets a zero
 * view. ValueError when the literals pass 2 GiB (int32 view offsets). */
static PyObject *json_strings(PyObject *self, PyObject *args) {
    view_args a;
    if (!views_acquire(args, "json_strings", &a)) return NULL;
    Py_ssize_t n = a.n, total = 0;
    PyObject *out_views = NULL, *out_data = NULL, *result = NULL;
    /* pass 1: where each string is, and the bytes the long literals need; both passes run without the GIL
     * (the mapping calls this on the parse workers, where the GIL is the scarce thing) */
    const unsigned char **texts = malloc(((size_t)n + 1) * sizeof *texts);
    int32_t *lens = malloc(((size_t)n + 1) * sizeof *lens);
    if (!texts || !lens) { PyErr_NoMemory(); goto done; }
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !bad; i++) {
        texts[i] = NULL;
        if (!view_is_valid(&a, i) || !(texts[i] = view_locate(&a, i, &lens[i], &bad))) continue;
        Py_ssize_t quoted = 2;
        for (int32_t k = 0; k < lens[i]; k++) quoted += json_escaped_len[texts[i][k]];
        if (quoted > 12) total += quoted;
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        view_raise(&a, bad);
        goto done;
    }
    if (total > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "json_strings: more than 2 GiB of text");
        goto done;
    }
    /* pass 2: the literals; short ones inline in their view */
    out_views = PyBytes_FromStringAndSize(NULL, n * 16);
    out_data = PyBytes_FromStringAndSize(NULL, total);
    if (!out_views || !out_data) goto done;
    unsigned char *into = (unsigned char *)PyBytes_AS_STRING(out_views);
    unsigned char *base = (unsigned char *)PyBytes_AS_STRING(out_data), *at = base;
    Py_BEGIN_ALLOW_THREADS
    unsigned char small[6 * 12 + 2];
    memset(into, 0, (size_t)n * 16);
    for (Py_ssize_t i = 0; i < n; i++, into += 16) {
        if (!texts[i]) continue;
        int32_t len = lens[i];
        /* a literal of 12 bytes or less comes from a string of at most 10: written aside, then inlined */
        unsigned char *start = len <= 10 ? small : at;
        int32_t quoted = (int32_t)(json_write_escaped(start, texts[i], len) - start);
        if (quoted > 12 && start == small) {
            memcpy(at, small, (size_t)quoted);
            start = at;
        }
        view_write(into, quoted, start, (int32_t)(start - base));
        if (quoted > 12) at = start + quoted;
    }
    Py_END_ALLOW_THREADS
    result = PyTuple_Pack(2, out_views, out_data);
done:
    Py_XDECREF(out_views);
    Py_XDECREF(out_data);
    free(texts);
    free(lens);
    views_release(&a);
    return result;
}

#endif
