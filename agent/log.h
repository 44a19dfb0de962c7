/* Structured logging to stderr, text or JSON, with a per-component prefix.
 *
 * Library-style code (parsers, codecs) returns negative errno and does not log above debug;
 * the component that called it logs with context. */
#pragma once
#include <stdarg.h>
#include <stdbool.h>

enum st_log_level { ST_LOG_DEBUG, ST_LOG_INFO, ST_LOG_WARN, ST_LOG_ERROR };
enum st_log_format { ST_LOG_TEXT, ST_LOG_JSON };

void st_log_setup(enum st_log_level level, enum st_log_format format);
bool st_log_enabled(enum st_log_level level);
int st_log_level_from_name(const char *name); /* or -EINVAL */

/* component: "receiver/otlp", "exporter/otlp/tempo", or NULL for the service itself. */
void st_log(enum st_log_level level, const char *component, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void st_logv(enum st_log_level level, const char *component, const char *fmt, va_list ap);

#define st_debug(c, ...) do { if (st_log_enabled(ST_LOG_DEBUG)) st_log(ST_LOG_DEBUG, c, __VA_ARGS__); } while (0)
#define st_info(c, ...) st_log(ST_LOG_INFO, c, __VA_ARGS__)
#define st_warn(c, ...) st_log(ST_LOG_WARN, c, __VA_ARGS__)
#define st_error(c, ...) st_log(ST_LOG_ERROR, c, __VA_ARGS__)
