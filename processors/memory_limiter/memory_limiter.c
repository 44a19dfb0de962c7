/* The memory limiter: refuses data (-ENOBUFS, so that OTLP senders retry later) while the
 * process's resident memory is above limit - spike_limit, the Collector's soft limit.
 *
 * Usage is sampled by a thread every check_interval and, so that the very first request after
 * start-up is judged too, by consume() when the last sample is older than check_interval. The
 * hot path is one atomic load. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "component.h"
#include "log.h"
#include "mem_total.h"

#define MIB (UINT64_C(1) << 20)

struct memory_limiter_cfg {
        int64_t check_interval;
        int64_t limit_mib;
        int64_t spike_limit_mib;
        int64_t limit_percentage;
        int64_t spike_limit_percentage;
};

static const struct st_cfg_field memory_limiter_fields[] = {
        { .name = "check_interval", .type = ST_CFG_DURATION, .offset = offsetof(struct memory_limiter_cfg, check_interval),
          .def = "1s", .desc = "how often memory usage is measured" },
        { .name = "limit_mib", .type = ST_CFG_INT, .offset = offsetof(struct memory_limiter_cfg, limit_mib),
          .min = 0, .max = INT64_C(1) << 40, .desc = "hard limit of resident memory, MiB (or use limit_percentage)" },
        { .name = "spike_limit_mib", .type = ST_CFG_INT, .offset = offsetof(struct memory_limiter_cfg, spike_limit_mib),
          .min = 0, .max = INT64_C(1) << 40, .desc = "headroom below limit_mib where data is refused, MiB (default 20% of limit_mib)" },
        { .name = "limit_percentage", .type = ST_CFG_INT, .offset = offsetof(struct memory_limiter_cfg, limit_percentage),
          .min = 0, .max = 100, .desc = "hard limit as a percentage of total memory (cgroup limit or MemTotal)" },
        { .name = "spike_limit_percentage", .type = ST_CFG_INT, .offset = offsetof(struct memory_limiter_cfg, spike_limit_percentage),
          .min = 0, .max = 100, .desc = "headroom as a percentage of total memory (default 20% of limit_percentage)" },
        ST_CFG_END
};

struct memory_limiter {
        char *log_name;
        struct st_consumer next;
        struct st_component_telemetry *tel;
        enum st_signal signal;
        int64_t interval_ns;
        uint64_t limit, spike; /* bytes; refusing above limit - spike */

        atomic_bool refusing;
        _Atomic int64_t last_check_ns; /* 0: never */

        pthread_mutex_t lock; /* the thread's stop flag and the state-change log lines */
        pthread_cond_t cond;
        bool stopping, thread_running;
        pthread_t thread;
};

static int memory_limiter_validate(const void *cfg, struct st_cfg_ctx *ctx) {
        const struct memory_limiter_cfg *c = cfg;
        int r = 0;

        if (c->check_interval <= 0) {
                st_cfg_errorf(ctx, "check_interval", "must be greater than zero");
                r = -EINVAL;
        }
        if (c->limit_mib > 0 && c->limit_percentage > 0) {
                st_cfg_errorf(ctx, "limit_percentage", "set either limit_mib or limit_percentage, not both");
                return -EINVAL;
        }
        if (c->limit_mib > 0) {
                if (c->spike_limit_mib >= c->limit_mib) {
                        st_cfg_errorf(ctx, "spike_limit_mib", "must be smaller than limit_mib (%" PRId64 ")", c->limit_mib);
                        r = -EINVAL;
                }
        } else if (c->limit_percentage > 0) {
                if (c->spike_limit_percentage >= c->limit_percentage) {
                        st_cfg_errorf(ctx, "spike_limit_percentage", "must be smaller than limit_percentage (%" PRId64 ")",
                                      c->limit_percentage);
                        r = -EINVAL;
                }
        } else {
                st_cfg_errorf(ctx, "limit_mib", "limit_mib or limit_percentage is required and must be greater than zero");
                r = -EINVAL;
        }
        return r;
}

/* Takes a sample; logs when the state changes. */
static void check(struct memory_limiter *m, int64_t now) {
        uint64_t used = st_rss_bytes();
        bool refuse, was;

        atomic_store_explicit(&m->last_check_ns, now, memory_order_relaxed);
        if (used == 0)
                return; /* unknown: keep the last state */
        refuse = used > m->limit - m->spike;
        pthread_mutex_lock(&m->lock);
        was = atomic_exchange_explicit(&m->refusing, refuse, memory_order_relaxed);
        if (refuse && !was)
                st_warn(m->log_name, "memory usage %.1f MiB is above the soft limit of %.1f MiB, refusing data",
                        (double) used / MIB, (double) (m->limit - m->spike) / MIB);
        else if (!refuse && was)
                st_info(m->log_name, "memory usage %.1f MiB is below the soft limit of %.1f MiB, accepting data again",
                        (double) used / MIB, (double) (m->limit - m->spike) / MIB);
        pthread_mutex_unlock(&m->lock);
}

static void *sampler(void *arg) {
        struct memory_limiter *m = arg;
        pthread_mutex_lock(&m->lock);
        while (!m->stopping) {
                int64_t next = atomic_load_explicit(&m->last_check_ns, memory_order_relaxed) + m->interval_ns;
                int64_t now = st_now_ns();
                if (now >= next) {
                        pthread_mutex_unlock(&m->lock);
                        check(m, now);
                        pthread_mutex_lock(&m->lock);
                        continue;
                }
                struct timespec ts = st_ns_to_timespec(next);
                pthread_cond_timedwait(&m->cond, &m->lock, &ts);
        }
        pthread_mutex_unlock(&m->lock);
        return NULL;
}

static int memory_limiter_create(const struct st_component_settings *set, const void *cfg, void **ret) {
        const struct memory_limiter_cfg *c = cfg;
        struct memory_limiter *m;
        pthread_condattr_t ca;
        uint64_t total = 0;

        if (c->limit_mib <= 0) {
                int r = st_mem_total_bytes(&total);
                if (r < 0) {
                        st_error(set->log_name, "limit_percentage needs the total memory, which is unknown: %s", strerror(-r));
                        return r;
                }
        }
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->log_name = strdup(set->log_name ? set->log_name : "processor/memory_limiter");
        if (!m->log_name) {
                free(m);
                return -ENOMEM;
        }
        m->next = set->next[set->signal];
        m->tel = set->tel;
        m->signal = set->signal;
        m->interval_ns = c->check_interval;
        if (c->limit_mib > 0) {
                m->limit = (uint64_t) c->limit_mib * MIB;
                m->spike = c->spike_limit_mib > 0 ? (uint64_t) c->spike_limit_mib * MIB : m->limit / 5;
        } else {
                m->limit = total / 100 * (uint64_t) c->limit_percentage;
                m->spike = c->spike_limit_percentage > 0 ? total / 100 * (uint64_t) c->spike_limit_percentage : m->limit / 5;
        }
        pthread_mutex_init(&m->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&m->cond, &ca);
        pthread_condattr_destroy(&ca);
        st_debug(m->log_name, "limit %" PRIu64 " MiB, spike %" PRIu64 " MiB, check every %" PRId64 " ms", m->limit / MIB,
                 m->spike / MIB, m->interval_ns / ST_NS_PER_MS);
        *ret = m;
        return 0;
}

static int memory_limiter_start(void *self) {
        struct memory_limiter *m = self;
        int r = pthread_create(&m->thread, NULL, sampler, m);
        if (r != 0) {
                st_error(m->log_name, "cannot start the memory sampler thread: %s", strerror(r));
                return -r;
        }
        m->thread_running = true;
        (void) pthread_setname_np(m->thread, "mem-sampler");
        return 0;
}

static int memory_limiter_consume(void *self, st_batch *b) {
        struct memory_limiter *m = self;
        int64_t last = atomic_load_explicit(&m->last_check_ns, memory_order_relaxed);

        if (last == 0 || st_now_ns() - last >= m->interval_ns) {
                /* The sampler is late or not running: one caller samples, the others go on. */
                int64_t now = st_now_ns();
                if (atomic_compare_exchange_strong(&m->last_check_ns, &last, now))
                        check(m, now);
        }
        if (atomic_load_explicit(&m->refusing, memory_order_relaxed)) {
                if (m->tel)
                        st_tel_add(&m->tel->sig[m->signal].refused, b->items);
                return -ENOBUFS;
        }
        return st_consume(&m->next, b);
}

static int memory_limiter_shutdown(void *self, int64_t deadline_ns) {
        struct memory_limiter *m = self;
        if (!m->thread_running)
                return 0;
        pthread_mutex_lock(&m->lock);
        m->stopping = true;
        pthread_cond_signal(&m->cond);
        pthread_mutex_unlock(&m->lock);
        pthread_join(m->thread, NULL);
        m->thread_running = false;
        return 0;
}

static void memory_limiter_destroy(void *self) {
        struct memory_limiter *m = self;
        if (!m)
                return;
        memory_limiter_shutdown(m, 0);
        pthread_cond_destroy(&m->cond);
        pthread_mutex_destroy(&m->lock);
        free(m->log_name);
        free(m);
}

const struct st_factory st_processor_memory_limiter = {
        .type = "memory_limiter",
        .kind = ST_PROCESSOR,
        .signals = ST_SIG_ALL,
        .description = "refuses data while resident memory is above its soft limit",
        .config_size = sizeof(struct memory_limiter_cfg),
        .config = memory_limiter_fields,
        .validate = memory_limiter_validate,
        .create = memory_limiter_create,
        .start = memory_limiter_start,
        .consume = memory_limiter_consume,
        .shutdown = memory_limiter_shutdown,
        .destroy = memory_limiter_destroy,
};
