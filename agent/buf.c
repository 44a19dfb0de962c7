#include "buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int st_buf_reserve(st_buf *b, size_t extra) {
        if (b->cap - b->len > extra)
                return 0;
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= extra) {
                if (cap > SIZE_MAX / 2)
                        return -ENOMEM;
                cap *= 2;
        }
        char *p = realloc(b->data, cap);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->cap = cap;
        return 0;
}

int st_buf_append(st_buf *b, const void *p, size_t n) {
        int r = st_buf_reserve(b, n);
        if (r < 0)
                return r;
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
        return 0;
}

int st_buf_puts(st_buf *b, const char *s) { return st_buf_append(b, s, strlen(s)); }
int st_buf_putc(st_buf *b, char c) { return st_buf_append(b, &c, 1); }

int st_buf_vprintf(st_buf *b, const char *fmt, va_list ap) {
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        if (n < 0)
                return -EINVAL;
        int r = st_buf_reserve(b, (size_t) n + 1);
        if (r < 0)
                return r;
        vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
        b->len += (size_t) n;
        return 0;
}

int st_buf_printf(st_buf *b, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = st_buf_vprintf(b, fmt, ap);
        va_end(ap);
        return r;
}

void st_buf_free(st_buf *b) {
        free(b->data);
        *b = (st_buf) { 0 };
}

const char *st_buf_cstr(st_buf *b) {
        if (st_buf_reserve(b, 1) < 0)
                return "";
        b->data[b->len] = 0;
        return b->data;
}
