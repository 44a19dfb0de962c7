/* The correlate processor: spans into the index, kernel events held in the join window and
 * joined (thread, process, through the parent that spawned them), the window's limits, and
 * enrichment from the process table only for pids strata observed. */
#include <errno.h>
#include <unistd.h>

#include "processor_test.h"
#include "process_table.h"
#include "span_index.h"

extern const struct st_factory st_processor_correlate;

#define SEC UINT64_C(1000000000)
/* a pid no real process has in these tests' table entries (the table is the agent's) */
#define APP_PID 3999001u
#define CHILD_PID 3999002u
#define OTHER_PID 3999003u

static const uint8_t TRACE[16] = { 0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

static st_key_value *kv_int_new(st_arena *a, const char *key, int64_t i) {
        st_key_value *kv = kv_new(a, key, "");
        kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        kv->value->int_value = i;
        return kv;
}

/* A resource: process.pid, and the attribution when strata observed it. */
static st_resource *resource(st_arena *a, uint32_t pid, const char *method, const char *container) {
        st_resource *res = msg_new(a, &opentelemetry__proto__resource__v1__resource__descriptor);
        res->attributes = (st_key_value **) ptrs_new(a, 3);
        res->attributes[res->n_attributes++] = kv_int_new(a, "process.pid", pid);
        if (method)
                res->attributes[res->n_attributes++] = kv_new(a, "strata.attribution.method", method);
        if (container)
                res->attributes[res->n_attributes++] = kv_new(a, "container.id", container);
        return res;
}

/* One span [start, end] of pid, on thread tid (0: no thread.id attribute). */
static st_batch *spans(uint32_t pid, const char *method, uint8_t span, uint64_t start, uint64_t end, uint32_t tid) {
        st_batch *b;
        assert_int_equal(st_batch_new(ST_TRACES, &b), 0);
        st_arena *a = &b->arena;
        st_traces_req *req = (st_traces_req *) b->req;
        st_resource_spans *rs = msg_new(a, &opentelemetry__proto__trace__v1__resource_spans__descriptor);
        st_scope_spans *ss = msg_new(a, &opentelemetry__proto__trace__v1__scope_spans__descriptor);
        st_span *sp = msg_new(a, &opentelemetry__proto__trace__v1__span__descriptor);
        uint8_t *ids = st_arena_alloc(a, 24);
        memcpy(ids, TRACE, 16);
        memset(ids + 16, span, 8);
        sp->trace_id = (ProtobufCBinaryData) { 16, ids };
        sp->span_id = (ProtobufCBinaryData) { 8, ids + 16 };
        sp->start_time_unix_nano = start;
        sp->end_time_unix_nano = end;
        sp->name = (char *) "work";
        if (tid) {
                sp->attributes = (st_key_value **) ptrs_new(a, 1);
                sp->attributes[sp->n_attributes++] = kv_int_new(a, "thread.id", tid);
        }
        ss->spans = (st_span **) ptrs_new(a, 1);
        ss->spans[ss->n_spans++] = sp;
        rs->scope_spans = (st_scope_spans **) ptrs_new(a, 1);
        rs->scope_spans[rs->n_scope_spans++] = ss;
        rs->resource = resource(a, pid, method, NULL);
        req->resource_spans = (st_resource_spans **) ptrs_new(a, 1);
        req->resource_spans[req->n_resource_spans++] = rs;
        b->pid_source = method ? ST_PIDS_OBSERVED : ST_PIDS_CLAIMED; /* what the otlp receiver sets */
        st_batch_recount(b);
        return b;
}

/* Kernel events of pid (the ebpf receiver's shape): one record per time, on thread tid. */
static st_batch *events(uint32_t pid, const uint64_t *times, size_t n, uint32_t tid) {
        st_batch *b;
        assert_int_equal(st_batch_new(ST_LOGS, &b), 0);
        st_arena *a = &b->arena;
        st_logs_req *req = (st_logs_req *) b->req;
        st_resource_logs *rl = msg_new(a, &opentelemetry__proto__logs__v1__resource_logs__descriptor);
        st_scope_logs *sl = msg_new(a, &opentelemetry__proto__logs__v1__scope_logs__descriptor);
        sl->log_records = (st_log_record **) ptrs_new(a, n);
        for (size_t i = 0; i < n; i++) {
                st_log_record *lr = msg_new(a, &opentelemetry__proto__logs__v1__log_record__descriptor);
                lr->time_unix_nano = times[i];
                lr->event_name = (char *) "network.connect";
                lr->attributes = (st_key_value **) ptrs_new(a, 1);
                lr->attributes[lr->n_attributes++] = kv_int_new(a, "thread.id", tid);
                sl->log_records[sl->n_log_records++] = lr;
        }
        rl->scope_logs = (st_scope_logs **) ptrs_new(a, 1);
        rl->scope_logs[rl->n_scope_logs++] = sl;
        rl->resource = resource(a, pid, "kernel", NULL);
        req->resource_logs = (st_resource_logs **) ptrs_new(a, 1);
        req->resource_logs[req->n_resource_logs++] = rl;
        b->pid_source = ST_PIDS_KERNEL; /* what the ebpf receiver sets */
        st_batch_recount(b);
        return b;
}

/* A span as the context channel tells it: with the kernel's thread. */
static void channel_span(uint32_t pid, uint32_t tid, uint8_t span, uint64_t start, uint64_t end) {
        struct st_span_ref r;
        memcpy(r.trace_id, TRACE, 16);
        memset(r.span_id, span, 8);
        assert_int_equal(st_spanidx_add(st_spanidx_global(), pid, tid, start, end, &r), 0);
}

static const st_log_record *rec_of(st_batch *b, size_t i) {
        const st_logs_req *req = (const st_logs_req *) st_batch_req(b);
        return req->resource_logs[0]->scope_logs[0]->log_records[i];
}

static const char *str_attr(st_key_value *const *v, size_t n, const char *key) {
        const st_any_value *a = attr_get(v, n, key);
        return a && a->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE ? a->string_value : NULL;
}

/* The span a record was joined to (0: none), and the method it says. */
static int joined(const st_log_record *lr, const char **method) {
        *method = str_attr(lr->attributes, lr->n_attributes, "strata.correlation.method");
        if (!lr->trace_id.len)
                return 0;
        assert_int_equal(lr->trace_id.len, 16);
        assert_memory_equal(lr->trace_id.data, TRACE, 16);
        assert_int_equal(lr->span_id.len, 8);
        return lr->span_id.data[0];
}

static void wait_captured(struct harness *h, size_t n) {
        for (int i = 0; i < 300 && capture_count(&h->cap) < n; i++)
                usleep(10000);
        assert_int_equal(capture_count(&h->cap), n);
}

static int64_t metric(struct harness *h, const char *name) {
        for (struct st_tel_metric *m = h->tel.metrics; m; m = m->next)
                if (strcmp(m->name, name) == 0)
                        return atomic_load(&m->value);
        return -1;
}

static void free_metrics(struct harness *h) {
        while (h->tel.metrics) {
                struct st_tel_metric *m = h->tel.metrics->next;
                free(h->tel.metrics->name);
                free(h->tel.metrics->help);
                free(h->tel.metrics);
                h->tel.metrics = m;
        }
}

static void consume(struct harness *h, st_batch *b) {
        assert_int_equal(h->f->consume(h->inst, b), 0);
        st_batch_unref(b);
}

static void test_config(void **state) {
        (void) state;
        expect_config_error(&st_processor_correlate, "join_window: 61s\n", "join_window");
        expect_config_error(&st_processor_correlate, "context_socket: relative.sock\n", "context_socket");
        expect_config_error(&st_processor_correlate, "context_socket_mode: \"999\"\n", "context_socket_mode");
        expect_config_error(&st_processor_correlate, "span_evnts: true\n", "span_evnts");
        expect_config_error(&st_processor_correlate, "span_events: maybe\n", "span_events");
}

/* Spans pass the traces instance into the index; kernel events wait in the logs instance's
 * window, then leave joined: thread known, process only, outside any span. */
static void test_join_after_window(void **state) {
        (void) state;
        struct harness tr, lg;
        uint64_t t0 = 1700000000 * SEC;
        harness_init(&tr, &st_processor_correlate, ST_TRACES, "{}");
        harness_init(&lg, &st_processor_correlate, ST_LOGS, "join_window: 200ms\n");
        assert_int_equal(lg.f->start(lg.inst), 0);

        /* the events come first: their spans have not ended yet */
        uint64_t times[] = { t0 + SEC / 2, t0 + SEC / 2 + 1, t0 + 5 * SEC };
        consume(&lg, events(APP_PID, times, 3, APP_PID));
        assert_int_equal(capture_count(&lg.cap), 0); /* waiting */
        /* the outer span over OTLP (its thread.id is the SDK's, not the kernel's: ignored), the
         * inner one told by the context channel with its thread */
        consume(&tr, spans(APP_PID, "unix_peercred", 1, t0, t0 + 2 * SEC, 77));
        channel_span(APP_PID, APP_PID, 2, t0 + SEC / 2 + 1, t0 + SEC);
        assert_int_equal(capture_count(&tr.cap), 1); /* spans are not held */
        wait_captured(&lg, 1);

        const char *method;
        st_batch *out = lg.cap.v[0];
        assert_int_equal(joined(rec_of(out, 0), &method), 1);
        assert_string_equal(method, "process_time");
        assert_int_equal(joined(rec_of(out, 1), &method), 2);
        assert_string_equal(method, "exact_thread");
        assert_int_equal(joined(rec_of(out, 2), &method), 0);
        assert_string_equal(method, "none");
        assert_int_equal(metric(&lg, "correlate_joined_exact_thread_total"), 1);
        assert_int_equal(metric(&lg, "correlate_joined_process_time_total"), 1);
        assert_int_equal(metric(&lg, "correlate_unjoined_total"), 1);
        assert_int_equal(metric(&tr, "correlate_spans_indexed_total"), 1);

        /* spans of a pid the sender only claimed (no attribution) are not indexed */
        consume(&tr, spans(OTHER_PID, NULL, 3, t0, t0 + 2 * SEC, 0));
        consume(&lg, events(OTHER_PID, times, 1, OTHER_PID));
        wait_captured(&lg, 2);
        assert_int_equal(joined(rec_of(lg.cap.v[1], 0), &method), 0);

        assert_int_equal(lg.f->shutdown(lg.inst, 0), 0);
        free_metrics(&tr);
        free_metrics(&lg);
        harness_free(&tr);
        harness_free(&lg);
}

/* A child spawned inside a span has no span of its own: its events join through the thread of
 * its parent that forked it, at the fork. */
static void test_join_via_parent(void **state) {
        (void) state;
        struct harness tr, lg;
        struct st_proctab *pt = st_proctab_global();
        int64_t b2u = st_boot_to_unix_ns();
        uint64_t t0 = (uint64_t) ((int64_t) st_boottime_ns() + b2u); /* now, as Unix ns */
        harness_init(&tr, &st_processor_correlate, ST_TRACES, "{}");
        harness_init(&lg, &st_processor_correlate, ST_LOGS, "join_window: 0s\n"); /* join at once */

        channel_span(APP_PID, APP_PID + 1, 5, t0 - SEC, t0 + SEC);
        /* forked by thread APP_PID+1 at t0 */
        assert_int_equal(st_proctab_fork(pt, APP_PID, APP_PID + 1, CHILD_PID, (uint64_t) ((int64_t) t0 - b2u)), 0);
        uint64_t later[] = { t0 + 10 * SEC }; /* after the span: the spawn is what counts */
        consume(&lg, events(CHILD_PID, later, 1, CHILD_PID));
        assert_int_equal(capture_count(&lg.cap), 1);
        const char *method;
        const st_log_record *lr = rec_of(lg.cap.v[0], 0);
        assert_int_equal(joined(lr, &method), 5);
        assert_string_equal(method, "exact_thread");
        const st_any_value *pp = attr_get(lr->attributes, lr->n_attributes, "strata.correlation.parent_pid");
        assert_non_null(pp);
        assert_int_equal(pp->int_value, APP_PID);
        free_metrics(&tr);
        free_metrics(&lg);
        harness_free(&tr);
        harness_free(&lg);
}

/* The window's bounds: past max_pending_records the oldest leave at once (counted), joined with
 * what is known; shutdown releases the rest. Nothing blocks, nothing is lost. */
static void test_window_limits(void **state) {
        (void) state;
        struct harness lg;
        uint64_t t[] = { 1 };
        harness_init(&lg, &st_processor_correlate, ST_LOGS, "join_window: 30s\nmax_pending_records: 2\n");
        assert_int_equal(lg.f->start(lg.inst), 0);
        consume(&lg, events(APP_PID, t, 1, 1));
        consume(&lg, events(APP_PID, t, 1, 1));
        assert_int_equal(capture_count(&lg.cap), 0);
        consume(&lg, events(APP_PID, t, 1, 1));
        assert_int_equal(capture_count(&lg.cap), 1);
        assert_int_equal(metric(&lg, "correlate_released_early_total"), 1);
        assert_int_equal(metric(&lg, "correlate_pending_records"), 2);
        /* a refusing next consumer: counted as dropped */
        lg.cap.ret = -ENOBUFS;
        assert_int_equal(lg.f->shutdown(lg.inst, 0), 0);
        assert_int_equal(lg.tel.sig[ST_LOGS].dropped, 2);
        assert_int_equal(metric(&lg, "correlate_pending_records"), 0);
        /* after shutdown: joined and passed on at once */
        lg.cap.ret = 0;
        consume(&lg, events(APP_PID, t, 1, 1));
        assert_int_equal(capture_count(&lg.cap), 2);
        free_metrics(&lg);
        harness_free(&lg);
}

/* Records of observed processes get the table's process and container facts; a container
 * the sender claimed and the kernel contradicts is kept as a claim. Claimed pids are not
 * looked up. */
static void test_enrichment(void **state) {
        (void) state;
        struct harness tr;
        struct st_proctab *pt = st_proctab_global();
        struct st_process p = { .pid = OTHER_PID, .ppid = 1, .start_ns = 5, .uid = 1000, .exe = (char *) "/usr/bin/node",
                                .cmdline = (char *) "node app.js" };
        strcpy(p.comm, "node");
        strcpy(p.container.id, "3f4f1c1e4a6b5c2d8e7f90a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6");
        strcpy(p.container.pod_uid, "5d4b3a7e-1c2f-4e6a-9b8d-0a1b2c3d4e5f");
        p.container.runtime = "containerd";
        assert_int_equal(st_proctab_exec(pt, &p), 0);
        harness_init(&tr, &st_processor_correlate, ST_TRACES, "{}");

        st_batch *b = spans(OTHER_PID, "unix_peercred", 1, 1, 2, 0);
        st_resource *res = ((st_traces_req *) b->req)->resource_spans[0]->resource;
        res->attributes[res->n_attributes++] = kv_new(&b->arena, "container.id", "what-the-sdk-said");
        consume(&tr, b);
        const st_traces_req *req = (const st_traces_req *) st_batch_req(tr.cap.v[0]);
        st_resource *out = req->resource_spans[0]->resource;
        st_key_value *const *v = out->attributes;
        size_t n = out->n_attributes;
        assert_string_equal(str_attr(v, n, "process.executable.path"), "/usr/bin/node");
        assert_string_equal(str_attr(v, n, "process.command_line"), "node app.js");
        assert_string_equal(str_attr(v, n, "process.executable.name"), "node");
        assert_int_equal(attr_get(v, n, "process.parent_pid")->int_value, 1);
        assert_string_equal(str_attr(v, n, "container.id"), p.container.id);
        assert_string_equal(str_attr(v, n, "strata.claimed.container.id"), "what-the-sdk-said");
        assert_string_equal(str_attr(v, n, "container.runtime.name"), "containerd");
        assert_string_equal(str_attr(v, n, "k8s.pod.uid"), p.container.pod_uid);

        /* not observed: left as sent */
        consume(&tr, spans(OTHER_PID, NULL, 1, 1, 2, 0));
        req = (const st_traces_req *) st_batch_req(tr.cap.v[1]);
        out = req->resource_spans[0]->resource;
        assert_null(attr_get(out->attributes, out->n_attributes, "process.executable.path"));
        free_metrics(&tr);
        harness_free(&tr);
}

/* span_events: a span waits (twice the window and a second), and leaves with the kernel
 * events joined to it, oldest first, as span events. */
static void test_span_events(void **state) {
        (void) state;
        struct harness tr, lg;
        uint64_t t0 = 1700000100 * SEC;
        harness_init(&tr, &st_processor_correlate, ST_TRACES, "join_window: 100ms\nspan_events: true\n");
        harness_init(&lg, &st_processor_correlate, ST_LOGS, "join_window: 100ms\nspan_events: true\n");
        assert_int_equal(tr.f->start(tr.inst), 0);
        assert_int_equal(lg.f->start(lg.inst), 0);

        consume(&tr, spans(APP_PID, "unix_peercred", 9, t0, t0 + SEC, APP_PID));
        uint64_t times[] = { t0 + SEC / 2, t0 + SEC / 4, t0 + 2 * SEC };
        consume(&lg, events(APP_PID, times, 3, APP_PID));
        assert_int_equal(capture_count(&tr.cap), 0); /* the span waits */
        wait_captured(&lg, 1);
        wait_captured(&tr, 1);
        const st_traces_req *req = (const st_traces_req *) st_batch_req(tr.cap.v[0]);
        const st_span *sp = req->resource_spans[0]->scope_spans[0]->spans[0];
        assert_int_equal(sp->n_events, 2); /* the third was after the span */
        assert_string_equal(sp->events[0]->name, "network.connect");
        assert_int_equal(sp->events[0]->time_unix_nano, t0 + SEC / 4);
        assert_int_equal(sp->events[1]->time_unix_nano, t0 + SEC / 2);
        const st_any_value *tid = attr_get(sp->events[0]->attributes, sp->events[0]->n_attributes, "thread.id");
        assert_non_null(tid);
        assert_int_equal(tid->int_value, APP_PID);
        assert_string_equal(str_attr(sp->events[0]->attributes, sp->events[0]->n_attributes, "strata.correlation.method"),
                            "process_time"); /* an OTLP span: its thread is not known */
        assert_int_equal(metric(&tr, "correlate_span_events_total"), 2);
        assert_int_equal(tr.f->shutdown(tr.inst, 0), 0);
        assert_int_equal(lg.f->shutdown(lg.inst, 0), 0);
        free_metrics(&tr);
        free_metrics(&lg);
        harness_free(&tr);
        harness_free(&lg);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config),
                cmocka_unit_test(test_join_after_window),
                cmocka_unit_test(test_join_via_parent),
                cmocka_unit_test(test_window_limits),
                cmocka_unit_test(test_enrichment),
                cmocka_unit_test(test_span_events),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
