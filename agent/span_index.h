/* The context store's thread → span index: which span was active in which process and
 * thread, and when. Fed by spans as they pass the correlate processor (their start and end,
 * process.pid of their resource, thread.id when the SDK sets it) and by language agents over
 * the context channel (docs/context-channel.md: span start and end as they happen, with the
 * thread). Read to join kernel events to the span that was active where and when they
 * happened.
 *
 * Times are Unix epoch ns (what spans and log records carry).
 *
 * Concurrency: sharded by pid, a rwlock per shard: a lookup locks one shard for reading, never
 * the whole index. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct st_spanidx;

struct st_span_ref {
        uint8_t trace_id[16];
        uint8_t span_id[8];
};

enum st_corr_method {
        ST_CORR_NONE,         /* "none" */
        ST_CORR_EXACT_THREAD, /* "exact_thread": a span known to run on the event's thread */
        ST_CORR_PROCESS_TIME, /* "process_time": a span of the process whose thread is unknown */
};
const char *st_corr_method_name(enum st_corr_method m);

struct st_spanidx_limits {
        size_t max_spans;        /* intervals kept in all; the oldest go first */
        uint64_t keep_ended_ns;  /* how long after its end an interval stays findable */
        uint64_t keep_open_ns;   /* how long an interval whose end never came stays */
};

int st_spanidx_new(const struct st_spanidx_limits *lim, struct st_spanidx **ret);
void st_spanidx_free(struct st_spanidx *x); /* NULL-safe */

/* The agent's index (created on first use with default limits; NULL only when out of memory). */
struct st_spanidx *st_spanidx_global(void);

#define ST_SPAN_OPEN UINT64_MAX

/* A span of pid from start to end (ST_SPAN_OPEN: not ended yet), on thread tid (0: unknown).
 * Adding a span already known (same pid and span id) updates it: an end, a thread learnt. */
int st_spanidx_add(struct st_spanidx *x, uint32_t pid, uint32_t tid, uint64_t start_ns, uint64_t end_ns,
                   const struct st_span_ref *ref);
/* The span with this id in pid ended at end_ns. -ENOENT when not known. */
int st_spanidx_end(struct st_spanidx *x, uint32_t pid, const uint8_t span_id[8], uint64_t end_ns);

/* The innermost span (latest start) of pid active at t: on thread tid if one is known to run
 * there (exact_thread), else among the spans of pid whose thread is unknown (process_time).
 * Returns the method (ST_CORR_NONE: no span; *ret untouched). */
enum st_corr_method st_spanidx_find(struct st_spanidx *x, uint32_t pid, uint32_t tid, uint64_t t,
                                    struct st_span_ref *ret);

/* Forgets intervals that ended before now - keep_ended, or opened before now - keep_open.
 * Returns how many. */
size_t st_spanidx_expire(struct st_spanidx *x, uint64_t now_ns);
/* st_spanidx_expire() at most once a second, whoever calls it (cheap otherwise). */
void st_spanidx_tick(struct st_spanidx *x, uint64_t now_ns);
size_t st_spanidx_size(struct st_spanidx *x);
/* Keeps ended intervals at least ns (a join window needs them for as long as events wait). */
void st_spanidx_keep_at_least(struct st_spanidx *x, uint64_t ns);
/* Intervals forgotten early because max_spans was reached. */
uint64_t st_spanidx_evicted(struct st_spanidx *x);
