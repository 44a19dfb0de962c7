/* Wire form: checking requests without decoding must refuse whatever protobuf-c refuses, count
 * items exactly, and merged batches must send their parts' bytes end to end. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "batch.h"
#include "wire.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"

/* A realistic traces request: attributes of every type, an event, a link, nested values. */
static size_t make_request(uint8_t **ret, int n_spans, int seed) {
        st_arena a;
        st_arena_init(&a);
        st_traces_req req;
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
        st_resource_spans rs;
        opentelemetry__proto__trace__v1__resource_spans__init(&rs);
        st_scope_spans ss;
        opentelemetry__proto__trace__v1__scope_spans__init(&ss);
        st_resource res;
        opentelemetry__proto__resource__v1__resource__init(&res);
        st_span **spans = st_arena_alloc(&a, (size_t) n_spans * sizeof(*spans));
        for (int i = 0; i < n_spans; i++) {
                st_span *sp = st_arena_zalloc(&a, sizeof(*sp));
                opentelemetry__proto__trace__v1__span__init(sp);
                sp->name = st_arena_strdup(&a, "GET /items");
                uint8_t tid[16], sid[8];
                for (int k = 0; k < 16; k++)
                        tid[k] = (uint8_t) (seed * 31 + i * 7 + k);
                memcpy(sid, tid, 8);
                sp->trace_id = (ProtobufCBinaryData) { 16, st_arena_memdup(&a, tid, 16) };
                sp->span_id = (ProtobufCBinaryData) { 8, st_arena_memdup(&a, sid, 8) };
                sp->start_time_unix_nano = 1700000000000000000ull + (uint64_t) i;
                sp->end_time_unix_nano = sp->start_time_unix_nano + 1000;
                sp->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
                sp->n_attributes = 4;
                sp->attributes = st_arena_alloc(&a, 4 * sizeof(void *));
                for (int k = 0; k < 4; k++) {
                        st_key_value *kv = st_arena_zalloc(&a, sizeof(*kv));
                        opentelemetry__proto__common__v1__key_value__init(kv);
                        st_any_value *v = st_arena_zalloc(&a, sizeof(*v));
                        opentelemetry__proto__common__v1__any_value__init(v);
                        kv->key = st_arena_strdup(&a, k == 0 ? "s" : k == 1 ? "i" : k == 2 ? "d" : "b");
                        switch (k) {
                        case 0: v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
                                v->string_value = st_arena_strdup(&a, "value"); break;
                        case 1: v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
                                v->int_value = -42; break;
                        case 2: v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
                                v->double_value = 2.5; break;
                        default: v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
                                v->bool_value = 1; break;
                        }
                        kv->value = v;
                        sp->attributes[k] = kv;
                }
                st_span_event *ev = st_arena_zalloc(&a, sizeof(*ev));
                opentelemetry__proto__trace__v1__span__event__init(ev);
                ev->name = st_arena_strdup(&a, "exception");
                ev->time_unix_nano = sp->start_time_unix_nano + 5;
                sp->n_events = 1;
                sp->events = st_arena_alloc(&a, sizeof(void *));
                sp->events[0] = ev;
                spans[i] = sp;
        }
        ss.n_spans = (size_t) n_spans;
        ss.spans = spans;
        st_scope_spans *ssp = &ss;
        rs.n_scope_spans = 1;
        rs.scope_spans = &ssp;
        rs.resource = &res;
        st_resource_spans *rsp = &rs;
        req.n_resource_spans = 1;
        req.resource_spans = &rsp;
        size_t n = protobuf_c_message_get_packed_size(&req.base);
        *ret = malloc(n);
        protobuf_c_message_pack(&req.base, *ret);
        st_arena_reset(&a);
        return n;
}

static void accepts_valid_and_counts(void **state) {
        uint8_t *buf;
        size_t n = make_request(&buf, 37, 1);
        assert_int_equal(st_wire_check(st_signals[ST_TRACES].req, buf, n), 0);
        assert_int_equal(st_wire_items(ST_TRACES, buf, n), 37);
        assert_int_equal(st_wire_check(st_signals[ST_TRACES].req, buf, 0), 0); /* empty = empty request */
        st_batch *b;
        assert_int_equal(st_batch_from_wire(ST_TRACES, buf, n, &b), 0);
        assert_int_equal(b->items, 37);
        assert_null(b->req); /* not decoded until someone reads it */
        assert_int_equal(st_request_items(ST_TRACES, st_batch_req(b)), 37);
        /* the wire form is what gets sent: byte-identical, no re-encoding */
        uint8_t *out = malloc(st_batch_packed_size(b));
        assert_int_equal(st_batch_pack(b, out), n);
        assert_memory_equal(out, buf, n);
        free(out);
        st_batch_unref(b);
        free(buf);
}

/* A request in pieces (gRPC hands large ones over as many slices), cut anywhere, even inside
 * a varint: gathered, it is the same batch; a truncated one is refused. */
static void gathers_parts(void **state) {
        uint8_t *buf;
        size_t n = make_request(&buf, 23, 1);
        for (size_t cut1 = 0; cut1 <= n; cut1 += 7)
                for (size_t cut2 = cut1; cut2 <= n; cut2 += n / 3 + 1) {
                        struct iovec parts[] = {
                                { buf, cut1 }, { buf + cut1, cut2 - cut1 }, { buf + cut2, n - cut2 },
                        };
                        st_batch *b;
                        assert_int_equal(st_batch_from_wire_parts(ST_TRACES, parts, 3, &b), 0);
                        assert_int_equal(b->items, 23);
                        assert_int_equal(b->wire_len, n);
                        assert_memory_equal(b->wire, buf, n);
                        st_batch_unref(b);
                }
        struct iovec short_parts[] = { { buf, n / 2 }, { buf + n / 2, n / 2 - 1 } };
        st_batch *b = NULL;
        assert_int_equal(st_batch_from_wire_parts(ST_TRACES, short_parts, 2, &b), -EBADMSG);
        assert_null(b);
        free(buf);
}

static void refuses_what_protobuf_c_refuses(void **state) {
        /* Property: for mutated inputs, whenever the check accepts, protobuf-c unpacks. */
        uint8_t *buf;
        size_t n = make_request(&buf, 5, 2);
        uint8_t *m = malloc(n);
        unsigned seed = 12345;
        size_t accepted = 0, refused = 0;
        for (int iter = 0; iter < 20000; iter++) {
                memcpy(m, buf, n);
                size_t len = n;
                int flips = 1 + (int) (rand_r(&seed) % 3);
                for (int f = 0; f < flips; f++) {
                        size_t at = (size_t) rand_r(&seed) % n;
                        m[at] = (uint8_t) rand_r(&seed);
                }
                if (rand_r(&seed) % 4 == 0)
                        len = (size_t) rand_r(&seed) % n;
                int r = st_wire_check(st_signals[ST_TRACES].req, m, len);
                ProtobufCMessage *u = protobuf_c_message_unpack(st_signals[ST_TRACES].req, NULL, len, m);
                if (r == 0) {
                        if (!u)
                                fail_msg("check accepted what protobuf-c refuses (iteration %d)", iter);
                        accepted++;
                } else
                        refused++;
                if (u)
                        protobuf_c_message_free_unpacked(u, NULL);
        }
        assert_true(accepted > 100 && refused > 100); /* both sides exercised */
        free(m);
        free(buf);
}

static void refuses_malformed_shapes(void **state) {
        const ProtobufCMessageDescriptor *d = st_signals[ST_TRACES].req;
        /* field 1 (resource_spans) as a varint: wrong wire type for a message */
        assert_int_equal(st_wire_check(d, (const uint8_t[]) { 0x08, 0x01 }, 2), -EBADMSG);
        /* length beyond the end */
        assert_int_equal(st_wire_check(d, (const uint8_t[]) { 0x0a, 0x05, 0x00 }, 3), -EBADMSG);
        /* unterminated varint */
        assert_int_equal(st_wire_check(d, (const uint8_t[]) { 0x0a, 0x80 }, 2), -EBADMSG);
        /* group wire type, field 0 */
        assert_int_equal(st_wire_check(d, (const uint8_t[]) { 0x0b }, 1), -EBADMSG);
        assert_int_equal(st_wire_check(d, (const uint8_t[]) { 0x02, 0x00 }, 2), -EBADMSG);
        /* an unknown field is skipped, as protobuf-c keeps it */
        assert_int_equal(st_wire_check(d, (const uint8_t[]) { 0x78, 0x01, 0x7a, 0x01, 0x00 }, 5), 0);
        /* AnyValue{array_value: ArrayValue{values: [AnyValue{...}]}}: an innermost message
         * ST_WIRE_MAX_DEPTH levels below the top one passes, one more does not */
        const int nestings[] = { 40, ST_WIRE_MAX_DEPTH - 1, ST_WIRE_MAX_DEPTH, ST_WIRE_MAX_DEPTH + 1, 200 };
        for (size_t k = 0; k < sizeof(nestings) / sizeof(nestings[0]); k++) {
                uint8_t *msg = malloc(2), *next;
                size_t len = 2;
                msg[0] = 0x10; /* innermost AnyValue: bool_value = 1 */
                msg[1] = 0x01;
                for (int i = 0; i < nestings[k]; i++) { /* ArrayValue.values (1), then AnyValue.array_value (5) */
                        next = malloc(len + 6);
                        size_t h = 0;
                        next[h++] = i % 2 == 0 ? 0x0a : 0x2a;
                        for (size_t v = len;; v >>= 7) {
                                next[h++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                                if (v <= 0x7f)
                                        break;
                        }
                        memcpy(next + h, msg, len);
                        free(msg);
                        msg = next;
                        len += h;
                }
                const ProtobufCMessageDescriptor *top = nestings[k] % 2 ? &opentelemetry__proto__common__v1__array_value__descriptor
                                                                        : &opentelemetry__proto__common__v1__any_value__descriptor;
                assert_int_equal(st_wire_check(top, msg, len), nestings[k] <= ST_WIRE_MAX_DEPTH ? 0 : -EBADMSG);
                free(msg);
        }

}

static void merged_batches_send_parts_end_to_end(void **state) {
        uint8_t *a, *b;
        size_t na = make_request(&a, 3, 3), nb = make_request(&b, 4, 4);
        st_batch *ba, *bb, *dst;
        assert_int_equal(st_batch_from_wire(ST_TRACES, a, na, &ba), 0);
        assert_int_equal(st_batch_from_wire(ST_TRACES, b, nb, &bb), 0);
        assert_int_equal(st_batch_new(ST_TRACES, &dst), 0);
        struct st_batch_cursor c1 = { 0 }, c2 = { 0 };
        size_t added;
        bool done;
        assert_int_equal(st_batch_append(dst, ba, &c1, 0, &added, &done), 0);
        assert_true(done);
        assert_int_equal(st_batch_append(dst, bb, &c2, 0, &added, &done), 0);
        assert_int_equal(dst->items, 7);
        assert_null(ba->req); /* merging decoded nothing */
        assert_null(bb->req);
        size_t n = st_batch_packed_size(dst);
        assert_int_equal(n, na + nb);
        uint8_t *out = malloc(n);
        st_batch_pack(dst, out);
        assert_memory_equal(out, a, na);
        assert_memory_equal(out + na, b, nb);
        /* the concatenation is one valid request holding both */
        st_batch *back;
        assert_int_equal(st_batch_unpack(ST_TRACES, out, n, &back), 0);
        assert_int_equal(back->items, 7);
        assert_int_equal(((const st_traces_req *) st_batch_req(back))->n_resource_spans, 2);
        /* and the merged batch reads the same when decoded */
        assert_int_equal(st_request_items(ST_TRACES, st_batch_req(dst)), 7);
        /* a batch that must be cut falls back to structs and still keeps every item */
        st_batch *small;
        struct st_batch_cursor c3 = { 0 };
        size_t total = 0;
        done = false;
        while (!done) {
                assert_int_equal(st_batch_new(ST_TRACES, &small), 0);
                assert_int_equal(st_batch_append(small, dst, &c3, 5, &added, &done), 0);
                assert_true(added <= 5);
                total += added;
                st_batch_unref(small);
        }
        assert_int_equal(total, 7);
        /* writable drops the wire form: after a change, the structs are the truth */
        st_batch_unref(dst); /* dst held ba and bb */
        st_batch *w;
        st_batch_ref(ba);
        assert_int_equal(st_batch_writable(ba, &w), 0);
        assert_ptr_not_equal(w, ba); /* shared: cloned */
        st_batch_unref(w);
        st_batch_unref(ba);
        assert_int_equal(st_batch_writable(ba, &w), 0);
        assert_ptr_equal(w, ba);
        assert_null(w->wire);
        assert_non_null(w->req);
        st_batch_unref(w);

        free(out);
        st_batch_unref(back);
        st_batch_unref(ba);
        st_batch_unref(bb);
        free(a);
        free(b);
}

static void metrics_points_are_counted_on_the_wire(void **state) {
        /* ResourceMetrics{ScopeMetrics{Metric{sum{3 points}}, Metric{histogram{2 points}}}} */
        st_metrics_req req;
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(&req);
        st_resource_metrics rm;
        opentelemetry__proto__metrics__v1__resource_metrics__init(&rm);
        st_scope_metrics sm;
        opentelemetry__proto__metrics__v1__scope_metrics__init(&sm);
        st_metric m1, m2;
        opentelemetry__proto__metrics__v1__metric__init(&m1);
        opentelemetry__proto__metrics__v1__metric__init(&m2);
        Opentelemetry__Proto__Metrics__V1__Sum sum;
        opentelemetry__proto__metrics__v1__sum__init(&sum);
        Opentelemetry__Proto__Metrics__V1__Histogram hist;
        opentelemetry__proto__metrics__v1__histogram__init(&hist);
        st_number_point np[3], *npp[3];
        Opentelemetry__Proto__Metrics__V1__HistogramDataPoint hp[2], *hpp[2];
        for (int i = 0; i < 3; i++) {
                opentelemetry__proto__metrics__v1__number_data_point__init(&np[i]);
                npp[i] = &np[i];
        }
        for (int i = 0; i < 2; i++) {
                opentelemetry__proto__metrics__v1__histogram_data_point__init(&hp[i]);
                hpp[i] = &hp[i];
        }
        sum.n_data_points = 3;
        sum.data_points = npp;
        hist.n_data_points = 2;
        hist.data_points = hpp;
        m1.name = "a";
        m1.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
        m1.sum = &sum;
        m2.name = "b";
        m2.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
        m2.histogram = &hist;
        st_metric *ms[2] = { &m1, &m2 };
        sm.n_metrics = 2;
        sm.metrics = ms;
        st_scope_metrics *smp = &sm;
        rm.n_scope_metrics = 1;
        rm.scope_metrics = &smp;
        st_resource_metrics *rmp = &rm;
        req.n_resource_metrics = 1;
        req.resource_metrics = &rmp;
        uint8_t buf[1024];
        size_t n = protobuf_c_message_pack(&req.base, buf);
        assert_int_equal(st_wire_check(st_signals[ST_METRICS].req, buf, n), 0);
        assert_int_equal(st_wire_items(ST_METRICS, buf, n), 5);
}

/* Checks against protobuf-c: the wire check accepts exactly when protobuf-c unpacks (for
 * these inputs), and counts the items protobuf-c decodes. */
static void expect_like_protobuf_c(enum st_signal s, const uint8_t *d, size_t n, bool ok, size_t items) {
        ProtobufCMessage *u = protobuf_c_message_unpack(st_signals[s].req, NULL, n, d);
        assert_int_equal(u != NULL, ok);
        assert_int_equal(st_wire_check(st_signals[s].req, d, n), ok ? 0 : -EBADMSG);
        if (!ok)
                return;
        assert_int_equal(st_request_items(s, u), items);
        assert_int_equal(st_wire_items(s, d, n), items);
        protobuf_c_message_free_unpacked(u, NULL);
        st_batch *b;
        assert_int_equal(st_batch_from_wire(s, d, n, &b), 0);
        assert_int_equal(b->items, items);
        assert_non_null(st_batch_req(b));
        st_batch_unref(b);
}

/* Found by tests/fuzz/fuzz_wire: protobuf-c reads a tag or a length prefix in at most 5 bytes,
 * so a longer zero-padded one passed the check and failed to decode later. */
static void refuses_long_tag_and_length_varints(void **state) {
        /* field 1 (resource_spans), LEN, empty; the tag padded to 5 bytes, then 6 */
        expect_like_protobuf_c(ST_TRACES, (const uint8_t[]) { 0x8a, 0x80, 0x80, 0x80, 0x00, 0x00 }, 6, true, 0);
        expect_like_protobuf_c(ST_TRACES, (const uint8_t[]) { 0x8a, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00 }, 7, false, 0);
        /* the same with the length padded */
        expect_like_protobuf_c(ST_TRACES, (const uint8_t[]) { 0x0a, 0x80, 0x80, 0x80, 0x80, 0x00 }, 6, true, 0);
        expect_like_protobuf_c(ST_TRACES, (const uint8_t[]) { 0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 }, 7, false, 0);
        /* an unknown field (1000) is no exception */
        expect_like_protobuf_c(ST_TRACES, (const uint8_t[]) { 0xc2, 0x3e, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 }, 8, false, 0);
        /* value varints still take up to 10 bytes: unknown field 15, varint 1 padded to 10, 11 */
        expect_like_protobuf_c(ST_TRACES, (const uint8_t[]) { 0x78, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 },
                               11, true, 0);
        expect_like_protobuf_c(ST_TRACES,
                               (const uint8_t[]) { 0x78, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 }, 12,
                               false, 0);
}

/* Found by tests/fuzz/fuzz_wire: a metric whose data (a oneof) appears twice was counted twice;
 * protobuf-c keeps only the last one. */
static void metric_data_oneof_counts_the_last(void **state) {
        /* request{resource_metrics{scope_metrics{metric{gauge{1 point}, X{2 points}}}}} */
        uint8_t d[] = { 0x0a, 0x0e, 0x12, 0x0c, 0x12, 0x0a, 0x2a, 0x02, 0x0a, 0x00, 0x00, 0x04, 0x0a, 0x00, 0x0a, 0x00 };
        d[10] = 0x3a; /* sum */
        expect_like_protobuf_c(ST_METRICS, d, sizeof(d), true, 2);
        d[10] = 0x2a; /* gauge again: replaced, not merged */
        expect_like_protobuf_c(ST_METRICS, d, sizeof(d), true, 2);
        /* and the other way round: 2 points, then 1 */
        uint8_t e[] = { 0x0a, 0x0e, 0x12, 0x0c, 0x12, 0x0a, 0x5a, 0x04, 0x0a, 0x00, 0x0a, 0x00, 0x4a, 0x02, 0x0a, 0x00 };
        expect_like_protobuf_c(ST_METRICS, e, sizeof(e), true, 1); /* summary, then histogram */
}

/* A logs request holding one log record with the given bytes (all lengths < 128). */
static size_t logs_request(uint8_t *out, const uint8_t *record, size_t n) {
        size_t scope = n + 2, res = scope + 2;
        uint8_t head[] = { 0x0a, (uint8_t) res, 0x12, (uint8_t) scope, 0x12, (uint8_t) n };
        memcpy(out, head, sizeof(head));
        memcpy(out + sizeof(head), record, n);
        return sizeof(head) + n;
}

/* Found by tests/fuzz/fuzz_wire: protobuf-c merges a singular message field given twice, and
 * 1.4.1 cannot merge two messages that both leave a oneof unset, so it refuses such input. */
static void singular_message_twice_as_protobuf_c(void **state) {
        uint8_t req[64];
        /* body (an AnyValue) twice, empty both times: refused */
        expect_like_protobuf_c(ST_LOGS, req, logs_request(req, (const uint8_t[]) { 0x2a, 0x00, 0x2a, 0x00 }, 4), false, 0);
        /* body{stringValue "a"} then an empty body, and the other way round: merged */
        expect_like_protobuf_c(ST_LOGS, req,
                               logs_request(req, (const uint8_t[]) { 0x2a, 0x03, 0x0a, 0x01, 0x61, 0x2a, 0x00 }, 7), true, 1);
        expect_like_protobuf_c(ST_LOGS, req,
                               logs_request(req, (const uint8_t[]) { 0x2a, 0x00, 0x2a, 0x03, 0x0a, 0x01, 0x61 }, 7), true, 1);
        /* an attribute {key "k", value {}, value {}}: refused */
        expect_like_protobuf_c(ST_LOGS, req,
                               logs_request(req, (const uint8_t[]) { 0x32, 0x07, 0x0a, 0x01, 0x6b, 0x12, 0x00, 0x12, 0x00 }, 9),
                               false, 0);
        /* a resource given twice holds no oneof: merged */
        uint8_t two_res[] = { 0x0a, 0x04, 0x0a, 0x00, 0x0a, 0x00 };
        expect_like_protobuf_c(ST_LOGS, two_res, sizeof(two_res), true, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(accepts_valid_and_counts),
                cmocka_unit_test(gathers_parts),
                cmocka_unit_test(refuses_what_protobuf_c_refuses),
                cmocka_unit_test(refuses_malformed_shapes),
                cmocka_unit_test(merged_batches_send_parts_end_to_end),
                cmocka_unit_test(metrics_points_are_counted_on_the_wire),
                cmocka_unit_test(refuses_long_tag_and_length_varints),
                cmocka_unit_test(metric_data_oneof_counts_the_last),
                cmocka_unit_test(singular_message_twice_as_protobuf_c),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
