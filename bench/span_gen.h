/* Realistic spans for the benchmarks, shared by otlp_loadgen and otlp_codec.
 *
 * What an instrumented HTTP service sends: a name, a kind, start/end times, 10 attributes of
 * mixed types (4 strings, 3 ints, a double, a bool, a string array of 3), one event with 2
 * attributes (a string, a double) and a status; SPANGEN_SPANS_PER_TRACE spans share a trace
 * id and point at its root. About 560 bytes per span packed.
 *
 * Header-only because every .c file in bench/ is its own executable. */
#pragma once
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "clock.h"
#include "otlp.h"

#define SPANGEN_SPANS_PER_TRACE 8

/* splitmix64: fast, good enough for ids and value choices. */
static inline uint64_t sg_rnd(uint64_t *s) {
        uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

/* A benchmark exits on OOM: there is nothing useful to do without its requests. */
static inline void *sg_zalloc(st_arena *a, size_t n) {
        void *p = st_arena_zalloc(a, n);
        if (!p) {
                fprintf(stderr, "out of memory building spans\n");
                exit(1);
        }
        return p;
}

static inline char *sg_str(st_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline char *sg_str(st_arena *a, const char *fmt, ...) {
        char tmp[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        char *s = st_arena_strdup(a, tmp);
        if (!s) {
                fprintf(stderr, "out of memory building spans\n");
                exit(1);
        }
        return s;
}

static inline st_any_value *sg_any(st_arena *a) {
        st_any_value *v = sg_zalloc(a, sizeof(*v));
        opentelemetry__proto__common__v1__any_value__init(v);
        return v;
}

static inline st_key_value *sg_kv(st_arena *a, const char *key, st_any_value *v) {
        st_key_value *k = sg_zalloc(a, sizeof(*k));
        opentelemetry__proto__common__v1__key_value__init(k);
        k->key = (char *) key;
        k->value = v;
        return k;
}

static inline st_key_value *sg_kv_str(st_arena *a, const char *key, const char *s) {
        st_any_value *v = sg_any(a);
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = (char *) s;
        return sg_kv(a, key, v);
}

static inline st_key_value *sg_kv_int(st_arena *a, const char *key, int64_t i) {
        st_any_value *v = sg_any(a);
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        v->int_value = i;
        return sg_kv(a, key, v);
}

static inline st_key_value *sg_kv_double(st_arena *a, const char *key, double d) {
        st_any_value *v = sg_any(a);
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        v->double_value = d;
        return sg_kv(a, key, v);
}

static inline st_key_value *sg_kv_bool(st_arena *a, const char *key, bool b) {
        st_any_value *v = sg_any(a);
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = b;
        return sg_kv(a, key, v);
}

static inline st_key_value *sg_kv_str_array(st_arena *a, const char *key, const char *const *s, size_t n) {
        st_array_value *arr = sg_zalloc(a, sizeof(*arr));
        opentelemetry__proto__common__v1__array_value__init(arr);
        arr->values = sg_zalloc(a, n * sizeof(*arr->values));
        for (size_t i = 0; i < n; i++) {
                arr->values[i] = sg_any(a);
                arr->values[i]->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
                arr->values[i]->string_value = (char *) s[i];
        }
        arr->n_values = n;
        st_any_value *v = sg_any(a);
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
        v->array_value = arr;
        return sg_kv(a, key, v);
}

static inline ProtobufCBinaryData sg_id(st_arena *a, uint64_t *seed, size_t len) {
        uint8_t *p = sg_zalloc(a, len);
        for (size_t i = 0; i < len; i += 8) {
                uint64_t x = sg_rnd(seed);
                memcpy(p + i, &x, len - i < 8 ? len - i : 8);
        }
        return (ProtobufCBinaryData) { .len = len, .data = p };
}

static const char *const sg_methods[] = { "GET", "GET", "GET", "POST", "PUT", "DELETE" };
static const char *const sg_routes[] = { "/api/v1/users/{id}", "/api/v1/orders/{id}", "/api/v1/cart/{id}/items",
                                      "/api/v1/products/{id}", "/healthz" };
static const char *const sg_route_prefix[] = { "/api/v1/users/", "/api/v1/orders/", "/api/v1/cart/",
                                            "/api/v1/products/", "/healthz" };
static const int64_t sg_status_codes[] = { 200, 200, 200, 200, 200, 200, 201, 204, 404, 500 };
static const char *const sg_accept_values[] = { "application/json", "text/html;q=0.9", "*/*;q=0.8" };
#define SG_N(x) (sizeof(x) / sizeof((x)[0]))

/* One span; root is the trace's first span (NULL for the root itself). */
static inline st_span *spangen_span(st_arena *a, uint64_t *seed, const st_span *root, uint64_t now_ns) {
        st_span *sp = sg_zalloc(a, sizeof(*sp));
        opentelemetry__proto__trace__v1__span__init(sp);
        uint64_t r = sg_rnd(seed);
        size_t route = (r >> 8) % SG_N(sg_routes);
        int64_t code = sg_status_codes[(r >> 16) % SG_N(sg_status_codes)];
        uint64_t id = (r >> 24) % 1000000;
        uint64_t dur = 50000 + (sg_rnd(seed) % 50000000); /* 50 µs .. 50 ms */
        uint64_t start = now_ns - (sg_rnd(seed) % (60 * (uint64_t) ST_NS_PER_SEC));

        sp->trace_id = root ? root->trace_id : sg_id(a, seed, 16);
        sp->span_id = sg_id(a, seed, 8);
        if (root)
                sp->parent_span_id = root->span_id;
        sp->flags = 0x100 | 0x01; /* sampled; "is remote" known (false) */
        sp->name = sg_str(a, "%s %s", sg_methods[r % SG_N(sg_methods)], sg_routes[route]);
        sp->kind = root ? OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT
                        : OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
        sp->start_time_unix_nano = start;
        sp->end_time_unix_nano = start + dur;

        sp->n_attributes = 10;
        sp->attributes = sg_zalloc(a, sp->n_attributes * sizeof(*sp->attributes));
        size_t i = 0;
        sp->attributes[i++] = sg_kv_str(a, "http.request.method", sg_methods[r % SG_N(sg_methods)]);
        sp->attributes[i++] = sg_kv_str(a, "http.route", sg_routes[route]);
        sp->attributes[i++] = sg_kv_str(a, "url.path", sg_str(a, "%s%" PRIu64, sg_route_prefix[route], id));
        sp->attributes[i++] = sg_kv_int(a, "http.response.status_code", code);
        sp->attributes[i++] = sg_kv_str(a, "server.address", "checkout.shop.svc.cluster.local");
        sp->attributes[i++] = sg_kv_int(a, "server.port", 8080);
        sp->attributes[i++] = sg_kv_int(a, "http.response.body.size", (int64_t) (sg_rnd(seed) % 65536));
        sp->attributes[i++] = sg_kv_double(a, "app.cart.total", (double) (sg_rnd(seed) % 100000) / 100.0);
        sp->attributes[i++] = sg_kv_bool(a, "app.cache.hit", sg_rnd(seed) & 1);
        sp->attributes[i++] = sg_kv_str_array(a, "http.request.header.accept", sg_accept_values, SG_N(sg_accept_values));

        st_span_event *ev = sg_zalloc(a, sizeof(*ev));
        opentelemetry__proto__trace__v1__span__event__init(ev);
        ev->time_unix_nano = start + dur / 2;
        ev->name = "cache.lookup";
        ev->n_attributes = 2;
        ev->attributes = sg_zalloc(a, 2 * sizeof(*ev->attributes));
        ev->attributes[0] = sg_kv_str(a, "cache.key", sg_str(a, "user:%" PRIu64, id));
        ev->attributes[1] = sg_kv_double(a, "cache.latency_ms", (double) (sg_rnd(seed) % 5000) / 1000.0);
        sp->n_events = 1;
        sp->events = sg_zalloc(a, sizeof(*sp->events));
        sp->events[0] = ev;

        Opentelemetry__Proto__Trace__V1__Status *st = sg_zalloc(a, sizeof(*st));
        opentelemetry__proto__trace__v1__status__init(st);
        if (code >= 500) {
                st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
                st->message = "internal server error";
        }
        sp->status = st;
        return sp;
}

/* An ExportTraceServiceRequest of n spans in arena a: one service resource, one scope. */
static inline st_traces_req *spangen_request(st_arena *a, uint64_t *seed, size_t n, uint64_t now_ns) {
        st_resource *res = sg_zalloc(a, sizeof(*res));
        opentelemetry__proto__resource__v1__resource__init(res);
        res->n_attributes = 6;
        res->attributes = sg_zalloc(a, res->n_attributes * sizeof(*res->attributes));
        res->attributes[0] = sg_kv_str(a, "service.name", "checkout");
        res->attributes[1] = sg_kv_str(a, "service.version", "1.42.0");
        res->attributes[2] = sg_kv_str(a, "service.instance.id", sg_str(a, "%016" PRIx64, sg_rnd(seed)));
        res->attributes[3] = sg_kv_str(a, "host.name", "bench-node-1");
        res->attributes[4] = sg_kv_str(a, "telemetry.sdk.language", "c");
        res->attributes[5] = sg_kv_str(a, "telemetry.sdk.name", "strata-loadgen");

        st_scope *scope = sg_zalloc(a, sizeof(*scope));
        opentelemetry__proto__common__v1__instrumentation_scope__init(scope);
        scope->name = "io.strata.bench.loadgen";
        scope->version = "0.1.0";

        st_scope_spans *ss = sg_zalloc(a, sizeof(*ss));
        opentelemetry__proto__trace__v1__scope_spans__init(ss);
        ss->scope = scope;
        ss->spans = sg_zalloc(a, n * sizeof(*ss->spans));
        const st_span *root = NULL;
        for (size_t i = 0; i < n; i++) {
                if (i % SPANGEN_SPANS_PER_TRACE == 0)
                        root = NULL;
                ss->spans[i] = spangen_span(a, seed, root, now_ns);
                if (!root)
                        root = ss->spans[i];
        }
        ss->n_spans = n;

        st_resource_spans *rs = sg_zalloc(a, sizeof(*rs));
        opentelemetry__proto__trace__v1__resource_spans__init(rs);
        rs->resource = res;
        rs->scope_spans = sg_zalloc(a, sizeof(*rs->scope_spans));
        rs->scope_spans[0] = ss;
        rs->n_scope_spans = 1;

        st_resource_spans **rsv = sg_zalloc(a, sizeof(*rsv));
        rsv[0] = rs;
        st_traces_req *req = sg_zalloc(a, sizeof(*req));
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
        req->resource_spans = rsv;
        req->n_resource_spans = 1;
        return req;
}
