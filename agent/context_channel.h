/* The context channel: language agents announce span start and end, with the thread, over a
 * Unix stream socket of fixed 64-byte records (docs/context-channel.md). What they say goes
 * into the span index (span_index.h); the sender's pid comes from SO_PEERCRED.
 *
 * Several components may ask for the same socket (one correlate processor per pipeline): they
 * share one listener, counted by path. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "span_index.h"

#define ST_CTXCHAN_RECORD_SIZE 64
#define ST_CTXCHAN_VERSION 1
enum { ST_CTXCHAN_SPAN_START = 1, ST_CTXCHAN_SPAN_END = 2 };

struct st_ctxchan_stats {
        uint64_t connections;   /* accepted so far */
        uint64_t records;       /* applied */
        uint64_t bad_records;   /* refused (the connection was closed) */
        uint64_t pid_mismatch;  /* records not applied: their pid was not the sender's, or the
                                 * sender's pid is not visible from strata's pid namespace */
        uint64_t partial;       /* bytes of incomplete records at a connection's end */
};

/* Applies one record from peer_pid (0: unknown: not applied, counted), its time moved by
 * clock_offset_ns (the sender's clock aligned to ours). -EBADMSG with the reason in err when
 * the record is not valid. */
int st_ctxchan_apply(struct st_spanidx *x, const uint8_t rec[ST_CTXCHAN_RECORD_SIZE], uint32_t peer_pid,
                     int64_t clock_offset_ns, struct st_ctxchan_stats *stats, char *err, size_t errlen);

/* A sender's clock against ours: the smallest (receive time - record time) of the last 10 to
 * 20 s, the clock difference plus the socket's smallest delay. */
struct st_clock_align {
        int64_t cur, prev;
        bool have_cur, have_prev;
        int64_t epoch_ns;
};
void st_clock_align_note(struct st_clock_align *c, int64_t now_ns, int64_t record_ns);
int64_t st_clock_align_offset(const struct st_clock_align *c); /* 0 before any record */

struct st_ctxchan;

/* The listener at path (created with mode; a stale socket file is replaced), shared with the
 * other holders of the same path. log names the component for messages. */
int st_ctxchan_acquire(const char *path, mode_t mode, const char *log, struct st_ctxchan **ret);
void st_ctxchan_release(struct st_ctxchan *c); /* NULL-safe; the last holder stops it */
void st_ctxchan_stats(struct st_ctxchan *c, struct st_ctxchan_stats *ret);
