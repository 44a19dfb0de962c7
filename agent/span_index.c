#include "span_index.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 64
#define BUCKETS 64
/* A lookup walks back from the latest span that started before the event, over spans that
 * had ended by then; past this many it gives up (a process with thousands of short spans
 * inside one long one). */
#define MAX_WALK 1024
/* The same span told twice (channel, OTLP) starts within this of itself. */
#define SAME_SPAN_NS UINT64_C(1000000000)

struct ival {
        uint64_t start, end;
        uint32_t tid;
        struct st_span_ref ref;
};

/* The spans of one process, sorted by start. */
struct proc {
        uint32_t pid;
        struct ival *v;
        size_t n, cap;
        size_t n_threaded; /* intervals whose thread is known */
        struct proc *next;
};

struct shard {
        pthread_rwlock_t lock;
        struct proc *buckets[BUCKETS];
};

struct st_spanidx {
        struct shard shards[SHARDS];
        struct st_spanidx_limits lim;
        _Atomic uint64_t keep_ended_ns; /* lim.keep_ended_ns, raised by st_spanidx_keep_at_least() */
        atomic_size_t total;
        atomic_uint_fast64_t evicted;
        _Atomic uint64_t last_expire_ns;
};

const char *st_corr_method_name(enum st_corr_method m) {
        switch (m) {
        case ST_CORR_EXACT_THREAD: return "exact_thread";
        case ST_CORR_PROCESS_TIME: return "process_time";
        case ST_CORR_NONE: break;
        }
        return "none";
}

int st_spanidx_new(const struct st_spanidx_limits *lim, struct st_spanidx **ret) {
        struct st_spanidx *x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        for (size_t i = 0; i < SHARDS; i++)
                pthread_rwlock_init(&x->shards[i].lock, NULL);
        x->lim = *lim;
        atomic_init(&x->keep_ended_ns, lim->keep_ended_ns);
        *ret = x;
        return 0;
}

void st_spanidx_free(struct st_spanidx *x) {
        if (!x)
                return;
        for (size_t i = 0; i < SHARDS; i++) {
                for (size_t b = 0; b < BUCKETS; b++)
                        for (struct proc *p = x->shards[i].buckets[b], *n; p; p = n) {
                                n = p->next;
                                free(p->v);
                                free(p);
                        }
                pthread_rwlock_destroy(&x->shards[i].lock);
        }
        free(x);
}

static struct st_spanidx *global;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void) {
        const struct st_spanidx_limits lim = {
                .max_spans = 200000,
                .keep_ended_ns = UINT64_C(30) * 1000000000,
                .keep_open_ns = UINT64_C(300) * 1000000000,
        };
        if (st_spanidx_new(&lim, &global) < 0)
                global = NULL;
}
struct st_spanidx *st_spanidx_global(void) {
        pthread_once(&global_once, global_init);
        return global;
}

static struct shard *shard_of(struct st_spanidx *x, uint32_t pid) { return &x->shards[pid % SHARDS]; }
static struct proc **bucket_of(struct shard *s, uint32_t pid) { return &s->buckets[(pid / SHARDS) % BUCKETS]; }

static struct proc *find_proc(struct shard *s, uint32_t pid) {
        for (struct proc *p = *bucket_of(s, pid); p; p = p->next)
                if (p->pid == pid)
                        return p;
        return NULL;
}

/* The number of intervals that start at or before t: v[0..i) start <= t. */
static size_t upper_bound(const struct proc *p, uint64_t t) {
        size_t lo = 0, hi = p->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (p->v[mid].start <= t)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* The interval of span_id, searched from the latest start back: a span that ends is usually
 * among the latest to have started. */
static struct ival *find_span(struct proc *p, const uint8_t span_id[8]) {
        for (size_t i = p->n; i-- > 0;)
                if (memcmp(p->v[i].ref.span_id, span_id, 8) == 0)
                        return &p->v[i];
        return NULL;
}

static void remove_at(struct st_spanidx *x, struct proc *p, size_t i) {
        if (p->v[i].tid)
                p->n_threaded--;
        memmove(&p->v[i], &p->v[i + 1], (p->n - i - 1) * sizeof(p->v[0]));
        p->n--;
        atomic_fetch_sub(&x->total, 1);
}

int st_spanidx_add(struct st_spanidx *x, uint32_t pid, uint32_t tid, uint64_t start_ns, uint64_t end_ns,
                   const struct st_span_ref *ref) {
        struct shard *s = shard_of(x, pid);
        int r = 0;
        pthread_rwlock_wrlock(&s->lock);
        struct proc *p = find_proc(s, pid);
        if (!p) {
                if (!(p = calloc(1, sizeof(*p)))) {
                        r = -ENOMEM;
                        goto out;
                }
                p->pid = pid;
                p->next = *bucket_of(s, pid);
                *bucket_of(s, pid) = p;
        }
        /* known already: announced on the context channel, then received over OTLP. Their
         * times differ (the channel's are aligned to strata's clock, the SDK's are not), so
         * the span id is looked for among the spans that started within a second. The
         * first word stays: the channel's interval, its end only filled in when missing. */
        struct ival *known = NULL;
        uint64_t lo = start_ns > SAME_SPAN_NS ? start_ns - SAME_SPAN_NS : 0;
        for (size_t j = upper_bound(p, start_ns + SAME_SPAN_NS); j-- > 0 && p->v[j].start >= lo;)
                if (memcmp(p->v[j].ref.span_id, ref->span_id, 8) == 0) {
                        known = &p->v[j];
                        break;
                }
        if (known) {
                if (known->end == ST_SPAN_OPEN && end_ns != ST_SPAN_OPEN)
                        known->end = end_ns < known->start ? known->start : end_ns;
                if (!known->tid && tid) {
                        known->tid = tid;
                        p->n_threaded++;
                }
                goto out;
        }
        if (atomic_load(&x->total) >= x->lim.max_spans) {
                /* full: this process's oldest goes (a process cannot push others out) */
                atomic_fetch_add(&x->evicted, 1);
                if (!p->n)
                        goto out;
                remove_at(x, p, 0);
        }
        if (p->n == p->cap) {
                size_t cap = p->cap ? 2 * p->cap : 8;
                struct ival *v = realloc(p->v, cap * sizeof(*v));
                if (!v) {
                        r = -ENOMEM;
                        goto out;
                }
                p->v = v;
                p->cap = cap;
        }
        size_t i = upper_bound(p, start_ns); /* after those that started at the same time */
        memmove(&p->v[i + 1], &p->v[i], (p->n - i) * sizeof(p->v[0]));
        p->v[i] = (struct ival) { .start = start_ns, .end = end_ns, .tid = tid, .ref = *ref };
        p->n++;
        if (tid)
                p->n_threaded++;
        atomic_fetch_add(&x->total, 1);
out:
        pthread_rwlock_unlock(&s->lock);
        return r;
}

int st_spanidx_end(struct st_spanidx *x, uint32_t pid, const uint8_t span_id[8], uint64_t end_ns) {
        struct shard *s = shard_of(x, pid);
        int r = -ENOENT;
        pthread_rwlock_wrlock(&s->lock);
        struct proc *p = find_proc(s, pid);
        struct ival *iv = p ? find_span(p, span_id) : NULL;
        if (iv) {
                iv->end = end_ns;
                r = 0;
        }
        pthread_rwlock_unlock(&s->lock);
        return r;
}

enum st_corr_method st_spanidx_find(struct st_spanidx *x, uint32_t pid, uint32_t tid, uint64_t t,
                                    struct st_span_ref *ret) {
        struct shard *s = shard_of(x, pid);
        enum st_corr_method m = ST_CORR_NONE;
        pthread_rwlock_rdlock(&s->lock);
        struct proc *p = find_proc(s, pid);
        if (!p)
                goto out;
        const struct ival *by_process = NULL;
        size_t i = upper_bound(p, t), walked = 0;
        while (i-- > 0 && walked++ < MAX_WALK) {
                const struct ival *iv = &p->v[i];
                if (iv->end < t)
                        continue;
                if (iv->tid && iv->tid == tid) {
                        *ret = iv->ref;
                        m = ST_CORR_EXACT_THREAD;
                        goto out;
                }
                if (!iv->tid && !by_process) {
                        by_process = iv;
                        if (!p->n_threaded || !tid)
                                break; /* no exact match can come */
                }
        }
        if (by_process) {
                *ret = by_process->ref;
                m = ST_CORR_PROCESS_TIME;
        }
out:
        pthread_rwlock_unlock(&s->lock);
        return m;
}

size_t st_spanidx_expire(struct st_spanidx *x, uint64_t now_ns) {
        uint64_t keep = atomic_load(&x->keep_ended_ns);
        uint64_t ended_before = now_ns > keep ? now_ns - keep : 0;
        uint64_t opened_before = now_ns > x->lim.keep_open_ns ? now_ns - x->lim.keep_open_ns : 0;
        size_t gone = 0;
        for (size_t i = 0; i < SHARDS; i++) {
                struct shard *s = &x->shards[i];
                pthread_rwlock_wrlock(&s->lock);
                for (size_t b = 0; b < BUCKETS; b++)
                        for (struct proc **pp = &s->buckets[b]; *pp;) {
                                struct proc *p = *pp;
                                size_t w = 0;
                                for (size_t r = 0; r < p->n; r++) {
                                        const struct ival *iv = &p->v[r];
                                        bool old = iv->end == ST_SPAN_OPEN ? iv->start < opened_before : iv->end < ended_before;
                                        if (old) {
                                                if (iv->tid)
                                                        p->n_threaded--;
                                                continue;
                                        }
                                        p->v[w++] = *iv;
                                }
                                gone += p->n - w;
                                atomic_fetch_sub(&x->total, p->n - w);
                                p->n = w;
                                if (!p->n) {
                                        *pp = p->next;
                                        free(p->v);
                                        free(p);
                                } else
                                        pp = &p->next;
                        }
                pthread_rwlock_unlock(&s->lock);
        }
        return gone;
}

size_t st_spanidx_size(struct st_spanidx *x) { return atomic_load(&x->total); }
uint64_t st_spanidx_evicted(struct st_spanidx *x) { return atomic_load(&x->evicted); }

void st_spanidx_keep_at_least(struct st_spanidx *x, uint64_t ns) {
        uint64_t cur = atomic_load(&x->keep_ended_ns);
        while (cur < ns && !atomic_compare_exchange_weak(&x->keep_ended_ns, &cur, ns))
                ;
}

void st_spanidx_tick(struct st_spanidx *x, uint64_t now_ns) {
        uint64_t last = atomic_load_explicit(&x->last_expire_ns, memory_order_relaxed);
        if (now_ns < last + UINT64_C(1000000000) || !atomic_compare_exchange_strong(&x->last_expire_ns, &last, now_ns))
                return;
        st_spanidx_expire(x, now_ns);
}
