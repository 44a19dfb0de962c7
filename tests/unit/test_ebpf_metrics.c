/* The ebpf receiver's metrics: synthetic kernel events in, cumulative OTLP sums and a
 * histogram out; series bounded with an overflow series. No BPF involved. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "ebpf_metrics.h"
#include "processor_test.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"

static _Alignas(8) unsigned char buf[512];

static struct kevent exec_ev(const char *comm) {
        struct st_ev_exec *e = (struct st_ev_exec *) buf;
        struct kevent ev;
        memset(buf, 0, sizeof(buf));
        e->h.type = ST_EV_EXEC;
        e->h.size = sizeof(*e);
        strncpy(e->h.comm, comm, sizeof(e->h.comm) - 1);
        assert_int_equal(kevent_decode(buf, sizeof(*e), &ev), 0);
        return ev;
}

static struct kevent conn_ev(int type, int dir, uint8_t last_octet, int lport, int rport, uint64_t sent, uint64_t recv,
                             uint64_t dur_ns) {
        struct st_ev_conn *c = (struct st_ev_conn *) buf;
        struct kevent ev;
        memset(buf, 0, sizeof(buf));
        c->h.type = (uint16_t) type;
        c->h.size = sizeof(*c);
        c->family = AF_INET;
        c->direction = (uint8_t) dir;
        c->remote_addr[0] = 10;
        c->remote_addr[3] = last_octet;
        c->local_port = (uint16_t) lport;
        c->remote_port = (uint16_t) rport;
        c->bytes_sent = sent;
        c->bytes_received = recv;
        c->duration_ns = dur_ns;
        assert_int_equal(kevent_decode(buf, sizeof(*c), &ev), 0);
        return ev;
}

static const st_metric *find_metric(const st_metrics_req *req, const char *name) {
        const st_scope_metrics *sm = req->resource_metrics[0]->scope_metrics[0];
        for (size_t i = 0; i < sm->n_metrics; i++)
                if (strcmp(sm->metrics[i]->name, name) == 0)
                        return sm->metrics[i];
        return NULL;
}

/* The sum point whose string/int attributes match; -1 when none. */
static int64_t sum_value(const st_metric *m, const char *k1, const char *v1, const char *k2, const char *v2) {
        for (size_t i = 0; i < m->sum->n_data_points; i++) {
                const st_number_point *p = m->sum->data_points[i];
                const st_any_value *a = attr_get(p->attributes, p->n_attributes, k1);
                const st_any_value *b = k2 ? attr_get(p->attributes, p->n_attributes, k2) : NULL;
                if (a && strcmp(a->string_value, v1) == 0 && (!k2 || (b && strcmp(b->string_value, v2) == 0)))
                        return p->as_int;
        }
        return -1;
}

static void test_sums_and_histogram(void **state) {
        struct kmetrics *m;
        st_batch *b;
        assert_int_equal(kmetrics_new(100, &m), 0);
        assert_int_equal(kmetrics_build(m, 1, 2, &b), 0);
        assert_null(b); /* nothing yet */

        for (int i = 0; i < 3; i++) {
                struct kevent ev = exec_ev("curl");
                kmetrics_add(m, &ev, 1);
        }
        struct kevent ev = exec_ev("sh");
        kmetrics_add(m, &ev, 1);
        ev = conn_ev(ST_EV_CONNECT, ST_CONN_OUTBOUND, 7, 40000, 443, 0, 0, 0);
        kmetrics_add(m, &ev, 1);
        ev = conn_ev(ST_EV_CONNECT, ST_CONN_OUTBOUND, 7, 40001, 443, 0, 0, 0);
        kmetrics_add(m, &ev, 1);
        ev = conn_ev(ST_EV_ACCEPT, ST_CONN_INBOUND, 9, 8080, 51000, 0, 0, 0);
        kmetrics_add(m, &ev, 1);
        ev = conn_ev(ST_EV_CLOSE, ST_CONN_OUTBOUND, 7, 40000, 443, 100, 2000, 3000000); /* 3 ms */
        kmetrics_add(m, &ev, 1);
        ev = conn_ev(ST_EV_CLOSE, ST_CONN_OUTBOUND, 7, 40001, 443, 50, 1000, 2000000000); /* 2 s */
        kmetrics_add(m, &ev, 1);

        assert_int_equal(kmetrics_build(m, 1000, 2000, &b), 0);
        assert_non_null(b);
        /* what an exporter and the next hop would see */
        st_batch *rt = roundtrip(b);
        const st_metrics_req *req = (const st_metrics_req *) st_batch_req(rt);

        const st_metric *execs = find_metric(req, "strata.process.execs");
        assert_non_null(execs);
        assert_true(execs->sum->is_monotonic);
        assert_int_equal(execs->sum->aggregation_temporality,
                         OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
        assert_int_equal(sum_value(execs, "process.executable.name", "curl", NULL, NULL), 3);
        assert_int_equal(sum_value(execs, "process.executable.name", "sh", NULL, NULL), 1);
        assert_int_equal(execs->sum->data_points[0]->start_time_unix_nano, 1000);
        assert_int_equal(execs->sum->data_points[0]->time_unix_nano, 2000);

        const st_metric *conns = find_metric(req, "strata.network.connections");
        assert_non_null(conns);
        /* two outbound to 10.0.0.7:443 (one series: the client port is not an attribute), one inbound */
        assert_int_equal(sum_value(conns, "strata.network.direction", "outbound", "network.peer.address", "10.0.0.7"), 2);
        assert_int_equal(sum_value(conns, "strata.network.direction", "inbound", "network.peer.address", "10.0.0.9"), 1);

        const st_metric *io = find_metric(req, "strata.network.io");
        assert_int_equal(sum_value(io, "network.io.direction", "transmit", "network.peer.address", "10.0.0.7"), 150);
        assert_int_equal(sum_value(io, "network.io.direction", "receive", "network.peer.address", "10.0.0.7"), 3000);

        const st_metric *dur = find_metric(req, "strata.network.connection.duration");
        assert_non_null(dur);
        assert_int_equal(dur->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
        const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p = dur->histogram->data_points[0];
        assert_int_equal(p->count, 2);
        assert_int_equal(p->n_bucket_counts, p->n_explicit_bounds + 1);
        uint64_t total = 0;
        for (size_t i = 0; i < p->n_bucket_counts; i++)
                total += p->bucket_counts[i];
        assert_int_equal(total, 2);
        assert_true(p->min > 0.0029 && p->min < 0.0031);
        assert_true(p->max > 1.99 && p->max < 2.01);
        assert_true(p->sum > 2.002 && p->sum < 2.004);
        st_batch_unref(rt);
        st_batch_unref(b);

        /* cumulative: a second build counts from the start */
        ev = exec_ev("curl");
        kmetrics_add(m, &ev, 1);
        assert_int_equal(kmetrics_build(m, 1000, 3000, &b), 0);
        req = (const st_metrics_req *) st_batch_req(b);
        assert_int_equal(sum_value(find_metric(req, "strata.process.execs"), "process.executable.name", "curl", NULL, NULL), 4);
        st_batch_unref(b);
        kmetrics_free(m);
}

static void test_sampled_weight(void **state) {
        struct kmetrics *m;
        st_batch *b;
        assert_int_equal(kmetrics_new(100, &m), 0);
        struct kevent ev = conn_ev(ST_EV_CONNECT, ST_CONN_OUTBOUND, 7, 40000, 443, 0, 0, 0);
        kmetrics_add(m, &ev, 10); /* 1 in 10 followed: stands for 10 */
        ev = conn_ev(ST_EV_CLOSE, ST_CONN_OUTBOUND, 7, 40000, 443, 100, 5, 1000000);
        kmetrics_add(m, &ev, 10);
        assert_int_equal(kmetrics_build(m, 1, 2, &b), 0);
        const st_metrics_req *req = (const st_metrics_req *) st_batch_req(b);
        assert_int_equal(sum_value(find_metric(req, "strata.network.connections"), "strata.network.direction", "outbound",
                                   NULL, NULL), 10);
        assert_int_equal(sum_value(find_metric(req, "strata.network.io"), "network.io.direction", "transmit", NULL, NULL), 1000);
        assert_int_equal(find_metric(req, "strata.network.connection.duration")->histogram->data_points[0]->count, 10);
        st_batch_unref(b);
        kmetrics_free(m);
}

static void test_overflow(void **state) {
        struct kmetrics *m;
        st_batch *b;
        char comm[16];
        assert_int_equal(kmetrics_new(5, &m), 0);
        for (int i = 0; i < 50; i++) {
                snprintf(comm, sizeof(comm), "prog%d", i);
                struct kevent ev = exec_ev(comm);
                kmetrics_add(m, &ev, 1);
        }
        assert_int_equal(kmetrics_series(m), 6); /* 5 and the overflow series */
        assert_int_equal(kmetrics_build(m, 1, 2, &b), 0);
        const st_metrics_req *req = (const st_metrics_req *) st_batch_req(b);
        const st_metric *execs = find_metric(req, "strata.process.execs");
        int64_t total = 0, overflow = 0;
        for (size_t i = 0; i < execs->sum->n_data_points; i++) {
                const st_number_point *p = execs->sum->data_points[i];
                total += p->as_int;
                if (attr_get(p->attributes, p->n_attributes, "otel.metric.overflow"))
                        overflow = p->as_int;
        }
        assert_int_equal(total, 50); /* nothing dropped */
        assert_int_equal(overflow, 45);
        st_batch_unref(b);
        kmetrics_free(m);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sums_and_histogram),
                cmocka_unit_test(test_sampled_weight),
                cmocka_unit_test(test_overflow),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
