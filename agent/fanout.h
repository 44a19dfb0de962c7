/* A fan-out: one batch to several consumers, which share it read-only (a pipeline's exporters,
 * or the pipelines a receiver feeds), offered in order.
 *
 * If the first one refuses it for now (-ENOBUFS), nobody has it: the refusal goes back to the
 * caller, who may offer it again to all, and the others are not offered it. A refusal after
 * another consumer took it (or by one after another refused for good) cannot be offered again
 * without duplicating it for those that took it: it becomes a drop, counted on the refusing
 * consumer's telemetry, and the caller hears success. `batch` offers a held batch again every
 * few milliseconds, so the Collector's answer here (return the error, and let the retry
 * duplicate the batch for the others) would duplicate it many times over. When every consumer
 * refuses, the first error goes back and nothing is counted. */
#pragma once
#include <stddef.h>

#include "component.h"

#define ST_FANOUT_MAX 64 /* consumers at most */

struct st_fanout {
        struct st_consumer *to;
        struct st_component_telemetry **tel; /* where a consumer's drops are counted (may be NULL) */
        size_t n;
};

/* -E2BIG beyond ST_FANOUT_MAX consumers. */
int st_fanout_add(struct st_fanout *fo, struct st_consumer c, struct st_component_telemetry *tel);
/* The consumer to hand upstream: the only one itself, or the fan-out (which must outlive it). */
struct st_consumer st_fanout_consumer(struct st_fanout *fo);
void st_fanout_free(struct st_fanout *fo); /* frees the arrays, not fo */
