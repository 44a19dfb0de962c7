/* OTLP/JSON codec over protobuf-c descriptors.
 *
 * One walk over the descriptors serves every OTLP message, so a new field in the .proto files
 * needs no change here. The decoder parses with json-c (depth-limited, strict, UTF-8 checked)
 * and copies what it keeps into the caller's arena, so the json-c objects can be dropped at
 * once. The encoder writes straight into an st_buf: no intermediate objects. */
#include "otlp_json.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Message nesting we accept (the protobuf runtimes use 100; OTLP needs ~10 plus nested
 * AnyValues). JSON nesting is at most two levels per message (object + array), plus slack. */
#define MAX_DEPTH 64
#define JSON_MAX_DEPTH (2 * MAX_DEPTH + 2)

/* OTLP/JSON encodes these bytes fields as hex instead of base64, wherever they appear
 * (Span, Span.Link, LogRecord, Exemplar). Returns the id size in bytes, 0 for other fields. */
static size_t hex_id_size(const ProtobufCFieldDescriptor *f) {
        if (f->type != PROTOBUF_C_TYPE_BYTES)
                return 0;
        if (strcmp(f->name, "trace_id") == 0)
                return 16;
        if (strcmp(f->name, "span_id") == 0 || strcmp(f->name, "parent_span_id") == 0)
                return 8;
        return 0;
}

/* Size of one element of a repeated field's array. */
static size_t elem_size(ProtobufCType t) {
        switch (t) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                return 4;
        case PROTOBUF_C_TYPE_FLOAT:
                return sizeof(float);
        case PROTOBUF_C_TYPE_ENUM:
                return sizeof(int);
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                return 8;
        case PROTOBUF_C_TYPE_DOUBLE:
                return sizeof(double);
        case PROTOBUF_C_TYPE_BOOL:
                return sizeof(protobuf_c_boolean);
        case PROTOBUF_C_TYPE_STRING:
                return sizeof(char *);
        case PROTOBUF_C_TYPE_BYTES:
                return sizeof(ProtobufCBinaryData);
        case PROTOBUF_C_TYPE_MESSAGE:
                return sizeof(void *);
        }
        return 0;
}

#define MEMBER(m, off) ((char *) (m) + (off))
#define CMEMBER(m, off) ((const char *) (m) + (off))

/* ---------------------------------------------------------------------------------------- */
/* Encoding                                                                                   */

struct enc {
        st_buf *out;
        bool pretty;
        int indent;
};

static const char hexdig[] = "0123456789abcdef";
static const char b64dig[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int put(struct enc *e, const char *s, size_t n) { return st_buf_append(e->out, s, n); }
static int putc_(struct enc *e, char c) { return st_buf_append(e->out, &c, 1); }

static int newline(struct enc *e) {
        if (!e->pretty)
                return 0;
        int r = st_buf_reserve(e->out, 1 + 2 * (size_t) e->indent);
        if (r < 0)
                return r;
        char *p = e->out->data + e->out->len;
        *p++ = '\n';
        memset(p, ' ', 2 * (size_t) e->indent);
        e->out->len += 1 + 2 * (size_t) e->indent;
        e->out->data[e->out->len] = 0;
        return 0;
}

static int put_u64(struct enc *e, uint64_t v, bool neg, bool quoted) {
        char tmp[24], *p = tmp + sizeof(tmp);
        if (quoted)
                *--p = '"';
        do {
                *--p = (char) ('0' + v % 10);
                v /= 10;
        } while (v);
        if (neg)
                *--p = '-';
        if (quoted)
                *--p = '"';
        return put(e, p, (size_t) (tmp + sizeof(tmp) - p));
}

static int put_i64(struct enc *e, int64_t v, bool quoted) {
        /* Negate in unsigned arithmetic: INT64_MIN has no positive int64 counterpart. */
        return v < 0 ? put_u64(e, 0 - (uint64_t) v, true, quoted) : put_u64(e, (uint64_t) v, false, quoted);
}

/* The shortest representation that reads back to the same double. */
static int put_double(struct enc *e, double v, int max_precision) {
        if (isnan(v))
                return put(e, "\"NaN\"", 5);
        if (isinf(v))
                return v > 0 ? put(e, "\"Infinity\"", 10) : put(e, "\"-Infinity\"", 11);
        if (v == 0 && signbit(v))
                return put(e, "-0.0", 4); /* "-0" reads back as the integer 0, losing the sign */
        char tmp[40];
        int n = 0;
        for (int prec = max_precision - 2; prec <= max_precision; prec++) {
                n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
                if (prec == max_precision)
                        break;
                if (max_precision == 9 ? strtof(tmp, NULL) == (float) v : strtod(tmp, NULL) == v)
                        break;
        }
        return put(e, tmp, (size_t) n);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, surrogates or values
 * above U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
        unsigned char c = s[0];
        size_t len;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf)
                len = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
                len = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
                len = 4, cp = c & 0x07;
        else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
                return 0;
        return len;
}

/* A JSON string. Protobuf strings are not guaranteed to be UTF-8; invalid bytes become
 * U+FFFD so that the output is always valid JSON. Plain runs are copied in one piece. */
static int put_string(struct enc *e, const char *str, size_t n) {
        const unsigned char *s = (const unsigned char *) str;
        size_t run = 0, i = 0;
        int r = putc_(e, '"');
        while (r >= 0 && i < n) {
                unsigned char c = s[i];
                if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
                        i++;
                        continue;
                }
                if (c >= 0x80) {
                        size_t k = utf8_seq(s + i, n - i);
                        if (k) {
                                i += k;
                                continue;
                        }
                }
                r = put(e, str + run, i - run);
                if (r < 0)
                        break;
                char esc[8];
                const char *p = esc;
                size_t len = 2;
                switch (c) {
                case '"': p = "\\\""; break;
                case '\\': p = "\\\\"; break;
                case '\n': p = "\\n"; break;
                case '\r': p = "\\r"; break;
                case '\t': p = "\\t"; break;
                case '\b': p = "\\b"; break;
                case '\f': p = "\\f"; break;
                default:
                        if (c >= 0x80) {
                                p = "\\ufffd";
                                len = 6;
                        } else {
                                esc[0] = '\\', esc[1] = 'u', esc[2] = '0', esc[3] = '0';
                                esc[4] = hexdig[c >> 4], esc[5] = hexdig[c & 15];
                                len = 6;
                        }
                }
                r = put(e, p, len);
                run = ++i;
        }
        if (r >= 0)
                r = put(e, str + run, i - run);
        if (r >= 0)
                r = putc_(e, '"');
        return r;
}

static int put_hex(struct enc *e, const ProtobufCBinaryData *b) {
        int r = st_buf_reserve(e->out, 2 * b->len + 2);
        if (r < 0)
                return r;
        char *p = e->out->data + e->out->len;
        *p++ = '"';
        for (size_t i = 0; i < b->len; i++) {
                *p++ = hexdig[b->data[i] >> 4];
                *p++ = hexdig[b->data[i] & 15];
        }
        *p++ = '"';
        e->out->len = (size_t) (p - e->out->data);
        e->out->data[e->out->len] = 0;
        return 0;
}

static int put_base64(struct enc *e, const ProtobufCBinaryData *b) {
        int r = st_buf_reserve(e->out, (b->len + 2) / 3 * 4 + 2);
        if (r < 0)
                return r;
        char *p = e->out->data + e->out->len;
        const uint8_t *s = b->data;
        size_t i = 0;
        *p++ = '"';
        for (; i + 3 <= b->len; i += 3) {
                uint32_t v = (uint32_t) s[i] << 16 | (uint32_t) s[i + 1] << 8 | s[i + 2];
                *p++ = b64dig[v >> 18];
                *p++ = b64dig[(v >> 12) & 63];
                *p++ = b64dig[(v >> 6) & 63];
                *p++ = b64dig[v & 63];
        }
        if (b->len - i == 1) {
                uint32_t v = (uint32_t) s[i] << 16;
                *p++ = b64dig[v >> 18];
                *p++ = b64dig[(v >> 12) & 63];
                *p++ = '=';
                *p++ = '=';
        } else if (b->len - i == 2) {
                uint32_t v = (uint32_t) s[i] << 16 | (uint32_t) s[i + 1] << 8;
                *p++ = b64dig[v >> 18];
                *p++ = b64dig[(v >> 12) & 63];
                *p++ = b64dig[(v >> 6) & 63];
                *p++ = '=';
        }
        *p++ = '"';
        e->out->len = (size_t) (p - e->out->data);
        e->out->data[e->out->len] = 0;
        return 0;
}

/* "name": with the proto name turned into lowerCamelCase on the way. */
static int put_key(struct enc *e, const char *name, bool first) {
        size_t n = strlen(name);
        int r = 0;
        if (!first)
                r = putc_(e, ',');
        if (r >= 0)
                r = newline(e);
        if (r < 0)
                return r;
        r = st_buf_reserve(e->out, n + 4);
        if (r < 0)
                return r;
        char *p = e->out->data + e->out->len;
        *p++ = '"';
        for (const char *s = name; *s; s++) {
                if (*s == '_' && s[1]) {
                        s++;
                        *p++ = (*s >= 'a' && *s <= 'z') ? (char) (*s - 'a' + 'A') : *s;
                } else
                        *p++ = *s;
        }
        *p++ = '"';
        *p++ = ':';
        if (e->pretty)
                *p++ = ' ';
        e->out->len = (size_t) (p - e->out->data);
        e->out->data[e->out->len] = 0;
        return 0;
}

static int enc_message(struct enc *e, const ProtobufCMessage *m, int depth);

/* One value of field f stored at p. */
static int enc_value(struct enc *e, const ProtobufCFieldDescriptor *f, const void *p, int depth) {
        switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
                return put_i64(e, *(const int32_t *) p, false);
        case PROTOBUF_C_TYPE_ENUM:
                return put_i64(e, *(const int *) p, false);
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                return put_u64(e, *(const uint32_t *) p, false, false);
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                return put_i64(e, *(const int64_t *) p, true);
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                return put_u64(e, *(const uint64_t *) p, false, true);
        case PROTOBUF_C_TYPE_FLOAT:
                return put_double(e, *(const float *) p, 9);
        case PROTOBUF_C_TYPE_DOUBLE:
                return put_double(e, *(const double *) p, 17);
        case PROTOBUF_C_TYPE_BOOL:
                return *(const protobuf_c_boolean *) p ? put(e, "true", 4) : put(e, "false", 5);
        case PROTOBUF_C_TYPE_STRING: {
                const char *s = *(const char *const *) p;
                return s ? put_string(e, s, strlen(s)) : put(e, "\"\"", 2);
        }
        case PROTOBUF_C_TYPE_BYTES: {
                const ProtobufCBinaryData *b = p;
                return hex_id_size(f) ? put_hex(e, b) : put_base64(e, b);
        }
        case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *sub = *(const ProtobufCMessage *const *) p;
                return sub ? enc_message(e, sub, depth + 1) : put(e, "{}", 2);
        }
        }
        return -EINVAL;
}

static bool is_zero(const ProtobufCFieldDescriptor *f, const void *p) {
        switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                return *(const uint32_t *) p == 0;
        case PROTOBUF_C_TYPE_ENUM:
                return *(const int *) p == 0;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                return *(const uint64_t *) p == 0;
        case PROTOBUF_C_TYPE_FLOAT:
                return *(const uint32_t *) p == 0; /* bit pattern: -0.0 is not the default */
        case PROTOBUF_C_TYPE_DOUBLE:
                return *(const uint64_t *) p == 0;
        case PROTOBUF_C_TYPE_BOOL:
                return *(const protobuf_c_boolean *) p == 0;
        case PROTOBUF_C_TYPE_STRING: {
                const char *s = *(const char *const *) p;
                return !s || !*s;
        }
        case PROTOBUF_C_TYPE_BYTES:
                return ((const ProtobufCBinaryData *) p)->len == 0;
        case PROTOBUF_C_TYPE_MESSAGE:
                return *(const void *const *) p == NULL;
        }
        return true;
}

/* Whether a singular field is written: proto3 omits defaults, but a set oneof member is
 * always written (AnyValue intValue 0, a histogram's sum 0). */
static bool present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const void *p) {
        bool ptr = f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                if (*(const uint32_t *) CMEMBER(m, f->quantifier_offset) != f->id)
                        return false;
                return !ptr || *(const void *const *) p != NULL;
        }
        switch (f->label) {
        case PROTOBUF_C_LABEL_REQUIRED:
                return !ptr || *(const void *const *) p != NULL;
        case PROTOBUF_C_LABEL_OPTIONAL:
                if (ptr)
                        return *(const void *const *) p != NULL && *(const void *const *) p != f->default_value;
                return *(const protobuf_c_boolean *) CMEMBER(m, f->quantifier_offset);
        default:
                return !is_zero(f, p);
        }
}

static int enc_message(struct enc *e, const ProtobufCMessage *m, int depth) {
        if (depth > MAX_DEPTH)
                return -EBADMSG;
        const ProtobufCMessageDescriptor *d = m->descriptor;
        bool first = true;
        int r = putc_(e, '{');
        e->indent++;
        for (unsigned i = 0; r >= 0 && i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                const void *p = CMEMBER(m, f->offset);
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                        size_t n = *(const size_t *) CMEMBER(m, f->quantifier_offset);
                        if (n == 0)
                                continue;
                        const char *arr = *(const char *const *) p;
                        size_t es = elem_size(f->type);
                        r = put_key(e, f->name, first);
                        if (r >= 0)
                                r = putc_(e, '[');
                        e->indent++;
                        for (size_t j = 0; r >= 0 && j < n; j++) {
                                if (j)
                                        r = putc_(e, ',');
                                if (r >= 0)
                                        r = newline(e);
                                if (r >= 0)
                                        r = enc_value(e, f, arr + j * es, depth);
                        }
                        e->indent--;
                        if (r >= 0)
                                r = newline(e);
                        if (r >= 0)
                                r = putc_(e, ']');
                } else {
                        if (!present(m, f, p))
                                continue;
                        r = put_key(e, f->name, first);
                        if (r >= 0)
                                r = enc_value(e, f, p, depth);
                }
                first = false;
        }
        e->indent--;
        if (r >= 0 && !first)
                r = newline(e);
        if (r >= 0)
                r = putc_(e, '}');
        return r;
}

int st_otlp_json_encode(const ProtobufCMessage *m, st_buf *out, bool pretty) {
        struct enc e = { .out = out, .pretty = pretty };
        size_t start = out->len;
        int r = enc_message(&e, m, 0);
        if (r < 0) {
                out->len = start; /* no half-written document */
                if (out->data)
                        out->data[start] = 0;
        }
        return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding                                                                                   */

struct dec {
        ProtobufCAllocator *alloc;
        char *err;
        size_t errlen;
        char path[4096]; /* field names are short: MAX_DEPTH levels fit */
        size_t plen;
};

static int fail(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct dec *d, const char *fmt, ...) {
        if (d->err && d->errlen) {
                char msg[256];
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(msg, sizeof(msg), fmt, ap);
                va_end(ap);
                /* A deep path keeps its head and its tail, where the problem is. */
                size_t n = d->plen < sizeof(d->path) ? d->plen : sizeof(d->path) - 1;
                if (n == 0)
                        snprintf(d->err, d->errlen, "document: %s", msg);
                else if (n <= 200)
                        snprintf(d->err, d->errlen, "%s: %s", d->path, msg);
                else {
                        int head = 60;
                        while (head > 0 && d->path[head] != '.')
                                head--;
                        if (head == 0)
                                head = 60;
                        const char *tail = strchr(d->path + n - 137, '.');
                        snprintf(d->err, d->errlen, "%.*s...%s: %s", head, d->path, tail ? tail + 1 : d->path + n - 137, msg);
                }
        }
        return -EBADMSG;
}

/* Appends a path component; returns the length to restore. */
static size_t path_push(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(struct dec *d, const char *fmt, ...) {
        size_t old = d->plen;
        if (old < sizeof(d->path)) {
                va_list ap;
                va_start(ap, fmt);
                int n = vsnprintf(d->path + old, sizeof(d->path) - old, fmt, ap);
                va_end(ap);
                d->plen = old + (n > 0 ? (size_t) n : 0);
        }
        return old;
}

static void path_pop(struct dec *d, size_t old) {
        d->plen = old;
        if (old < sizeof(d->path))
                d->path[old] = 0;
}

static void *dalloc(struct dec *d, size_t n) {
        return d->alloc->alloc(d->alloc->allocator_data, n ? n : 1);
}

static const char *type_name(const json_object *v) {
        return v ? json_type_to_name(json_object_get_type(v)) : "null";
}

/* key is the field's name as given, or its lowerCamelCase form. */
static bool key_matches(const char *name, const char *key) {
        if (strcmp(name, key) == 0)
                return true;
        for (; *name; name++, key++) {
                char c = *name;
                if (c == '_' && name[1]) {
                        c = *++name;
                        if (c >= 'a' && c <= 'z')
                                c = (char) (c - 'a' + 'A');
                }
                if (*key != c)
                        return false;
        }
        return *key == 0;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc, const char *key) {
        for (unsigned i = 0; i < desc->n_fields; i++)
                if (key_matches(desc->fields[i].name, key))
                        return &desc->fields[i];
        return NULL;
}

/* A decimal integer in a string: "-12", no blanks, no '+', no exponent. */
static int parse_int_string(const char *s, size_t len, bool is_signed, int64_t *ret_i, uint64_t *ret_u) {
        const char *digits = s[0] == '-' ? s + 1 : s;
        if (len == 0 || strlen(s) != len || *digits < '0' || *digits > '9' || (!is_signed && s[0] == '-'))
                return -EINVAL;
        char *end;
        errno = 0;
        if (is_signed)
                *ret_i = strtoll(s, &end, 10);
        else
                *ret_u = strtoull(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        return 0;
}

static int get_int(struct dec *d, json_object *v, int64_t min, int64_t max, int64_t *ret) {
        int64_t x;
        switch (json_object_get_type(v)) {
        case json_type_int:
                x = json_object_get_int64(v);
                /* json-c keeps numbers above INT64_MAX as uint64 and clamps get_int64 */
                if (x == INT64_MAX && json_object_get_uint64(v) != (uint64_t) INT64_MAX)
                        goto range;
                break;
        case json_type_double: {
                double dv = json_object_get_double(v);
                if (!isfinite(dv) || dv != trunc(dv))
                        return fail(d, "expected an integer, got %g", dv);
                if (dv < -9223372036854775808.0 || dv >= 9223372036854775808.0)
                        goto range;
                x = (int64_t) dv;
                break;
        }
        case json_type_string:
                if (parse_int_string(json_object_get_string(v), (size_t) json_object_get_string_len(v), true, &x, NULL) < 0)
                        return fail(d, "expected an integer, got \"%.64s\"", json_object_get_string(v));
                break;
        default:
                return fail(d, "expected an integer, got %s", type_name(v));
        }
        if (x < min || x > max)
                goto range;
        *ret = x;
        return 0;
range:
        return fail(d, "integer out of range [%lld, %lld]", (long long) min, (long long) max);
}

static int get_uint(struct dec *d, json_object *v, uint64_t max, uint64_t *ret) {
        uint64_t x;
        switch (json_object_get_type(v)) {
        case json_type_int:
                if (json_object_get_int64(v) < 0)
                        goto range;
                x = json_object_get_uint64(v);
                break;
        case json_type_double: {
                double dv = json_object_get_double(v);
                if (!isfinite(dv) || dv != trunc(dv))
                        return fail(d, "expected an integer, got %g", dv);
                if (dv < 0 || dv >= 18446744073709551616.0)
                        goto range;
                x = (uint64_t) dv;
                break;
        }
        case json_type_string:
                if (parse_int_string(json_object_get_string(v), (size_t) json_object_get_string_len(v), false, NULL, &x) < 0)
                        return fail(d, "expected an unsigned integer, got \"%.64s\"", json_object_get_string(v));
                break;
        default:
                return fail(d, "expected an integer, got %s", type_name(v));
        }
        if (x > max)
                goto range;
        *ret = x;
        return 0;
range:
        return fail(d, "integer out of range [0, %llu]", (unsigned long long) max);
}

static int get_double(struct dec *d, json_object *v, double *ret) {
        switch (json_object_get_type(v)) {
        case json_type_int:
        case json_type_double:
                *ret = json_object_get_double(v);
                return 0;
        case json_type_string: {
                const char *s = json_object_get_string(v);
                size_t len = (size_t) json_object_get_string_len(v);
                if (strcmp(s, "NaN") == 0)
                        *ret = NAN;
                else if (strcmp(s, "Infinity") == 0)
                        *ret = INFINITY;
                else if (strcmp(s, "-Infinity") == 0)
                        *ret = -INFINITY;
                else {
                        /* a number in a string, as protobuf's JSON mapping allows */
                        char *end;
                        if (len == 0 || strlen(s) != len || !(s[0] == '-' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9')))
                                goto bad;
                        errno = 0;
                        double x = strtod(s, &end);
                        if (*end || errno == ERANGE || !isfinite(x))
                                goto bad;
                        *ret = x;
                }
                return 0;
        bad:
                return fail(d, "expected a number, got \"%.64s\"", s);
        }
        default:
                return fail(d, "expected a number, got %s", type_name(v));
        }
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static int get_hex_id(struct dec *d, const char *s, size_t len, size_t size, ProtobufCBinaryData *ret) {
        if (len == 0) { /* "" is an absent id, as in a root span's parentSpanId */
                *ret = (ProtobufCBinaryData) { 0 };
                return 0;
        }
        if (len != 2 * size)
                return fail(d, "expected %zu hex digits (%zu bytes), got %zu characters", 2 * size, size, len);
        uint8_t *out = dalloc(d, size);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < size; i++) {
                int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return fail(d, "invalid hex digit at position %zu", 2 * i + (hi < 0 ? 0 : 1));
                out[i] = (uint8_t) (hi << 4 | lo);
        }
        *ret = (ProtobufCBinaryData) { .len = size, .data = out };
        return 0;
}

static int b64val(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+' || c == '-')
                return 62;
        if (c == '/' || c == '_')
                return 63;
        return -1;
}

/* Standard or URL-safe alphabet, padding optional (protobuf's JSON mapping accepts both). */
static int get_base64(struct dec *d, const char *s, size_t len, ProtobufCBinaryData *ret) {
        while (len && s[len - 1] == '=' && len % 4 != 1)
                len--;
        if (len % 4 == 1)
                return fail(d, "invalid base64 length");
        uint8_t *out = dalloc(d, len / 4 * 3 + 2);
        if (!out)
                return -ENOMEM;
        size_t n = 0;
        uint32_t acc = 0;
        int bits = 0;
        for (size_t i = 0; i < len; i++) {
                int v = b64val(s[i]);
                if (v < 0)
                        return fail(d, "invalid base64 character at position %zu", i);
                acc = acc << 6 | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[n++] = (uint8_t) (acc >> bits);
                }
        }
        *ret = (ProtobufCBinaryData) { .len = n, .data = n ? out : NULL };
        return 0;
}

static int dec_message(struct dec *d, const ProtobufCMessageDescriptor *desc, json_object *o, ProtobufCMessage *m,
                       int depth);

/* Offset of the first byte of s that is not valid UTF-8, or n. json-c's own check only counts
 * continuation bytes: it lets overlong forms, surrogates and values above U+10FFFF through,
 * which a protobuf string must not hold (protobuf runtimes downstream refuse them). */
static size_t utf8_invalid_at(const char *str, size_t n) {
        const unsigned char *s = (const unsigned char *) str;
        size_t i = 0;
        while (i < n) {
                size_t k = s[i] < 0x80 ? 1 : utf8_seq(s + i, n - i);
                if (!k)
                        return i;
                i += k;
        }
        return n;
}

static int dec_enum(struct dec *d, const ProtobufCEnumDescriptor *ed, json_object *v, int *ret) {
        if (json_object_get_type(v) == json_type_string) {
                const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_object_get_string(v));
                if (!ev)
                        return fail(d, "unknown %s value \"%.64s\"", ed->short_name, json_object_get_string(v));
                *ret = ev->value;
                return 0;
        }
        if (json_object_get_type(v) != json_type_int && json_object_get_type(v) != json_type_double)
                return fail(d, "expected an enum number or name, got %s", type_name(v));
        int64_t x;
        int r = get_int(d, v, INT32_MIN, INT32_MAX, &x);
        if (r < 0)
                return r;
        *ret = (int) x; /* proto3 enums are open: unknown numbers are kept */
        return 0;
}

/* Decodes one value of field f into p (a member or an array slot). */
static int dec_value(struct dec *d, const ProtobufCFieldDescriptor *f, json_object *v, void *p, int depth) {
        int64_t i;
        uint64_t u;
        double x;
        int r;
        switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
                if ((r = get_int(d, v, INT32_MIN, INT32_MAX, &i)) < 0)
                        return r;
                *(int32_t *) p = (int32_t) i;
                return 0;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                if ((r = get_uint(d, v, UINT32_MAX, &u)) < 0)
                        return r;
                *(uint32_t *) p = (uint32_t) u;
                return 0;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                if ((r = get_int(d, v, INT64_MIN, INT64_MAX, &i)) < 0)
                        return r;
                *(int64_t *) p = i;
                return 0;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                if ((r = get_uint(d, v, UINT64_MAX, &u)) < 0)
                        return r;
                *(uint64_t *) p = u;
                return 0;
        case PROTOBUF_C_TYPE_FLOAT:
                if ((r = get_double(d, v, &x)) < 0)
                        return r;
                *(float *) p = (float) x;
                return 0;
        case PROTOBUF_C_TYPE_DOUBLE:
                return get_double(d, v, (double *) p);
        case PROTOBUF_C_TYPE_BOOL:
                if (json_object_get_type(v) != json_type_boolean)
                        return fail(d, "expected true or false, got %s", type_name(v));
                *(protobuf_c_boolean *) p = json_object_get_boolean(v) ? 1 : 0;
                return 0;
        case PROTOBUF_C_TYPE_ENUM:
                return dec_enum(d, f->descriptor, v, (int *) p);
        case PROTOBUF_C_TYPE_STRING: {
                if (json_object_get_type(v) != json_type_string)
                        return fail(d, "expected a string, got %s", type_name(v));
                size_t len = (size_t) json_object_get_string_len(v), bad = utf8_invalid_at(json_object_get_string(v), len);
                if (bad < len)
                        return fail(d, "invalid UTF-8 in a string at byte %zu", bad);
                char *s = dalloc(d, len + 1);
                if (!s)
                        return -ENOMEM;
                memcpy(s, json_object_get_string(v), len + 1);
                *(char **) p = s;
                return 0;
        }
        case PROTOBUF_C_TYPE_BYTES: {
                if (json_object_get_type(v) != json_type_string)
                        return fail(d, "expected a string, got %s", type_name(v));
                const char *s = json_object_get_string(v);
                size_t len = (size_t) json_object_get_string_len(v), size = hex_id_size(f);
                return size ? get_hex_id(d, s, len, size, p) : get_base64(d, s, len, p);
        }
        case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessageDescriptor *sd = f->descriptor;
                ProtobufCMessage *sub = dalloc(d, sd->sizeof_message);
                if (!sub)
                        return -ENOMEM;
                protobuf_c_message_init(sd, sub);
                r = dec_message(d, sd, v, sub, depth + 1);
                if (r < 0)
                        return r;
                *(ProtobufCMessage **) p = sub;
                return 0;
        }
        }
        return fail(d, "unsupported field type %d", (int) f->type);
}

static int dec_repeated(struct dec *d, const ProtobufCFieldDescriptor *f, json_object *v, ProtobufCMessage *m, int depth) {
        if (json_object_get_type(v) != json_type_array)
                return fail(d, "expected an array, got %s", type_name(v));
        size_t n = json_object_array_length(v), es = elem_size(f->type);
        char *arr = NULL;
        if (n) {
                if (n > SIZE_MAX / es)
                        return -ENOMEM;
                arr = dalloc(d, n * es);
                if (!arr)
                        return -ENOMEM;
        }
        for (size_t j = 0; j < n; j++) {
                json_object *item = json_object_array_get_idx(v, j);
                size_t saved = path_push(d, "[%zu]", j);
                int r = item ? dec_value(d, f, item, arr + j * es, depth) : fail(d, "null in an array");
                path_pop(d, saved);
                if (r < 0)
                        return r;
        }
        *(size_t *) MEMBER(m, f->quantifier_offset) = n;
        *(void **) MEMBER(m, f->offset) = arr;
        return 0;
}

static int dec_message(struct dec *d, const ProtobufCMessageDescriptor *desc, json_object *o, ProtobufCMessage *m,
                       int depth) {
        if (json_object_get_type(o) != json_type_object)
                return fail(d, "expected an object, got %s", type_name(o));
        if (depth > MAX_DEPTH)
                return fail(d, "nesting deeper than %d messages", MAX_DEPTH);
        json_object_object_foreach(o, key, val) {
                const ProtobufCFieldDescriptor *f = find_field(desc, key);
                if (!f || !val) /* unknown fields are ignored; null is the default */
                        continue;
                size_t saved = path_push(d, d->plen ? ".%s" : "%s", key);
                int r;
                if (f->label == PROTOBUF_C_LABEL_REPEATED)
                        r = dec_repeated(d, f, val, m, depth);
                else {
                        uint32_t *oneof = (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ? (uint32_t *) MEMBER(m, f->quantifier_offset) : NULL;
                        if (oneof && *oneof && *oneof != f->id) {
                                const ProtobufCFieldDescriptor *other = protobuf_c_message_descriptor_get_field(desc, *oneof);
                                r = fail(d, "only one of a oneof may be set (\"%s\" is set already)", other ? other->name : "?");
                        } else {
                                r = dec_value(d, f, val, MEMBER(m, f->offset), depth);
                                if (r >= 0 && oneof)
                                        *oneof = f->id;
                                else if (r >= 0 && f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
                                         f->type != PROTOBUF_C_TYPE_STRING)
                                        *(protobuf_c_boolean *) MEMBER(m, f->quantifier_offset) = 1;
                        }
                }
                path_pop(d, saved);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A json-c syntax error, located by offset, line and column (there is no JSON path yet). */
static int fail_syntax(struct dec *d, const char *json, size_t off, const char *what) {
        size_t line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
                if (json[i] == '\n')
                        line++, col = 1;
                else
                        col++;
        }
        return fail(d, "%s at offset %zu (line %zu, column %zu)", what, off, line, col);
}

int st_otlp_json_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                        ProtobufCAllocator *alloc, ProtobufCMessage **ret, char *err, size_t errlen) {
        struct dec d = { .alloc = alloc, .err = err, .errlen = errlen };
        json_tokener *tok = NULL;
        json_object *root = NULL;
        int r;

        if (err && errlen)
                err[0] = 0;
        if (!desc || !alloc || !ret || (!json && len))
                return -EINVAL;
        if (len > INT_MAX)
                return fail(&d, "larger than %d bytes", INT_MAX);

        tok = json_tokener_new_ex(JSON_MAX_DEPTH);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS | JSON_TOKENER_VALIDATE_UTF8);
        root = json_tokener_parse_ex(tok, json ? json : "", (int) len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t end = json_tokener_get_parse_end(tok);
        if (jerr == json_tokener_continue) {
                /* Ran out of input: a cut document, or a bare scalar json-c is still reading. */
                size_t i = 0;
                while (i < len && strchr(" \t\r\n", json[i]))
                        i++;
                r = i < len && json[i] != '{' ? fail(&d, "expected an object")
                                              : fail_syntax(&d, json, len, "unexpected end of document (truncated?)");
                goto out;
        }
        if (jerr == json_tokener_error_depth) {
                r = fail_syntax(&d, json, end, "nesting too deep");
                goto out;
        }
        if (jerr != json_tokener_success) {
                r = fail_syntax(&d, json, end, json_tokener_error_desc(jerr));
                goto out;
        }
        for (size_t i = end; i < len; i++)
                if (!strchr(" \t\r\n", json[i]) || json[i] == 0) {
                        r = fail_syntax(&d, json, i, "trailing data after the document");
                        goto out;
                }

        ProtobufCMessage *m = dalloc(&d, desc->sizeof_message);
        if (!m) {
                r = -ENOMEM;
                goto out;
        }
        protobuf_c_message_init(desc, m);
        r = dec_message(&d, desc, root, m, 0);
        if (r >= 0)
                *ret = m;
out:
        json_object_put(root);
        json_tokener_free(tok);
        return r < 0 ? r : 0;
}
