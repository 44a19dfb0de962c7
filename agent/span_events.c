#include "span_events.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 64
#define CHAINS 256

enum { A_STR, A_INT, A_DOUBLE, A_BOOL };

struct attr {
        const char *key;
        int kind;
        union {
                const char *s;
                int64_t i;
                double d;
                bool b;
        };
};

/* One event: a single allocation holding its strings. */
struct ev {
        struct ev *next;
        uint8_t trace_id[16], span_id[8];
        int64_t added_ns;
        uint64_t time;
        const char *name;
        size_t n_attrs;
        struct attr attrs[];
};

struct shard {
        pthread_mutex_t lock;
        struct ev *chains[CHAINS];
};

struct st_spanev {
        struct shard shards[SHARDS];
        size_t max_events;
        int64_t keep_ns;
        atomic_size_t n;
        atomic_uint_fast64_t refused;
        _Atomic int64_t last_expire_ns;
};

int st_spanev_new(size_t max_events, uint64_t keep_ns, struct st_spanev **ret) {
        struct st_spanev *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < SHARDS; i++)
                pthread_mutex_init(&s->shards[i].lock, NULL);
        s->max_events = max_events;
        s->keep_ns = (int64_t) keep_ns;
        *ret = s;
        return 0;
}

void st_spanev_free(struct st_spanev *s) {
        if (!s)
                return;
        for (size_t i = 0; i < SHARDS; i++) {
                for (size_t c = 0; c < CHAINS; c++)
                        for (struct ev *e = s->shards[i].chains[c], *n; e; e = n) {
                                n = e->next;
                                free(e);
                        }
                pthread_mutex_destroy(&s->shards[i].lock);
        }
        free(s);
}

static struct st_spanev *global;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void) {
        /* longer than the longest wait of a span (2 x 60 s + 1 s) */
        if (st_spanev_new(100000, UINT64_C(180) * 1000000000, &global) < 0)
                global = NULL;
}
struct st_spanev *st_spanev_global(void) {
        pthread_once(&global_once, global_init);
        return global;
}

static uint64_t hash_of(const uint8_t span_id[8]) {
        uint64_t h;
        memcpy(&h, span_id, 8);
        return h * UINT64_C(0x9e3779b97f4a7c15);
}
static struct shard *shard_of(struct st_spanev *s, uint64_t h) { return &s->shards[(h >> 58) % SHARDS]; }
static struct ev **chain_of(struct shard *sh, uint64_t h) { return &sh->chains[(h >> 40) % CHAINS]; }

/* Attributes worth carrying: flat values (arrays and maps stay on the log record). */
static bool flat(const st_key_value *kv) {
        if (!kv || !kv->key || !kv->value)
                return false;
        switch (kv->value->value_case) {
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: return kv->value->string_value != NULL;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE: return true;
        default: return false;
        }
}

int st_spanev_add(struct st_spanev *s, const uint8_t trace_id[16], const uint8_t span_id[8], const st_log_record *lr,
                  int64_t now_ns) {
        const char *name = lr->event_name && *lr->event_name ? lr->event_name : "kernel.event";
        size_t n = 0, bytes = strlen(name) + 1;
        for (size_t i = 0; i < lr->n_attributes; i++) {
                const st_key_value *kv = lr->attributes[i];
                if (!flat(kv) || strcmp(kv->key, "event.name") == 0)
                        continue;
                n++;
                bytes += strlen(kv->key) + 1;
                if (kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
                        bytes += strlen(kv->value->string_value) + 1;
        }
        /* the slot first: counting after inserting would let a concurrent attach count the
         * event out before it was counted in */
        if (atomic_fetch_add(&s->n, 1) >= s->max_events) {
                atomic_fetch_sub(&s->n, 1);
                atomic_fetch_add(&s->refused, 1);
                return -ENOBUFS;
        }
        struct ev *e = malloc(sizeof(*e) + n * sizeof(struct attr) + bytes);
        if (!e) {
                atomic_fetch_sub(&s->n, 1);
                return -ENOMEM;
        }
        char *p = (char *) &e->attrs[n];
        memcpy(e->trace_id, trace_id, 16);
        memcpy(e->span_id, span_id, 8);
        e->added_ns = now_ns;
        e->time = lr->time_unix_nano;
        e->name = strcpy(p, name);
        p += strlen(name) + 1;
        e->n_attrs = 0;
        for (size_t i = 0; i < lr->n_attributes; i++) {
                const st_key_value *kv = lr->attributes[i];
                if (!flat(kv) || strcmp(kv->key, "event.name") == 0)
                        continue;
                struct attr *a = &e->attrs[e->n_attrs++];
                a->key = strcpy(p, kv->key);
                p += strlen(kv->key) + 1;
                switch (kv->value->value_case) {
                case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
                        a->kind = A_STR;
                        a->s = strcpy(p, kv->value->string_value);
                        p += strlen(kv->value->string_value) + 1;
                        break;
                case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
                        a->kind = A_INT;
                        a->i = kv->value->int_value;
                        break;
                case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
                        a->kind = A_DOUBLE;
                        a->d = kv->value->double_value;
                        break;
                default:
                        a->kind = A_BOOL;
                        a->b = kv->value->bool_value;
                        break;
                }
        }
        uint64_t h = hash_of(span_id);
        struct shard *sh = shard_of(s, h);
        pthread_mutex_lock(&sh->lock);
        e->next = *chain_of(sh, h);
        *chain_of(sh, h) = e;
        pthread_mutex_unlock(&sh->lock);
        return 0;
}

static st_key_value *kv_of(st_arena *a, const struct attr *at) {
        struct {
                st_key_value kv;
                st_any_value v;
        } *p = st_arena_alloc(a, sizeof(*p));
        char *key = st_arena_strdup(a, at->key);
        if (!p || !key)
                return NULL;
        opentelemetry__proto__common__v1__key_value__init(&p->kv);
        opentelemetry__proto__common__v1__any_value__init(&p->v);
        p->kv.key = key;
        p->kv.value = &p->v;
        switch (at->kind) {
        case A_STR:
                p->v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
                if (!(p->v.string_value = st_arena_strdup(a, at->s)))
                        return NULL;
                break;
        case A_INT:
                p->v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
                p->v.int_value = at->i;
                break;
        case A_DOUBLE:
                p->v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
                p->v.double_value = at->d;
                break;
        default:
                p->v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
                p->v.bool_value = at->b;
                break;
        }
        return &p->kv;
}

int st_spanev_attach(struct st_spanev *s, st_span *span, st_arena *arena) {
        if (span->trace_id.len != 16 || span->span_id.len != 8)
                return 0;
        uint64_t h = hash_of(span->span_id.data);
        struct shard *sh = shard_of(s, h);
        struct ev *mine = NULL;
        size_t n = 0;
        pthread_mutex_lock(&sh->lock);
        for (struct ev **pp = chain_of(sh, h); *pp;) {
                struct ev *e = *pp;
                if (memcmp(e->span_id, span->span_id.data, 8) != 0 || memcmp(e->trace_id, span->trace_id.data, 16) != 0) {
                        pp = &e->next;
                        continue;
                }
                *pp = e->next;
                /* oldest first */
                struct ev **ins = &mine;
                while (*ins && (*ins)->time <= e->time)
                        ins = &(*ins)->next;
                e->next = *ins;
                *ins = e;
                n++;
        }
        pthread_mutex_unlock(&sh->lock);
        if (!n)
                return 0;
        atomic_fetch_sub(&s->n, n);

        int r = 0;
        st_span_event **v = st_arena_alloc(arena, (span->n_events + n) * sizeof(*v));
        if (!v)
                r = -ENOMEM;
        else if (span->n_events)
                memcpy(v, span->events, span->n_events * sizeof(*v));
        size_t m = span->n_events;
        for (struct ev *e = mine, *next; e; e = next) {
                next = e->next;
                st_span_event *se = r < 0 ? NULL : st_arena_alloc(arena, sizeof(*se));
                st_key_value **attrs = se && e->n_attrs ? st_arena_alloc(arena, e->n_attrs * sizeof(*attrs)) : NULL;
                if (r >= 0 && (!se || (e->n_attrs && !attrs)))
                        r = -ENOMEM;
                if (r >= 0) {
                        opentelemetry__proto__trace__v1__span__event__init(se);
                        se->time_unix_nano = e->time;
                        se->name = st_arena_strdup(arena, e->name);
                        se->attributes = attrs;
                        for (size_t i = 0; i < e->n_attrs && r >= 0; i++)
                                if (!(attrs[se->n_attributes++] = kv_of(arena, &e->attrs[i])))
                                        r = -ENOMEM;
                        if (!se->name)
                                r = -ENOMEM;
                        v[m++] = se;
                }
                free(e);
        }
        if (r < 0)
                return r;
        span->events = v;
        span->n_events = m;
        return (int) n;
}

size_t st_spanev_expire(struct st_spanev *s, int64_t now_ns) {
        size_t gone = 0;
        for (size_t i = 0; i < SHARDS; i++) {
                struct shard *sh = &s->shards[i];
                pthread_mutex_lock(&sh->lock);
                for (size_t c = 0; c < CHAINS; c++)
                        for (struct ev **pp = &sh->chains[c]; *pp;) {
                                struct ev *e = *pp;
                                if (now_ns - e->added_ns > s->keep_ns) {
                                        *pp = e->next;
                                        free(e);
                                        gone++;
                                } else
                                        pp = &e->next;
                        }
                pthread_mutex_unlock(&sh->lock);
        }
        atomic_fetch_sub(&s->n, gone);
        return gone;
}

size_t st_spanev_size(struct st_spanev *s) { return atomic_load(&s->n); }
uint64_t st_spanev_refused(struct st_spanev *s) { return atomic_load(&s->refused); }

void st_spanev_tick(struct st_spanev *s, int64_t now_ns) {
        int64_t last = atomic_load_explicit(&s->last_expire_ns, memory_order_relaxed);
        if (now_ns - last < 1000000000 || !atomic_compare_exchange_strong(&s->last_expire_ns, &last, now_ns))
                return;
        st_spanev_expire(s, now_ns);
}
