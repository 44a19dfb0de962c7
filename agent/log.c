#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"

static enum st_log_level min_level = ST_LOG_INFO;
static enum st_log_format log_format = ST_LOG_TEXT;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void st_log_setup(enum st_log_level level, enum st_log_format format) {
        min_level = level;
        log_format = format;
}

bool st_log_enabled(enum st_log_level level) { return level >= min_level; }

int st_log_level_from_name(const char *name) {
        for (int i = 0; i <= ST_LOG_ERROR; i++)
                if (strcmp(name, level_names[i]) == 0)
                        return i;
        if (strcmp(name, "warning") == 0)
                return ST_LOG_WARN;
        return -EINVAL;
}

static void json_escape(st_buf *b, const char *s) {
        st_buf_putc(b, '"');
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                if (c == '"' || c == '\\')
                        st_buf_printf(b, "\\%c", c);
                else if (c == '\n')
                        st_buf_puts(b, "\\n");
                else if (c < 0x20)
                        st_buf_printf(b, "\\u%04x", c);
                else
                        st_buf_putc(b, (char) c);
        }
        st_buf_putc(b, '"');
}

void st_logv(enum st_log_level level, const char *component, const char *fmt, va_list ap) {
        if (level < min_level)
                return;
        char ts[40];
        struct timespec now;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);

        st_buf msg = { 0 }, line = { 0 };
        st_buf_vprintf(&msg, fmt, ap);
        if (log_format == ST_LOG_JSON) {
                st_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\"", ts, level_names[level]);
                if (component) {
                        st_buf_puts(&line, ",\"component\":");
                        json_escape(&line, component);
                }
                st_buf_puts(&line, ",\"msg\":");
                json_escape(&line, st_buf_cstr(&msg));
                st_buf_puts(&line, "}\n");
        } else {
                st_buf_printf(&line, "%s %-5s %s%s%s%s\n", ts, level_names[level], component ? "[" : "",
                              component ? component : "", component ? "] " : "", st_buf_cstr(&msg));
        }
        /* One write per line so that lines from several threads never interleave. */
        fwrite(line.data, 1, line.len, stderr);
        st_buf_free(&msg);
        st_buf_free(&line);
}

void st_log(enum st_log_level level, const char *component, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        st_logv(level, component, fmt, ap);
        va_end(ap);
}
