/* The batch processor (the Collector's batchprocessor): coalesces small batches into batches of
 * send_batch_size items, cut at send_batch_max_size, and sends what has waited `timeout`.
 *
 * Zero-copy: the pending batch is built with st_batch_append(), which points into the incoming
 * batches and keeps a reference on them. The hot path is one lock and one append.
 *
 * Sending happens outside the lock, in the caller's thread (or the timer thread). Every cut
 * group of batches takes a ticket under the lock and is sent in ticket order, so batches leave
 * in the order their items arrived, and a producer that flushes waits for the flushes before
 * it (that is the back-pressure a slow next consumer exerts).
 *
 * A batch that the next consumer refuses for now (-ENOBUFS: an exporter's full sending queue, a
 * memory limit) is held, with every batch cut after it, and offered again by the timer thread
 * with a backoff. Meanwhile consume() still takes data until the held and pending items reach
 * twice send_batch_size (a short hold costs the senders nothing), then refuses it with -ENOBUFS,
 * which receivers turn into RESOURCE_EXHAUSTED / HTTP 429. So a slow backend slows the senders
 * down instead of costing data that was acknowledged long ago, and memory stays bounded. Other
 * refusals (an exporter without a queue that gave up after its retries) are drops, counted. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "component.h"
#include "log.h"

/* Offering held batches again: the first retry after HOLD_RETRY_MIN_NS, doubling up to
 * HOLD_RETRY_MAX_NS. An exporter's queue frees a slot per export, so a short ceiling keeps
 * throughput while the backend is slow, at a few refused calls a second while it is down. */
#define HOLD_RETRY_MIN_NS (2 * ST_NS_PER_MS)
#define HOLD_RETRY_MAX_NS (50 * ST_NS_PER_MS)

struct batch_cfg {
        int64_t send_batch_size;
        int64_t send_batch_max_size;
        int64_t timeout;
};

static const struct st_cfg_field batch_fields[] = {
        { .name = "send_batch_size", .type = ST_CFG_INT, .offset = offsetof(struct batch_cfg, send_batch_size),
          .def = "8192", .min = 0, .max = INT32_MAX,
          .desc = "items (spans, data points, log records) after which a batch is sent regardless of timeout" },
        { .name = "send_batch_max_size", .type = ST_CFG_INT, .offset = offsetof(struct batch_cfg, send_batch_max_size),
          .def = "0", .min = 0, .max = INT32_MAX, .desc = "upper bound of a batch's items, larger ones are cut (0 = no limit)" },
        { .name = "timeout", .type = ST_CFG_DURATION, .offset = offsetof(struct batch_cfg, timeout),
          .def = "200ms", .desc = "how long the first item of a batch may wait (0 = send after every request)" },
        ST_CFG_END
};

/* Cut batches waiting to be sent, in order, under one ticket. */
#define OUTBOX_MAX 8
struct outbox {
        st_batch *v[OUTBOX_MAX];
        size_t n;
        uint64_t ticket;
};

struct batch_proc {
        char *log_name;
        struct st_consumer next;
        struct st_component_telemetry *tel;
        enum st_signal signal;
        size_t size, max;
        int64_t timeout;

        pthread_mutex_t lock; /* everything below up to send_lock */
        pthread_cond_t timer_cond;
        st_batch *pending;
        int64_t pending_since;
        uint64_t next_ticket;
        bool stopping; /* shutdown began: consume() sends straight on */
        bool timer_running;
        pthread_t timer;
        /* Refused for now, oldest first; changed only in a sending turn (and under lock). While
         * any batch is held, consume() takes data only up to 2 * size items (held_full_locked). */
        st_batch **held;
        size_t n_held, cap_held, held_items;
        int64_t held_since, retry_at, retry_wait;
        struct st_tel_metric *m_held;

        pthread_mutex_t send_lock;
        pthread_cond_t send_cond;
        uint64_t turn; /* the ticket whose batches may be sent now */

        _Atomic int64_t last_warn_ns;
        atomic_uint_least64_t unlogged_drops;
};

static int batch_validate(const void *cfg, struct st_cfg_ctx *ctx) {
        const struct batch_cfg *c = cfg;
        if (c->send_batch_max_size > 0 && c->send_batch_max_size < c->send_batch_size) {
                st_cfg_errorf(ctx, "send_batch_max_size", "must be 0 or at least send_batch_size (%" PRId64 "), not %" PRId64,
                              c->send_batch_size, c->send_batch_max_size);
                return -EINVAL;
        }
        if (c->timeout < 0) {
                st_cfg_errorf(ctx, "timeout", "must not be negative");
                return -EINVAL;
        }
        return 0;
}

/* Counts a refused batch as dropped; logs at most once a second, with what was not logged. */
static void dropped(struct batch_proc *p, size_t items, int r) {
        int64_t now = st_now_ns(), last = atomic_load_explicit(&p->last_warn_ns, memory_order_relaxed);

        if (p->tel)
                st_tel_add(&p->tel->sig[p->signal].dropped, items);
        if (now - last < ST_NS_PER_SEC || !atomic_compare_exchange_strong(&p->last_warn_ns, &last, now)) {
                atomic_fetch_add_explicit(&p->unlogged_drops, items, memory_order_relaxed);
                return;
        }
        uint64_t more = atomic_exchange_explicit(&p->unlogged_drops, 0, memory_order_relaxed);
        st_warn(p->log_name, "dropped %zu %s: the next consumer refused them: %s (and %" PRIu64 " more since the last message)",
                items, st_signals[p->signal].item_name, strerror(-r), more);
}

static void wait_turn(struct batch_proc *p, uint64_t ticket) {
        pthread_mutex_lock(&p->send_lock);
        while (p->turn != ticket)
                pthread_cond_wait(&p->send_cond, &p->send_lock);
        pthread_mutex_unlock(&p->send_lock);
}

static void end_turn(struct batch_proc *p) {
        pthread_mutex_lock(&p->send_lock);
        p->turn++;
        pthread_cond_broadcast(&p->send_cond);
        pthread_mutex_unlock(&p->send_lock);
}

static bool has_held(struct batch_proc *p) {
        pthread_mutex_lock(&p->lock);
        bool r = p->n_held > 0;
        pthread_mutex_unlock(&p->lock);
        return r;
}

/* Appends batches (and their references) to the held ones. In a sending turn. */
static void hold(struct batch_proc *p, st_batch **v, size_t n) {
        size_t items = 0;
        bool first;

        if (n == 0)
                return;
        pthread_mutex_lock(&p->lock);
        if (p->n_held + n > p->cap_held) {
                size_t cap = p->cap_held ? p->cap_held : OUTBOX_MAX;
                while (cap < p->n_held + n)
                        cap *= 2;
                st_batch **h = realloc(p->held, cap * sizeof(*h));
                if (!h) {
                        pthread_mutex_unlock(&p->lock);
                        for (size_t i = 0; i < n; i++) {
                                dropped(p, v[i]->items, -ENOMEM);
                                st_batch_unref(v[i]);
                        }
                        return;
                }
                p->held = h;
                p->cap_held = cap;
        }
        first = p->n_held == 0;
        for (size_t i = 0; i < n; i++) {
                p->held[p->n_held++] = v[i];
                items += v[i]->items;
        }
        p->held_items += items;
        if (first) {
                p->held_since = st_now_ns();
                p->retry_wait = HOLD_RETRY_MIN_NS;
                p->retry_at = p->held_since + p->retry_wait;
                pthread_cond_signal(&p->timer_cond); /* the timer offers them again */
        }
        pthread_mutex_unlock(&p->lock);
        st_tel_metric_add(p->m_held, (int64_t) items);
        if (first)
                st_debug(p->log_name, "the next consumer is full: holding %zu %s, taking new ones only up to twice send_batch_size",
                         items, st_signals[p->signal].item_name);
}

/* Offers the held batches again, oldest first, in a sending turn. Returns true when none is
 * left: the next consumer took them (or refused them for good: dropped). *ret_progress tells
 * whether any left. */
static bool offer_held(struct batch_proc *p, bool *ret_progress) {
        bool progress = false;
        for (;;) {
                pthread_mutex_lock(&p->lock);
                if (p->n_held == 0) {
                        pthread_mutex_unlock(&p->lock);
                        *ret_progress = progress;
                        return true;
                }
                st_batch *b = p->held[0];
                pthread_mutex_unlock(&p->lock);

                int r = st_consume(&p->next, b);
                if (r == -ENOBUFS) {
                        *ret_progress = progress;
                        return false;
                }
                progress = true;
                if (r < 0)
                        dropped(p, b->items, r);

                pthread_mutex_lock(&p->lock);
                memmove(p->held, p->held + 1, --p->n_held * sizeof(*p->held));
                p->held_items -= b->items;
                if (p->n_held == 0)
                        st_debug(p->log_name, "the next consumer takes %s again, after %" PRId64 " ms",
                                 st_signals[p->signal].item_name, (st_now_ns() - p->held_since) / ST_NS_PER_MS);
                pthread_mutex_unlock(&p->lock);
                st_tel_metric_add(p->m_held, -(int64_t) b->items);
                st_batch_unref(b);
        }
}

/* Called without p->lock. Sends o's batches in o's turn; from the first one that the next
 * consumer refuses for now, and all of them when batches are held already, they are held. */
static void outbox_send(struct batch_proc *p, struct outbox *o) {
        size_t i = 0;

        if (o->n == 0)
                return;
        wait_turn(p, o->ticket);
        if (!has_held(p))
                for (; i < o->n; i++) {
                        int r = st_consume(&p->next, o->v[i]);
                        if (r == -ENOBUFS)
                                break;
                        if (r < 0)
                                dropped(p, o->v[i]->items, r);
                        st_batch_unref(o->v[i]);
                }
        hold(p, o->v + i, o->n - i);
        end_turn(p);
        o->n = 0;
}

/* Offers the held batches in a turn of their own. Called with p->lock held, which it drops
 * while sending. Returns true when none is left; else sets when to offer them again (sooner
 * when some went). */
static bool retry_held_locked(struct batch_proc *p) {
        uint64_t ticket = p->next_ticket++;
        bool progress;
        pthread_mutex_unlock(&p->lock);
        wait_turn(p, ticket);
        bool clear = offer_held(p, &progress);
        end_turn(p);
        pthread_mutex_lock(&p->lock);
        if (!clear) {
                p->retry_wait = progress ? HOLD_RETRY_MIN_NS
                                : p->retry_wait * 2 < HOLD_RETRY_MAX_NS ? p->retry_wait * 2 : HOLD_RETRY_MAX_NS;
                p->retry_at = st_now_ns() + p->retry_wait;
        }
        return clear;
}

/* While batches are held, is there no room for `items` more? Called with p->lock held. */
static bool held_full_locked(const struct batch_proc *p, size_t items) {
        if (p->n_held == 0)
                return false;
        return p->held_items + (p->pending ? p->pending->items : 0) + items > 2 * p->size;
}

/* What is still held (shutdown's deadline passed, or destroy without shutdown) is dropped. */
static void drop_held(struct batch_proc *p, const char *why) {
        pthread_mutex_lock(&p->lock);
        size_t n = p->n_held, items = p->held_items;
        for (size_t i = 0; i < n; i++)
                st_batch_unref(p->held[i]);
        p->n_held = 0;
        p->held_items = 0;
        pthread_mutex_unlock(&p->lock);
        if (n == 0)
                return;
        if (p->tel)
                st_tel_add(&p->tel->sig[p->signal].dropped, items);
        st_tel_metric_add(p->m_held, -(int64_t) items);
        st_warn(p->log_name, "dropped %zu %s that the next consumer kept refusing: %s", items,
                st_signals[p->signal].item_name, why);
}

/* Moves the pending batch to the outbox. Called with p->lock held; the outbox has room. */
static void cut_locked(struct batch_proc *p, struct outbox *o) {
        if (o->n == 0)
                o->ticket = p->next_ticket++;
        o->v[o->n++] = p->pending;
        p->pending = NULL;
}

/* No batching: b goes on as it is, or in pieces of max items. Used with timeout 0 and after
 * shutdown. Returns the next consumer's error as long as nothing was sent, so that the sender
 * can retry without duplicates; later failures are counted as dropped. */
static int consume_direct(struct batch_proc *p, st_batch *b) {
        struct st_batch_cursor cur = { 0 };
        bool done = false;
        size_t taken = 0; /* items put in pieces so far */

        if (p->max == 0 || b->items <= p->max)
                return st_consume(&p->next, b);
        while (!done) {
                st_batch *piece = NULL;
                size_t before = taken, added = 0;
                int r = st_batch_new(b->signal, &piece);
                if (r >= 0)
                        r = st_batch_append(piece, b, &cur, p->max, &added, &done);
                if (r < 0) { /* out of memory: the rest of b is lost */
                        st_batch_unref(piece);
                        if (before == 0)
                                return r;
                        dropped(p, b->items - before, r);
                        return 0;
                }
                taken += added;
                r = st_consume(&p->next, piece);
                if (r < 0 && before == 0) {
                        st_batch_unref(piece);
                        return r;
                }
                if (r < 0)
                        dropped(p, piece->items, r);
                st_batch_unref(piece);
        }
        return 0;
}

/* The first pending item's deadline passed, held batches are due to be offered again, or
 * shutdown. */
static void *timer_main(void *arg) {
        struct batch_proc *p = arg;
        struct outbox o = { .n = 0 };

        pthread_mutex_lock(&p->lock);
        while (!p->stopping) {
                int64_t now = st_now_ns(), deadline = INT64_MAX;
                if (p->n_held > 0 && now >= p->retry_at) {
                        retry_held_locked(p);
                        continue;
                }
                if (!p->pending && p->n_held == 0) {
                        pthread_cond_wait(&p->timer_cond, &p->lock);
                        continue;
                }
                if (p->pending)
                        deadline = p->pending_since + p->timeout;
                if (p->n_held > 0 && p->retry_at < deadline)
                        deadline = p->retry_at;
                if (now < deadline) {
                        struct timespec ts = st_ns_to_timespec(deadline);
                        pthread_cond_timedwait(&p->timer_cond, &p->lock, &ts);
                        continue;
                }
                cut_locked(p, &o);
                pthread_mutex_unlock(&p->lock);
                outbox_send(p, &o);
                pthread_mutex_lock(&p->lock);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

static int batch_consume(void *self, st_batch *b) {
        struct batch_proc *p = self;
        struct st_batch_cursor cur = { 0 };
        struct outbox o = { .n = 0 };
        bool done = false, started = false;
        size_t taken = 0;
        int r = 0;

        if (b->items == 0)
                return 0;
        if (p->timeout == 0)
                return consume_direct(p, b);

        pthread_mutex_lock(&p->lock);
        if (held_full_locked(p, b->items) || (p->stopping && p->n_held > 0)) {
                /* The next consumer is full: the sender retries later (nothing was taken). */
                pthread_mutex_unlock(&p->lock);
                return -ENOBUFS;
        }
        if (p->stopping) {
                pthread_mutex_unlock(&p->lock);
                return consume_direct(p, b);
        }
        if (!p->pending && p->n_held == 0 && b->items >= p->size && (p->max == 0 || b->items <= p->max)) {
                /* Already a full batch: pass it on as it is, in its turn (refused if batches
                 * before it are held by then: it must not overtake them). */
                uint64_t ticket = p->next_ticket++;
                pthread_mutex_unlock(&p->lock);
                wait_turn(p, ticket);
                r = has_held(p) ? -ENOBUFS : st_consume(&p->next, b);
                end_turn(p);
                return r;
        }

        while (!done) {
                size_t added = 0;
                if (!p->pending) {
                        r = st_batch_new(p->signal, &p->pending);
                        if (r < 0)
                                break;
                        p->pending_since = st_now_ns();
                        started = true;
                }
                r = st_batch_append(p->pending, b, &cur, p->max, &added, &done);
                if (r < 0) {
                        /* A cut that failed half-way left part of b in pending's structs:
                         * recount them. A merge of whole requests has no structs to count and
                         * was not changed (appending whole fails before touching it). */
                        if (!p->pending->concat)
                                st_batch_recount(p->pending);
                        break;
                }
                taken += added;
                /* Not done means pending is full (max, or the next metric does not fit). */
                if (p->pending->items >= p->size || !done) {
                        cut_locked(p, &o);
                        if (o.n == OUTBOX_MAX && !done) {
                                pthread_mutex_unlock(&p->lock);
                                outbox_send(p, &o);
                                pthread_mutex_lock(&p->lock);
                        }
                }
        }
        if (p->pending && p->pending->items == 0) {
                st_batch_unref(p->pending); /* only empty scopes: nothing to wait for */
                p->pending = NULL;
        }
        if (started && p->pending)
                pthread_cond_signal(&p->timer_cond); /* a new first item: the timer's deadline moved */
        pthread_mutex_unlock(&p->lock);
        outbox_send(p, &o);

        if (r < 0) {
                /* Out of memory. Nothing taken: the sender may retry; else the rest is lost. */
                if (taken == 0)
                        return r;
                dropped(p, b->items - taken, r);
        }
        return 0;
}

static int batch_create(const struct st_component_settings *set, const void *cfg, void **ret) {
        const struct batch_cfg *c = cfg;
        pthread_condattr_t ca;
        struct batch_proc *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->log_name = strdup(set->log_name ? set->log_name : "processor/batch");
        if (!p->log_name) {
                free(p);
                return -ENOMEM;
        }
        p->next = set->next[set->signal];
        p->tel = set->tel;
        p->signal = set->signal;
        p->size = (size_t) c->send_batch_size;
        p->max = (size_t) c->send_batch_max_size;
        p->timeout = c->timeout;
        if (p->tel)
                p->m_held = st_tel_metric(p->tel, "batch_held_items",
                                          "Items the next consumer refused for now (full queue, memory limit), held to be offered again; meanwhile data beyond twice send_batch_size is refused.",
                                          true);
        atomic_init(&p->last_warn_ns, st_now_ns() - ST_NS_PER_SEC);
        atomic_init(&p->unlogged_drops, 0);
        pthread_mutex_init(&p->lock, NULL);
        pthread_mutex_init(&p->send_lock, NULL);
        pthread_cond_init(&p->send_cond, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&p->timer_cond, &ca);
        pthread_condattr_destroy(&ca);
        *ret = p;
        return 0;
}

static int batch_start(void *self) {
        struct batch_proc *p = self;
        int r;
        if (p->timeout == 0)
                return 0; /* sent after every request: no timer */
        r = pthread_create(&p->timer, NULL, timer_main, p);
        if (r != 0) {
                st_error(p->log_name, "cannot start the timer thread: %s", strerror(r));
                return -r;
        }
        p->timer_running = true;
        (void) pthread_setname_np(p->timer, "batch");
        return 0;
}

static int batch_shutdown(void *self, int64_t deadline_ns) {
        struct batch_proc *p = self;
        struct outbox o = { .n = 0 };
        bool clear;

        pthread_mutex_lock(&p->lock);
        if (p->stopping) {
                pthread_mutex_unlock(&p->lock);
                return 0;
        }
        p->stopping = true;
        pthread_cond_signal(&p->timer_cond);
        pthread_mutex_unlock(&p->lock);
        if (p->timer_running) {
                pthread_join(p->timer, NULL);
                p->timer_running = false;
        }
        /* What is pending goes now; the next consumer is still running (shutdown goes
         * upstream-first), so the deadline needs no handling of its own here. */
        pthread_mutex_lock(&p->lock);
        if (p->pending)
                cut_locked(p, &o);
        pthread_mutex_unlock(&p->lock);
        outbox_send(p, &o);

        /* What the next consumer refused for now is offered again, for half the time left: the
         * deadline is the whole service's, and the exporters need time to drain what they take,
         * as do the other pipelines' processors (shut down after this one). */
        pthread_mutex_lock(&p->lock);
        int64_t until = st_now_ns();
        until += deadline_ns > until ? (deadline_ns - until) / 2 : 0;
        while (!(clear = retry_held_locked(p))) {
                int64_t now = st_now_ns();
                if (now >= until)
                        break;
                struct timespec ts = st_ns_to_timespec(now + (until - now < p->retry_wait ? until - now : p->retry_wait));
                pthread_cond_timedwait(&p->timer_cond, &p->lock, &ts);
        }
        pthread_mutex_unlock(&p->lock);
        if (!clear)
                drop_held(p, "the shutdown deadline passed");
        return 0;
}

static void batch_destroy(void *self) {
        struct batch_proc *p = self;
        if (!p)
                return;
        if (p->timer_running) {
                pthread_mutex_lock(&p->lock);
                p->stopping = true;
                pthread_cond_signal(&p->timer_cond);
                pthread_mutex_unlock(&p->lock);
                pthread_join(p->timer, NULL);
        }
        if (p->pending) {
                /* shutdown() was not called: nobody is left to send to */
                if (p->tel)
                        st_tel_add(&p->tel->sig[p->signal].dropped, p->pending->items);
                st_batch_unref(p->pending);
        }
        drop_held(p, "stopped without a shutdown");
        free(p->held);
        pthread_cond_destroy(&p->timer_cond);
        pthread_cond_destroy(&p->send_cond);
        pthread_mutex_destroy(&p->send_lock);
        pthread_mutex_destroy(&p->lock);
        free(p->log_name);
        free(p);
}

const struct st_factory st_processor_batch = {
        .type = "batch",
        .kind = ST_PROCESSOR,
        .signals = ST_SIG_ALL,
        .description = "coalesces batches by size and time (zero-copy)",
        .config_size = sizeof(struct batch_cfg),
        .config = batch_fields,
        .validate = batch_validate,
        .create = batch_create,
        .start = batch_start,
        .consume = batch_consume,
        .shutdown = batch_shutdown,
        .destroy = batch_destroy,
};
