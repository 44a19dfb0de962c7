/* Arena, batch reference counting, cloning, and zero-copy append/cut (the batch processor's
 * building block). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arena.h"
#include "batch.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"

/* A traces batch with n_res resources × n_scope scopes × n_spans spans; span names encode
 * their position so that order can be checked after cutting. */
static st_batch *make_traces(size_t n_res, size_t n_scope, size_t n_spans) {
        st_batch *b;
        assert_int_equal(st_batch_new(ST_TRACES, &b), 0);
        st_arena *a = &b->arena;
        st_traces_req *req = (st_traces_req *) b->req;
        req->n_resource_spans = n_res;
        req->resource_spans = st_arena_alloc(a, n_res * sizeof(void *));
        for (size_t i = 0; i < n_res; i++) {
                st_resource_spans *rs = st_arena_alloc(a, sizeof(*rs));
                opentelemetry__proto__trace__v1__resource_spans__init(rs);
                rs->n_scope_spans = n_scope;
                rs->scope_spans = st_arena_alloc(a, n_scope * sizeof(void *));
                for (size_t j = 0; j < n_scope; j++) {
                        st_scope_spans *ss = st_arena_alloc(a, sizeof(*ss));
                        opentelemetry__proto__trace__v1__scope_spans__init(ss);
                        ss->n_spans = n_spans;
                        ss->spans = st_arena_alloc(a, n_spans * sizeof(void *));
                        for (size_t k = 0; k < n_spans; k++) {
                                st_span *sp = st_arena_alloc(a, sizeof(*sp));
                                opentelemetry__proto__trace__v1__span__init(sp);
                                char name[96];
                                snprintf(name, sizeof(name), "r%zu.s%zu.x%zu", i, j, k);
                                sp->name = st_arena_strdup(a, name);
                                uint8_t id[16] = { (uint8_t) i, (uint8_t) j, (uint8_t) k, 0xab };
                                sp->trace_id.len = 16;
                                sp->trace_id.data = st_arena_memdup(a, id, 16);
                                ss->spans[k] = sp;
                        }
                        rs->scope_spans[j] = ss;
                }
                req->resource_spans[i] = rs;
        }
        st_batch_recount(b);
        return b;
}

static void collect_names(const st_batch *b, char *out, size_t n) {
        const st_traces_req *req = (const st_traces_req *) st_batch_req((st_batch *) b);
        out[0] = 0;
        for (size_t i = 0; i < req->n_resource_spans; i++)
                for (size_t j = 0; j < req->resource_spans[i]->n_scope_spans; j++)
                        for (size_t k = 0; k < req->resource_spans[i]->scope_spans[j]->n_spans; k++) {
                                strncat(out, req->resource_spans[i]->scope_spans[j]->spans[k]->name, n - strlen(out) - 2);
                                strcat(out, " ");
                        }
}

static void arena_allocations_are_aligned_and_counted(void **state) {
        st_arena a;
        uint64_t before = st_arena_total_bytes();
        st_arena_init(&a);
        for (int i = 1; i < 2000; i++) {
                void *p = st_arena_alloc(&a, (size_t) i % 97 + 1);
                assert_non_null(p);
                assert_int_equal((uintptr_t) p % 16, 0);
        }
        void *big = st_arena_alloc(&a, 3 << 20); /* bigger than any chunk */
        assert_non_null(big);
        memset(big, 1, 3 << 20);
        assert_true(st_arena_total_bytes() > before + (3 << 20));
        st_arena_reset(&a);
        assert_int_equal(st_arena_total_bytes(), before);
}

static void unpack_pack_roundtrip_and_malformed(void **state) {
        st_batch *b = make_traces(2, 2, 3), *c;
        assert_int_equal(b->items, 12);
        size_t n = st_batch_packed_size(b);
        uint8_t *buf = malloc(n);
        st_batch_pack(b, buf);
        assert_int_equal(st_batch_unpack(ST_TRACES, buf, n, &c), 0);
        assert_int_equal(c->items, 12);
        char x[4096], y[4096];
        collect_names(b, x, sizeof(x));
        collect_names(c, y, sizeof(y));
        assert_string_equal(x, y);
        st_batch_unref(c);
        /* A truncated message and garbage are refused, not crashed on. */
        assert_int_equal(st_batch_unpack(ST_TRACES, buf, n - 3, &c), -EBADMSG);
        uint8_t garbage[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01 };
        assert_int_equal(st_batch_unpack(ST_TRACES, garbage, sizeof(garbage), &c), -EBADMSG);
        free(buf);
        st_batch_unref(b);
}

static void writable_clones_only_when_shared(void **state) {
        st_batch *b = make_traces(1, 1, 2), *w;
        assert_int_equal(st_batch_writable(b, &w), 0);
        assert_ptr_equal(w, b); /* sole owner: mutate in place */
        st_batch_unref(w);
        st_batch_ref(b); /* now shared */
        assert_int_equal(st_batch_writable(b, &w), 0);
        assert_ptr_not_equal(w, b);
        ((st_traces_req *) w->req)->resource_spans[0]->scope_spans[0]->spans[0]->name = st_arena_strdup(&w->arena, "changed");
        assert_string_equal(((const st_traces_req *) st_batch_req(b))->resource_spans[0]->scope_spans[0]->spans[0]->name, "r0.s0.x0");
        st_batch_unref(w);
        st_batch_unref(b);
        st_batch_unref(b);
        st_batch_unref(NULL);
}

static void append_cuts_at_max_and_keeps_order(void **state) {
        st_batch *src = make_traces(2, 2, 3); /* 12 spans */
        struct st_batch_cursor cur = { 0 };
        char all[4096], got[4096] = "", part[4096];
        collect_names(src, all, sizeof(all));
        size_t total = 0, pieces = 0;
        bool done = false;
        while (!done) {
                st_batch *dst;
                size_t added;
                assert_int_equal(st_batch_new(ST_TRACES, &dst), 0);
                assert_int_equal(st_batch_append(dst, src, &cur, 5, &added, &done), 0);
                assert_true(added <= 5);
                assert_int_equal(dst->items, added);
                assert_int_equal(st_request_items(ST_TRACES, st_batch_req(dst)), added);
                collect_names(dst, part, sizeof(part));
                strcat(got, part);
                /* Each piece is a valid message on its own. */
                size_t n = st_batch_packed_size(dst);
                uint8_t *buf = malloc(n);
                st_batch_pack(dst, buf);
                st_batch *back;
                assert_int_equal(st_batch_unpack(ST_TRACES, buf, n, &back), 0);
                assert_int_equal(back->items, added);
                st_batch_unref(back);
                free(buf);
                total += added;
                pieces++;
                st_batch_unref(dst); /* drops its reference on src too */
        }
        assert_int_equal(total, 12);
        assert_int_equal(pieces, 3);
        assert_string_equal(got, all);
        st_batch_unref(src);
}

static void append_merges_several_sources(void **state) {
        st_batch *dst;
        assert_int_equal(st_batch_new(ST_TRACES, &dst), 0);
        for (int i = 0; i < 10; i++) {
                st_batch *src = make_traces(1, 1, 2);
                struct st_batch_cursor cur = { 0 };
                size_t added;
                bool done;
                assert_int_equal(st_batch_append(dst, src, &cur, 0, &added, &done), 0);
                assert_true(done);
                assert_int_equal(added, 2);
                st_batch_unref(src); /* dst keeps it alive */
        }
        assert_int_equal(dst->items, 20);
        assert_int_equal(((const st_traces_req *) st_batch_req(dst))->n_resource_spans, 10);
        assert_true(st_batch_shared(dst)); /* borrows memory: mutators must clone */
        st_batch *c;
        assert_int_equal(st_batch_clone(dst, &c), 0);
        assert_int_equal(c->items, 20);
        assert_false(st_batch_shared(c));
        st_batch_unref(c);
        st_batch_unref(dst);
}

static void metrics_are_cut_between_metrics(void **state) {
        /* 3 metrics of 4 gauge points each; max 5 → pieces of 4, 4, 4 (a metric is never cut). */
        st_batch *src;
        assert_int_equal(st_batch_new(ST_METRICS, &src), 0);
        st_arena *a = &src->arena;
        st_metrics_req *req = (st_metrics_req *) src->req;
        st_resource_metrics *rm = st_arena_alloc(a, sizeof(*rm));
        opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
        st_scope_metrics *sm = st_arena_alloc(a, sizeof(*sm));
        opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
        sm->n_metrics = 3;
        sm->metrics = st_arena_alloc(a, 3 * sizeof(void *));
        for (int i = 0; i < 3; i++) {
                st_metric *m = st_arena_alloc(a, sizeof(*m));
                opentelemetry__proto__metrics__v1__metric__init(m);
                m->name = st_arena_strdup(a, "m");
                m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
                m->gauge = st_arena_alloc(a, sizeof(*m->gauge));
                opentelemetry__proto__metrics__v1__gauge__init(m->gauge);
                m->gauge->n_data_points = 4;
                m->gauge->data_points = st_arena_alloc(a, 4 * sizeof(void *));
                for (int k = 0; k < 4; k++) {
                        st_number_point *p = st_arena_alloc(a, sizeof(*p));
                        opentelemetry__proto__metrics__v1__number_data_point__init(p);
                        m->gauge->data_points[k] = p;
                }
                sm->metrics[i] = m;
        }
        rm->n_scope_metrics = 1;
        rm->scope_metrics = st_arena_alloc(a, sizeof(void *));
        rm->scope_metrics[0] = sm;
        req->n_resource_metrics = 1;
        req->resource_metrics = st_arena_alloc(a, sizeof(void *));
        req->resource_metrics[0] = rm;
        st_batch_recount(src);
        assert_int_equal(src->items, 12);

        struct st_batch_cursor cur = { 0 };
        bool done = false;
        int pieces = 0;
        while (!done) {
                st_batch *dst;
                size_t added;
                assert_int_equal(st_batch_new(ST_METRICS, &dst), 0);
                assert_int_equal(st_batch_append(dst, src, &cur, 5, &added, &done), 0);
                assert_int_equal(added, 4);
                pieces++;
                st_batch_unref(dst);
        }
        assert_int_equal(pieces, 3);
        st_batch_unref(src);
}

static void append_refuses_other_signal(void **state) {
        st_batch *t = make_traces(1, 1, 1), *l;
        struct st_batch_cursor cur = { 0 };
        size_t added;
        bool done;
        assert_int_equal(st_batch_new(ST_LOGS, &l), 0);
        assert_int_equal(st_batch_append(l, t, &cur, 0, &added, &done), -EINVAL);
        st_batch_unref(l);
        st_batch_unref(t);
}

/* A merged batch of requests kept in wire form, read by several exporters at once: each decodes
 * it lazily (st_batch_req) or packs it, concurrently. Run it under ThreadSanitizer. */
#define READERS 4
static void *read_merged(void *arg) {
        st_batch *m = arg;
        for (int i = 0; i < 100; i++) {
                const st_traces_req *req = (const st_traces_req *) st_batch_req(m);
                if (!req || req->n_resource_spans != 8 || st_request_items(ST_TRACES, &req->base) != m->items)
                        return (void *) 1;
                size_t n = st_batch_packed_size(m);
                uint8_t *buf = malloc(n);
                if (!buf || st_batch_pack(m, buf) != n)
                        return (void *) 1;
                free(buf);
        }
        return NULL;
}

static void wire_merge_is_read_concurrently(void **state) {
        st_batch *src = make_traces(1, 1, 3);
        size_t n = st_batch_packed_size(src);
        uint8_t *bytes = malloc(n);
        st_batch_pack(src, bytes);
        for (int round = 0; round < 20; round++) {
                st_batch *m;
                assert_int_equal(st_batch_new(ST_TRACES, &m), 0);
                for (int i = 0; i < 8; i++) {
                        st_batch *w;
                        struct st_batch_cursor cur = { 0 };
                        size_t added;
                        bool done;
                        assert_int_equal(st_batch_from_wire(ST_TRACES, bytes, n, &w), 0);
                        assert_int_equal(st_batch_append(m, w, &cur, 0, &added, &done), 0);
                        st_batch_unref(w);
                }
                pthread_t t[READERS];
                for (int i = 0; i < READERS; i++)
                        assert_int_equal(pthread_create(&t[i], NULL, read_merged, m), 0);
                for (int i = 0; i < READERS; i++) {
                        void *ret;
                        pthread_join(t[i], &ret);
                        assert_null(ret);
                }
                assert_int_equal(m->items, 24);
                st_batch_unref(m);
        }
        free(bytes);
        st_batch_unref(src);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(arena_allocations_are_aligned_and_counted),
                cmocka_unit_test(unpack_pack_roundtrip_and_malformed),
                cmocka_unit_test(writable_clones_only_when_shared),
                cmocka_unit_test(append_cuts_at_max_and_keeps_order),
                cmocka_unit_test(append_merges_several_sources),
                cmocka_unit_test(metrics_are_cut_between_metrics),
                cmocka_unit_test(append_refuses_other_signal),
                cmocka_unit_test(wire_merge_is_read_concurrently),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
