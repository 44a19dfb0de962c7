/* The thread → span index and the context channel that feeds it: nested, overlapping and
 * concurrent spans, threads known and unknown, spans that arrive late or never end, limits;
 * channel records valid and not, split across writes, from a process that lies about its pid. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "context_channel.h"
#include "span_index.h"

static struct st_span_ref ref(uint8_t n) {
        struct st_span_ref r;
        memset(r.trace_id, 0xa0 + n, sizeof(r.trace_id));
        memset(r.span_id, n, sizeof(r.span_id));
        return r;
}

static struct st_spanidx *idx_new(size_t max) {
        struct st_spanidx_limits lim = { .max_spans = max, .keep_ended_ns = 1000, .keep_open_ns = 100000 };
        struct st_spanidx *x;
        assert_int_equal(st_spanidx_new(&lim, &x), 0);
        return x;
}

/* Which span (by number) find() gives, and how; 0 for none. */
static int found(struct st_spanidx *x, uint32_t pid, uint32_t tid, uint64_t t, enum st_corr_method *m) {
        struct st_span_ref r;
        *m = st_spanidx_find(x, pid, tid, t, &r);
        return *m == ST_CORR_NONE ? 0 : r.span_id[0];
}

static void test_nested_and_overlapping(void **state) {
        (void) state;
        struct st_spanidx *x = idx_new(100);
        enum st_corr_method m;
        struct st_span_ref a = ref(1), b = ref(2), c = ref(3), d = ref(4);
        /* A [100,1000] contains B [200,300]; C [250,600] overlaps B's end (async work on the
         * same thread); all on thread 7 */
        assert_int_equal(st_spanidx_add(x, 10, 7, 100, 1000, &a), 0);
        assert_int_equal(st_spanidx_add(x, 10, 7, 250, 600, &c), 0);
        assert_int_equal(st_spanidx_add(x, 10, 7, 200, 300, &b), 0); /* arrives after: spans end inner first */
        assert_int_equal(found(x, 10, 7, 220, &m), 2);
        assert_int_equal(m, ST_CORR_EXACT_THREAD);
        assert_int_equal(found(x, 10, 7, 280, &m), 3); /* the latest start wins */
        assert_int_equal(found(x, 10, 7, 700, &m), 1);
        assert_int_equal(found(x, 10, 7, 1000, &m), 1); /* ends are inclusive */
        assert_int_equal(found(x, 10, 7, 99, &m), 0);
        assert_int_equal(found(x, 10, 7, 1001, &m), 0);
        assert_int_equal(found(x, 11, 7, 500, &m), 0); /* another process */
        /* another thread of the process: not these spans, they are known to run on 7 */
        assert_int_equal(found(x, 10, 8, 500, &m), 0);
        /* a span whose thread is unknown: matched by process and time, for any thread, but a
         * span known on the event's own thread wins */
        assert_int_equal(st_spanidx_add(x, 10, 0, 50, 2000, &d), 0);
        assert_int_equal(found(x, 10, 8, 500, &m), 4);
        assert_int_equal(m, ST_CORR_PROCESS_TIME);
        assert_int_equal(found(x, 10, 7, 500, &m), 3);
        assert_int_equal(m, ST_CORR_EXACT_THREAD);
        assert_int_equal(found(x, 10, 0, 500, &m), 4); /* the event's thread unknown */
        assert_int_equal(st_spanidx_size(x), 4);
        st_spanidx_free(x);
}

static void test_open_spans_and_duplicates(void **state) {
        (void) state;
        struct st_spanidx *x = idx_new(100);
        enum st_corr_method m;
        struct st_span_ref a = ref(1);
        /* the channel: started, not ended yet */
        assert_int_equal(st_spanidx_add(x, 10, 10, 100, ST_SPAN_OPEN, &a), 0);
        assert_int_equal(found(x, 10, 10, 5000, &m), 1);
        /* then the same span over OTLP, ended: one interval, now closed */
        assert_int_equal(st_spanidx_add(x, 10, 0, 100, 400, &a), 0);
        assert_int_equal(st_spanidx_size(x), 1);
        assert_int_equal(found(x, 10, 10, 300, &m), 1);
        assert_int_equal(m, ST_CORR_EXACT_THREAD); /* the channel's thread is kept */
        assert_int_equal(found(x, 10, 10, 401, &m), 0);
        /* ends by id */
        struct st_span_ref b = ref(2);
        assert_int_equal(st_spanidx_add(x, 10, 10, 500, ST_SPAN_OPEN, &b), 0);
        assert_int_equal(st_spanidx_end(x, 10, b.span_id, 600), 0);
        assert_int_equal(found(x, 10, 10, 601, &m), 0);
        assert_int_equal(st_spanidx_end(x, 10, ref(9).span_id, 600), -ENOENT);
        st_spanidx_free(x);
}

static void test_expiry_and_limit(void **state) {
        (void) state;
        struct st_spanidx *x = idx_new(3);
        enum st_corr_method m;
        struct st_span_ref r1 = ref(1), r2 = ref(2), r3 = ref(3), r4 = ref(4), r5 = ref(5);
        assert_int_equal(st_spanidx_add(x, 10, 0, 100, 200, &r1), 0);
        assert_int_equal(st_spanidx_add(x, 10, 0, 300, 400, &r2), 0);
        assert_int_equal(st_spanidx_add(x, 20, 0, 100, ST_SPAN_OPEN, &r3), 0);
        /* full: the process's own oldest goes; a process with none cannot push others out */
        assert_int_equal(st_spanidx_add(x, 10, 0, 500, 600, &r4), 0);
        assert_int_equal(found(x, 10, 0, 150, &m), 0);
        assert_int_equal(found(x, 10, 0, 550, &m), 4);
        assert_int_equal(st_spanidx_add(x, 30, 0, 100, 200, &r5), 0);
        assert_int_equal(found(x, 30, 0, 150, &m), 0);
        assert_int_equal(st_spanidx_evicted(x), 2);
        /* ended more than keep_ended (1000) ago, or open for more than keep_open (100000) */
        assert_int_equal(st_spanidx_expire(x, 1450), 1); /* r2 ended at 400 */
        assert_int_equal(found(x, 10, 0, 550, &m), 4);
        assert_int_equal(st_spanidx_expire(x, 100099), 1); /* r4 */
        assert_int_equal(found(x, 20, 0, 99999, &m), 3);
        assert_int_equal(st_spanidx_expire(x, 100101), 1); /* r3: opened at 100, never ended */
        assert_int_equal(st_spanidx_size(x), 0);
        st_spanidx_keep_at_least(x, 5000);
        assert_int_equal(st_spanidx_add(x, 10, 0, 100, 200, &r1), 0);
        assert_int_equal(st_spanidx_expire(x, 5100), 0);
        assert_int_equal(st_spanidx_expire(x, 5201), 1);
        st_spanidx_free(x);
}

/* ---- the context channel ----------------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
        put32(p, (uint32_t) v);
        put32(p + 4, (uint32_t) (v >> 32));
}

static void record(uint8_t rec[64], uint8_t type, uint32_t pid, uint32_t tid, uint64_t t, uint8_t span) {
        memset(rec, 0, 64);
        rec[0] = 1;
        rec[1] = type;
        put32(rec + 4, pid);
        put32(rec + 8, tid);
        put64(rec + 16, t);
        struct st_span_ref r = ref(span);
        memcpy(rec + 24, r.trace_id, 16);
        memcpy(rec + 40, r.span_id, 8);
}

static void test_channel_records(void **state) {
        (void) state;
        struct st_spanidx *x = idx_new(100);
        struct st_ctxchan_stats st = { 0 };
        enum st_corr_method m;
        uint8_t rec[64];
        char err[160];

        record(rec, ST_CTXCHAN_SPAN_START, 40, 41, 1000, 1);
        assert_int_equal(st_ctxchan_apply(x, rec, 40, 0, &st, err, sizeof(err)), 0);
        record(rec, ST_CTXCHAN_SPAN_END, 40, 41, 2000, 1);
        assert_int_equal(st_ctxchan_apply(x, rec, 40, 0, &st, err, sizeof(err)), 0);
        assert_int_equal(found(x, 40, 41, 1500, &m), 1);
        assert_int_equal(m, ST_CORR_EXACT_THREAD);
        assert_int_equal(found(x, 40, 41, 2001, &m), 0);
        assert_int_equal(st.records, 2);

        /* a record that claims another pid (a forked child on its parent's connection, or a
         * lie), or from a sender whose pid we cannot see: counted, not applied */
        record(rec, ST_CTXCHAN_SPAN_START, 1, 1, 3000, 2);
        assert_int_equal(st_ctxchan_apply(x, rec, 50, 0, &st, err, sizeof(err)), 0);
        assert_int_equal(st_ctxchan_apply(x, rec, 0, 0, &st, err, sizeof(err)), 0);
        assert_int_equal(found(x, 50, 50, 3500, &m), 0);
        assert_int_equal(found(x, 1, 1, 3500, &m), 0);
        assert_int_equal(st.pid_mismatch, 2);
        assert_int_equal(st.records, 2);

        /* an end whose start was lost: an instant, still findable at its time */
        record(rec, ST_CTXCHAN_SPAN_END, 60, 60, 7000, 4);
        assert_int_equal(st_ctxchan_apply(x, rec, 60, 0, &st, err, sizeof(err)), 0);
        assert_int_equal(found(x, 60, 60, 7000, &m), 4);

        /* invalid records say why */
        record(rec, ST_CTXCHAN_SPAN_START, 40, 41, 1000, 1);
        rec[0] = 2;
        assert_int_equal(st_ctxchan_apply(x, rec, 40, 0, &st, err, sizeof(err)), -EBADMSG);
        assert_non_null(strstr(err, "version 2"));
        rec[0] = 1;
        rec[1] = 9;
        assert_int_equal(st_ctxchan_apply(x, rec, 40, 0, &st, err, sizeof(err)), -EBADMSG);
        assert_non_null(strstr(err, "type 9"));
        rec[1] = 1;
        rec[2] = 1;
        assert_int_equal(st_ctxchan_apply(x, rec, 40, 0, &st, err, sizeof(err)), -EBADMSG);
        assert_non_null(strstr(err, "flags"));
        st_spanidx_free(x);
}

/* The smallest delay of the last 10-20 s: a sender's clock difference, followed as it drifts. */
static void test_clock_align(void **state) {
        (void) state;
        const int64_t S = 1000000000;
        struct st_clock_align c = { 0 };
        assert_int_equal(st_clock_align_offset(&c), 0);
        st_clock_align_note(&c, 100 * S, 100 * S - 3000);     /* delay 3 us */
        st_clock_align_note(&c, 101 * S, 101 * S - 2000);     /* 2 us: the smallest so far */
        st_clock_align_note(&c, 102 * S, 102 * S - 9000);
        assert_int_equal(st_clock_align_offset(&c), 2000);
        /* the sender's clock jumps 1 s ahead (record times later than receive times) */
        st_clock_align_note(&c, 111 * S, 112 * S);
        assert_int_equal(st_clock_align_offset(&c), -S);       /* a new epoch; the smaller wins */
        st_clock_align_note(&c, 122 * S, 123 * S - 5000);
        assert_int_equal(st_clock_align_offset(&c), -S);
        st_clock_align_note(&c, 133 * S, 134 * S - 5000);     /* the old minimum is gone */
        assert_int_equal(st_clock_align_offset(&c), -S + 5000);
}

static int connect_unix(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        strcpy(sa.sun_path, path);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        return fd;
}

static void wait_records(struct st_ctxchan *c, uint64_t n, uint64_t bad) {
        struct st_ctxchan_stats st;
        for (int i = 0; i < 500; i++) {
                st_ctxchan_stats(c, &st);
                if (st.records >= n && st.bad_records >= bad)
                        return;
                usleep(10000);
        }
        fail_msg("the channel applied %llu records (%llu bad), expected %llu (%llu bad)", (unsigned long long) st.records,
                 (unsigned long long) st.bad_records, (unsigned long long) n, (unsigned long long) bad);
}

/* The socket: records split across writes, one connection per holder count, a bad record
 * closes only its own connection, the file goes with the last holder. */
static void test_channel_socket(void **state) {
        (void) state;
        char path[64];
        struct st_ctxchan *c, *c2;
        struct st_spanidx *x = st_spanidx_global();
        enum st_corr_method m;
        uint8_t recs[128];
        snprintf(path, sizeof(path), "/tmp/strata-test-ctx-%d.sock", (int) getpid());
        assert_int_equal(st_ctxchan_acquire(path, 0600, "test", &c), 0);
        assert_int_equal(st_ctxchan_acquire(path, 0600, "test", &c2), 0);
        assert_ptr_equal(c, c2);
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);

        /* a sender whose clock is 5 s behind ours: its spans land where ours says */
        uint32_t me = (uint32_t) getpid();
        const int64_t behind = 5 * INT64_C(1000000000);
        int64_t before = st_wall_ns();
        record(recs, ST_CTXCHAN_SPAN_START, me, me, (uint64_t) (before - behind), 7);
        int fd = connect_unix(path);
        assert_int_equal(write(fd, recs, 13), 13); /* split anywhere */
        usleep(20000);
        assert_int_equal(write(fd, recs + 13, 51), 51);
        wait_records(c, 1, 0);
        int64_t started = st_wall_ns();
        assert_int_equal(found(x, me, me, (uint64_t) started, &m), 7);
        assert_int_equal(m, ST_CORR_EXACT_THREAD);
        assert_int_equal(found(x, me, me, (uint64_t) (before - behind), &m), 0); /* not at the sender's time */
        usleep(20000);
        int64_t end = st_wall_ns();
        record(recs + 64, ST_CTXCHAN_SPAN_END, me, me, (uint64_t) (end - behind), 7);
        assert_int_equal(write(fd, recs + 64, 64), 64);
        wait_records(c, 2, 0);
        assert_int_equal(found(x, me, me, (uint64_t) end - 1000, &m), 7);
        assert_int_equal(found(x, me, me, (uint64_t) st_wall_ns() + 1000000000, &m), 0);

        /* a bad record: that connection is closed, others go on */
        int bad = connect_unix(path);
        recs[0] = 9;
        assert_int_equal(write(bad, recs, 64), 64);
        wait_records(c, 2, 1);
        char b;
        assert_int_equal(read(bad, &b, 1), 0); /* closed by strata */
        close(bad);
        record(recs, ST_CTXCHAN_SPAN_START, me, me, (uint64_t) (st_wall_ns() - behind), 8);
        assert_int_equal(write(fd, recs, 64), 64);
        wait_records(c, 3, 1);
        /* a time hours away is a broken sender: refused, the connection closed */
        int far = connect_unix(path);
        record(recs, ST_CTXCHAN_SPAN_START, me, me, (uint64_t) (st_wall_ns() + 2 * 3600 * INT64_C(1000000000)), 9);
        assert_int_equal(write(far, recs, 64), 64);
        wait_records(c, 3, 2);
        assert_int_equal(read(far, &b, 1), 0);
        close(far);
        close(fd);

        st_ctxchan_release(c2);
        assert_int_equal(access(path, F_OK), 0); /* one holder left */
        st_ctxchan_release(c);
        assert_int_equal(access(path, F_OK), -1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_nested_and_overlapping),
                cmocka_unit_test(test_open_spans_and_duplicates),
                cmocka_unit_test(test_expiry_and_limit),
                cmocka_unit_test(test_channel_records),
                cmocka_unit_test(test_clock_align),
                cmocka_unit_test(test_channel_socket),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
