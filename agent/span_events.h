/* Kernel events waiting for the span they were joined to, so that the span can carry them as
 * span events (correlate's `span_events`). The logs side adds a copy of each joined event; the
 * traces side takes a span's events as the span leaves its own window.
 *
 * Bounded: at most max_events are kept (beyond, new ones are refused and counted), and events
 * no span came for within keep_ns are forgotten. Sharded by span id, a mutex per shard. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "otlp.h"

struct st_spanev;

int st_spanev_new(size_t max_events, uint64_t keep_ns, struct st_spanev **ret);
void st_spanev_free(struct st_spanev *s); /* NULL-safe */
/* The agent's store (created on first use; NULL only when out of memory). */
struct st_spanev *st_spanev_global(void);

/* Keeps a copy of lr (its event name, time and flat attributes) for span (trace_id,
 * span_id), received at now_ns (CLOCK_MONOTONIC). -ENOBUFS when full. */
int st_spanev_add(struct st_spanev *s, const uint8_t trace_id[16], const uint8_t span_id[8], const st_log_record *lr,
                  int64_t now_ns);

/* Moves the events of a span into span->events (built in arena), oldest first. Returns how
 * many, or -ENOMEM. */
int st_spanev_attach(struct st_spanev *s, st_span *span, st_arena *arena);

/* Forgets events older than keep_ns. Returns how many. */
size_t st_spanev_expire(struct st_spanev *s, int64_t now_ns);
/* st_spanev_expire() at most once a second. */
void st_spanev_tick(struct st_spanev *s, int64_t now_ns);
size_t st_spanev_size(struct st_spanev *s);
uint64_t st_spanev_refused(struct st_spanev *s);
