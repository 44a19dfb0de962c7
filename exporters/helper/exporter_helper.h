/* What every exporter shares (the Collector's exporterhelper): a bounded sending queue with
 * num_consumers workers, retry with exponential backoff and jitter, a per-attempt timeout, and
 * the sent/failed/dropped accounting. An exporter only says how to send one batch. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "component.h"

enum st_send_status {
        ST_SEND_OK,        /* delivered (maybe partially: see rejected) */
        ST_SEND_RETRY,     /* transient: try again after backoff or retry_after_ns */
        ST_SEND_PERMANENT, /* will never succeed: count as failed, do not retry */
};

struct st_send_result {
        enum st_send_status status;
        int64_t retry_after_ns; /* > 0: the backend asked for this delay (RetryInfo, Retry-After) */
        uint64_t rejected;      /* items the backend rejected in a partial success */
        char message[256];      /* why, for the log */
};

/* Sends b once; must return by deadline_ns (CLOCK_MONOTONIC). Called from queue workers
 * concurrently when num_consumers > 1. */
typedef void (*st_send_fn)(void *exporter, st_batch *b, int64_t deadline_ns, struct st_send_result *res);

struct st_retry_config {
        bool enabled;
        int64_t initial_interval, max_interval, max_elapsed_time; /* ns; max_elapsed_time 0 = forever */
        double multiplier, randomization_factor;
};
struct st_queue_config {
        bool enabled;
        int64_t num_consumers;
        int64_t queue_size; /* batches */
};

/* Config maps for the shared keys: `retry_on_failure: {...}`, `sending_queue: {...}`; embed
 * them as ST_CFG_SECTION fields of an exporter's own map. Defaults are the Collector's:
 * retry enabled, 5s initial, 30s max, 300s elapsed, x1.5, ±50%; queue enabled, 10 consumers,
 * 1000 batches. */
extern const struct st_cfg_field st_retry_config_fields[];
extern const struct st_cfg_field st_queue_config_fields[];

struct st_exporter_helper;

int st_exporter_helper_new(const struct st_component_settings *set, const struct st_retry_config *retry,
                           const struct st_queue_config *queue, int64_t timeout_ns, st_send_fn send,
                           void *exporter, struct st_exporter_helper **ret);
int st_exporter_helper_start(struct st_exporter_helper *h);
/* Queue enabled: takes a reference and returns at once; when the queue is full returns
 * -ENOBUFS and counts the items as refused (the receiver tells its sender to retry). Queue
 * disabled: sends, with retries, on the caller's thread. */
int st_exporter_helper_consume(struct st_exporter_helper *h, st_batch *b);
/* Stops taking batches, lets the workers drain the queue until deadline_ns, then abandons
 * what is left, counting it as dropped. Safe without start(). */
int st_exporter_helper_shutdown(struct st_exporter_helper *h, int64_t deadline_ns);
void st_exporter_helper_free(struct st_exporter_helper *h); /* NULL-safe */
