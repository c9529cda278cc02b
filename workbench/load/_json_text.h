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

/* json_strings(views, n, data, valid) -> (views, data): the n strings of a string_view array (as in
 * encode) as JSON string literals, a string_view array of one data buffer. A null string (valid, a byte
 * per string, is 0) gets a zero view. ValueError when the literals pass 2 GiB (int32 view offsets). */
static PyObject *json_strings(PyObject *self, PyObject *args) {
    Py_buffer views, valid = {0};
    Py_ssize_t n;
    PyObject *data, *valid_obj, *out_views = NULL, *out_data = NULL, *result = NULL;
    if (!PyArg_ParseTuple(args, "y*nO!O", &views, &n, &PyTuple_Type, &data, &valid_obj)) return NULL;
    Py_ssize_t n_data = PyTuple_GET_SIZE(data), got = 0;
    Py_buffer *buffers = calloc((size_t)n_data + 1, sizeof(Py_buffer));
    if (!buffers) { PyErr_NoMemory(); goto done; }
    for (; got < n_data; got++)
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(data, got), &buffers[got], PyBUF_SIMPLE) < 0) goto done;
    if (valid_obj != Py_None && PyObject_GetBuffer(valid_obj, &valid, PyBUF_SIMPLE) < 0) goto done;
    if (n < 0 || views.len < n * 16 || (valid.obj && valid.len < n)) {
        PyErr_SetString(PyExc_ValueError, "json_strings: buffers shorter than n");
        goto done;
    }
    const unsigned char *is_valid = valid.obj ? valid.buf : NULL;
    /* pass 1: where each string is, and the bytes the long literals need */
    const unsigned char **texts = malloc(((size_t)n + 1) * sizeof *texts);
    if (!texts) { PyErr_NoMemory(); goto done; }
    Py_ssize_t total = 0;
    const unsigned char *view = views.buf;
    for (Py_ssize_t i = 0; i < n; i++, view += 16) {
        texts[i] = NULL;
        if (is_valid && !is_valid[i]) continue;
        int32_t len, buffer, offset;
        memcpy(&len, view, 4);
        const unsigned char *text = view + 4;
        if (len > 12) {
            memcpy(&buffer, view + 8, 4);
            memcpy(&offset, view + 12, 4);
            if (buffer < 0 || buffer >= n_data || offset < 0 || (Py_ssize_t)offset + len > buffers[buffer].len) {
                PyErr_SetString(PyExc_ValueError, "json_strings: a view points outside its data buffer");
                free(texts);
                goto done;
            }
            text = (const unsigned char *)buffers[buffer].buf + offset;
        } else if (len < 0) {
            PyErr_SetString(PyExc_ValueError, "json_strings: a negative length");
            free(texts);
            goto done;
        }
        texts[i] = text;
        Py_ssize_t quoted = 2;
        for (int32_t k = 0; k < len; k++) quoted += json_escaped_len[text[k]];
        if (quoted > 12) total += quoted;
    }
    if (total > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "json_strings: more than 2 GiB of text");
        free(texts);
        goto done;
    }
    /* pass 2: the literals; short ones inline in their view */
    out_views = PyBytes_FromStringAndSize(NULL, n * 16);
    out_data = PyBytes_FromStringAndSize(NULL, total);
    if (!out_views || !out_data) { free(texts); goto done; }
    unsigned char *into = (unsigned char *)PyBytes_AS_STRING(out_views);
    unsigned char *base = (unsigned char *)PyBytes_AS_STRING(out_data), *at = base;
    unsigned char small[6 * 12 + 2];
    memset(into, 0, (size_t)n * 16);
    view = views.buf;
    for (Py_ssize_t i = 0; i < n; i++, view += 16, into += 16) {
        if (!texts[i]) continue;
        int32_t len;
        memcpy(&len, view, 4);
        /* a literal of 12 bytes or less comes from a string of at most 10: written aside, then inlined */
        unsigned char *start = len <= 10 ? small : at;
        int32_t quoted = (int32_t)(json_write_escaped(start, texts[i], len) - start);
        memcpy(into, &quoted, 4);
        if (quoted <= 12) {
            memcpy(into + 4, start, (size_t)quoted);
        } else {
            if (start == small) { memcpy(at, small, (size_t)quoted); start = at; }
            int32_t buffer_index = 0, offset = (int32_t)(start - base);
            memcpy(into + 4, start, 4);
            memcpy(into + 8, &buffer_index, 4);
            memcpy(into + 12, &offset, 4);
            at = start + quoted;
        }
    }
    free(texts);
    result = PyTuple_Pack(2, out_views, out_data);
done:
    Py_XDECREF(out_views);
    Py_XDECREF(out_data);
    for (Py_ssize_t k = 0; k < got; k++) PyBuffer_Release(&buffers[k]);
    free(buffers);
    if (valid.obj) PyBuffer_Release(&valid);
    PyBuffer_Release(&views);
    return result;
}

#endif
