/* Components: receivers, processors and exporters, each a factory (a const struct of
 * callbacks and a config map) in one folder under receivers/, processors/, exporters/. */
#pragma once
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "config_map.h"
#include "telemetry.h"

enum st_kind { ST_RECEIVER, ST_PROCESSOR, ST_EXPORTER };
const char *st_kind_name(enum st_kind k); /* "receiver" */

/* The next hop of a pipeline. consume() borrows b: keep it only with st_batch_ref().
 * Returns 0, or:
 *   -ENOBUFS  refused for now (memory limit, full queue): the sender should retry later;
 *   -EINVAL   the data is unacceptable (permanent, not retried);
 *   other     failed; the sender may retry.
 * Accounting: 0 means the consumer took the items and will count what becomes of them (sent,
 * failed, dropped). An error means it did not keep them and counted them at most as refused;
 * the caller decides what they become (a receiver's sender retries; `batch` holds what was
 * refused with -ENOBUFS and offers it again, and counts anything else as dropped), so an item
 * that is lost is counted once as lost. (Refusals count per offer: an item offered again is
 * refused again.) */
struct st_consumer {
        int (*consume)(void *data, st_batch *b);
        void *data;
};
static inline bool st_consumer_set(const struct st_consumer *c) { return c->consume != NULL; }
static inline int st_consume(const struct st_consumer *c, st_batch *b) { return c->consume(c->data, b); }
static inline bool st_error_retryable(int r) { return r != -EINVAL && r != -EBADMSG && r != -EMSGSIZE; }

struct st_component_settings {
        const char *id;       /* "otlp/tempo" as in the config */
        const char *log_name; /* "exporter/otlp/tempo" (processors: "processor/batch[traces]") */
        enum st_kind kind;
        struct st_component_telemetry *tel; /* counters of this component */
        /* Receivers: where each signal goes (consume == NULL when no pipeline takes it).
         * Processors: next[signal] is the next hop of their pipeline. Exporters: unused. */
        struct st_consumer next[ST_SIGNAL_COUNT];
        enum st_signal signal; /* processors: their pipeline's signal */
};

struct st_factory {
        const char *type; /* the YAML key */
        enum st_kind kind;
        unsigned signals; /* ST_SIG_BIT()s */
        const char *description;
        bool mutates;     /* processors: changes batches (gets writable ones) */

        size_t config_size;
        const struct st_cfg_field *config; /* terminated by ST_CFG_END */

        /* Checks that go beyond types (ranges between fields, endpoint syntax). */
        int (*validate)(const void *cfg, struct st_cfg_ctx *ctx);
        /* Allocates, does not start threads or bind sockets. cfg outlives the instance. */
        int (*create)(const struct st_component_settings *set, const void *cfg, void **ret);
        /* Binds, connects, starts threads. Errors here stop the service start-up. */
        int (*start)(void *self);
        int (*consume)(void *self, st_batch *b); /* processors and exporters */
        /* Stops accepting and drains until deadline_ns (CLOCK_MONOTONIC); must also work
         * when start() was never called. Whatever cannot be delivered is counted as dropped. */
        int (*shutdown)(void *self, int64_t deadline_ns);
        void (*destroy)(void *self); /* NULL-safe */
        /* `strata doctor`: what this component could do on this host, and why not, as
         * st_doctor_line()s. Optional; must not need a config or leave anything behind. */
        void (*doctor)(st_buf *out);
};

/* The compiled-in factories. */
extern const struct st_factory *const st_factories[];
const struct st_factory *st_factory_find(enum st_kind kind, const char *type);
