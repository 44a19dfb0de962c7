/* A growable byte buffer. */
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct st_buf {
        char *data;
        size_t len, cap;
} st_buf;

int st_buf_reserve(st_buf *b, size_t extra);
int st_buf_append(st_buf *b, const void *p, size_t n);
int st_buf_puts(st_buf *b, const char *s);
int st_buf_putc(st_buf *b, char c);
int st_buf_printf(st_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int st_buf_vprintf(st_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void st_buf_free(st_buf *b);
static inline void st_buf_clear(st_buf *b) { b->len = 0; }
/* NUL-terminates without counting the terminator in len. */
const char *st_buf_cstr(st_buf *b);
