/* The file exporter: configured from YAML, it writes one OTLP/JSON line per batch that decodes
 * back to the same request, rotates by size, and fails start() on a path it cannot open. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "component.h"
#include "otlp_json.h"

extern const struct st_factory st_exporter_file;

static char dir[256];

static int setup(void **state) {
        snprintf(dir, sizeof(dir), "/tmp/strata-file-test-XXXXXX");
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

struct inst {
        const struct st_factory *f;
        void *cfg;
        void *self;
        struct st_component_telemetry *tel;
};

/* Loads yaml through the factory's config map and validates it. Returns the diagnostics'
 * error count; *ret is created only when there were none. */
static size_t make(const char *id, const char *yaml, struct inst *ret, char *diag, size_t diaglen) {
        const struct st_factory *f = st_factory_find(ST_EXPORTER, "file");
        assert_non_null(f);
        assert_ptr_equal(f, &st_exporter_file);
        struct st_diag d = { 0 };
        st_node *root = NULL;
        assert_int_equal(st_tree_parse_string("file.yaml", yaml, strlen(yaml), &root, &d), 0);
        void *cfg = calloc(1, f->config_size);
        if (st_cfg_load(f->config, cfg, root, &d) == 0) {
                struct st_cfg_ctx ctx = { .diag = &d, .node = root, .at = root };
                f->validate(cfg, &ctx);
        }
        size_t errors = d.errors;
        if (diag)
                snprintf(diag, diaglen, "%s", st_buf_cstr(&d.text));
        if (!errors) {
                char log_name[64];
                snprintf(log_name, sizeof(log_name), "exporter/%s", id);
                struct st_component_settings set = {
                        .id = id, .log_name = log_name, .kind = ST_EXPORTER, .tel = st_tel_component("exporter", id),
                };
                *ret = (struct inst) { .f = f, .cfg = cfg, .tel = set.tel };
                assert_int_equal(f->create(&set, cfg, &ret->self), 0);
        } else {
                st_cfg_free(f->config, cfg);
                free(cfg);
        }
        st_node_free(root);
        st_diag_free(&d);
        return errors;
}

static void drop(struct inst *in) {
        in->f->shutdown(in->self, st_now_ns() + 5 * ST_NS_PER_SEC);
        in->f->destroy(in->self);
        st_cfg_free(in->f->config, in->cfg);
        free(in->cfg);
}

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

static const char *const docs[ST_SIGNAL_COUNT] = {
        [ST_TRACES] = ("{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"cart\"}}]},"
                      "\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"spanId\":\"b7ad6b7169203331\","
                      "\"name\":\"GET /\",\"kind\":2,\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"2\"},{\"name\":\"child\"}]}]}]}"),
        [ST_METRICS] = ("{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"h\",\"histogram\":{\"dataPoints\":[{\"count\":\"1\","
                       "\"sum\":0,\"bucketCounts\":[\"1\"]}],\"aggregationTemporality\":2}},{\"name\":\"g\",\"gauge\":{\"dataPoints\":"
                       "[{\"asInt\":\"5\"},{\"asDouble\":0.5}]}}]}]}]}"),
        [ST_LOGS] = ("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityNumber\":9,\"body\":{\"stringValue\":\"hello\\nworld\"},"
                    "\"traceId\":\"0af7651916cd43dd8448eb211c80319c\"}]}]}]}"),
};

static size_t packed(const ProtobufCMessage *m, uint8_t **ret) {
        size_t n = protobuf_c_message_get_packed_size(m);
        *ret = malloc(n + 1);
        protobuf_c_message_pack(m, *ret);
        return n;
}

/* Reads path's lines; each must decode as a request of signal sig[i] packing to the same
 * bytes as want[i]. Returns the number of lines. */
static size_t check_lines(const char *path, const enum st_signal *sig, st_batch *const *want, size_t max) {
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char *line = NULL;
        size_t cap = 0, n = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, f)) > 0) {
                assert_true(line[len - 1] == '\n');
                assert_null(memchr(line, '\n', (size_t) len - 1)); /* one line per batch */
                assert_true(n < max);
                st_arena a;
                st_arena_init(&a);
                ProtobufCMessage *m = NULL;
                char err[256];
                if (st_otlp_json_decode(st_signals[sig[n]].req, line, (size_t) len, st_arena_allocator(&a), &m, err, sizeof(err)) < 0)
                        fail_msg("%s line %zu: %s", path, n + 1, err);
                uint8_t *x, *y;
                size_t nx = packed(m, &x), ny = packed(st_batch_req(want[n]), &y);
                assert_int_equal(nx, ny);
                assert_memory_equal(x, y, nx);
                free(x);
                free(y);
                st_arena_reset(&a);
                n++;
        }
        free(line);
        fclose(f);
        return n;
}

static void writes_lines_that_decode_back(bool queue) {
        char path[300], yaml[512];
        snprintf(path, sizeof(path), "%s/out-%d.jsonl", dir, queue);
        snprintf(yaml, sizeof(yaml), "path: %s\nformat: json\nsending_queue: { enabled: %s, num_consumers: 1 }\n", path,
                 queue ? "true" : "false");
        struct inst in;
        char diag[512];
        if (make(queue ? "file/q" : "file/sync", yaml, &in, diag, sizeof(diag)))
                fail_msg("%s", diag);
        assert_int_equal(in.f->start(in.self), 0);

        enum st_signal sig[6];
        st_batch *want[6];
        for (size_t i = 0; i < 6; i++) {
                sig[i] = (enum st_signal) (i % ST_SIGNAL_COUNT);
                want[i] = batch_from_json(sig[i], docs[sig[i]]);
                assert_int_equal(in.f->consume(in.self, want[i]), 0);
        }
        assert_int_equal(in.f->shutdown(in.self, st_now_ns() + 5 * ST_NS_PER_SEC), 0); /* drains the queue */
        assert_int_equal(check_lines(path, sig, want, 6), 6);
        assert_int_equal(in.tel->sig[ST_TRACES].sent, 4);
        assert_int_equal(in.tel->sig[ST_METRICS].sent, 6);
        assert_int_equal(in.tel->sig[ST_LOGS].sent, 2);
        assert_int_equal(in.tel->sig[ST_TRACES].failed, 0);

        /* after shutdown nothing is taken */
        assert_true(in.f->consume(in.self, want[0]) < 0);
        for (size_t i = 0; i < 6; i++)
                st_batch_unref(want[i]);
        drop(&in);
}

static void test_sync(void **state) { writes_lines_that_decode_back(false); }
static void test_queued(void **state) { writes_lines_that_decode_back(true); }

/* A log batch of about `size` bytes of JSON. */
static st_batch *big_batch(size_t size, char fill) {
        st_buf b = { 0 };
        st_buf_puts(&b, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"stringValue\":\"");
        for (size_t i = 0; i < size; i++)
                st_buf_putc(&b, fill);
        st_buf_puts(&b, "\"}}]}]}]}");
        st_batch *r = batch_from_json(ST_LOGS, st_buf_cstr(&b));
        st_buf_free(&b);
        return r;
}

static off_t file_size(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 ? st.st_size : -1;
}

static void test_rotation(void **state) {
        char path[300], yaml[512], p1[320], p2[320], p3[320];
        snprintf(path, sizeof(path), "%s/rot.jsonl", dir);
        snprintf(p1, sizeof(p1), "%s.1", path);
        snprintf(p2, sizeof(p2), "%s.2", path);
        snprintf(p3, sizeof(p3), "%s.3", path);
        snprintf(yaml, sizeof(yaml), "path: %s\nrotation: { max_megabytes: 1, max_backups: 2 }\nsending_queue: { enabled: false }\n", path);
        struct inst in;
        char diag[512];
        if (make("file/rot", yaml, &in, diag, sizeof(diag)))
                fail_msg("%s", diag);
        assert_int_equal(in.f->start(in.self), 0);

        /* 400 KiB lines: two fit in 1 MiB, the third starts a new file */
        st_batch *b[7];
        for (int i = 0; i < 7; i++)
                b[i] = big_batch(400 * 1024, (char) ('a' + i));
        for (int i = 0; i < 3; i++)
                assert_int_equal(in.f->consume(in.self, b[i]), 0);
        assert_true(file_size(p1) > 800 * 1024 && file_size(p1) <= 1024 * 1024);
        assert_true(file_size(path) > 400 * 1024 && file_size(path) < 500 * 1024);
        enum st_signal sig[2] = { ST_LOGS, ST_LOGS };
        assert_int_equal(check_lines(p1, sig, b, 2), 2);
        assert_int_equal(check_lines(path, sig, b + 2, 1), 1);

        /* three more rotations: path.1 and path.2 are the newest full files, nothing past .2 */
        for (int i = 3; i < 7; i++)
                assert_int_equal(in.f->consume(in.self, b[i]), 0);
        assert_int_equal(check_lines(path, sig, b + 6, 2), 1);
        assert_int_equal(check_lines(p1, sig, b + 4, 2), 2);
        assert_int_equal(check_lines(p2, sig, b + 2, 2), 2);
        assert_int_equal(file_size(p3), -1);
        assert_int_equal(in.tel->sig[ST_LOGS].sent, 7);
        for (int i = 0; i < 7; i++)
                st_batch_unref(b[i]);
        drop(&in);
}

/* A new instance appends to what is there and counts it towards the rotation size. */
static void test_appends(void **state) {
        char path[300], yaml[512];
        snprintf(path, sizeof(path), "%s/append.jsonl", dir);
        snprintf(yaml, sizeof(yaml), "path: %s\nsending_queue: { enabled: false }\n", path);
        st_batch *b = batch_from_json(ST_TRACES, docs[ST_TRACES]);
        for (int round = 0; round < 2; round++) {
                struct inst in;
                assert_int_equal(make("file/append", yaml, &in, NULL, 0), 0);
                assert_int_equal(in.f->start(in.self), 0);
                assert_int_equal(in.f->consume(in.self, b), 0);
                drop(&in);
        }
        enum st_signal sig[2] = { ST_TRACES, ST_TRACES };
        st_batch *want[2] = { b, b };
        assert_int_equal(check_lines(path, sig, want, 2), 2);
        st_batch_unref(b);
}

static void test_start_fails_on_bad_path(void **state) {
        struct inst in;
        assert_int_equal(make("file/bad", "path: /nonexistent-strata-dir/x/out.jsonl\n", &in, NULL, 0), 0);
        assert_int_equal(in.f->start(in.self), -ENOENT);
        drop(&in);
}

static void test_config_errors(void **state) {
        struct inst in;
        char diag[512];
        assert_int_equal(make("file/e1", "format: json\n", &in, diag, sizeof(diag)), 1);
        assert_non_null(strstr(diag, "path"));
        assert_int_equal(make("file/e2", "path: /tmp/x\nformat: proto\n", &in, diag, sizeof(diag)), 1);
        assert_non_null(strstr(diag, "format"));
        assert_true(make("file/e3", "path: /tmp/x\nrotation: { max_megabytes: 0 }\n", &in, diag, sizeof(diag)) >= 1);
        assert_non_null(strstr(diag, "max_megabytes"));
        assert_true(make("file/e4", "path: /tmp/x\nflush: 1s\n", &in, diag, sizeof(diag)) >= 1);
        assert_non_null(strstr(diag, "flush"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sync),
                cmocka_unit_test(test_queued),
                cmocka_unit_test(test_rotation),
                cmocka_unit_test(test_appends),
                cmocka_unit_test(test_start_fails_on_bad_path),
                cmocka_unit_test(test_config_errors),
        };
        int r = cmocka_run_group_tests(tests, setup, teardown);
        st_tel_reset();
        return r;
}
