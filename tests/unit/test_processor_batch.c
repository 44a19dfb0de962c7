/* The batch processor through its factory: coalescing, max-size cuts, the timer, shutdown,
 * a refusing next consumer, zero-copy merges that pack like the originals, and ordering under
 * concurrent producers. */
#include "processor_test.h"

#include <unistd.h>

#include "clock.h"
#include "log.h"

extern const struct st_factory st_processor_batch;
#define F (&st_processor_batch)

/* Checks that the captured batches hold ids first..first+n-1 in order. */
static void expect_ids_in_order(struct capture *c, uint64_t first, size_t n) {
        uint64_t *ids = calloc(n + 1, sizeof(*ids));
        size_t got = 0;
        for (size_t i = 0; i < c->n; i++) {
                assert_true(got + c->v[i]->items <= n);
                assert_int_equal(batch_ids(c->v[i], ids + got), c->v[i]->items);
                got += c->v[i]->items;
        }
        assert_int_equal(got, n);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(ids[i], first + i);
        free(ids);
}

static void feed(struct harness *h, enum st_signal s, size_t n_batches, size_t per_batch, uint64_t *id) {
        for (size_t i = 0; i < n_batches; i++) {
                st_batch *b = make_batch(s, 1, 1, per_batch, id);
                assert_int_equal(F->consume(h->inst, b), 0);
                st_batch_unref(b); /* borrowed: the processor keeps its own reference */
        }
}

static void test_defaults(void **state) {
        struct harness h;
        harness_init(&h, F, ST_TRACES, "{}");
        const int64_t *c = h.cfg;
        assert_int_equal(c[0], 8192);
        assert_int_equal(c[1], 0);
        assert_int_equal(c[2], 200 * ST_NS_PER_MS);
        harness_free(&h);
}

static void test_validation(void **state) {
        expect_config_error(F, "send_batch_size: 100\nsend_batch_max_size: 50\n", "send_batch_max_size");
        expect_config_error(F, "send_batch_size: -1\n", "send_batch_size");
        expect_config_error(F, "timeout: soon\n", "timeout");
        expect_config_error(F, "send_batch_sizes: 1\n", "unknown key");
}

/* 10 requests of 3 spans, size = max = 8: 8, 8, 8 at once, 6 at shutdown = ceil(30/8). */
static void test_coalesce_exact(void **state) {
        for (int s = 0; s < ST_SIGNAL_COUNT; s++) {
                struct harness h;
                uint64_t id = 1;
                harness_init(&h, F, s, "send_batch_size: 8\nsend_batch_max_size: 8\ntimeout: 1h\n");
                assert_int_equal(F->start(h.inst), 0);
                feed(&h, s, 10, 3, &id);
                assert_int_equal(h.cap.n, 3);
                for (size_t i = 0; i < 3; i++)
                        assert_int_equal(h.cap.v[i]->items, 8);
                assert_int_equal(F->shutdown(h.inst, st_now_ns() + ST_NS_PER_SEC), 0);
                assert_int_equal(h.cap.n, 4);
                assert_int_equal(h.cap.v[3]->items, 6);
                expect_ids_in_order(&h.cap, 1, 30);
                assert_int_equal(h.tel.sig[s].dropped, 0);
                harness_free(&h);
        }
}

/* No max: requests are never cut, a batch goes when it reaches the size: 9, 9, 9, 3. */
static void test_coalesce_no_max(void **state) {
        struct harness h;
        uint64_t id = 1;
        harness_init(&h, F, ST_LOGS, "send_batch_size: 8\ntimeout: 1h\n");
        feed(&h, ST_LOGS, 10, 3, &id);
        assert_int_equal(h.cap.n, 3);
        assert_int_equal(F->shutdown(h.inst, 0), 0);
        assert_int_equal(h.cap.n, 4);
        assert_int_equal(h.cap.v[0]->items, 9);
        assert_int_equal(h.cap.v[3]->items, 3);
        expect_ids_in_order(&h.cap, 1, 30);
        harness_free(&h);
}

/* One request of 100 spans over 2 resources × 2 scopes, size 10, max 30: 30, 30, 30, 10. */
static void test_max_cuts(void **state) {
        struct harness h;
        uint64_t id = 1;
        harness_init(&h, F, ST_TRACES, "send_batch_size: 10\nsend_batch_max_size: 30\ntimeout: 1h\n");
        st_batch *b = make_batch(ST_TRACES, 2, 2, 25, &id);
        assert_int_equal(F->consume(h.inst, b), 0);
        st_batch_unref(b);
        assert_int_equal(h.cap.n, 4);
        assert_int_equal(h.cap.v[0]->items, 30);
        assert_int_equal(h.cap.v[1]->items, 30);
        assert_int_equal(h.cap.v[2]->items, 30);
        assert_int_equal(h.cap.v[3]->items, 10);
        expect_ids_in_order(&h.cap, 1, 100);
        assert_int_equal(F->shutdown(h.inst, 0), 0);
        assert_int_equal(h.cap.n, 4);
        harness_free(&h);
}

/* A request larger than 8 cut batches goes out in several groups. */
static void test_max_cuts_many(void **state) {
        struct harness h;
        uint64_t id = 1;
        harness_init(&h, F, ST_TRACES, "send_batch_size: 7\nsend_batch_max_size: 7\ntimeout: 1h\n");
        st_batch *b = make_batch(ST_TRACES, 3, 5, 20, &id); /* 300 items */
        assert_int_equal(F->consume(h.inst, b), 0);
        st_batch_unref(b);
        assert_int_equal(h.cap.n, 42);
        assert_int_equal(F->shutdown(h.inst, 0), 0);
        assert_int_equal(h.cap.n, 43);
        assert_int_equal(h.cap.v[42]->items, 6);
        expect_ids_in_order(&h.cap, 1, 300);
        harness_free(&h);
}

/* A metric is never cut: max 4 with metrics of 3 points gives one metric per batch; a metric
 * larger than max goes whole. */
static void test_metrics_not_cut(void **state) {
        struct harness h;
        uint64_t id = 0;
        harness_init(&h, F, ST_METRICS, "send_batch_size: 4\nsend_batch_max_size: 4\ntimeout: 1h\n");
        st_batch *b = make_batch_p(ST_METRICS, 1, 1, 3, 3, &id);
        assert_int_equal(b->items, 9);
        assert_int_equal(F->consume(h.inst, b), 0);
        st_batch_unref(b);
        assert_int_equal(F->shutdown(h.inst, 0), 0);
        assert_int_equal(h.cap.n, 3);
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(h.cap.v[i]->items, 3);
        expect_ids_in_order(&h.cap, 0, 9);
        harness_free(&h);

        harness_init(&h, F, ST_METRICS, "send_batch_size: 4\nsend_batch_max_size: 4\ntimeout: 1h\n");
        id = 0;
        b = make_batch_p(ST_METRICS, 1, 1, 1, 6, &id);
        assert_int_equal(F->consume(h.inst, b), 0);
        st_batch_unref(b);
        assert_int_equal(h.cap.n, 1);
        assert_int_equal(h.cap.v[0]->items, 6);
        harness_free(&h);
}

/* A request that is a full batch by itself (and within max) goes on untouched. */
static void test_pass_through(void **state) {
        struct harness h;
        uint64_t id = 1;
        harness_init(&h, F, ST_TRACES, "send_batch_size: 10\ntimeout: 1h\n");
        st_batch *b = make_batch(ST_TRACES, 1, 1, 20, &id);
        assert_int_equal(F->consume(h.inst, b), 0);
        assert_int_equal(h.cap.n, 1);
        assert_ptr_equal(h.cap.v[0], b);
        /* refused on that path: the sender hears it (nothing was kept) */
        h.cap.ret = -ENOBUFS;
        assert_int_equal(F->consume(h.inst, b), -ENOBUFS);
        assert_int_equal(h.tel.sig[ST_TRACES].dropped, 0);
        st_batch_unref(b);
        harness_free(&h);
}

static void test_timeout_flush(void **state) {
        struct harness h;
        uint64_t id = 1;
        harness_init(&h, F, ST_TRACES, "send_batch_size: 1000\ntimeout: 50ms\n");
        assert_int_equal(F->start(h.inst), 0);
        int64_t t0 = st_now_ns();
        feed(&h, ST_TRACES, 2, 3, &id);
        while (capture_count(&h.cap) == 0 && st_now_ns() - t0 < 5 * ST_NS_PER_SEC)
                usleep(1000);
        int64_t waited = st_now_ns() - t0;
        assert_int_equal(capture_count(&h.cap), 1);
        assert_true(waited >= 50 * ST_NS_PER_MS);
        assert_true(waited < 2 * ST_NS_PER_SEC);
        assert_int_equal(h.cap.v[0]->items, 6);

        /* a second round starts a new deadline */
        t0 = st_now_ns();
        feed(&h, ST_TRACES, 1, 4, &id);
        while (capture_count(&h.cap) == 1 && st_now_ns() - t0 < 5 * ST_NS_PER_SEC)
                usleep(1000);
        assert_int_equal(capture_count(&h.cap), 2);
        assert_true(st_now_ns() - t0 >= 50 * ST_NS_PER_MS);
        assert_int_equal(F->shutdown(h.inst, 0), 0);
        assert_int_equal(h.cap.n, 2);
        expect_ids_in_order(&h.cap, 1, 10);
        harness_free(&h);
}

/* timeout 0: every request goes on at once, cut at max. */
static void test_timeout_zero(void **state) {
        struct harness h;
        uint64_t id = 1;
        harness_init(&h, F, ST_LOGS, "send_batch_size: 100\nsend_batch_max_size: 100\ntimeout: 0\n");
        assert_int_equal(F->start(h.inst), 0);
        st_batch *b = make_batch(ST_LOGS, 1, 1, 3, &id);
        assert_int_equal(F->consume(h.inst, b), 0);
        assert_int_equal(h.cap.n, 1);
        assert_ptr_equal(h.cap.v[0], b);
        st_batch_unref(b);
        b = make_batch(ST_LOGS, 1, 1, 250, &id);
        assert_int_equal(F->consume(h.inst, b), 0);
        st_batch_unref(b);
        assert_int_equal(h.cap.n, 4);
        assert_int_equal(h.cap.v[3]->items, 50);
        expect_ids_in_order(&h.cap, 1, 253);
        /* refused before anything was sent: the error goes back */
        h.cap.ret = -ENOBUFS;
        b = make_batch(ST_LOGS, 1, 1, 250, &id);
        assert_int_equal(F->consume(h.inst, b), -ENOBUFS);
        st_batch_unref(b);
        assert_int_equal(F->shutdown(h.inst, 0), 0);
        harness_free(&h);
}

static int64_t held_items(struct harness *h) {
        for (struct st_tel_metric *m = h->tel.metrics; m; m = m->next)
                if (strcmp(m->name, "batch_held_items") == 0)
                        return atomic_load(&m->value);
        fail_msg("no batch_held_items metric");
        return -1;
}

static void set_ret(struct capture *c, int ret) {
        pthread_mutex_lock(&c->lock);
        c->ret = ret;
        pthread_mutex_unlock(&c->lock);
}

static size_t calls(struct capture *c) {
        pthread_mutex_lock(&c->lock);
        size_t n = c->calls;
        pthread_mutex_unlock(&c->lock);
        return n;
}

/* A batch the next consumer refuses for now (-ENOBUFS) is held, not dropped. Behind it, data is
 * still taken until held and pending items reach twice send_batch_size; beyond, it is refused
 * with -ENOBUFS (nothing taken: the sender retries). Refusals of other kinds are drops. */
static void test_refused_held(void **state) {
        struct harness h;
        uint64_t id = 1;
        st_log_setup(ST_LOG_ERROR, ST_LOG_TEXT); /* the warnings are expected */
        harness_init(&h, F, ST_TRACES, "send_batch_size: 4\ntimeout: 1h\n");
        h.cap.ret = -ENOBUFS;
        feed(&h, ST_TRACES, 2, 2, &id); /* 1..4 → cut and refused: held */
        assert_int_equal(h.cap.calls, 1);
        assert_int_equal(held_items(&h), 4);
        feed(&h, ST_TRACES, 2, 2, &id); /* 5..8: room for one more batch, cut behind the first */
        assert_int_equal(h.cap.calls, 1); /* not offered: it must not overtake the held one */
        assert_int_equal(held_items(&h), 8);
        st_batch *b = make_batch(ST_TRACES, 1, 1, 1, &id);
        assert_int_equal(F->consume(h.inst, b), -ENOBUFS); /* full */
        st_batch_unref(b);
        b = make_batch(ST_TRACES, 1, 1, 10, &id); /* a full batch by itself: refused too */
        assert_int_equal(F->consume(h.inst, b), -ENOBUFS);
        st_batch_unref(b);
        assert_int_equal(h.cap.calls, 1);
        assert_int_equal(h.tel.sig[ST_TRACES].dropped, 0);

        h.cap.ret = -EIO; /* refused for good at shutdown: dropped */
        assert_int_equal(F->shutdown(h.inst, 0), 0);
        assert_int_equal(h.tel.sig[ST_TRACES].dropped, 8);
        assert_int_equal(held_items(&h), 0);
        assert_int_equal(h.cap.n, 0);
        /* after shutdown, requests pass straight through */
        h.cap.ret = 0;
        feed(&h, ST_TRACES, 1, 2, &id);
        assert_int_equal(h.cap.n, 1);
        harness_free(&h);
        st_log_setup(ST_LOG_INFO, ST_LOG_TEXT);
}

/* Still refused for now when shutdown's time for them is up: dropped, counted; and destroy
 * without shutdown drops what is held (ASan: nothing leaks). */
static void test_held_dropped(void **state) {
        struct harness h;
        uint64_t id = 1;
        st_log_setup(ST_LOG_ERROR, ST_LOG_TEXT);
        harness_init(&h, F, ST_TRACES, "send_batch_size: 4\ntimeout: 1h\n");
        h.cap.ret = -ENOBUFS;
        feed(&h, ST_TRACES, 2, 2, &id);
        assert_int_equal(F->shutdown(h.inst, st_now_ns() + 20 * ST_NS_PER_MS), 0);
        assert_true(h.cap.calls > 1); /* offered again meanwhile */
        assert_int_equal(h.tel.sig[ST_TRACES].dropped, 4);
        assert_int_equal(held_items(&h), 0);
        harness_free(&h);

        harness_init(&h, F, ST_TRACES, "send_batch_size: 4\ntimeout: 1h\n");
        h.cap.ret = -ENOBUFS;
        feed(&h, ST_TRACES, 3, 2, &id); /* 4 held, 2 pending */
        harness_free(&h);
        assert_int_equal(h.tel.sig[ST_TRACES].dropped, 6); /* the counters outlive the instance */
        st_log_setup(ST_LOG_INFO, ST_LOG_TEXT);
}

/* The timer offers held batches again; once the next consumer takes them, data is taken again,
 * and everything arrives once, in order. */
static void test_refused_then_taken(void **state) {
        struct harness h;
        uint64_t id = 1;
        harness_init(&h, F, ST_TRACES, "send_batch_size: 4\ntimeout: 1h\n");
        assert_int_equal(F->start(h.inst), 0);
        set_ret(&h.cap, -ENOBUFS);
        feed(&h, ST_TRACES, 2, 2, &id); /* 1..4: held */
        feed(&h, ST_TRACES, 1, 2, &id); /* 5, 6: pending behind them */
        st_batch *b = make_batch(ST_TRACES, 1, 1, 6, &id); /* 7..12: no room */
        assert_int_equal(F->consume(h.inst, b), -ENOBUFS);
        int64_t t0 = st_now_ns();
        while (calls(&h.cap) < 3 && st_now_ns() - t0 < 5 * ST_NS_PER_SEC)
                usleep(1000);
        assert_true(calls(&h.cap) >= 3); /* offered again, and refused again */
        assert_int_equal(capture_count(&h.cap), 0);
        set_ret(&h.cap, 0);
        t0 = st_now_ns();
        while (held_items(&h) > 0 && st_now_ns() - t0 < 5 * ST_NS_PER_SEC)
                usleep(1000);
        assert_int_equal(held_items(&h), 0);
        assert_true(st_now_ns() - t0 < 1 * ST_NS_PER_SEC); /* retried within the 50 ms ceiling */
        assert_int_equal(capture_count(&h.cap), 1);
        assert_int_equal(F->consume(h.inst, b), 0); /* the sender's retry: 5..12 → cut */
        st_batch_unref(b);
        assert_int_equal(F->shutdown(h.inst, 0), 0);
        assert_int_equal(h.cap.n, 2);
        expect_ids_in_order(&h.cap, 1, 12);
        assert_int_equal(h.tel.sig[ST_TRACES].dropped, 0);
        harness_free(&h);
}

static void *take_again_later(void *arg) {
        usleep(50 * 1000);
        set_ret(arg, 0);
        return NULL;
}

/* Shutdown offers what is held until its deadline: a next consumer that makes room in time
 * loses nothing. */
static void test_shutdown_offers_held(void **state) {
        struct harness h;
        pthread_t t;
        uint64_t id = 1;
        harness_init(&h, F, ST_LOGS, "send_batch_size: 4\ntimeout: 1h\n");
        assert_int_equal(F->start(h.inst), 0);
        set_ret(&h.cap, -ENOBUFS);
        feed(&h, ST_LOGS, 2, 2, &id); /* held */
        assert_int_equal(held_items(&h), 4);
        assert_int_equal(pthread_create(&t, NULL, take_again_later, &h.cap), 0);
        assert_int_equal(F->shutdown(h.inst, st_now_ns() + 10 * ST_NS_PER_SEC), 0);
        pthread_join(t, NULL);
        assert_int_equal(h.cap.n, 1);
        expect_ids_in_order(&h.cap, 1, 4);
        assert_int_equal(h.tel.sig[ST_LOGS].dropped, 0);
        harness_free(&h);
}

/* A merged batch is a valid request: it packs and unpacks to the same items, ids and
 * resources, after its sources were released. */
static void test_merged_roundtrip(void **state) {
        for (int s = 0; s < ST_SIGNAL_COUNT; s++) {
                struct harness h;
                uint64_t id = 1;
                harness_init(&h, F, s, "send_batch_size: 1000\ntimeout: 1h\n");
                for (int i = 0; i < 5; i++) {
                        st_batch *b = make_batch(s, 2, 2, 3, &id);
                        assert_int_equal(F->consume(h.inst, b), 0);
                        st_batch_unref(b);
                }
                assert_int_equal(F->shutdown(h.inst, 0), 0);
                assert_int_equal(h.cap.n, 1);
                st_batch *m = h.cap.v[0];
                assert_true(st_batch_shared(m)); /* it borrows: downstream mutators must clone */
                assert_int_equal(st_req_n(s, st_batch_req(m)), 10);
                st_batch *u = roundtrip(m);
                assert_int_equal(u->items, m->items);
                uint64_t a[64], b2[64];
                size_t n = batch_ids(u, a);
                assert_int_equal(n, batch_ids(m, b2));
                for (size_t i = 0; i < n; i++) {
                        assert_int_equal(a[i], i + 1);
                        assert_int_equal(a[i], b2[i]);
                }
                for (size_t r = 0; r < st_req_n(s, st_batch_req(u)); r++) {
                        st_resource *res = st_res_resource(s, st_req_v(s, st_batch_req(u))[r]);
                        assert_non_null(res);
                        assert_string_equal(res->attributes[0]->value->string_value, r % 2 ? "svc1" : "svc0");
                }
                st_batch *w;
                assert_int_equal(st_batch_writable(m, &w), 0);
                assert_ptr_not_equal(w, m);
                st_batch_unref(w);
                st_batch_unref(u);
                harness_free(&h);
        }
}

/* Producers on several threads with the timer running: every item arrives exactly once, and
 * each producer's items arrive in the order it sent them. */
#define PRODUCERS 4
#define PER_PRODUCER 1000
#define ITEMS 7
struct producer {
        struct harness *h;
        int index;
        bool retry;
};

static void *produce(void *arg) {
        struct producer *pr = arg;
        /* ids: producer index in the top bits */
        uint64_t id = (uint64_t) pr->index << 32;
        for (int i = 0; i < PER_PRODUCER; i++) {
                st_batch *b = make_batch(ST_TRACES, 1, 1, ITEMS, &id);
                int r;
                /* as an OTLP sender does with RESOURCE_EXHAUSTED */
                while ((r = F->consume(pr->h->inst, b)) == -ENOBUFS && pr->retry)
                        usleep(50);
                st_batch_unref(b);
                if (r != 0)
                        return (void *) 1;
        }
        return NULL;
}

static void run_producers(struct harness *h, bool retry) {
        pthread_t t[PRODUCERS];
        struct producer pr[PRODUCERS];
        assert_int_equal(F->start(h->inst), 0);
        for (int i = 0; i < PRODUCERS; i++) {
                pr[i] = (struct producer) { .h = h, .index = i, .retry = retry };
                assert_int_equal(pthread_create(&t[i], NULL, produce, &pr[i]), 0);
        }
        for (int i = 0; i < PRODUCERS; i++) {
                void *ret;
                pthread_join(t[i], &ret);
                assert_null(ret);
        }
        assert_int_equal(F->shutdown(h->inst, st_now_ns() + 10 * ST_NS_PER_SEC), 0);
        assert_int_equal(h->tel.sig[ST_TRACES].dropped, 0);
        assert_int_equal(h->cap.items, PRODUCERS * PER_PRODUCER * ITEMS);
        uint64_t next[PRODUCERS] = { 0 };
        uint64_t *ids = malloc(200 * sizeof(*ids));
        for (size_t i = 0; i < h->cap.n; i++) {
                assert_true(h->cap.v[i]->items <= 100);
                size_t n = batch_ids(h->cap.v[i], ids);
                for (size_t k = 0; k < n; k++) {
                        int p = (int) (ids[k] >> 32);
                        assert_true(p < PRODUCERS);
                        assert_int_equal(ids[k] & 0xffffffffu, next[p]);
                        next[p]++;
                }
        }
        for (int i = 0; i < PRODUCERS; i++)
                assert_int_equal(next[i], PER_PRODUCER * ITEMS);
        free(ids);
}

static void test_concurrent_order(void **state) {
        struct harness h;
        harness_init(&h, F, ST_TRACES, "send_batch_size: 100\nsend_batch_max_size: 100\ntimeout: 1ms\n");
        run_producers(&h, false);
        harness_free(&h);
}

/* The same with a next consumer that refuses every third batch for now and producers that
 * retry: held batches and refusals keep every item, once, in each producer's order. */
static void test_concurrent_refusing(void **state) {
        struct harness h;
        harness_init(&h, F, ST_TRACES, "send_batch_size: 100\nsend_batch_max_size: 100\ntimeout: 1ms\n");
        h.cap.refuse_every = 3;
        run_producers(&h, true);
        assert_true(h.cap.calls > h.cap.n); /* some were refused */
        harness_free(&h);
}

/* destroy without shutdown (a failed start-up) releases what is pending. */
static void test_destroy_pending(void **state) {
        struct harness h;
        uint64_t id = 1;
        harness_init(&h, F, ST_LOGS, "timeout: 1h\n");
        assert_int_equal(F->start(h.inst), 0);
        feed(&h, ST_LOGS, 2, 5, &id);
        assert_int_equal(h.cap.n, 0);
        harness_free(&h); /* ASan: no leak */
        F->destroy(NULL);
}

/* A request in wire form, as the OTLP receiver makes them. */
static st_batch *wire_batch(enum st_signal s, size_t n_items, uint64_t *id) {
        st_batch *b = make_batch(s, 1, 1, n_items, id), *w;
        size_t n = st_batch_packed_size(b);
        uint8_t *buf = malloc(n);
        assert_non_null(buf);
        st_batch_pack(b, buf);
        assert_int_equal(st_batch_from_wire(s, buf, n, &w), 0);
        free(buf);
        st_batch_unref(b);
        return w;
}

/* An append that fails (decoding a request to cut it failed: out of memory) while the pending
 * batch is a merge of whole requests: nothing is taken, the sender hears it, and what was
 * pending is intact. (The pending merge has no decoded form to recount: it used to crash.) */
static void test_failed_cut_keeps_pending(void **state) {
        struct harness h;
        uint64_t id = 1;
        harness_init(&h, F, ST_TRACES, "send_batch_size: 10\nsend_batch_max_size: 10\ntimeout: 1h\n");
        st_batch *a = wire_batch(ST_TRACES, 3, &id);
        assert_int_equal(F->consume(h.inst, a), 0); /* pending: a, whole, still in wire form */
        st_batch_unref(a);
        st_batch *b = wire_batch(ST_TRACES, 9, &id); /* 3 + 9 > 10: must be cut, so decoded */
        ((uint8_t *) b->wire)[0] = 0x0b;             /* field 1 as a group: protobuf-c refuses it */
        assert_null(st_batch_req(b));                /* what an allocation failure looks like */
        assert_int_equal(F->consume(h.inst, b), -ENOMEM);
        st_batch_unref(b);
        assert_int_equal(h.tel.sig[ST_TRACES].dropped, 0);
        assert_int_equal(F->shutdown(h.inst, 0), 0);
        assert_int_equal(h.cap.n, 1);
        assert_int_equal(h.cap.v[0]->items, 3);
        expect_ids_in_order(&h.cap, 1, 3);
        harness_free(&h);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_validation),
                cmocka_unit_test(test_coalesce_exact),
                cmocka_unit_test(test_coalesce_no_max),
                cmocka_unit_test(test_max_cuts),
                cmocka_unit_test(test_max_cuts_many),
                cmocka_unit_test(test_metrics_not_cut),
                cmocka_unit_test(test_pass_through),
                cmocka_unit_test(test_timeout_flush),
                cmocka_unit_test(test_timeout_zero),
                cmocka_unit_test(test_refused_held),
                cmocka_unit_test(test_held_dropped),
                cmocka_unit_test(test_refused_then_taken),
                cmocka_unit_test(test_shutdown_offers_held),
                cmocka_unit_test(test_concurrent_refusing),
                cmocka_unit_test(test_merged_roundtrip),
                cmocka_unit_test(test_concurrent_order),
                cmocka_unit_test(test_destroy_pending),
                cmocka_unit_test(test_failed_cut_keeps_pending),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
