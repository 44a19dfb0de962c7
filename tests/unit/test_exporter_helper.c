/* The exporters' shared queue + retry (exporters/helper): a fake send function plays a
 * backend from a script of answers; intervals are milliseconds so every test is quick. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "batch.h"
#include "clock.h"
#include "component.h"
#include "exporter_helper.h"
#include "exporter_helper_validate.h"
#include "log.h"
#include "telemetry.h"
#include "tree.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"

#define MS ST_NS_PER_MS

/* --- the fake backend --------------------------------------------------------------------- */

#define MAX_CALLS 4096

struct answer {
        enum st_send_status status;
        int64_t retry_after_ns;
        uint64_t rejected;
};

struct fake {
        pthread_mutex_t lock;
        pthread_cond_t changed;
        const struct answer *script; /* answers in order; the last one repeats */
        size_t n_script;
        int64_t work_ns;             /* each send takes this long (bounded by its deadline) */
        bool gate_closed;            /* sends block until the gate opens (or their deadline) */
        size_t calls;
        int64_t at[MAX_CALLS];       /* when each call started */
        int64_t deadline[MAX_CALLS];
        pthread_t thread[MAX_CALLS];
        bool random;                 /* answer at random instead of from the script */
        unsigned seed;
};

static void fake_init(struct fake *f, const struct answer *script, size_t n) {
        memset(f, 0, sizeof(*f));
        pthread_mutex_init(&f->lock, NULL);
        pthread_cond_init(&f->changed, NULL);
        f->script = script;
        f->n_script = n;
}

static void fake_destroy(struct fake *f) {
        pthread_mutex_destroy(&f->lock);
        pthread_cond_destroy(&f->changed);
}

static void sleep_ns(int64_t ns) {
        if (ns <= 0)
                return;
        struct timespec ts = { .tv_sec = ns / ST_NS_PER_SEC, .tv_nsec = ns % ST_NS_PER_SEC };
        nanosleep(&ts, NULL);
}

static void fake_send(void *exporter, st_batch *b, int64_t deadline_ns, struct st_send_result *res) {
        struct fake *f = exporter;
        struct answer a;
        size_t i;

        pthread_mutex_lock(&f->lock);
        i = f->calls++;
        if (i < MAX_CALLS) {
                f->at[i] = st_now_ns();
                f->deadline[i] = deadline_ns;
                f->thread[i] = pthread_self();
        }
        if (f->random) {
                unsigned r = (unsigned) rand_r(&f->seed) % 10;
                a = (struct answer) { .status = r < 5 ? ST_SEND_OK : r < 8 ? ST_SEND_RETRY : ST_SEND_PERMANENT,
                                      .rejected = r == 0 ? 1 : 0 };
        } else
                a = f->script[i < f->n_script ? i : f->n_script - 1];
        pthread_cond_broadcast(&f->changed);
        while (f->gate_closed && st_now_ns() < deadline_ns) {
                pthread_mutex_unlock(&f->lock);
                sleep_ns(MS);
                pthread_mutex_lock(&f->lock);
        }
        pthread_mutex_unlock(&f->lock);

        if (f->work_ns > 0)
                sleep_ns(deadline_ns - st_now_ns() < f->work_ns ? deadline_ns - st_now_ns() : f->work_ns);
        res->status = a.status;
        res->retry_after_ns = a.retry_after_ns;
        res->rejected = a.rejected;
        snprintf(res->message, sizeof(res->message), "fake answer %d to call %zu", (int) a.status, i);
}

static size_t fake_calls(struct fake *f) {
        pthread_mutex_lock(&f->lock);
        size_t n = f->calls;
        pthread_mutex_unlock(&f->lock);
        return n;
}

static void fake_wait_calls(struct fake *f, size_t n) {
        int64_t until = st_now_ns() + 5 * ST_NS_PER_SEC;
        while (fake_calls(f) < n && st_now_ns() < until)
                sleep_ns(MS);
        assert_true(fake_calls(f) >= n);
}

static void fake_gate(struct fake *f, bool closed) {
        pthread_mutex_lock(&f->lock);
        f->gate_closed = closed;
        pthread_mutex_unlock(&f->lock);
}

/* --- fixtures ----------------------------------------------------------------------------- */

static struct st_component_settings settings(const char *id) {
        char log_name[128];
        snprintf(log_name, sizeof(log_name), "exporter/%s", id);
        return (struct st_component_settings) {
                .id = id, .log_name = strdup(log_name), .kind = ST_EXPORTER, .tel = st_tel_component("exporter", id),
        };
}

static struct st_retry_config fast_retry(void) {
        return (struct st_retry_config) { .enabled = true, .initial_interval = 10 * MS, .max_interval = 40 * MS,
                                          .max_elapsed_time = 5 * ST_NS_PER_SEC, .multiplier = 2, .randomization_factor = 0 };
}

static st_batch *batch_of(size_t items) {
        st_batch *b;
        assert_int_equal(st_batch_new(ST_TRACES, &b), 0);
        b->items = items; /* the helper counts items; it never looks inside */
        return b;
}

static uint64_t get(atomic_uint_least64_t *c) { return atomic_load(c); }

static int setup(void **state) {
        st_log_setup(ST_LOG_DEBUG, ST_LOG_TEXT);
        return 0;
}

static int teardown(void **state) {
        st_tel_reset();
        return 0;
}

/* --- tests -------------------------------------------------------------------------------- */

static void test_config_defaults(void **state) {
        struct st_retry_config rc;
        struct st_queue_config qc;
        struct st_diag d = { 0 };

        memset(&rc, 0xff, sizeof(rc));
        memset(&qc, 0xff, sizeof(qc));
        assert_int_equal(st_cfg_load(st_retry_config_fields, &rc, NULL, &d), 0);
        assert_int_equal(st_cfg_load(st_queue_config_fields, &qc, NULL, &d), 0);
        assert_true(rc.enabled);
        assert_int_equal(rc.initial_interval, 5 * ST_NS_PER_SEC);
        assert_int_equal(rc.max_interval, 30 * ST_NS_PER_SEC);
        assert_int_equal(rc.max_elapsed_time, 300 * ST_NS_PER_SEC);
        assert_true(rc.multiplier == 1.5);
        assert_true(rc.randomization_factor == 0.5);
        assert_true(qc.enabled);
        assert_int_equal(qc.num_consumers, 10);
        assert_int_equal(qc.queue_size, 1000);

        /* Ranges the maps cannot express are checked by validate and by new(). */
        struct st_cfg_ctx ctx = { .diag = &d };
        rc.max_interval = rc.initial_interval - 1;
        rc.randomization_factor = 2;
        assert_int_equal(st_exporter_helper_validate(&rc, &qc, &ctx), -EINVAL);
        assert_int_equal(d.errors, 2);
        struct st_component_settings set = settings("otlp/bad");
        struct st_exporter_helper *h = NULL;
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, MS, fake_send, NULL, &h), -EINVAL);
        assert_null(h);
        st_diag_free(&d);
        free((char *) set.log_name);
}

static void test_retry_then_success(void **state) {
        static const struct answer script[] = { { ST_SEND_RETRY }, { ST_SEND_RETRY }, { ST_SEND_OK } };
        struct st_component_settings set = settings("otlp/retry");
        struct st_retry_config rc = fast_retry();
        struct st_queue_config qc = { .enabled = true, .num_consumers = 2, .queue_size = 10 };
        struct st_exporter_helper *h;
        struct fake f;

        fake_init(&f, script, 3);
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, 500 * MS, fake_send, &f, &h), 0);
        assert_int_equal(st_exporter_helper_start(h), 0);
        st_batch *b = batch_of(7);
        assert_int_equal(st_exporter_helper_consume(h, b), 0);
        st_batch_unref(b); /* the queue holds its own reference */
        fake_wait_calls(&f, 3);
        assert_int_equal(st_exporter_helper_shutdown(h, st_now_ns() + ST_NS_PER_SEC), 0);

        assert_int_equal(f.calls, 3);
        /* No jitter: 10ms, then 20ms between attempts. */
        assert_true(f.at[1] - f.at[0] >= 10 * MS);
        assert_true(f.at[2] - f.at[1] >= 20 * MS);
        /* Each attempt got its own deadline, now + timeout. */
        assert_true(f.deadline[0] - f.at[0] <= 500 * MS && f.deadline[0] - f.at[0] > 400 * MS);
        assert_true(f.deadline[2] > f.deadline[0]);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].sent), 7);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].failed), 0);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].dropped), 0);
        assert_int_equal(set.tel->queue_capacity, 10);
        assert_int_equal(atomic_load(&set.tel->queue_size), 0);
        st_exporter_helper_free(h);
        fake_destroy(&f);
        free((char *) set.log_name);
}

static void test_backoff_grows_and_caps(void **state) {
        static const struct answer script[] = { { ST_SEND_RETRY }, { ST_SEND_RETRY }, { ST_SEND_RETRY },
                                                { ST_SEND_RETRY }, { ST_SEND_RETRY }, { ST_SEND_OK } };
        struct st_component_settings set = settings("otlp/backoff");
        struct st_retry_config rc = fast_retry(); /* 10, 20, 40, 40, 40 ms */
        struct st_queue_config qc = { .enabled = false };
        struct st_exporter_helper *h;
        struct fake f;

        fake_init(&f, script, 6);
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, 100 * MS, fake_send, &f, &h), 0);
        st_batch *b = batch_of(1);
        assert_int_equal(st_exporter_helper_consume(h, b), 0);
        st_batch_unref(b);
        assert_int_equal(f.calls, 6);
        static const int64_t want[] = { 10, 20, 40, 40, 40 };
        for (size_t i = 0; i < 5; i++) {
                int64_t gap = f.at[i + 1] - f.at[i];
                assert_true(gap >= want[i] * MS);
                assert_true(gap < (want[i] + 30) * MS);
        }
        assert_int_equal(st_exporter_helper_shutdown(h, st_now_ns() + ST_NS_PER_SEC), 0);
        st_exporter_helper_free(h);
        fake_destroy(&f);
        free((char *) set.log_name);
}

static void test_jitter_stays_in_range(void **state) {
        static const struct answer script[] = { { ST_SEND_RETRY } };
        struct st_component_settings set = settings("otlp/jitter");
        struct st_retry_config rc = { .enabled = true, .initial_interval = 20 * MS, .max_interval = 20 * MS,
                                      .max_elapsed_time = 250 * MS, .multiplier = 1, .randomization_factor = 0.5 };
        struct st_queue_config qc = { .enabled = false };
        struct st_exporter_helper *h;
        struct fake f;

        fake_init(&f, script, 1);
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, 100 * MS, fake_send, &f, &h), 0);
        st_batch *b = batch_of(1);
        assert_int_equal(st_exporter_helper_consume(h, b), -EIO);
        st_batch_unref(b);
        assert_true(f.calls >= 6);
        bool varied = false;
        for (size_t i = 0; i + 1 < f.calls; i++) {
                int64_t gap = f.at[i + 1] - f.at[i];
                assert_true(gap >= 10 * MS);     /* 20ms * (1 - 0.5) */
                assert_true(gap < 30 * MS + 15 * MS);
                if (i && llabs(gap - (f.at[i] - f.at[i - 1])) > MS)
                        varied = true;
        }
        assert_true(varied);
        st_exporter_helper_free(h);
        fake_destroy(&f);
        free((char *) set.log_name);
}

static void test_permanent_not_retried(void **state) {
        static const struct answer script[] = { { ST_SEND_PERMANENT }, { ST_SEND_OK } };
        struct st_component_settings set = settings("otlp/permanent");
        struct st_retry_config rc = fast_retry();
        struct st_queue_config qc = { .enabled = true, .num_consumers = 1, .queue_size = 10 };
        struct st_exporter_helper *h;
        struct fake f;

        fake_init(&f, script, 2);
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, 100 * MS, fake_send, &f, &h), 0);
        assert_int_equal(st_exporter_helper_start(h), 0);
        st_batch *b = batch_of(5);
        assert_int_equal(st_exporter_helper_consume(h, b), 0);
        st_batch_unref(b);
        fake_wait_calls(&f, 1);
        assert_int_equal(st_exporter_helper_shutdown(h, st_now_ns() + ST_NS_PER_SEC), 0);
        assert_int_equal(f.calls, 1);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].failed), 5);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].sent), 0);
        st_exporter_helper_free(h);
        fake_destroy(&f);
        free((char *) set.log_name);
}

static void test_retry_disabled(void **state) {
        static const struct answer script[] = { { ST_SEND_RETRY }, { ST_SEND_OK } };
        struct st_component_settings set = settings("otlp/noretry");
        struct st_retry_config rc = { .enabled = false };
        struct st_queue_config qc = { .enabled = false };
        struct st_exporter_helper *h;
        struct fake f;

        fake_init(&f, script, 2);
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, 100 * MS, fake_send, &f, &h), 0);
        st_batch *b = batch_of(3);
        assert_int_equal(st_exporter_helper_consume(h, b), -EIO);
        st_batch_unref(b);
        assert_int_equal(f.calls, 1);
        /* synchronous: the error goes back to the caller, who decides (see below) */
        assert_int_equal(get(&set.tel->sig[ST_TRACES].refused), 3);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].failed), 0);
        st_exporter_helper_free(h);
        fake_destroy(&f);
        free((char *) set.log_name);
}

static void test_retry_after_honoured(void **state) {
        static const struct answer script[] = { { ST_SEND_RETRY, .retry_after_ns = 300 * MS }, { ST_SEND_OK } };
        struct st_component_settings set = settings("otlp/retry_after");
        struct st_retry_config rc = fast_retry();
        struct st_queue_config qc = { .enabled = false };
        struct st_exporter_helper *h;
        struct fake f;

        fake_init(&f, script, 2);
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, 100 * MS, fake_send, &f, &h), 0);
        st_batch *b = batch_of(2);
        assert_int_equal(st_exporter_helper_consume(h, b), 0);
        st_batch_unref(b);
        assert_int_equal(f.calls, 2);
        int64_t gap = f.at[1] - f.at[0];
        assert_true(gap >= 300 * MS);
        assert_true(gap < 400 * MS);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].sent), 2);
        st_exporter_helper_free(h);
        fake_destroy(&f);
        free((char *) set.log_name);
}

static void test_max_elapsed_gives_up(void **state) {
        static const struct answer script[] = { { ST_SEND_RETRY } };
        struct st_component_settings set = settings("otlp/elapsed");
        struct st_retry_config rc = fast_retry();
        struct st_queue_config qc = { .enabled = true, .num_consumers = 1, .queue_size = 4 };
        struct st_exporter_helper *h;
        struct fake f;

        rc.max_elapsed_time = 100 * MS; /* attempts at 0, 10, 30, 70 ms; the next (110) is past it */
        fake_init(&f, script, 1);
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, 100 * MS, fake_send, &f, &h), 0);
        assert_int_equal(st_exporter_helper_start(h), 0);
        st_batch *b = batch_of(4);
        int64_t t0 = st_now_ns();
        assert_int_equal(st_exporter_helper_consume(h, b), 0);
        st_batch_unref(b);
        while (get(&set.tel->sig[ST_TRACES].failed) == 0 && st_now_ns() - t0 < 2 * ST_NS_PER_SEC)
                sleep_ns(MS);
        assert_true(st_now_ns() - t0 < 150 * MS);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].failed), 4);
        assert_int_equal(fake_calls(&f), 4); /* under the fake's lock: the worker may still run */
        assert_int_equal(st_exporter_helper_shutdown(h, st_now_ns() + ST_NS_PER_SEC), 0);
        assert_int_equal(f.calls, 4);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].dropped), 0);
        st_exporter_helper_free(h);
        fake_destroy(&f);
        free((char *) set.log_name);
}

static void test_queue_full(void **state) {
        static const struct answer script[] = { { ST_SEND_OK } };
        struct st_component_settings set = settings("otlp/full");
        struct st_retry_config rc = fast_retry();
        struct st_queue_config qc = { .enabled = true, .num_consumers = 1, .queue_size = 2 };
        struct st_exporter_helper *h;
        struct fake f;
        st_batch *b = batch_of(10);

        fake_init(&f, script, 1);
        fake_gate(&f, true);
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, 5 * ST_NS_PER_SEC, fake_send, &f, &h), 0);
        assert_int_equal(st_exporter_helper_start(h), 0);
        assert_int_equal(st_exporter_helper_consume(h, b), 0);
        fake_wait_calls(&f, 1); /* the worker holds the first batch, stuck at the gate */
        assert_int_equal(st_exporter_helper_consume(h, b), 0);
        assert_int_equal(st_exporter_helper_consume(h, b), 0);
        assert_int_equal(atomic_load(&set.tel->queue_size), 2);
        assert_int_equal(st_exporter_helper_consume(h, b), -ENOBUFS);
        assert_int_equal(st_exporter_helper_consume(h, b), -ENOBUFS);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].refused), 20);
        assert_int_equal(atomic_load(&b->refs), 4);

        fake_gate(&f, false);
        assert_int_equal(st_exporter_helper_shutdown(h, st_now_ns() + 2 * ST_NS_PER_SEC), 0);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].sent), 30);
        assert_int_equal(atomic_load(&b->refs), 1);
        /* Closed for business after shutdown. */
        assert_int_equal(st_exporter_helper_consume(h, b), -ESHUTDOWN);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].refused), 30);
        st_batch_unref(b);
        st_exporter_helper_free(h);
        fake_destroy(&f);
        free((char *) set.log_name);
}

static void test_shutdown_drains_within_deadline(void **state) {
        static const struct answer script[] = { { ST_SEND_OK } };
        struct st_component_settings set = settings("otlp/drain");
        struct st_retry_config rc = fast_retry();
        struct st_queue_config qc = { .enabled = true, .num_consumers = 1, .queue_size = 100 };
        struct st_exporter_helper *h;
        struct fake f;

        fake_init(&f, script, 1);
        f.work_ns = 50 * MS;
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, ST_NS_PER_SEC, fake_send, &f, &h), 0);
        assert_int_equal(st_exporter_helper_start(h), 0);
        for (int i = 0; i < 20; i++) {
                st_batch *b = batch_of(3);
                assert_int_equal(st_exporter_helper_consume(h, b), 0);
                st_batch_unref(b);
        }
        int64_t t0 = st_now_ns(), deadline = t0 + 275 * MS;
        assert_int_equal(st_exporter_helper_shutdown(h, deadline), 0);
        int64_t took = st_now_ns() - t0;
        /* The in-flight attempt's deadline was capped at ours once shutdown began. */
        assert_true(took >= 270 * MS);
        assert_true(took < 400 * MS);
        uint64_t sent = get(&set.tel->sig[ST_TRACES].sent), dropped = get(&set.tel->sig[ST_TRACES].dropped);
        assert_true(sent >= 4 * 3 && sent <= 7 * 3);
        assert_int_equal(sent + dropped, 60);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].failed), 0);
        assert_int_equal(atomic_load(&set.tel->queue_size), 0);
        st_exporter_helper_free(h);
        fake_destroy(&f);
        free((char *) set.log_name);
}

static void test_shutdown_cuts_retries(void **state) {
        static const struct answer script[] = { { ST_SEND_RETRY } };
        struct st_component_settings set = settings("otlp/cut");
        struct st_retry_config rc = fast_retry();
        struct st_queue_config qc = { .enabled = true, .num_consumers = 2, .queue_size = 100 };
        struct st_exporter_helper *h;
        struct fake f;

        rc.initial_interval = rc.max_interval = 10 * ST_NS_PER_SEC; /* a backoff far past the deadline */
        rc.max_elapsed_time = 0;                                     /* retry forever */
        fake_init(&f, script, 1);
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, ST_NS_PER_SEC, fake_send, &f, &h), 0);
        assert_int_equal(st_exporter_helper_start(h), 0);
        for (int i = 0; i < 5; i++) {
                st_batch *b = batch_of(2);
                assert_int_equal(st_exporter_helper_consume(h, b), 0);
                st_batch_unref(b);
        }
        fake_wait_calls(&f, 2); /* both workers backing off */
        int64_t t0 = st_now_ns();
        assert_int_equal(st_exporter_helper_shutdown(h, t0 + 500 * MS), 0);
        /* The sleepers are woken at once (their retry would miss the deadline) and then drain
         * the queue: every batch gets one try, none is retried. */
        assert_true(st_now_ns() - t0 < 200 * MS);
        assert_int_equal(f.calls, 5);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].dropped), 10);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].sent) + get(&set.tel->sig[ST_TRACES].failed), 0);
        st_exporter_helper_free(h);
        fake_destroy(&f);
        free((char *) set.log_name);
}

static void test_shutdown_without_start(void **state) {
        static const struct answer script[] = { { ST_SEND_OK } };
        struct st_component_settings set = settings("otlp/nostart");
        struct st_retry_config rc = fast_retry();
        struct st_queue_config qc = { .enabled = true, .num_consumers = 3, .queue_size = 100 };
        struct st_exporter_helper *h;
        struct fake f;

        fake_init(&f, script, 1);
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, ST_NS_PER_SEC, fake_send, &f, &h), 0);
        st_batch *b = batch_of(4);
        assert_int_equal(st_exporter_helper_consume(h, b), 0);
        assert_int_equal(st_exporter_helper_shutdown(h, st_now_ns() + ST_NS_PER_SEC), 0);
        assert_int_equal(f.calls, 0);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].dropped), 4);
        assert_int_equal(atomic_load(&b->refs), 1);
        st_batch_unref(b);
        st_exporter_helper_free(h);
        st_exporter_helper_free(NULL);
        fake_destroy(&f);
        free((char *) set.log_name);
}

static void test_queue_disabled_is_synchronous(void **state) {
        static const struct answer script[] = { { ST_SEND_OK } };
        struct st_component_settings set = settings("otlp/sync");
        struct st_retry_config rc = fast_retry();
        struct st_queue_config qc = { .enabled = false, .num_consumers = 10, .queue_size = 1000 };
        struct st_exporter_helper *h;
        struct fake f;

        fake_init(&f, script, 1);
        f.work_ns = 20 * MS;
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, ST_NS_PER_SEC, fake_send, &f, &h), 0);
        assert_int_equal(st_exporter_helper_start(h), 0);
        assert_int_equal(set.tel->queue_capacity, 0);
        st_batch *b = batch_of(6);
        int64_t t0 = st_now_ns();
        assert_int_equal(st_exporter_helper_consume(h, b), 0);
        assert_true(st_now_ns() - t0 >= 20 * MS); /* returned only once sent */
        assert_int_equal(f.calls, 1);
        assert_true(pthread_equal(f.thread[0], pthread_self()));
        assert_int_equal(atomic_load(&b->refs), 1); /* borrowed, not kept */
        assert_int_equal(get(&set.tel->sig[ST_TRACES].sent), 6);
        st_batch_unref(b);
        assert_int_equal(st_exporter_helper_shutdown(h, st_now_ns() + ST_NS_PER_SEC), 0);
        st_exporter_helper_free(h);
        fake_destroy(&f);
        free((char *) set.log_name);
}

static void test_partial_success(void **state) {
        static const struct answer script[] = { { ST_SEND_OK, .rejected = 3 } };
        struct st_component_settings set = settings("otlp/partial");
        struct st_retry_config rc = fast_retry();
        struct st_queue_config qc = { .enabled = false };
        struct st_exporter_helper *h;
        struct fake f;

        fake_init(&f, script, 1);
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, ST_NS_PER_SEC, fake_send, &f, &h), 0);
        st_batch *b = batch_of(10);
        assert_int_equal(st_exporter_helper_consume(h, b), 0);
        st_batch_unref(b);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].sent), 7);
        assert_int_equal(get(&set.tel->sig[ST_TRACES].failed), 3);
        st_exporter_helper_free(h);
        fake_destroy(&f);
        free((char *) set.log_name);
}

struct producer {
        struct st_exporter_helper *h;
        uint64_t accepted, refused;
        unsigned seed;
};

static void *produce(void *arg) {
        struct producer *p = arg;
        for (int i = 0; i < 300; i++) {
                size_t items = 1 + (size_t) rand_r(&p->seed) % 20;
                st_batch *b = batch_of(items);
                int r = st_exporter_helper_consume(p->h, b);
                if (r == 0)
                        p->accepted += items;
                else {
                        assert_true(r == -ENOBUFS || r == -ESHUTDOWN);
                        p->refused += items;
                }
                st_batch_unref(b);
                if (i % 50 == 0)
                        sleep_ns(MS);
        }
        return NULL;
}

static void test_counters_add_up(void **state) {
        struct st_component_settings set = settings("otlp/sum");
        struct st_retry_config rc = fast_retry();
        struct st_queue_config qc = { .enabled = true, .num_consumers = 4, .queue_size = 50 };
        struct st_exporter_helper *h;
        struct fake f;
        struct producer p[3];
        pthread_t t[3];

        rc.initial_interval = MS;
        rc.max_interval = 5 * MS;
        rc.max_elapsed_time = 20 * MS;
        fake_init(&f, NULL, 0);
        f.random = true;
        f.seed = 42;
        f.work_ns = MS / 4;
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, 100 * MS, fake_send, &f, &h), 0);
        assert_int_equal(st_exporter_helper_start(h), 0);
        for (unsigned i = 0; i < 3; i++) {
                p[i] = (struct producer) { .h = h, .seed = i + 1 };
                assert_int_equal(pthread_create(&t[i], NULL, produce, &p[i]), 0);
        }
        for (unsigned i = 0; i < 3; i++)
                pthread_join(t[i], NULL);
        assert_int_equal(st_exporter_helper_shutdown(h, st_now_ns() + 100 * MS), 0);

        uint64_t accepted = 0, refused = 0;
        for (unsigned i = 0; i < 3; i++) {
                accepted += p[i].accepted;
                refused += p[i].refused;
        }
        struct st_signal_counters *c = &set.tel->sig[ST_TRACES];
        assert_true(accepted > 0);
        assert_int_equal(get(&c->refused), refused);
        assert_int_equal(get(&c->sent) + get(&c->failed) + get(&c->dropped), accepted);
        assert_true(get(&c->sent) > 0);
        assert_true(get(&c->failed) > 0);
        assert_int_equal(atomic_load(&set.tel->queue_size), 0);
        st_exporter_helper_free(h);
        fake_destroy(&f);
        free((char *) set.log_name);
}

/* --- behind the batch processor ------------------------------------------------------------ */

extern const struct st_factory st_processor_batch;

static int to_helper(void *h, st_batch *b) { return st_exporter_helper_consume(h, b); }

/* A batch processor (send_batch_size 4, nothing on a timer) whose next hop is h. */
static void *batch_before(struct st_exporter_helper *h, struct st_component_telemetry *tel, void **ret_cfg) {
        const struct st_factory *f = &st_processor_batch;
        static const char yaml[] = "send_batch_size: 4\ntimeout: 1h\n";
        struct st_diag d = { 0 };
        st_node *root = NULL;
        void *cfg = calloc(1, f->config_size), *inst = NULL;
        assert_int_equal(st_tree_parse_string("t.yaml", yaml, sizeof(yaml) - 1, &root, &d), 0);
        assert_int_equal(st_cfg_load(f->config, cfg, root, &d), 0);
        st_node_free(root);
        st_diag_free(&d);
        struct st_component_settings set = { .id = "batch", .log_name = "processor/batch", .kind = ST_PROCESSOR,
                                             .tel = tel, .signal = ST_TRACES };
        set.next[ST_TRACES] = (struct st_consumer) { .consume = to_helper, .data = h };
        assert_int_equal(f->create(&set, cfg, &inst), 0);
        *ret_cfg = cfg;
        return inst;
}

/* Without a queue, a batch the backend refuses for good comes back to the caller as an error,
 * and the caller decides what it becomes (the receiver: its sender retries; the batch
 * processor: dropped). Counting it as failed here as well counted every item twice. */
static void test_sync_failure_counted_once(void **state) {
        static const struct answer script[] = { { ST_SEND_PERMANENT } };
        struct st_component_settings set = settings("otlp/sync_fail");
        struct st_retry_config rc = fast_retry();
        struct st_queue_config qc = { .enabled = false };
        struct st_component_telemetry ptel = { 0 };
        struct st_exporter_helper *h;
        struct fake f;
        void *cfg;

        st_log_setup(ST_LOG_ERROR, ST_LOG_TEXT); /* the warnings are expected */
        fake_init(&f, script, 1);
        assert_int_equal(st_exporter_helper_new(&set, &rc, &qc, ST_NS_PER_SEC, fake_send, &f, &h), 0);
        void *p = batch_before(h, &ptel, &cfg);
        for (int i = 0; i < 2; i++) { /* 3 + 3: the second fills the batch, which goes on */
                st_batch *b = batch_of(3);
                assert_int_equal(st_processor_batch.consume(p, b), 0);
                st_batch_unref(b);
        }
        assert_int_equal(f.calls, 1);
        struct st_signal_counters *c = &set.tel->sig[ST_TRACES];
        assert_int_equal(get(&c->sent) + get(&c->failed) + get(&c->dropped) + get(&ptel.sig[ST_TRACES].dropped), 6);
        assert_int_equal(get(&ptel.sig[ST_TRACES].dropped), 6);
        assert_int_equal(get(&c->refused), 6);

        /* Straight from a receiver: the error goes back, nothing was kept. */
        st_batch *b = batch_of(2);
        assert_int_equal(st_exporter_helper_consume(h, b), -EINVAL);
        st_batch_unref(b);
        assert_int_equal(get(&c->sent) + get(&c->failed) + get(&c->dropped), 0);
        assert_int_equal(get(&c->refused), 8);

        assert_int_equal(st_processor_batch.shutdown(p, st_now_ns() + ST_NS_PER_SEC), 0);
        st_processor_batch.destroy(p);
        st_tel_metrics_free(&ptel);
        st_cfg_free(st_processor_batch.config, cfg);
        free(cfg);
        assert_int_equal(st_exporter_helper_shutdown(h, st_now_ns() + ST_NS_PER_SEC), 0);
        st_exporter_helper_free(h);
        fake_destroy(&f);
        free((char *) set.log_name);
        st_log_setup(ST_LOG_DEBUG, ST_LOG_TEXT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_config_defaults, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retry_then_success, setup, teardown),
                cmocka_unit_test_setup_teardown(test_backoff_grows_and_caps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jitter_stays_in_range, setup, teardown),
                cmocka_unit_test_setup_teardown(test_permanent_not_retried, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retry_disabled, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retry_after_honoured, setup, teardown),
                cmocka_unit_test_setup_teardown(test_max_elapsed_gives_up, setup, teardown),
                cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shutdown_drains_within_deadline, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shutdown_cuts_retries, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shutdown_without_start, setup, teardown),
                cmocka_unit_test_setup_teardown(test_queue_disabled_is_synchronous, setup, teardown),
                cmocka_unit_test_setup_teardown(test_partial_success, setup, teardown),
                cmocka_unit_test_setup_teardown(test_counters_add_up, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sync_failure_counted_once, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
