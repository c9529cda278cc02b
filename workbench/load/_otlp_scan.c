/*
 * A schema-driven scanner for OTLP JSON Lines: each line is one JSON object of a
 * known Arrow schema (structs, lists, string_view, int64, float64, bool), and the
 * scanner fills that schema's Arrow buffers directly.
 *
 * It takes only what it can take exactly like pyarrow's JSON reader with an
 * explicit schema, and gives up on the whole block at the first line it cannot
 * take. For a line that is not JSON, or holds an unknown or repeated key, a
 * value of another JSON type, an integer beyond int64, an escaped lone
 * surrogate or a control character in a string, it says which line: pyarrow
 * would refuse it too, and the caller reads that line with the reference reader
 * and scans the rest. For what pyarrow might still take (NaN, Infinity, numbers
 * it rounds to zero or infinity, huge strings), it says nothing and the caller
 * parses the block with pyarrow. So it never changes a result; it only makes
 * the common case fast. A string holding a byte >= 0x80 is checked to be UTF-8
 * (_utf8.h, a vector pass over its bytes); an ASCII string needs no check, nor
 * does what escapes decode to, and outside strings JSON is ASCII. So a line with
 * invalid UTF-8 is named like any line pyarrow refuses.
 *
 * Python API:  scan(data, spec, hints=None) -> (n_rows, [buffers...]), or the 0-based row of a line only
 *              the reference reader can read, or None (let pyarrow try);  release();
 *              utf8_valid(data, scalar=False) -> bool (the strings' check, or its scalar fallback: for the tests);
 *              newlines(data) -> bytes: the newlines' offsets, int64 (the blocks' line index, _blocks.py);
 *              populate(data) -> bool: data's pages (from a page start) mapped in without the GIL (_blocks.py);
 *              unmap(data) -> bool: data's whole pages unmapped (MADV_DONTNEED) without the GIL (_blocks.py);
 *              int_texts / nanos_texts / has_upper(views, n, data, valid): the mapping's text checks (_text_checks.h);
 *              encode(views, n, data, valid): a string_view array dictionary-encoded (_encode.h);
 *              json_strings(views, n, data, valid): its strings as JSON literals (_json_text.h);
 *              json_objects(rows, key_ids, prefixes, values, tails, n_rows): pieces joined per row (_json_objects.h)
 *   spec: nested tuples. (0, ((name, child), ...)) struct; (1, child) list;
 *         (2,) string_view; (3,) int64; (4,) float64; (5,) bool.
 *   buffers: per node in depth-first order, its validity bytes (one per element)
 *   then: struct nothing; list int32 offsets; string 16-byte views and the
 *   bytes of its strings longer than 12 (each string node has its own, so a
 *   column of ids does not keep a block's text alive); int64 / float64 8-byte
 *   values; bool one byte per value. A struct field that no row of the block has (nor a null for it) is
 *   not written: each buffer of it and of the nodes under it is None.
 *   hints: a tuple of byte counts, one per buffer in that order (the last block's sizes, scaled): each
 *   buffer starts that big instead of growing (_buffers.h).
 *   release() frees the big buffers kept for reuse by later scans.
 *
 * Every read is bounds-checked against the end of the current line; the input
 * is untrusted.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "_utf8.h"
#include "_views.h"
#include "_encode.h"
#include "_json_text.h"
#include "_json_objects.h"
#include "_text_checks.h"
#include "_span_index.h"
#include "_buffers.h"

enum { K_STRUCT = 0, K_LIST = 1, K_STRING = 2, K_INT64 = 3, K_FLOAT64 = 4, K_BOOL = 5 };
#define MAX_FIELDS 32
#define MAX_NODES 256
#define MAX_KEY 64

typedef struct node {
    int kind;
    int n_children;
    struct node *children[MAX_FIELDS];
    char *names[MAX_FIELDS];
    size_t name_lens[MAX_FIELDS];
    vec validity;
    vec values;  /* offsets, views or values */
    vec data;    /* strings: the bytes of those longer than 12 */
    size_t length;
    int absent;  /* finish(): a struct field no row of the block has; its buffers are not handed back */
    /* structs: the field that followed field i - 1 last time (index 0: the first field): lines repeat
     * their key order, so the guess nearly always holds and the names are not searched */
    int8_t follows[MAX_FIELDS + 1];
} node;

typedef struct {
    node nodes[MAX_NODES];
    int n_nodes;
    const unsigned char *p, *end;
    vec scratch;  /* keys are decoded here */
    int failed;  /* 1: a line only the reference reader can read; 2: out of memory; 3: pyarrow may take it */
    long row;    /* the line being read */
} scanner;

static inline int vec_push(scanner *s, vec *v, const void *item, size_t size) {
    if (!vec_reserve(v, size)) { s->failed = 2; return 0; }
    memcpy(v->p + v->len, item, size);
    v->len += size;
    return 1;
}

static inline int fail(scanner *s) { if (!s->failed) s->failed = 1; return 0; }
/* what pyarrow's reader takes and the scanner does not (NaN, Infinity, extreme numbers, huge arrays) */
static inline int soft_fail(scanner *s) { if (!s->failed) s->failed = 3; return 0; }

static inline void skip_ws(scanner *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n')) s->p++;
}

/* --- building nodes ------------------------------------------------------------------------------- */

/* Nulls are written lazily: a struct's row leaves the fields it lacks alone, and a field is brought up
 * to its struct's length with nulls, in one go, only when a value comes (pad_to) or at the end of the
 * scan (finish). A field that never gets a value in the block is not written at all: the scan hands back
 * None for its buffers and the caller makes an all-null array of it. */

static int push_valid(scanner *s, node *n, uint8_t valid) {
    if (!vec_push(s, &n->validity, &valid, 1)) return 0;
    n->length++;
    return 1;
}

/* Nulls up to `length` elements (a struct's own fields are padded later, when they are written or
 * finished). */
static int pad_to(scanner *s, node *n, size_t length) {
    if (n->length >= length) return 1;
    size_t k = length - n->length, width = n->kind == K_STRING ? 16 : n->kind == K_LIST ? 4
                                          : (n->kind == K_INT64 || n->kind == K_FLOAT64) ? 8 : n->kind == K_BOOL;
    if (!vec_reserve(&n->validity, k) || !vec_reserve(&n->values, k * width)) { s->failed = 2; return 0; }
    memset(n->validity.p + n->validity.len, 0, k);
    n->validity.len += k;
    if (n->kind == K_LIST) {
        int32_t last = ((int32_t *)n->values.p)[n->values.len / 4 - 1];
        int32_t *offsets = (int32_t *)(n->values.p + n->values.len);
        for (size_t i = 0; i < k; i++) offsets[i] = last;
    } else {
        memset(n->values.p + n->values.len, 0, k * width);
    }
    n->values.len += k * width;
    n->length = length;
    return 1;
}

static inline int append_null(scanner *s, node *n) { return pad_to(s, n, n->length + 1); }

static void mark_absent(node *n) {
    n->absent = 1;
    for (int i = 0; i < n->n_children; i++) mark_absent(n->children[i]);
}

/* Every field of every struct brought to its struct's length, except the fields that never got a value
 * (n->absent: left unwritten). */
static int finish(scanner *s, node *n) {
    for (int i = 0; i < n->n_children; i++) {
        node *child = n->children[i];
        if (n->kind == K_STRUCT) {
            if (!child->length && n->length) {
                mark_absent(child);
                continue;
            }
            if (!pad_to(s, child, n->length)) return 0;
        }
        if (!finish(s, child)) return 0;
    }
    return 1;
}

/* --- strings ------------------------------------------------------------------------------------- */

static inline int hex4(const unsigned char *h, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = h[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if ((c | 32) >= 'a' && (c | 32) <= 'f') v |= (c | 32) - 'a' + 10;
        else return 0;
    }
    *out = v;
    return 1;
}

/* Decode the string at s->p (an opening quote) into out (room for the raw length + 16); its length, or -1
 * where it is not a JSON string of UTF-8 text. */
static long read_string(scanner *s, unsigned char *out) {
    const unsigned char *p = s->p + 1, *end = s->end;
    unsigned char *o = out;
    unsigned high = 0;  /* a byte >= 0x80 was copied: the text needs a UTF-8 check */
    for (;;) {
#if defined(__SSE2__)
        __m128i seen = _mm_setzero_si128();
        while (p + 16 <= end) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            __m128i special = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                _mm_cmplt_epi8(_mm_xor_si128(v, _mm_set1_epi8((char)0x80)), _mm_set1_epi8((char)(0x20 ^ 0x80))));
            int mask = _mm_movemask_epi8(special);
            _mm_storeu_si128((__m128i *)o, v);
            if (mask) {
                int k = __builtin_ctz(mask);
                high |= (unsigned)_mm_movemask_epi8(v) & ((1u << k) - 1);
                o += k;
                p += k;
                break;
            }
            seen = _mm_or_si128(seen, v);
            o += 16;
            p += 16;
        }
        high |= (unsigned)_mm_movemask_epi8(seen);
#endif
        if (p >= end) return -1;
        unsigned char c = *p;
        if (c == '"') {
            s->p = p + 1;
            if (high && !utf8_valid(out, (size_t)(o - out))) return -1;
            return (long)(o - out);
        }
        if (c < 0x20) return -1;
        if (c != '\\') {
            high |= c & 0x80;
            *o++ = c;
            p++;
            continue;
        }
        if (p + 1 >= end) return -1;
        switch (p[1]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp;
            if (p + 6 > end || !hex4(p + 2, &cp)) return -1;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;  /* a lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned low;
                if (p + 12 > end || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, &low) || low < 0xDC00 || low > 0xDFFF)
                    return -1;  /* a lone high surrogate */
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                p += 6;
                *o++ = 0xF0 | (cp >> 18);
                *o++ = 0x80 | ((cp >> 12) & 63);
                *o++ = 0x80 | ((cp >> 6) & 63);
                *o++ = 0x80 | (cp & 63);
            } else if (cp < 0x80) {
                *o++ = (unsigned char)cp;
            } else if (cp < 0x800) {
                *o++ = 0xC0 | (cp >> 6);
                *o++ = 0x80 | (cp & 63);
            } else {
                *o++ = 0xE0 | (cp >> 12);
                *o++ = 0x80 | ((cp >> 6) & 63);
                *o++ = 0x80 | (cp & 63);
            }
            p += 4;
            break;
        }
        default: return -1;
        }
        p += 2;
    }
}

/* view_write for a string the scanner just decoded to `text`, which has 16 readable bytes (read_string's
 * slack): the view is built in a register and stored once. Built on the stack in parts and then copied,
 * it was read back as a whole before its parts had been stored, a store-forwarding stall on every string
 * (a block of 10k spans: 33.7 ms to scan before, 18.5-23 ms after). */
static inline void view_store(unsigned char *view, int32_t len, const unsigned char *text, int32_t offset) {
#if defined(__SSE2__)
    if (len <= 12) {  /* the length, then the bytes, the rest zero */
        const __m128i lane = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        __m128i bytes = _mm_and_si128(_mm_loadu_si128((const __m128i *)text),
                                      _mm_cmpgt_epi8(_mm_set1_epi8((char)len), lane));
        _mm_storeu_si128((__m128i *)view, _mm_or_si128(_mm_slli_si128(bytes, 4), _mm_cvtsi32_si128(len)));
        return;
    }
    int32_t prefix;  /* the length, the first four bytes, data buffer 0 and the offset */
    memcpy(&prefix, text, 4);
    _mm_storeu_si128((__m128i *)view, _mm_setr_epi32(len, prefix, 0, offset));
#else
    view_write(view, len, text, offset);
#endif
}

static int parse_string_value(scanner *s, node *n) {
    /* the rest of the line bounds the decoded string; 16 more for the vector stores */
    if (!vec_reserve(&n->data, (size_t)(s->end - s->p) + 16)) { s->failed = 2; return 0; }
    unsigned char *out = n->data.p + n->data.len;
    long len = read_string(s, out);
    if (len < 0) return fail(s);
    if (len > INT32_MAX || (len > 12 && n->data.len > INT32_MAX)) return soft_fail(s);
    if (!vec_reserve(&n->values, 16)) { s->failed = 2; return 0; }
    view_store(n->values.p + n->values.len, (int32_t)len, out, (int32_t)n->data.len);
    n->values.len += 16;
    if (len > 12) n->data.len += (size_t)len;  /* inline (12 or fewer): the bytes stay in the view only */
    return push_valid(s, n, 1);
}

/* --- numbers and literals ------------------------------------------------------------------------ */

/* The extent of a JSON number at s->p (strict grammar); 0 when there is none. */
static size_t number_extent(scanner *s, int *is_integer) {
    const unsigned char *p = s->p, *end = s->end;
    *is_integer = 1;
    if (p < end && *p == '-') p++;
    if (p >= end) return 0;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') { while (p < end && *p >= '0' && *p <= '9') p++; }
    else return 0;
    if (p < end && *p == '.') {
        *is_integer = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *is_integer = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    return (size_t)(p - s->p);
}

static int parse_int64(scanner *s, node *n) {
    int is_integer;
    size_t len = number_extent(s, &is_integer);
    if (!len || !is_integer) return fail(s);
    const unsigned char *p = s->p;
    int negative = *p == '-';
    if (negative) p++;
    uint64_t v = 0;
    for (; p < s->p + len; p++) {
        unsigned d = *p - '0';
        if (v > (UINT64_MAX - d) / 10) return fail(s);
        v = v * 10 + d;
    }
    if ((!negative && v > (uint64_t)INT64_MAX) || (negative && v > (uint64_t)INT64_MAX + 1)) return fail(s);
    int64_t value = negative ? (int64_t)(0 - v) : (int64_t)v;
    s->p += len;
    if (!vec_push(s, &n->values, &value, 8)) return 0;
    return push_valid(s, n, 1);
}

static int parse_float64(scanner *s, node *n) {
    int is_integer;
    size_t len = number_extent(s, &is_integer);
    char text[80];
    if (!len) return fail(s);
    if (len >= sizeof text) return soft_fail(s);
    memcpy(text, s->p, len);
    text[len] = 0;
    errno = 0;
    char *stop;
    double value = strtod(text, &stop);
    if (errno == ERANGE || stop != text + len) return soft_fail(s);  /* overflow, underflow: pyarrow decides */
    s->p += len;
    if (!vec_push(s, &n->values, &value, 8)) return 0;
    return push_valid(s, n, 1);
}

static int literal(scanner *s, const char *word, size_t len) {
    if ((size_t)(s->end - s->p) < len || memcmp(s->p, word, len)) return 0;
    s->p += len;
    return 1;
}

/* --- values -------------------------------------------------------------------------------------- */

static int parse_value(scanner *s, node *n);

/* After a member or element: 1 at a ',' (skipped, more follow), 0 at `close` (skipped), -1 otherwise. */
static int next_or_close(scanner *s, unsigned char close) {
    skip_ws(s);
    if (s->p >= s->end) return -1;
    if (*s->p == ',') { s->p++; skip_ws(s); return 1; }
    if (*s->p == close) { s->p++; return 0; }
    return -1;
}

/* Whether the key[0..len) is field i's name (names are short: compared inline, not by a library call). */
static inline int is_field(const node *n, int i, const unsigned char *key, size_t len) {
    if (i >= n->n_children || n->name_lens[i] != len) return 0;
    const char *name = n->names[i];
    for (size_t k = 0; k < len; k++)
        if ((unsigned char)name[k] != key[k]) return 0;
    return 1;
}

static int parse_struct(scanner *s, node *n) {
    uint32_t seen = 0;
    int previous = -1;
    s->p++;  /* '{' */
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
    } else {
        for (;;) {
            if (s->p >= s->end || *s->p != '"') return fail(s);
            /* decoded into the scratch space; longer than any field name: not a field */
            if (!vec_reserve(&s->scratch, (size_t)(s->end - s->p) + 16)) { s->failed = 2; return 0; }
            long len = read_string(s, s->scratch.p);
            if (len < 0 || len > MAX_KEY) return fail(s);
            int field = n->follows[previous + 1];
            if (!is_field(n, field, s->scratch.p, (size_t)len)) {
                for (field = n->n_children - 1; field >= 0 && !is_field(n, field, s->scratch.p, (size_t)len); field--) {}
                if (field < 0) return fail(s);  /* unknown key */
                n->follows[previous + 1] = (int8_t)field;
            }
            if (seen & (1u << field)) return fail(s);  /* repeated key */
            seen |= 1u << field;
            previous = field;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':') return fail(s);
            s->p++;
            skip_ws(s);
            if (!pad_to(s, n->children[field], n->length) || !parse_value(s, n->children[field])) return 0;
            int more = next_or_close(s, '}');
            if (more < 0) return fail(s);
            if (!more) break;
        }
    }
    return push_valid(s, n, 1);
}

static int parse_list(scanner *s, node *n) {
    node *child = n->children[0];
    s->p++;  /* '[' */
    skip_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
    } else {
        for (;;) {
            if (!parse_value(s, child)) return 0;
            int more = next_or_close(s, ']');
            if (more < 0) return fail(s);
            if (!more) break;
        }
    }
    if (child->length > INT32_MAX) return soft_fail(s);
    int32_t offset = (int32_t)child->length;
    if (!vec_push(s, &n->values, &offset, 4)) return 0;
    return push_valid(s, n, 1);
}

static int parse_value(scanner *s, node *n) {
    if (s->p >= s->end) return fail(s);
    unsigned char c = *s->p;
    if (c == 'n') return literal(s, "null", 4) ? append_null(s, n) : fail(s);
    switch (n->kind) {
    case K_STRUCT: return c == '{' ? parse_struct(s, n) : fail(s);
    case K_LIST: return c == '[' ? parse_list(s, n) : fail(s);
    case K_STRING: return c == '"' ? parse_string_value(s, n) : fail(s);
    case K_INT64: return (c == '-' || (c >= '0' && c <= '9')) ? parse_int64(s, n) : fail(s);
    case K_FLOAT64:
        if (c == 'N' || c == 'I' || (c == '-' && s->p + 1 < s->end && s->p[1] == 'I')) return soft_fail(s);
        return (c == '-' || (c >= '0' && c <= '9')) ? parse_float64(s, n) : fail(s);
    case K_BOOL: {
        uint8_t v;
        if (literal(s, "true", 4)) v = 1;
        else if (literal(s, "false", 5)) v = 0;
        else return fail(s);
        if (!vec_push(s, &n->values, &v, 1)) return 0;
        return push_valid(s, n, 1);
    }
    }
    return fail(s);
}

/* --- the schema ---------------------------------------------------------------------------------- */

static node *build_node(scanner *s, PyObject *spec) {
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 1 || s->n_nodes >= MAX_NODES) {
        PyErr_SetString(PyExc_ValueError, "bad schema spec");
        return NULL;
    }
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(spec, 0));
    if (kind < K_STRUCT || kind > K_BOOL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad node kind");
        return NULL;
    }
    node *n = &s->nodes[s->n_nodes++];
    n->kind = (int)kind;
    if (kind == K_STRUCT) {
        PyObject *fields = PyTuple_Size(spec) == 2 ? PyTuple_GET_ITEM(spec, 1) : NULL;
        if (!fields || !PyTuple_Check(fields) || PyTuple_GET_SIZE(fields) > MAX_FIELDS) {
            PyErr_SetString(PyExc_ValueError, "bad struct spec");
            return NULL;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(fields); i++) {
            PyObject *pair = PyTuple_GET_ITEM(fields, i);
            char *name;
            Py_ssize_t len;
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2
                || PyBytes_AsStringAndSize(PyTuple_GET_ITEM(pair, 0), &name, &len) < 0 || len > MAX_KEY) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad field spec");
                return NULL;
            }
            n->names[i] = name;  /* the spec (held by the caller) outlives the scan */
            n->name_lens[i] = (size_t)len;
            if (!(n->children[i] = build_node(s, PyTuple_GET_ITEM(pair, 1)))) return NULL;
            n->n_children++;
        }
    } else if (kind == K_LIST) {
        if (PyTuple_Size(spec) != 2 || !(n->children[0] = build_node(s, PyTuple_GET_ITEM(spec, 1)))) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad list spec");
            return NULL;
        }
        n->n_children = 1;
    }
    return n;
}

static int init_offsets(scanner *s) {
    int32_t zero = 0;
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].kind == K_LIST && !vec_push(s, &s->nodes[i].values, &zero, 4)) return 0;
    return 1;
}

/* --- buffers handed to Python without a copy ------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    void *data;
    Py_ssize_t size;
    size_t cap;
} ScanBuffer;

static int ScanBuffer_getbuffer(ScanBuffer *self, Py_buffer *view, int flags) {
    return PyBuffer_FillInfo(view, (PyObject *)self, self->data, self->size, 1, flags);
}

static void ScanBuffer_dealloc(ScanBuffer *self) {
    give(self->data, self->cap);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyBufferProcs ScanBuffer_as_buffer = {(getbufferproc)ScanBuffer_getbuffer, NULL};

static PyTypeObject ScanBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "workbench.load._otlp_scan.ScanBuffer",
    .tp_basicsize = sizeof(ScanBuffer),
    .tp_dealloc = (destructor)ScanBuffer_dealloc,
    .tp_as_buffer = &ScanBuffer_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Memory filled by the scanner (read-only buffer).",
};

/* A vector's memory as a read-only Python buffer; the vector is emptied (its memory now the buffer's). */
static PyObject *wrap(vec *v) {
    ScanBuffer *b = PyObject_New(ScanBuffer, &ScanBufferType);
    if (!b) return NULL;
    if (!v->p && !(v->p = malloc(1))) {
        Py_DECREF(b);
        return PyErr_NoMemory();
    }
    b->data = v->p;
    b->size = (Py_ssize_t)v->len;
    b->cap = v->cap ? v->cap : 1;
    v->p = NULL;
    v->len = v->cap = 0;
    return (PyObject *)b;
}

static void free_vec(vec *v) {
    give(v->p, v->cap);
    v->p = NULL;
    v->len = v->cap = 0;
}

static void free_nodes(scanner *s) {
    for (int i = 0; i < s->n_nodes; i++) {
        free_vec(&s->nodes[i].validity);
        free_vec(&s->nodes[i].values);
        free_vec(&s->nodes[i].data);
    }
    free_vec(&s->scratch);
}

/* The node's buffers in the order scan() returns them (validity; offsets/views/values; string bytes). */
static int node_parts(node *n, vec *parts[3]) {
    parts[0] = &n->validity;
    parts[1] = &n->values;
    parts[2] = &n->data;
    return n->kind == K_STRUCT ? 1 : n->kind == K_STRING ? 3 : 2;
}

/* Each buffer starts with room for its hinted size (a tuple of byte counts in scan()'s buffer order;
 * missing or 0: none), so that it is taken once, from the kept buffers, instead of grown. */
static int reserve_hinted(scanner *s, PyObject *hints) {
    if (hints == Py_None) return 1;
    if (!PyTuple_Check(hints)) {
        PyErr_SetString(PyExc_TypeError, "hints must be a tuple of byte counts or None");
        return 0;
    }
    Py_ssize_t k = 0, n_hints = PyTuple_GET_SIZE(hints);
    for (int i = 0; i < s->n_nodes; i++) {
        vec *parts[3];
        int n_parts = node_parts(&s->nodes[i], parts);
        for (int j = 0; j < n_parts && k < n_hints; j++, k++) {
            size_t want = PyLong_AsSize_t(PyTuple_GET_ITEM(hints, k));
            if (want == (size_t)-1 && PyErr_Occurred()) return 0;
            if (want && !vec_reserve(parts[j], want)) {
                PyErr_NoMemory();
                return 0;
            }
        }
    }
    return 1;
}

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer input;
    PyObject *spec, *hints = Py_None;
    if (!PyArg_ParseTuple(args, "y*O|O", &input, &spec, &hints)) return NULL;
    scanner *s = calloc(1, sizeof(scanner));
    if (!s) {
        PyBuffer_Release(&input);
        return PyErr_NoMemory();
    }
    node *root = build_node(s, spec);
    if (!root || root->kind != K_STRUCT || !reserve_hinted(s, hints) || !init_offsets(s)) {
        if (root && !PyErr_Occurred()) PyErr_NoMemory();
        if (!root && !PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "the root must be a struct");
        free_nodes(s);
        free(s);
        PyBuffer_Release(&input);
        return NULL;
    }
    long rows = 0;
    Py_BEGIN_ALLOW_THREADS
    const unsigned char *at = input.buf, *stop = at + input.len;
    while (!s->failed && at < stop) {
        const unsigned char *newline = memchr(at, '\n', (size_t)(stop - at));
        s->row = rows;
        s->p = at;
        s->end = newline ? newline : stop;
        skip_ws(s);
        if (s->p >= s->end || *s->p != '{') s->failed = 1;
        else if (parse_struct(s, root)) {
            skip_ws(s);
            if (s->p != s->end) s->failed = 1;  /* more than one value on the line */
        }
        rows++;
        at = newline ? newline + 1 : stop;
    }
    if (!s->failed) finish(s, root);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&input);
    if (s->failed) {
        int failed = s->failed;
        long row = s->row;
        free_nodes(s);
        free(s);
        if (failed == 2) return PyErr_NoMemory();
        if (failed == 1) return PyLong_FromLong(row);
        Py_RETURN_NONE;
    }
    PyObject *buffers = PyList_New(0);
    int ok = buffers != NULL;
    for (int i = 0; ok && i < s->n_nodes; i++) {
        vec *parts[3];
        int n_parts = node_parts(&s->nodes[i], parts);
        for (int k = 0; ok && k < n_parts; k++) {
            PyObject *buffer = s->nodes[i].absent ? Py_NewRef(Py_None) : wrap(parts[k]);
            ok = buffer && PyList_Append(buffers, buffer) == 0;
            Py_XDECREF(buffer);
        }
    }
    free_nodes(s);
    free(s);
    if (!ok) {
        Py_XDECREF(buffers);
        return NULL;
    }
    return Py_BuildValue("(lN)", rows, buffers);
}

static PyObject *release(PyObject *self, PyObject *unused) {
    release_cache();
    Py_RETURN_NONE;
}

static PyObject *py_utf8_valid(PyObject *self, PyObject *args) {
    Py_buffer input;
    int scalar = 0;
    if (!PyArg_ParseTuple(args, "y*|p", &input, &scalar)) return NULL;
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = scalar ? utf8_valid_scalar(input.buf, (size_t)input.len) : utf8_valid(input.buf, (size_t)input.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&input);
    return PyBool_FromLong(ok);
}

/* newlines(data) -> bytes: the offsets of the newlines in data, as int64 values (memchr: lines of spans are
 * kilobytes long, so this runs at memory speed; a Python loop of find() calls cost 0.2 us a line). */
static PyObject *py_newlines(PyObject *self, PyObject *args) {
    Py_buffer input;
    if (!PyArg_ParseTuple(args, "y*", &input)) return NULL;
    size_t n = 0, cap = 4096;
    int64_t *found = malloc(cap * sizeof *found);
    int failed = found == NULL;
    Py_BEGIN_ALLOW_THREADS
    const char *start = input.buf, *at = start, *end = start + input.len;
    while (!failed && at < end && (at = memchr(at, '\n', (size_t)(end - at))) != NULL) {
        if (n == cap) {
            int64_t *grown = realloc(found, 2 * cap * sizeof *found);
            if (!grown) {
                failed = 1;
                break;
            }
            found = grown;
            cap *= 2;
        }
        found[n++] = (int64_t)(at - start);
        at++;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&input);
    if (failed) {
        free(found);
        return PyErr_NoMemory();
    }
    PyObject *out = PyBytes_FromStringAndSize((const char *)found, (Py_ssize_t)(n * sizeof *found));
    free(found);
    return out;
}

/* madvise(advice) over the pages under the buffer argument (which must start on a page), without the GIL:
 * Python's mmap.madvise holds it through the call, which the workers' Python then waits out. False where the
 * kernel refuses, or off Linux. */
static PyObject *advise_pages(PyObject *args, int advice) {
    Py_buffer input;
    if (!PyArg_ParseTuple(args, "y*", &input)) return NULL;
    int ok = 0;
#if defined(__linux__)
    Py_BEGIN_ALLOW_THREADS
    ok = input.len > 0 && madvise(input.buf, (size_t)input.len, advice) == 0;
    Py_END_ALLOW_THREADS
#else
    (void)advice;
#endif
    PyBuffer_Release(&input);
    return PyBool_FromLong(ok);
}

#if !defined(__linux__) /* unused there: advise_pages answers False */
#define ADVICE_POPULATE 0
#define ADVICE_UNMAP 0
#else
#define ADVICE_POPULATE 22 /* MADV_POPULATE_READ, which older headers lack */
#define ADVICE_UNMAP MADV_DONTNEED
#endif

/* populate(data) -> bool: map in the pages under data (MADV_POPULATE_READ, Linux 5.14): a block's 26 MB take
 * ~3 ms. False where the kernel refuses (the pages then fault in as they are read). */
static PyObject *py_populate(PyObject *self, PyObject *args) {
    return advise_pages(args, ADVICE_POPULATE);
}

/* unmap(data) -> bool: drop the process's mapping of the pages under data, which must also end on a page
 * (MADV_DONTNEED: a file's pages stay in the page cache); ~5% of the samples that held the GIL in a 100k
 * load, on the thread that cuts the blocks, when mmap.madvise made the call. */
static PyObject *py_unmap(PyObject *self, PyObject *args) {
    return advise_pages(args, ADVICE_UNMAP);
}

static PyMethodDef methods[] = {
    {"int_texts", int_texts, METH_VARARGS, "int_texts(views, n, data, valid) -> bytes: see _text_checks.h."},
    {"nanos_texts", nanos_texts, METH_VARARGS, "nanos_texts(views, n, data, valid) -> bytes: see _text_checks.h."},
    {"has_upper", has_upper, METH_VARARGS, "has_upper(views, n, data, valid) -> bool: see _text_checks.h."},
    {"span_index", span_index, METH_VARARGS, "span_index(trace, span, parent) -> (node, parent_row, trace_row): see _span_index.h."},
    {"newlines", py_newlines, METH_VARARGS, "newlines(data) -> bytes: the newlines' offsets in data as int64 values."},
    {"populate", py_populate, METH_VARARGS, "populate(data) -> bool: the pages under data mapped in, without the GIL."},
    {"unmap", py_unmap, METH_VARARGS, "unmap(data) -> bool: the pages under data unmapped (MADV_DONTNEED), without the GIL."},
    {"encode", encode, METH_VARARGS, "encode(views, n, data, valid) -> (codes, distinct): see the module source."},
    {"json_strings", json_strings, METH_VARARGS, "json_strings(views, n, data, valid) -> (views, data): see _json_text.h."},
    {"json_objects", json_objects, METH_VARARGS, "json_objects(rows, key_ids, prefixes, values, tails, n_rows) -> (views, data, bitmap, null_count): see _json_objects.h."},
    {"utf8_valid", py_utf8_valid, METH_VARARGS, "utf8_valid(data, scalar=False) -> bool: the check a string with a byte >= 0x80 gets (scalar: the fallback)."},
    {"scan", scan, METH_VARARGS, "scan(data, spec, hints=None) -> (rows, buffers), a row, or None: see the module source."},
    {"release", release, METH_NOARGS, "Free the buffers kept for reuse."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_otlp_scan", NULL, -1, methods};

PyMODINIT_FUNC PyInit__otlp_scan(void) {
    if (PyType_Ready(&ScanBufferType) < 0) return NULL;
    json_text_init();
    if (!cache_lock && !(cache_lock = PyThread_allocate_lock())) return PyErr_NoMemory();
    return PyModule_Create(&module);
}
