/* The service: builds the component graph from config, starts it downstream-first, and shuts
 * it down upstream-first so that every accepted batch drains before its exporter stops. */
#pragma once
#include <stdint.h>

#include "tree.h"

struct st_service;

struct st_service_telemetry {
        char *metrics_address; /* "" disables the /metrics server */
        int log_level;         /* enum st_log_level */
        int log_encoding;      /* 0 console, 1 json */
};

/* Parses and validates a config (all problems go to d as file:line:col lines). Nothing is
 * created or started. text == NULL reads file. */
int st_service_load(const char *file, const char *text, size_t len, struct st_diag *d, struct st_service **ret);
const struct st_service_telemetry *st_service_telemetry(const struct st_service *s);
int64_t st_service_shutdown_timeout(const struct st_service *s);

/* Creates and starts every component; on failure, what was started is shut down again. */
int st_service_start(struct st_service *s);
/* Upstream-first shutdown, draining until now + shutdown_timeout. Returns 0 when everything
 * drained in time. */
int st_service_shutdown(struct st_service *s);
void st_service_free(struct st_service *s); /* NULL-safe */

/* One line per pipeline: "traces: [otlp] -> [batch] -> [debug]" (for the start-up log). */
void st_service_describe(const struct st_service *s, st_buf *out);
