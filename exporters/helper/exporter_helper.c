/* The exporters' shared sending queue, retry loop and accounting (see exporter_helper.h).
 *
 * One mutex guards the ring of queued batches and the shutdown state. Three condition
 * variables, all on CLOCK_MONOTONIC, keep the wake-ups apart so that none is lost to the
 * wrong sleeper: idle workers wait on `nonempty`, workers backing off between attempts wait
 * on `backoff` (woken only by shutdown), and shutdown() waits on `idle` for the drain. */
#include "exporter_helper.h"
#include "exporter_helper_validate.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

const struct st_cfg_field st_retry_config_fields[] = {
        { .name = "enabled", .type = ST_CFG_BOOL, .offset = offsetof(struct st_retry_config, enabled), .def = "true",
          .desc = "retry transient failures with exponential backoff" },
        { .name = "initial_interval", .type = ST_CFG_DURATION, .offset = offsetof(struct st_retry_config, initial_interval),
          .def = "5s", .desc = "wait before the first retry" },
        { .name = "max_interval", .type = ST_CFG_DURATION, .offset = offsetof(struct st_retry_config, max_interval),
          .def = "30s", .desc = "upper bound of the wait between retries" },
        { .name = "max_elapsed_time", .type = ST_CFG_DURATION, .offset = offsetof(struct st_retry_config, max_elapsed_time),
          .def = "300s", .desc = "give up on a batch after this long (0 = never)" },
        { .name = "multiplier", .type = ST_CFG_DOUBLE, .offset = offsetof(struct st_retry_config, multiplier),
          .def = "1.5", .desc = "growth of the wait after each retry" },
        { .name = "randomization_factor", .type = ST_CFG_DOUBLE,
          .offset = offsetof(struct st_retry_config, randomization_factor), .def = "0.5",
          .desc = "jitter: each wait is drawn from interval * (1 +/- factor)" },
        ST_CFG_END,
};

const struct st_cfg_field st_queue_config_fields[] = {
        { .name = "enabled", .type = ST_CFG_BOOL, .offset = offsetof(struct st_queue_config, enabled), .def = "true",
          .desc = "queue batches and send them from background workers" },
        { .name = "num_consumers", .type = ST_CFG_INT, .offset = offsetof(struct st_queue_config, num_consumers),
          .def = "10", .desc = "workers sending concurrently", .min = 1, .max = 1024 },
        { .name = "queue_size", .type = ST_CFG_INT, .offset = offsetof(struct st_queue_config, queue_size),
          .def = "1000", .desc = "batches the queue holds before refusing more", .min = 1, .max = 10000000 },
        ST_CFG_END,
};

/* At most RL_BURST lines per RL_WINDOW for each kind of per-batch message, so that a dead
 * backend at 1000 batches/s does not flood the log; the next line says how many were skipped. */
#define RL_WINDOW (1 * ST_NS_PER_SEC)
#define RL_BURST 5

struct ratelimit {
        int64_t window_start;
        unsigned in_window;
        uint64_t suppressed;
};

enum outcome { OUT_SENT, OUT_FAILED, OUT_DROPPED, OUT_REFUSED };

struct st_exporter_helper {
        char *log_name;
        struct st_component_telemetry *tel;
        struct st_component_telemetry own_tel; /* when the settings bring none */
        struct st_retry_config retry;
        struct st_queue_config queue;
        int64_t timeout;
        st_send_fn send;
        void *exporter;

        pthread_mutex_t lock;
        pthread_cond_t nonempty, backoff, idle;
        st_batch **ring;          /* queue.queue_size slots */
        size_t head, len;
        unsigned busy;            /* batches being sent or backing off (workers and sync callers) */
        bool stopping;            /* shutdown() was called: take no more */
        bool abandon;             /* the shutdown deadline passed: stop retrying */
        int64_t stop_deadline;    /* INT64_MAX until shutdown() */

        pthread_t *threads;
        size_t n_threads;

        pthread_mutex_t log_lock;
        struct ratelimit rl_retry, rl_fail, rl_full;
};

/* --- small helpers ------------------------------------------------------------------------ */

static void fmt_duration(char *buf, size_t size, int64_t ns) {
        if (ns >= ST_NS_PER_SEC)
                snprintf(buf, size, "%.2fs", (double) ns / (double) ST_NS_PER_SEC);
        else
                snprintf(buf, size, "%.0fms", (double) ns / (double) ST_NS_PER_MS);
}

/* True when a line may be logged; *ret_suppressed gets how many were swallowed before it. */
static bool ratelimit_ok(struct st_exporter_helper *h, struct ratelimit *rl, uint64_t *ret_suppressed) {
        int64_t now = st_now_ns();
        bool ok;
        pthread_mutex_lock(&h->log_lock);
        if (now - rl->window_start >= RL_WINDOW) {
                rl->window_start = now;
                rl->in_window = 0;
        }
        ok = rl->in_window < RL_BURST;
        if (ok) {
                rl->in_window++;
                *ret_suppressed = rl->suppressed;
                rl->suppressed = 0;
        } else
                rl->suppressed++;
        pthread_mutex_unlock(&h->log_lock);
        return ok;
}

#define LOG_LIMITED(h, rl, level, fmt, ...)                                                                      \
        do {                                                                                                     \
                uint64_t sup_;                                                                                   \
                if (st_log_enabled(level) && ratelimit_ok(h, rl, &sup_))                                         \
                        st_log(level, (h)->log_name, fmt "%s", __VA_ARGS__,                                      \
                               sup_ ? suppressed_note(sup_, (char[64]) { 0 }) : "");                             \
        } while (0)

static const char *suppressed_note(uint64_t n, char buf[static 64]) {
        snprintf(buf, 64, " (%" PRIu64 " similar messages suppressed)", n);
        return buf;
}

/* xorshift64*, one state per thread: jitter needs no quality, only no shared lock. */
static double rand_unit(void) {
        static _Thread_local uint64_t state;
        if (!state)
                state = (uint64_t) st_wall_ns() ^ ((uint64_t) (uintptr_t) &state << 17) ^ 0x9e3779b97f4a7c15ull;
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        return (double) ((state * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0; /* [0, 1) */
}

static int64_t jittered(const struct st_retry_config *rc, int64_t interval) {
        double f = rc->randomization_factor;
        double d = (double) interval * (1.0 - f + 2.0 * f * rand_unit());
        return d < 1 ? 1 : d >= (double) INT64_MAX ? INT64_MAX : (int64_t) d;
}

static void account(struct st_exporter_helper *h, const st_batch *b, enum outcome o, uint64_t rejected) {
        struct st_signal_counters *c = &h->tel->sig[b->signal];
        uint64_t items = b->items;
        switch (o) {
        case OUT_SENT:
                if (rejected > items)
                        rejected = items;
                st_tel_add(&c->sent, items - rejected);
                if (rejected)
                        st_tel_add(&c->failed, rejected);
                break;
        case OUT_FAILED:
                st_tel_add(&c->failed, items);
                break;
        case OUT_DROPPED:
                st_tel_add(&c->dropped, items);
                break;
        case OUT_REFUSED:
                st_tel_add(&c->refused, items);
                break;
        }
}

/* --- the retry loop ----------------------------------------------------------------------- */

/* Waits until wake_at unless shutdown makes waiting pointless. Returns false when the batch
 * must be abandoned: the deadline passed, or the retry would land after it. */
static bool backoff_wait(struct st_exporter_helper *h, int64_t wake_at) {
        struct timespec ts = st_ns_to_timespec(wake_at);
        bool go_on = true;
        pthread_mutex_lock(&h->lock);
        for (;;) {
                if (h->abandon || (h->stopping && wake_at > h->stop_deadline)) {
                        go_on = false;
                        break;
                }
                if (st_now_ns() >= wake_at)
                        break;
                pthread_cond_timedwait(&h->backoff, &h->lock, &ts);
        }
        pthread_mutex_unlock(&h->lock);
        return go_on;
}

/* The deadline a new attempt gets, or -1 when no attempt may start any more. */
static int64_t attempt_deadline(struct st_exporter_helper *h) {
        int64_t now = st_now_ns(), stop, d;
        pthread_mutex_lock(&h->lock);
        stop = h->abandon ? now : h->stop_deadline;
        pthread_mutex_unlock(&h->lock);
        if (now >= stop)
                return -1;
        d = h->timeout > 0 && h->timeout < INT64_MAX - now ? now + h->timeout : INT64_MAX;
        return d < stop ? d : stop;
}

/* Sends b until it is delivered, fails for good, or shutdown cuts it off; counts the outcome.
 * Returns 0 (delivered, maybe partially), -EINVAL (permanent), -EIO (retries exhausted or
 * disabled) or -ECANCELED (abandoned at shutdown). A synchronous caller (sync) gets the error
 * and decides what the items become (its sender retries, or it counts them as dropped), so a
 * failure is counted as refused here, like a full queue, not as failed or dropped a second time. */
static int export_batch(struct st_exporter_helper *h, st_batch *b, bool sync) {
        const char *what = st_signals[b->signal].item_name;
        int64_t start = st_now_ns(), interval = h->retry.initial_interval;
        struct st_send_result res = { 0 };
        unsigned attempt = 0;
        char dbuf[32], ebuf[32];

        for (;;) {
                int64_t deadline = attempt_deadline(h), delay, now;

                if (deadline < 0) {
                        account(h, b, sync ? OUT_REFUSED : OUT_DROPPED, 0);
                        LOG_LIMITED(h, &h->rl_fail, ST_LOG_ERROR,
                                    "dropping %zu %s: shutdown deadline reached after %u attempt(s)%s%s", b->items, what,
                                    attempt, attempt ? ", last error: " : "", attempt ? res.message : "");
                        return -ECANCELED;
                }
                attempt++;
                memset(&res, 0, sizeof(res));
                h->send(h->exporter, b, deadline, &res);
                res.message[sizeof(res.message) - 1] = 0;

                if (res.status == ST_SEND_OK) {
                        account(h, b, OUT_SENT, res.rejected);
                        return 0;
                }
                if (res.status != ST_SEND_RETRY) {
                        account(h, b, sync ? OUT_REFUSED : OUT_FAILED, 0);
                        LOG_LIMITED(h, &h->rl_fail, ST_LOG_ERROR, "dropping %zu %s: permanent error, not retrying: %s",
                                    b->items, what, res.message);
                        return -EINVAL;
                }
                if (!h->retry.enabled) {
                        account(h, b, sync ? OUT_REFUSED : OUT_FAILED, 0);
                        LOG_LIMITED(h, &h->rl_fail, ST_LOG_ERROR,
                                    "dropping %zu %s: %s (retry_on_failure is disabled)", b->items, what, res.message);
                        return -EIO;
                }

                delay = jittered(&h->retry, interval);
                interval = (double) interval * h->retry.multiplier >= (double) h->retry.max_interval
                                   ? h->retry.max_interval
                                   : (int64_t) ((double) interval * h->retry.multiplier);
                if (res.retry_after_ns > delay)
                        delay = res.retry_after_ns; /* the backend knows best when it will be ready */

                now = st_now_ns();
                fmt_duration(ebuf, sizeof(ebuf), now - start);
                if (h->retry.max_elapsed_time > 0 && now - start + delay > h->retry.max_elapsed_time) {
                        account(h, b, sync ? OUT_REFUSED : OUT_FAILED, 0);
                        LOG_LIMITED(h, &h->rl_fail, ST_LOG_ERROR,
                                    "dropping %zu %s: giving up after %u attempts over %s (max_elapsed_time), last error: %s",
                                    b->items, what, attempt, ebuf, res.message);
                        return -EIO;
                }
                fmt_duration(dbuf, sizeof(dbuf), delay);
                LOG_LIMITED(h, &h->rl_retry, ST_LOG_WARN, "sending %zu %s failed (attempt %u): %s; retrying in %s",
                            b->items, what, attempt, res.message, dbuf);
                if (!backoff_wait(h, delay < INT64_MAX - now ? now + delay : INT64_MAX)) {
                        account(h, b, sync ? OUT_REFUSED : OUT_DROPPED, 0);
                        LOG_LIMITED(h, &h->rl_fail, ST_LOG_ERROR,
                                    "dropping %zu %s: shutting down, the next retry (in %s) would miss the deadline; last error: %s",
                                    b->items, what, dbuf, res.message);
                        return -ECANCELED;
                }
        }
}

/* --- queue workers ------------------------------------------------------------------------ */

static void *worker(void *arg) {
        struct st_exporter_helper *h = arg;
        sigset_t all;

        /* Signals belong to the service's main thread. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);

        pthread_mutex_lock(&h->lock);
        for (;;) {
                while (h->len == 0 && !h->stopping)
                        pthread_cond_wait(&h->nonempty, &h->lock);
                if (h->len == 0 || h->abandon)
                        break; /* stopping and drained, or past the deadline (shutdown drops the rest) */
                st_batch *b = h->ring[h->head];
                h->ring[h->head] = NULL;
                h->head = (h->head + 1) % (size_t) h->queue.queue_size;
                h->len--;
                h->busy++;
                atomic_store_explicit(&h->tel->queue_size, (int64_t) h->len, memory_order_relaxed);
                pthread_mutex_unlock(&h->lock);

                export_batch(h, b, false);
                st_batch_unref(b);

                pthread_mutex_lock(&h->lock);
                h->busy--;
                if (h->stopping)
                        pthread_cond_broadcast(&h->idle);
        }
        pthread_mutex_unlock(&h->lock);
        return NULL;
}

/* --- public API --------------------------------------------------------------------------- */

/* ctx NULL: only says whether the configuration is usable. */
static int check_config(const struct st_retry_config *retry, const struct st_queue_config *queue,
                        struct st_cfg_ctx *ctx) {
        int r = 0;
#define BAD(path, ...) do { if (ctx) st_cfg_errorf(ctx, path, __VA_ARGS__); r = -EINVAL; } while (0)
        if (retry->enabled) {
                if (retry->initial_interval <= 0)
                        BAD("retry_on_failure.initial_interval", "must be greater than 0");
                if (retry->max_interval < retry->initial_interval)
                        BAD("retry_on_failure.max_interval", "must not be smaller than initial_interval");
                if (retry->max_elapsed_time < 0)
                        BAD("retry_on_failure.max_elapsed_time", "must not be negative");
                if (!(retry->multiplier >= 1.0))
                        BAD("retry_on_failure.multiplier", "must be at least 1");
                if (!(retry->randomization_factor >= 0.0 && retry->randomization_factor <= 1.0))
                        BAD("retry_on_failure.randomization_factor", "must be between 0 and 1");
        }
        if (queue->enabled) {
                if (queue->num_consumers < 1)
                        BAD("sending_queue.num_consumers", "must be at least 1");
                if (queue->queue_size < 1)
                        BAD("sending_queue.queue_size", "must be at least 1");
        }
#undef BAD
        return r;
}

int st_exporter_helper_validate(const struct st_retry_config *retry, const struct st_queue_config *queue,
                                struct st_cfg_ctx *ctx) {
        return check_config(retry, queue, ctx);
}

int st_exporter_helper_new(const struct st_component_settings *set, const struct st_retry_config *retry,
                           const struct st_queue_config *queue, int64_t timeout_ns, st_send_fn send,
                           void *exporter, struct st_exporter_helper **ret) {
        struct st_exporter_helper *h;
        pthread_condattr_t ca;
        int r;

        if (!set || !retry || !queue || !send || !ret)
                return -EINVAL;
        r = check_config(retry, queue, NULL);
        if (r < 0)
                return r;

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->log_name = strdup(set->log_name ? set->log_name : "exporter");
        h->tel = set->tel ? set->tel : &h->own_tel;
        h->retry = *retry;
        h->queue = *queue;
        h->timeout = timeout_ns;
        h->send = send;
        h->exporter = exporter;
        h->stop_deadline = INT64_MAX;
        if (queue->enabled)
                h->ring = calloc((size_t) queue->queue_size, sizeof(*h->ring));
        if (!h->log_name || (queue->enabled && !h->ring)) {
                free(h->log_name);
                free(h->ring);
                free(h);
                return -ENOMEM;
        }

        pthread_mutex_init(&h->lock, NULL);
        pthread_mutex_init(&h->log_lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&h->nonempty, &ca);
        pthread_cond_init(&h->backoff, &ca);
        pthread_cond_init(&h->idle, &ca);
        pthread_condattr_destroy(&ca);

        h->tel->queue_capacity = queue->enabled ? queue->queue_size : 0;
        atomic_store_explicit(&h->tel->queue_size, 0, memory_order_relaxed);
        *ret = h;
        return 0;
}

int st_exporter_helper_start(struct st_exporter_helper *h) {
        size_t n;
        int r = 0;

        if (!h->queue.enabled || h->threads)
                return 0;
        n = (size_t) h->queue.num_consumers;
        h->threads = calloc(n, sizeof(*h->threads));
        if (!h->threads)
                return -ENOMEM;
        for (h->n_threads = 0; h->n_threads < n; h->n_threads++) {
                r = -pthread_create(&h->threads[h->n_threads], NULL, worker, h);
                if (r < 0)
                        break;
                (void) pthread_setname_np(h->threads[h->n_threads], "export-queue");
        }
        if (r < 0) {
                /* Take down the workers already running; the queue stays for shutdown() to count. */
                pthread_mutex_lock(&h->lock);
                h->stopping = h->abandon = true;
                h->stop_deadline = st_now_ns();
                pthread_cond_broadcast(&h->nonempty);
                pthread_mutex_unlock(&h->lock);
                for (size_t i = 0; i < h->n_threads; i++)
                        pthread_join(h->threads[i], NULL);
                free(h->threads);
                h->threads = NULL;
                h->n_threads = 0;
                pthread_mutex_lock(&h->lock);
                h->stopping = h->abandon = false;
                h->stop_deadline = INT64_MAX;
                pthread_mutex_unlock(&h->lock);
        }
        return r;
}

int st_exporter_helper_consume(struct st_exporter_helper *h, st_batch *b) {
        struct st_signal_counters *c = &h->tel->sig[b->signal];
        int r;

        if (!h->queue.enabled) {
                pthread_mutex_lock(&h->lock);
                if (h->stopping) {
                        pthread_mutex_unlock(&h->lock);
                        st_tel_add(&c->refused, b->items);
                        return -ESHUTDOWN;
                }
                h->busy++;
                pthread_mutex_unlock(&h->lock);

                r = export_batch(h, b, true);

                pthread_mutex_lock(&h->lock);
                h->busy--;
                if (h->stopping)
                        pthread_cond_broadcast(&h->idle);
                pthread_mutex_unlock(&h->lock);
                return r;
        }

        pthread_mutex_lock(&h->lock);
        if (h->stopping || h->len == (size_t) h->queue.queue_size) {
                bool stopping = h->stopping;
                pthread_mutex_unlock(&h->lock);
                st_tel_add(&c->refused, b->items);
                if (stopping)
                        return -ESHUTDOWN;
                LOG_LIMITED(h, &h->rl_full, ST_LOG_WARN,
                            "sending queue is full (%" PRId64 " batches), refusing %zu %s", h->queue.queue_size,
                            b->items, st_signals[b->signal].item_name);
                return -ENOBUFS;
        }
        h->ring[(h->head + h->len) % (size_t) h->queue.queue_size] = st_batch_ref(b);
        h->len++;
        atomic_store_explicit(&h->tel->queue_size, (int64_t) h->len, memory_order_relaxed);
        pthread_cond_signal(&h->nonempty);
        pthread_mutex_unlock(&h->lock);
        return 0;
}

int st_exporter_helper_shutdown(struct st_exporter_helper *h, int64_t deadline_ns) {
        struct timespec ts = st_ns_to_timespec(deadline_ns);
        size_t left_batches = 0, left_items[ST_SIGNAL_COUNT] = { 0 };
        st_batch **left = NULL;

        if (!h)
                return 0;
        pthread_mutex_lock(&h->lock);
        if (!h->stopping) {
                h->stopping = true;
                h->stop_deadline = deadline_ns;
        }
        pthread_cond_broadcast(&h->nonempty);
        pthread_cond_broadcast(&h->backoff);

        /* Drain: workers empty the queue and finish their retries, within the deadline. */
        while (((h->len > 0 && h->n_threads > 0) || h->busy > 0) && st_now_ns() < deadline_ns)
                pthread_cond_timedwait(&h->idle, &h->lock, &ts);

        h->abandon = true;
        if (h->len > 0) {
                left = malloc(h->len * sizeof(*left)); /* unref outside the lock; NULL: unref inside */
                while (h->len > 0) {
                        st_batch *b = h->ring[h->head];
                        h->ring[h->head] = NULL;
                        h->head = (h->head + 1) % (size_t) h->queue.queue_size;
                        h->len--;
                        left_items[b->signal] += b->items;
                        account(h, b, OUT_DROPPED, 0);
                        if (left)
                                left[left_batches] = b;
                        else
                                st_batch_unref(b);
                        left_batches++;
                }
                atomic_store_explicit(&h->tel->queue_size, 0, memory_order_relaxed);
        }
        pthread_cond_broadcast(&h->nonempty);
        pthread_cond_broadcast(&h->backoff);
        /* Sends under way return by their attempt's deadline, which was capped at ours once
         * shutdown began (the exporter may cut older attempts short itself). Waiting for them,
         * synchronous callers included, means the exporter may free what send uses as soon as
         * we return. */
        while (h->busy > 0)
                pthread_cond_wait(&h->idle, &h->lock);
        pthread_mutex_unlock(&h->lock);

        if (left_batches > 0) {
                char what[160];
                size_t n = 0;
                for (size_t i = 0; left && i < left_batches; i++)
                        st_batch_unref(left[i]);
                free(left);
                what[0] = 0;
                for (int s = 0; s < ST_SIGNAL_COUNT; s++)
                        if (left_items[s] && n < sizeof(what))
                                n += (size_t) snprintf(what + n, sizeof(what) - n, "%s%zu %s", n ? ", " : "",
                                                       left_items[s], st_signals[s].item_name);
                st_error(h->log_name,
                         "shutdown deadline reached with %zu batch(es) still queued: dropping %s that were never sent",
                         left_batches, n ? what : "0 items");
        }

        for (size_t i = 0; i < h->n_threads; i++)
                pthread_join(h->threads[i], NULL);
        free(h->threads);
        h->threads = NULL;
        h->n_threads = 0;
        return 0;
}

void st_exporter_helper_free(struct st_exporter_helper *h) {
        if (!h)
                return;
        if (h->n_threads > 0 || h->len > 0)
                st_exporter_helper_shutdown(h, st_now_ns()); /* forgot shutdown(): count, never leak */
        pthread_cond_destroy(&h->nonempty);
        pthread_cond_destroy(&h->backoff);
        pthread_cond_destroy(&h->idle);
        pthread_mutex_destroy(&h->lock);
        pthread_mutex_destroy(&h->log_lock);
        if (h->tel == &h->own_tel)
                h->tel = NULL;
        free(h->ring);
        free(h->log_name);
        free(h);
}
