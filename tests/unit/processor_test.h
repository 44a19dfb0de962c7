/* Helpers shared by the processor unit tests: a capturing next consumer, batch builders with
 * numbered items, and loading a factory's config from YAML. Header-only (static inline functions):
 * every test is its own binary. */
#pragma once
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"
#include "component.h"
#include "config_map.h"
#include "telemetry.h"
#include "tree.h"

/* ---- the next consumer: keeps a reference on everything it is given ---------------------- */

#define CAPTURE_MAX 4096
struct capture {
        pthread_mutex_t lock;
        st_batch *v[CAPTURE_MAX];
        size_t n, items, calls;
        int ret; /* what consume() answers; nonzero: the batch is not kept */
        size_t refuse_every; /* nonzero: every Nth call is refused with -ENOBUFS */
};

static inline int capture_consume(void *data, st_batch *b) {
        struct capture *c = data;
        pthread_mutex_lock(&c->lock);
        c->calls++;
        if (c->ret || (c->refuse_every && c->calls % c->refuse_every == 0)) {
                pthread_mutex_unlock(&c->lock);
                return c->ret ? c->ret : -ENOBUFS;
        }
        assert_true(c->n < CAPTURE_MAX);
        c->v[c->n++] = st_batch_ref(b);
        c->items += b->items;
        pthread_mutex_unlock(&c->lock);
        return 0;
}

static inline void capture_init(struct capture *c) {
        memset(c, 0, sizeof(*c));
        pthread_mutex_init(&c->lock, NULL);
}

static inline size_t capture_count(struct capture *c) {
        pthread_mutex_lock(&c->lock);
        size_t n = c->n;
        pthread_mutex_unlock(&c->lock);
        return n;
}

static inline void capture_free(struct capture *c) {
        for (size_t i = 0; i < c->n; i++)
                st_batch_unref(c->v[i]);
        pthread_mutex_destroy(&c->lock);
        memset(c, 0, sizeof(*c));
}

/* A processor instance wired to a capture, with its own counters. */
struct harness {
        const struct st_factory *f;
        void *cfg;
        struct st_component_telemetry tel;
        struct st_component_settings set;
        struct capture cap;
        void *inst;
};

/* ---- config from YAML ---------------------------------------------------------------------- */

/* Loads and validates; returns the error and leaves the diagnostics in d. */
static inline int load_config(const struct st_factory *f, const char *yaml, void **ret_cfg, struct st_diag *d) {
        st_node *root = NULL;
        void *cfg;
        int r = st_tree_parse_string("test.yaml", yaml, strlen(yaml), &root, d);
        if (r < 0)
                return r;
        cfg = calloc(1, f->config_size);
        assert_non_null(cfg);
        r = st_cfg_load(f->config, cfg, root, d);
        if (r >= 0 && f->validate) {
                struct st_cfg_ctx ctx = { .diag = d, .node = root, .at = root };
                r = f->validate(cfg, &ctx);
        }
        st_node_free(root);
        if (r < 0) {
                st_cfg_free(f->config, cfg);
                free(cfg);
                return r;
        }
        *ret_cfg = cfg;
        return 0;
}

/* Expects the config to be refused with a message containing `needle`. */
static inline void expect_config_error(const struct st_factory *f, const char *yaml, const char *needle) {
        struct st_diag d = { 0 };
        void *cfg = NULL;
        int r = load_config(f, yaml, &cfg, &d);
        if (r >= 0 || !strstr(st_buf_cstr(&d.text), needle))
                fail_msg("config <<%s>> gave %d, diagnostics <<%s>>, expected '%s'", yaml, r, st_buf_cstr(&d.text), needle);
        st_diag_free(&d);
}

static inline void harness_init(struct harness *h, const struct st_factory *f, enum st_signal s, const char *yaml) {
        struct st_diag d = { 0 };
        memset(h, 0, sizeof(*h));
        h->f = f;
        if (load_config(f, yaml, &h->cfg, &d) < 0)
                fail_msg("config <<%s>>: %s", yaml, st_buf_cstr(&d.text));
        st_diag_free(&d);
        capture_init(&h->cap);
        h->set = (struct st_component_settings) {
                .id = f->type, .log_name = f->type, .kind = ST_PROCESSOR, .tel = &h->tel, .signal = s,
        };
        h->set.next[s] = (struct st_consumer) { .consume = capture_consume, .data = &h->cap };
        assert_int_equal(f->create(&h->set, h->cfg, &h->inst), 0);
}

static inline void harness_free(struct harness *h) {
        h->f->destroy(h->inst);
        st_tel_metrics_free(&h->tel); /* component metrics registered by create() */
        st_cfg_free(h->f->config, h->cfg);
        free(h->cfg);
        capture_free(&h->cap);
}

/* ---- batches with numbered items ------------------------------------------------------------ */

static inline st_key_value *kv_new(st_arena *a, const char *key, const char *sval) {
        st_key_value *kv = st_arena_alloc(a, sizeof(*kv));
        st_any_value *v = st_arena_alloc(a, sizeof(*v));
        opentelemetry__proto__common__v1__key_value__init(kv);
        opentelemetry__proto__common__v1__any_value__init(v);
        kv->key = st_arena_strdup(a, key);
        kv->value = v;
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = st_arena_strdup(a, sval);
        return kv;
}

static inline void *msg_new(st_arena *a, const ProtobufCMessageDescriptor *d) {
        void *m = st_arena_alloc(a, d->sizeof_message);
        protobuf_c_message_init(d, m);
        return m;
}

static inline void **ptrs_new(st_arena *a, size_t n) {
        return st_arena_zalloc(a, (n ? n : 1) * sizeof(void *));
}

/* Every point of a metric carries its id in time_unix_nano and a "kind" attribute. */
static inline st_metric *metric_new(st_arena *a, int kind, size_t points, uint64_t *id) {
        st_metric *m = msg_new(a, &opentelemetry__proto__metrics__v1__metric__descriptor);
        m->name = st_arena_strdup(a, "m");
#define POINTS(PT, desc, holder, holder_desc, CASE)                                                  \
        do {                                                                                         \
                holder = msg_new(a, &holder_desc);                                                   \
                holder->n_data_points = points;                                                      \
                holder->data_points = (PT **) ptrs_new(a, points);                                   \
                for (size_t i = 0; i < points; i++) {                                                \
                        PT *p = msg_new(a, &desc);                                                   \
                        p->time_unix_nano = (*id)++;                                                 \
                        holder->data_points[i] = p;                                                  \
                }                                                                                    \
                m->data_case = CASE;                                                                 \
        } while (0)
        switch (kind) {
        case 0:
                POINTS(st_number_point, opentelemetry__proto__metrics__v1__number_data_point__descriptor, m->gauge,
                       opentelemetry__proto__metrics__v1__gauge__descriptor, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
                break;
        case 1:
                POINTS(st_number_point, opentelemetry__proto__metrics__v1__number_data_point__descriptor, m->sum,
                       opentelemetry__proto__metrics__v1__sum__descriptor, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
                break;
        case 2:
                POINTS(Opentelemetry__Proto__Metrics__V1__HistogramDataPoint,
                       opentelemetry__proto__metrics__v1__histogram_data_point__descriptor, m->histogram,
                       opentelemetry__proto__metrics__v1__histogram__descriptor, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
                break;
        case 3:
                POINTS(Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint,
                       opentelemetry__proto__metrics__v1__exponential_histogram_data_point__descriptor, m->exponential_histogram,
                       opentelemetry__proto__metrics__v1__exponential_histogram__descriptor,
                       OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM);
                break;
        default:
                POINTS(Opentelemetry__Proto__Metrics__V1__SummaryDataPoint,
                       opentelemetry__proto__metrics__v1__summary_data_point__descriptor, m->summary,
                       opentelemetry__proto__metrics__v1__summary__descriptor, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY);
                break;
        }
#undef POINTS
        return m;
}

static inline void *item_new(st_arena *a, enum st_signal s, size_t points, uint64_t *id) {
        switch (s) {
        case ST_TRACES: {
                st_span *sp = msg_new(a, &opentelemetry__proto__trace__v1__span__descriptor);
                uint64_t v = (*id)++;
                uint8_t *sid = st_arena_alloc(a, 8), *tid = st_arena_zalloc(a, 16);
                for (int i = 0; i < 8; i++)
                        sid[i] = tid[8 + i] = (uint8_t) (v >> (56 - 8 * i));
                sp->span_id = (ProtobufCBinaryData) { .len = 8, .data = sid };
                sp->trace_id = (ProtobufCBinaryData) { .len = 16, .data = tid };
                sp->name = st_arena_strdup(a, "op");
                return sp;
        }
        case ST_LOGS: {
                st_log_record *lr = msg_new(a, &opentelemetry__proto__logs__v1__log_record__descriptor);
                lr->time_unix_nano = (*id)++;
                return lr;
        }
        default:
                return metric_new(a, (int) (*id % 5), points, id);
        }
}

/* n_res resource entries × n_scopes scope entries × n_items items (metrics: of `points`
 * points each); items numbered from *id on. Resources carry service.name=svc<r>. */
static inline st_batch *make_batch_p(enum st_signal s, size_t n_res, size_t n_scopes, size_t n_items, size_t points, uint64_t *id) {
        const struct st_signal_layout *L = &st_signals[s];
        st_batch *b;
        assert_int_equal(st_batch_new(s, &b), 0);
        st_arena *a = &b->arena;
        void **res = ptrs_new(a, n_res);
        for (size_t r = 0; r < n_res; r++) {
                void *re = msg_new(a, L->resource_entry);
                st_resource *rs = msg_new(a, &opentelemetry__proto__resource__v1__resource__descriptor);
                char name[32];
                snprintf(name, sizeof(name), "svc%zu", r);
                rs->n_attributes = 1;
                rs->attributes = (st_key_value **) ptrs_new(a, 1);
                rs->attributes[0] = kv_new(a, "service.name", name);
                ST_FIELD(re, L->res_resource, st_resource *) = rs;
                void **scopes = ptrs_new(a, n_scopes);
                for (size_t k = 0; k < n_scopes; k++) {
                        void *sc = msg_new(a, L->scope_entry);
                        void **items = ptrs_new(a, n_items);
                        for (size_t i = 0; i < n_items; i++)
                                items[i] = item_new(a, s, points, id);
                        ST_FIELD(sc, L->scope_n, size_t) = n_items;
                        ST_FIELD(sc, L->scope_v, void **) = items;
                        scopes[k] = sc;
                }
                ST_FIELD(re, L->res_n, size_t) = n_scopes;
                ST_FIELD(re, L->res_v, void **) = scopes;
                res[r] = re;
        }
        ST_FIELD(b->req, L->req_n, size_t) = n_res;
        ST_FIELD(b->req, L->req_v, void **) = res;
        b->cap_res = n_res;
        st_batch_recount(b);
        return b;
}

static inline st_batch *make_batch(enum st_signal s, size_t n_res, size_t n_scopes, size_t n_items, uint64_t *id) {
        return make_batch_p(s, n_res, n_scopes, n_items, 1, id);
}

/* The ids of a metric's points, appended to ids. */
static inline void metric_ids(const st_metric *m, uint64_t *ids, size_t *n) {
#define IDS(holder)                                                              \
        do {                                                                     \
                for (size_t i_ = 0; holder && i_ < holder->n_data_points; i_++) \
                        ids[(*n)++] = holder->data_points[i_]->time_unix_nano;   \
        } while (0)
        switch (m->data_case) {
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE: IDS(m->gauge); break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: IDS(m->sum); break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: IDS(m->histogram); break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: IDS(m->exponential_histogram); break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: IDS(m->summary); break;
        default: break;
        }
#undef IDS
}

/* Item ids in request order; returns how many. ids must hold b->items. */
static inline size_t batch_ids(const st_batch *b, uint64_t *ids) {
        enum st_signal s = b->signal;
        size_t n = 0;
        const ProtobufCMessage *req = st_batch_req((st_batch *) b);
        for (size_t r = 0; r < st_req_n(s, req); r++) {
                void *re = st_req_v(s, req)[r];
                for (size_t k = 0; k < st_res_n(s, re); k++) {
                        void *sc = st_res_v(s, re)[k];
                        for (size_t i = 0; i < st_scope_n(s, sc); i++) {
                                void *it = st_scope_v(s, sc)[i];
                                if (s == ST_TRACES) {
                                        const st_span *sp = it;
                                        uint64_t v = 0;
                                        assert_int_equal(sp->span_id.len, 8);
                                        for (int j = 0; j < 8; j++)
                                                v = v << 8 | sp->span_id.data[j];
                                        ids[n++] = v;
                                } else if (s == ST_LOGS) {
                                        ids[n++] = ((const st_log_record *) it)->time_unix_nano;
                                } else {
                                        metric_ids(it, ids, &n);
                                }
                        }
                }
        }
        return n;
}

/* Packs and unpacks b, as an exporter and the next hop would. */
static inline st_batch *roundtrip(const st_batch *b) {
        size_t n = st_batch_packed_size(b);
        uint8_t *buf = malloc(n ? n : 1);
        st_batch *out;
        assert_non_null(buf);
        assert_int_equal(st_batch_pack(b, buf), n);
        assert_int_equal(st_batch_unpack(b->signal, buf, n, &out), 0);
        free(buf);
        return out;
}

/* Attribute lookup for assertions: NULL when absent. */
static inline const st_any_value *attr_get(st_key_value *const *v, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i]->key, key) == 0)
                        return v[i]->value;
        return NULL;
}

static inline size_t attr_count(st_key_value *const *v, size_t n, const char *key) {
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
                c += strcmp(v[i]->key, key) == 0;
        return c;
}

/* ---- every attribute list of a batch's items (spans, log records, data points) -------------- */

typedef void (*attr_list_fn)(st_key_value ***v, size_t *n, void *ctx);

static inline void metric_lists(st_metric *m, attr_list_fn fn, void *ctx) {
#define LISTS(holder)                                                                           \
        do {                                                                                    \
                for (size_t i_ = 0; holder && i_ < holder->n_data_points; i_++)                \
                        fn(&holder->data_points[i_]->attributes, &holder->data_points[i_]->n_attributes, ctx); \
        } while (0)
        switch (m->data_case) {
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE: LISTS(m->gauge); break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: LISTS(m->sum); break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: LISTS(m->histogram); break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: LISTS(m->exponential_histogram); break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: LISTS(m->summary); break;
        default: break;
        }
#undef LISTS
}

/* Calls fn for every item-level attribute list; returns how many lists there were. */
static inline size_t item_lists(st_batch *b, attr_list_fn fn, void *ctx) {
        enum st_signal s = b->signal;
        size_t lists = 0;
        const ProtobufCMessage *req = st_batch_req(b);
        for (size_t r = 0; r < st_req_n(s, req); r++) {
                void *re = st_req_v(s, req)[r];
                for (size_t k = 0; k < st_res_n(s, re); k++) {
                        void *sc = st_res_v(s, re)[k];
                        for (size_t i = 0; i < st_scope_n(s, sc); i++) {
                                void *it = st_scope_v(s, sc)[i];
                                if (s == ST_TRACES) {
                                        fn(&((st_span *) it)->attributes, &((st_span *) it)->n_attributes, ctx);
                                        lists++;
                                } else if (s == ST_LOGS) {
                                        fn(&((st_log_record *) it)->attributes, &((st_log_record *) it)->n_attributes, ctx);
                                        lists++;
                                } else {
                                        metric_lists(it, fn, ctx);
                                        lists += st_metric_points(it);
                                }
                        }
                }
        }
        return lists;
}

/* Replaces a list by `old: v, gone: x` (allocated in the arena passed as ctx). */
static inline void set_item_attrs(st_key_value ***v, size_t *n, void *arena) {
        *v = (st_key_value **) ptrs_new(arena, 2);
        (*v)[0] = kv_new(arena, "old", "v");
        (*v)[1] = kv_new(arena, "gone", "x");
        *n = 2;
}
