/* Self-telemetry: counters per component and signal, rendered as Prometheus text on
 * service.telemetry.metrics.address together with /healthz. */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "otlp.h"

struct st_signal_counters {
        atomic_uint_least64_t accepted; /* receivers: items taken into the pipeline */
        atomic_uint_least64_t refused;  /* receivers: items the pipeline refused (sender told to retry);
                                         * exporters: items refused because the queue was full */
        atomic_uint_least64_t sent;     /* exporters: items the backend acknowledged */
        atomic_uint_least64_t failed;   /* exporters: items given up on after retries */
        atomic_uint_least64_t dropped;  /* processors/exporters: items discarded (full queue, shutdown) */
};

struct st_component_telemetry {
        char *kind;  /* "receiver" */
        char *id;    /* "otlp/tempo" */
        struct st_signal_counters sig[ST_SIGNAL_COUNT];
        atomic_int_least64_t queue_size; /* exporters with a sending queue */
        int64_t queue_capacity;          /* 0 = no queue */
        struct st_tel_metric *metrics;   /* component-specific, see st_tel_metric() */
        struct st_component_telemetry *next;
};

/* A counter or gauge of one component beyond the per-signal ones (e.g. the ebpf receiver's
 * kernel losses), rendered as strata_<kind>_<name>{<kind>="<id>"}. */
struct st_tel_metric {
        char *name, *help;
        bool gauge;
        atomic_int_least64_t value;
        struct st_tel_metric *next;
};
/* The metric `name` of t, registered on first call (NULL only when out of memory; then
 * st_tel_metric_add ignores it). Lives as long as t. */
struct st_tel_metric *st_tel_metric(struct st_component_telemetry *t, const char *name, const char *help, bool gauge);
/* Frees t's component metrics: for a t that is not in the registry (tests build their own). */
void st_tel_metrics_free(struct st_component_telemetry *t);
static inline void st_tel_metric_add(struct st_tel_metric *m, int64_t n) {
        if (m)
                atomic_fetch_add_explicit(&m->value, n, memory_order_relaxed);
}
static inline void st_tel_metric_set(struct st_tel_metric *m, int64_t v) {
        if (m)
                atomic_store_explicit(&m->value, v, memory_order_relaxed);
}

/* Returns the existing entry for (kind, id) or a new one; entries live until st_tel_reset(). */
struct st_component_telemetry *st_tel_component(const char *kind, const char *id);
void st_tel_reset(void);

static inline void st_tel_add(atomic_uint_least64_t *c, uint64_t n) {
        atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

void st_tel_render(st_buf *out); /* Prometheus text exposition format 0.0.4 */

/* The /metrics and /healthz endpoint. address "host:port". */
int st_tel_server_start(const char *address);
void st_tel_server_stop(void);
void st_tel_set_healthy(bool healthy);

uint64_t st_rss_bytes(void); /* resident set size from /proc/self/statm, 0 if unknown */
