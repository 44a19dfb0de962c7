#include "ebpf_metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum metric_id { M_EXECS, M_CONNECTIONS, M_IO, M_DURATION, M_COUNT };

static const struct {
        const char *name, *unit, *description;
        bool histogram;
} defs[M_COUNT] = {
        [M_EXECS] = { "strata.process.execs", "{exec}", "Programs executed, by executable name.", false },
        [M_CONNECTIONS] = { "strata.network.connections", "{connection}", "TCP connections established, by peer and direction.", false },
        [M_IO] = { "strata.network.io", "By", "Payload bytes of closed TCP connections, by peer and direction.", false },
        [M_DURATION] = { "strata.network.connection.duration", "s", "Lifetime of closed TCP connections.", true },
};

/* seconds */
static const double bounds[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 3600 };
#define N_BOUNDS (sizeof(bounds) / sizeof(bounds[0]))

#define MAX_ATTRS 3

struct attr {
        const char *key; /* static */
        bool is_int;
        int64_t i;
        char s[64];
};

struct series {
        enum metric_id metric;
        struct attr attrs[MAX_ATTRS];
        size_t n_attrs;
        bool overflow;
        int64_t value;                     /* sums */
        uint64_t count, buckets[N_BOUNDS + 1];
        double sum, min, max;              /* histograms */
        struct series *next;               /* hash chain */
};

#define BUCKETS 1024

struct kmetrics {
        struct series *table[BUCKETS];
        size_t n, max;
};

int kmetrics_new(size_t max_series, struct kmetrics **ret) {
        struct kmetrics *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->max = max_series;
        *ret = m;
        return 0;
}

void kmetrics_free(struct kmetrics *m) {
        if (!m)
                return;
        for (size_t b = 0; b < BUCKETS; b++)
                for (struct series *s = m->table[b], *n; s; s = n) {
                        n = s->next;
                        free(s);
                }
        free(m);
}

size_t kmetrics_series(const struct kmetrics *m) { return m->n; }

static uint64_t hash_series(enum metric_id id, const struct attr *a, size_t n, bool overflow) {
        uint64_t h = 1469598103934665603u ^ (uint64_t) id ^ ((uint64_t) overflow << 8);
        for (size_t i = 0; i < n; i++) {
                const unsigned char *p = (const unsigned char *) (a[i].is_int ? (const char *) &a[i].i : a[i].s);
                size_t len = a[i].is_int ? sizeof(a[i].i) : strlen(a[i].s);
                for (size_t k = 0; k < len; k++)
                        h = (h ^ p[k]) * 1099511628211u;
                h = (h ^ 0xff) * 1099511628211u;
        }
        return h;
}

static bool same(const struct series *s, enum metric_id id, const struct attr *a, size_t n, bool overflow) {
        if (s->metric != id || s->n_attrs != n || s->overflow != overflow)
                return false;
        for (size_t i = 0; i < n; i++)
                if (a[i].is_int ? s->attrs[i].i != a[i].i : strcmp(s->attrs[i].s, a[i].s) != 0)
                        return false;
        return true;
}

/* The series of (id, attrs), created when new; past max_series, the metric's overflow series. */
static struct series *find(struct kmetrics *m, enum metric_id id, const struct attr *a, size_t n) {
        bool overflow = false;
        for (;;) {
                size_t na = overflow ? 0 : n;
                uint64_t h = hash_series(id, a, na, overflow) % BUCKETS;
                for (struct series *s = m->table[h]; s; s = s->next)
                        if (same(s, id, a, na, overflow))
                                return s;
                if (!overflow && m->n >= m->max) {
                        overflow = true;
                        continue;
                }
                struct series *s = calloc(1, sizeof(*s));
                if (!s)
                        return NULL;
                s->metric = id;
                s->overflow = overflow;
                s->n_attrs = na;
                memcpy(s->attrs, a, na * sizeof(*a));
                s->next = m->table[h];
                m->table[h] = s;
                m->n++;
                return s;
        }
}

static void set_str(struct attr *a, const char *key, const char *v, size_t len) {
        a->key = key;
        a->is_int = false;
        if (len >= sizeof(a->s))
                len = sizeof(a->s) - 1;
        memcpy(a->s, v, len);
        a->s[len] = '\0';
}

static void set_int(struct attr *a, const char *key, int64_t v) {
        a->key = key;
        a->is_int = true;
        a->i = v;
        a->s[0] = '\0';
}

void kmetrics_add(struct kmetrics *m, const struct kevent *ev, uint32_t weight) {
        struct attr a[MAX_ATTRS];
        struct series *s;
        char addr[64];
        memset(a, 0, sizeof(a));

        switch (ev->type) {
        case ST_EV_EXEC:
                set_str(&a[0], "process.executable.name", ev->h->comm, strnlen(ev->h->comm, sizeof(ev->h->comm)));
                if ((s = find(m, M_EXECS, a, 1)))
                        s->value += weight;
                break;
        case ST_EV_CONNECT:
        case ST_EV_ACCEPT: {
                const struct st_ev_conn *c = ev->conn;
                bool in = c->direction == ST_CONN_INBOUND;
                kevent_addr(c->family, c->remote_addr, addr, sizeof(addr));
                set_str(&a[0], "strata.network.direction", in ? "inbound" : "outbound", in ? 7 : 8);
                set_str(&a[1], "network.peer.address", addr, strlen(addr));
                /* inbound: the service port, not the client's ephemeral one */
                set_int(&a[2], in ? "network.local.port" : "network.peer.port", in ? c->local_port : c->remote_port);
                if ((s = find(m, M_CONNECTIONS, a, 3)))
                        s->value += weight;
                break;
        }
        case ST_EV_CLOSE: {
                const struct st_ev_conn *c = ev->conn;
                bool in = c->direction == ST_CONN_INBOUND;
                kevent_addr(c->family, c->remote_addr, addr, sizeof(addr));
                set_str(&a[1], "network.peer.address", addr, strlen(addr));
                set_str(&a[2], "strata.network.direction", in ? "inbound" : "outbound", in ? 7 : 8);
                set_str(&a[0], "network.io.direction", "transmit", 8);
                if ((s = find(m, M_IO, a, 3)))
                        s->value += (int64_t) c->bytes_sent * weight;
                set_str(&a[0], "network.io.direction", "receive", 7);
                if ((s = find(m, M_IO, a, 3)))
                        s->value += (int64_t) c->bytes_received * weight;
                set_str(&a[0], "strata.network.direction", in ? "inbound" : "outbound", in ? 7 : 8);
                if ((s = find(m, M_DURATION, a, 1))) {
                        double d = (double) c->duration_ns / 1e9;
                        size_t b = 0;
                        while (b < N_BOUNDS && d > bounds[b])
                                b++;
                        s->buckets[b] += weight;
                        if (!s->count || d < s->min)
                                s->min = d;
                        if (!s->count || d > s->max)
                                s->max = d;
                        s->count += weight;
                        s->sum += d * weight;
                }
                break;
        }
        default:
                break;
        }
}

/* --- building the OTLP request --------------------------------------------------------------- */

static st_key_value **make_attrs(st_arena *a, const struct series *s) {
        size_t n = s->overflow ? 1 : s->n_attrs;
        st_key_value **v = st_arena_alloc(a, n * sizeof(*v));
        if (!v)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                st_key_value *kv = st_arena_alloc(a, sizeof(*kv));
                st_any_value *val = st_arena_alloc(a, sizeof(*val));
                if (!kv || !val)
                        return NULL;
                opentelemetry__proto__common__v1__key_value__init(kv);
                opentelemetry__proto__common__v1__any_value__init(val);
                kv->value = val;
                if (s->overflow) {
                        kv->key = (char *) "otel.metric.overflow";
                        val->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
                        val->bool_value = 1;
                } else if (s->attrs[i].is_int) {
                        kv->key = (char *) s->attrs[i].key;
                        val->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
                        val->int_value = s->attrs[i].i;
                } else {
                        kv->key = (char *) s->attrs[i].key;
                        val->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
                        val->string_value = st_arena_strdup(a, s->attrs[i].s);
                        if (!val->string_value)
                                return NULL;
                }
                v[i] = kv;
        }
        return v;
}

typedef Opentelemetry__Proto__Metrics__V1__Sum st_sum;
typedef Opentelemetry__Proto__Metrics__V1__Histogram st_histogram;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint st_histogram_point;

int kmetrics_build(struct kmetrics *m, uint64_t start_unix_ns, uint64_t now_unix_ns, st_batch **ret) {
        size_t per[M_COUNT] = { 0 }, n_metrics = 0;
        st_batch *b;
        int r;

        *ret = NULL;
        for (size_t h = 0; h < BUCKETS; h++)
                for (struct series *s = m->table[h]; s; s = s->next)
                        per[s->metric]++;
        for (int i = 0; i < M_COUNT; i++)
                n_metrics += per[i] > 0;
        if (!n_metrics)
                return 0;
        if ((r = st_batch_new(ST_METRICS, &b)) < 0)
                return r;
        st_arena *a = &b->arena;
        st_metrics_req *req = (st_metrics_req *) b->req;
        st_resource_metrics *rm = st_arena_alloc(a, sizeof(*rm));
        st_resource_metrics **rmv = st_arena_alloc(a, sizeof(*rmv));
        st_resource *res = st_arena_alloc(a, sizeof(*res));
        st_scope_metrics *sm = st_arena_alloc(a, sizeof(*sm));
        st_scope_metrics **smv = st_arena_alloc(a, sizeof(*smv));
        st_scope *scope = st_arena_alloc(a, sizeof(*scope));
        st_metric **metrics = st_arena_alloc(a, n_metrics * sizeof(*metrics));
        st_key_value **rattrs = st_arena_alloc(a, 2 * sizeof(*rattrs));
        if (!rm || !rmv || !res || !sm || !smv || !scope || !metrics || !rattrs)
                goto oom;
        opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
        opentelemetry__proto__resource__v1__resource__init(res);
        opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
        opentelemetry__proto__common__v1__instrumentation_scope__init(scope);
        /* the host the kernel facts are about */
        char host[256] = "";
        gethostname(host, sizeof(host) - 1);
        struct series hs = { .n_attrs = 2 };
        set_str(&hs.attrs[0], "host.name", host, strlen(host));
        set_int(&hs.attrs[1], "strata.agent.pid", getpid());
        if (!(res->attributes = make_attrs(a, &hs)))
                goto oom;
        res->n_attributes = 2;
        scope->name = (char *) "strata/ebpf";
        scope->version = (char *) STRATA_VERSION;
        sm->scope = scope;
        rm->resource = res;
        *smv = sm;
        rm->scope_metrics = smv;
        rm->n_scope_metrics = 1;
        *rmv = rm;
        req->resource_metrics = rmv;
        req->n_resource_metrics = 1;

        size_t k = 0;
        for (int id = 0; id < M_COUNT; id++) {
                if (!per[id])
                        continue;
                st_metric *mt = st_arena_alloc(a, sizeof(*mt));
                void **points = st_arena_alloc(a, per[id] * sizeof(*points));
                if (!mt || !points)
                        goto oom;
                opentelemetry__proto__metrics__v1__metric__init(mt);
                mt->name = (char *) defs[id].name;
                mt->unit = (char *) defs[id].unit;
                mt->description = (char *) defs[id].description;
                size_t np = 0;
                for (size_t h = 0; h < BUCKETS; h++)
                        for (struct series *s = m->table[h]; s; s = s->next) {
                                if ((int) s->metric != id)
                                        continue;
                                st_key_value **attrs = make_attrs(a, s);
                                if (!attrs)
                                        goto oom;
                                size_t nattrs = s->overflow ? 1 : s->n_attrs;
                                if (defs[id].histogram) {
                                        st_histogram_point *p = st_arena_alloc(a, sizeof(*p));
                                        uint64_t *bc = st_arena_alloc(a, (N_BOUNDS + 1) * sizeof(*bc));
                                        if (!p || !bc)
                                                goto oom;
                                        opentelemetry__proto__metrics__v1__histogram_data_point__init(p);
                                        memcpy(bc, s->buckets, sizeof(s->buckets));
                                        p->attributes = attrs;
                                        p->n_attributes = nattrs;
                                        p->start_time_unix_nano = start_unix_ns;
                                        p->time_unix_nano = now_unix_ns;
                                        p->count = s->count;
                                        p->bucket_counts = bc;
                                        p->n_bucket_counts = N_BOUNDS + 1;
                                        p->explicit_bounds = (double *) bounds;
                                        p->n_explicit_bounds = N_BOUNDS;
                                        p->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
                                        p->sum = s->sum;
                                        if (s->count) {
                                                p->_min_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN;
                                                p->min = s->min;
                                                p->_max_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX_MAX;
                                                p->max = s->max;
                                        }
                                        points[np++] = p;
                                } else {
                                        st_number_point *p = st_arena_alloc(a, sizeof(*p));
                                        if (!p)
                                                goto oom;
                                        opentelemetry__proto__metrics__v1__number_data_point__init(p);
                                        p->attributes = attrs;
                                        p->n_attributes = nattrs;
                                        p->start_time_unix_nano = start_unix_ns;
                                        p->time_unix_nano = now_unix_ns;
                                        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
                                        p->as_int = s->value;
                                        points[np++] = p;
                                }
                        }
                if (defs[id].histogram) {
                        st_histogram *hg = st_arena_alloc(a, sizeof(*hg));
                        if (!hg)
                                goto oom;
                        opentelemetry__proto__metrics__v1__histogram__init(hg);
                        hg->aggregation_temporality = OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
                        hg->data_points = (st_histogram_point **) points;
                        hg->n_data_points = np;
                        mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
                        mt->histogram = hg;
                } else {
                        st_sum *sum = st_arena_alloc(a, sizeof(*sum));
                        if (!sum)
                                goto oom;
                        opentelemetry__proto__metrics__v1__sum__init(sum);
                        sum->aggregation_temporality = OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
                        sum->is_monotonic = 1;
                        sum->data_points = (st_number_point **) points;
                        sum->n_data_points = np;
                        mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
                        mt->sum = sum;
                }
                metrics[k++] = mt;
        }
        sm->metrics = metrics;
        sm->n_metrics = k;
        st_batch_recount(b);
        *ret = b;
        return 0;
oom:
        st_batch_unref(b);
        return -ENOMEM;
}
