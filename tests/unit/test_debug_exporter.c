/* The debug exporter: what each verbosity prints on stdout, and its sent counters. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "component.h"
#include "otlp_json.h"

extern const struct st_factory st_exporter_debug;

static const char spans[] =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"spanId\":\"b7ad6b7169203331\","
        "\"name\":\"GET \\\"/\\\"\",\"kind\":2,\"startTimeUnixNano\":\"1000000000\",\"endTimeUnixNano\":\"1250000000\",\"status\":{\"code\":2}},"
        "{\"spanId\":\"c7ad6b7169203331\",\"parentSpanId\":\"b7ad6b7169203331\",\"name\":\"db\",\"kind\":3,\"startTimeUnixNano\":\"10\","
        "\"endTimeUnixNano\":\"1510\"}]}]}]}";
static const char logs[] =
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityNumber\":13,\"body\":{\"stringValue\":\"disk\\nfull\"}},"
        "{\"severityText\":\"E\",\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"a\",\"value\":{\"intValue\":\"1\"}}]}}},"
        /* an event record, as the ebpf receiver makes them: the content is in the attributes */
        "{\"severityNumber\":9,\"eventName\":\"process.exit\",\"attributes\":[{\"key\":\"event.name\",\"value\":{\"stringValue\":"
        "\"process.exit\"}},{\"key\":\"process.pid\",\"value\":{\"intValue\":\"42\"}},{\"key\":\"ok\",\"value\":{\"boolValue\":true}}]}]}]}]}";
static const char metrics[] =
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"up\",\"unit\":\"1\",\"gauge\":{\"dataPoints\":[{\"asInt\":\"1\"},"
        "{\"asInt\":\"0\"}]}},{\"name\":\"lat\",\"histogram\":{\"dataPoints\":[{\"count\":\"0\",\"sum\":0}]}}]}]}]}";

static st_batch *batch_from_json(enum st_signal s, const char *json) {
        st_batch *b;
        char err[256];
        ProtobufCMessage *m;
        assert_int_equal(st_batch_new(s, &b), 0);
        if (st_otlp_json_decode(st_signals[s].req, json, strlen(json), st_arena_allocator(&b->arena), &m, err, sizeof(err)) < 0)
                fail_msg("%s", err);
        b->req = m;
        st_batch_recount(b);
        return b;
}

/* Runs the three batches through a debug exporter of that verbosity; returns stdout. */
static char *run(const char *verbosity, struct st_component_telemetry *tel) {
        const struct st_factory *f = &st_exporter_debug;
        char yaml[64], path[] = "/tmp/strata-debug-test-XXXXXX";
        snprintf(yaml, sizeof(yaml), "verbosity: %s", verbosity);
        struct st_diag d = { 0 };
        st_node *root = NULL;
        assert_int_equal(st_tree_parse_string("debug.yaml", yaml, strlen(yaml), &root, &d), 0);
        void *cfg = calloc(1, f->config_size);
        assert_int_equal(st_cfg_load(f->config, cfg, root, &d), 0);
        struct st_component_settings set = { .id = "debug", .log_name = "exporter/debug", .kind = ST_EXPORTER, .tel = tel };
        void *self;
        assert_int_equal(f->create(&set, cfg, &self), 0);
        assert_int_equal(f->start(self), 0);

        /* stdout into a file for the duration */
        int tmp = mkstemp(path), saved = dup(STDOUT_FILENO);
        assert_true(tmp >= 0 && saved >= 0);
        fflush(stdout);
        dup2(tmp, STDOUT_FILENO);
        const char *docs[] = { spans, metrics, logs };
        for (int s = 0; s < ST_SIGNAL_COUNT; s++) {
                st_batch *b = batch_from_json((enum st_signal) s, docs[s]);
                assert_int_equal(f->consume(self, b), 0);
                st_batch_unref(b);
        }
        fflush(stdout);
        dup2(saved, STDOUT_FILENO);
        close(saved);

        off_t n = lseek(tmp, 0, SEEK_END);
        char *out = calloc(1, (size_t) n + 1);
        assert_int_equal(pread(tmp, out, (size_t) n, 0), n);
        close(tmp);
        unlink(path);

        assert_int_equal(f->shutdown(self, st_now_ns()), 0);
        f->destroy(self);
        st_cfg_free(f->config, cfg);
        free(cfg);
        st_node_free(root);
        st_diag_free(&d);
        return out;
}

static void test_basic(void **state) {
        struct st_component_telemetry tel = { 0 };
        char *out = run("basic", &tel);
        assert_string_equal(out, ""); /* only log lines, on stderr */
        assert_int_equal(tel.sig[ST_TRACES].sent, 2);
        assert_int_equal(tel.sig[ST_METRICS].sent, 3);
        assert_int_equal(tel.sig[ST_LOGS].sent, 3);
        free(out);
}

static void test_normal(void **state) {
        struct st_component_telemetry tel = { 0 };
        char *out = run("normal", &tel);
        assert_string_equal(out,
                            "span trace_id=0af7651916cd43dd8448eb211c80319c span_id=b7ad6b7169203331 name=\"GET \\\"/\\\"\" kind=server "
                            "duration=250.000ms status=error\n"
                            "span trace_id=- span_id=c7ad6b7169203331 parent_id=b7ad6b7169203331 name=\"db\" kind=client duration=1.500us\n"
                            "metric name=\"up\" type=gauge points=2 unit=1\n"
                            "metric name=\"lat\" type=histogram points=1\n"
                            "log severity=WARN body=\"disk\\nfull\"\n"
                            "log severity=E body={\"kvlistValue\":{\"values\":[{\"key\":\"a\",\"value\":{\"intValue\":\"1\"}}]}}\n"
                            "log severity=INFO event=\"process.exit\" body=- process.pid=42 ok=true\n");
        free(out);
}

static void test_detailed(void **state) {
        struct st_component_telemetry tel = { 0 };
        char *out = run("detailed", &tel);
        /* three pretty documents, each decodes to its request */
        const ProtobufCMessageDescriptor *desc[] = { st_signals[ST_TRACES].req, st_signals[ST_METRICS].req, st_signals[ST_LOGS].req };
        char *p = out;
        for (int s = 0; s < ST_SIGNAL_COUNT; s++) {
                char *end = strstr(p, "\n}\n");
                assert_non_null(end);
                end += 3;
                st_arena a;
                st_arena_init(&a);
                ProtobufCMessage *m;
                char err[256];
                if (st_otlp_json_decode(desc[s], p, (size_t) (end - p), st_arena_allocator(&a), &m, err, sizeof(err)) < 0)
                        fail_msg("%s", err);
                assert_int_equal(st_request_items((enum st_signal) s, m), s == ST_TRACES ? 2 : 3);
                st_arena_reset(&a);
                p = end;
        }
        assert_string_equal(p, "");
        assert_non_null(strstr(out, "\"sum\": 0\n")); /* the set oneof, even at 0 */
        free(out);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_basic),
                cmocka_unit_test(test_normal),
                cmocka_unit_test(test_detailed),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
