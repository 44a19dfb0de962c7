/* The OTLP receiver through its factory: config checks, OTLP/HTTP with libcurl (protobuf, JSON,
 * gzip, errors, pushback, Unix socket) and OTLP/gRPC with a C-core client (OK, errors,
 * pushback with RetryInfo, UNIMPLEMENTED, Unix socket, size limits, shutdown with a call in
 * flight). Servers listen on 127.0.0.1 port 0; every client call has a timeout. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
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

#include <curl/curl.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <zlib.h>

#include "batch.h"
#include "clock.h"
#include "component.h"
#include "config_map.h"
#include "google/protobuf/any.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "peer.h"
#include "receivers/otlp/otlp_receiver.h"
#include "telemetry.h"
#include "tree.h"

extern const struct st_factory st_receiver_otlp;

#pragma GCC diagnostic ignored "-Wunused-parameter"

#define CLIENT_TIMEOUT_S 10

/* ---- a capturing next consumer ------------------------------------------------------------ */

struct capture {
        pthread_mutex_t lock;
        size_t calls, items;
        st_batch *last;
        int ret;           /* what consume() answers */
        int delay_ms;      /* a slow pipeline */
        volatile int entered;
};

static int capture_consume(void *data, st_batch *b) {
        struct capture *c = data;
        c->entered = 1;
        if (c->delay_ms)
                usleep((useconds_t) c->delay_ms * 1000);
        pthread_mutex_lock(&c->lock);
        c->calls++;
        c->items += b->items;
        st_batch_unref(c->last);
        c->last = st_batch_ref(b);
        int r = c->ret;
        pthread_mutex_unlock(&c->lock);
        return r;
}

/* ---- the receiver under test ---------------------------------------------------------------- */

struct rx {
        void *cfg;
        void *inst;
        struct capture cap[ST_SIGNAL_COUNT];
        struct st_component_telemetry tel;
        int grpc_port, http_port;
};

static int load_config(const char *yaml, void **ret_cfg, char *diag_out, size_t diag_len) {
        struct st_diag d = { 0 };
        st_node *root = NULL;
        void *cfg = calloc(1, st_receiver_otlp.config_size);
        int r;

        assert_non_null(cfg);
        r = st_tree_parse_string("test.yaml", yaml, strlen(yaml), &root, &d);
        if (r >= 0)
                r = st_cfg_load(st_receiver_otlp.config, cfg, root, &d);
        if (r >= 0) {
                struct st_cfg_ctx ctx = { .diag = &d, .node = root, .at = root };
                r = st_receiver_otlp.validate(cfg, &ctx);
        }
        if (diag_out)
                snprintf(diag_out, diag_len, "%s", d.text.len ? st_buf_cstr(&d.text) : "");
        if (r < 0 && d.text.len && !diag_out)
                fprintf(stderr, "config: %s\n", st_buf_cstr(&d.text));
        st_diag_free(&d);
        st_node_free(root);
        if (r < 0) {
                st_cfg_free(st_receiver_otlp.config, cfg);
                free(cfg);
                return r;
        }
        *ret_cfg = cfg;
        return 0;
}

/* pipelines: ST_SIG_BIT()s of the signals that have a next consumer. */
static void rx_create(struct rx *x, const char *yaml, unsigned pipelines) {
        memset(x, 0, sizeof(*x));
        assert_int_equal(load_config(yaml, &x->cfg, NULL, 0), 0);
        struct st_component_settings set = {
                .id = "otlp", .log_name = "receiver/otlp", .kind = ST_RECEIVER, .tel = &x->tel,
        };
        for (int s = 0; s < ST_SIGNAL_COUNT; s++) {
                pthread_mutex_init(&x->cap[s].lock, NULL);
                if (pipelines & ST_SIG_BIT(s))
                        set.next[s] = (struct st_consumer) { .consume = capture_consume, .data = &x->cap[s] };
        }
        assert_int_equal(st_receiver_otlp.create(&set, x->cfg, &x->inst), 0);
}

static void rx_start(struct rx *x, const char *yaml, unsigned pipelines) {
        rx_create(x, yaml, pipelines);
        assert_int_equal(st_receiver_otlp.start(x->inst), 0);
        otlprecv_ports(x->inst, &x->grpc_port, &x->http_port);
}

static void rx_stop(struct rx *x) {
        assert_int_equal(st_receiver_otlp.shutdown(x->inst, st_now_ns() + 5 * ST_NS_PER_SEC), 0);
        st_receiver_otlp.destroy(x->inst);
        st_cfg_free(st_receiver_otlp.config, x->cfg);
        free(x->cfg);
        for (int s = 0; s < ST_SIGNAL_COUNT; s++) {
                st_batch_unref(x->cap[s].last);
                pthread_mutex_destroy(&x->cap[s].lock);
        }
}

static const char *const BOTH_YAML = "protocols:\n"
                                     "  grpc:\n"
                                     "    endpoint: 127.0.0.1:0\n"
                                     "  http:\n"
                                     "    endpoint: 127.0.0.1:0\n";

/* ---- requests --------------------------------------------------------------------------------- */

/* An ExportTraceServiceRequest with n spans, packed into a malloc'd buffer. */
static uint8_t *pack_traces(size_t n, size_t *ret_len) {
        st_traces_req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
        st_resource_spans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT, *rsv[1] = { &rs };
        st_scope_spans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT, *ssv[1] = { &ss };
        st_span *spans = calloc(n ? n : 1, sizeof(*spans));
        st_span **sv = calloc(n ? n : 1, sizeof(*sv));
        uint8_t tid[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 }, sid[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

        for (size_t i = 0; i < n; i++) {
                opentelemetry__proto__trace__v1__span__init(&spans[i]);
                spans[i].name = (char *) "a span with a name long enough to make the request grow";
                spans[i].trace_id = (ProtobufCBinaryData) { 16, tid };
                spans[i].span_id = (ProtobufCBinaryData) { 8, sid };
                spans[i].start_time_unix_nano = 1000 + i;
                spans[i].end_time_unix_nano = 2000 + i;
                sv[i] = &spans[i];
        }
        ss.n_spans = n;
        ss.spans = sv;
        rs.n_scope_spans = 1;
        rs.scope_spans = ssv;
        req.n_resource_spans = 1;
        req.resource_spans = rsv;
        size_t len = protobuf_c_message_get_packed_size(&req.base);
        uint8_t *out = malloc(len ? len : 1);
        assert_non_null(out);
        protobuf_c_message_pack(&req.base, out);
        free(spans);
        free(sv);
        *ret_len = len;
        return out;
}

static uint8_t *gzip_buf(const uint8_t *in, size_t n, size_t *ret_len) {
        z_stream z = { 0 };
        size_t cap = n + 1024;
        uint8_t *out = malloc(cap);
        assert_non_null(out);
        assert_int_equal(deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
        z.next_in = (Bytef *) in;
        z.avail_in = (uInt) n;
        z.next_out = out;
        z.avail_out = (uInt) cap;
        assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
        *ret_len = z.total_out;
        deflateEnd(&z);
        return out;
}

static const char *const JSON_TRACES =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"t\"}}]},"
        "\"scopeSpans\":[{\"scope\":{\"name\":\"s\"},\"spans\":["
        "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\",\"name\":\"a\",\"kind\":1,"
        "\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"2\"},"
        "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b175\",\"name\":\"b\"}]}]}]}";

/* ---- an HTTP client (libcurl) ---------------------------------------------------------------- */

struct http_resp {
        long status;
        st_buf body;
        char retry_after[32];
        char content_type[64];
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
        st_buf_append(&((struct http_resp *) ud)->body, p, sz * n);
        return sz * n;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t outlen) {
        size_t nl = strlen(name);
        if (len <= nl || strncasecmp(line, name, nl) != 0)
                return;
        const char *v = line + nl;
        size_t vl = len - nl;
        while (vl && (*v == ' ' || *v == '\t'))
                v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
                vl--;
        snprintf(out, outlen, "%.*s", (int) vl, v);
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
        struct http_resp *r = ud;
        header_value(p, sz * n, "Retry-After:", r->retry_after, sizeof(r->retry_after));
        header_value(p, sz * n, "Content-Type:", r->content_type, sizeof(r->content_type));
        return sz * n;
}

static void http_request(const char *unix_path, int port, const char *method, const char *path, const char *ctype,
                         const char *cenc, const void *body, size_t len, struct http_resp *out) {
        char url[256], h1[128], h2[128];
        struct curl_slist *hdrs = NULL;
        CURL *c = curl_easy_init();

        assert_non_null(c);
        memset(out, 0, sizeof(*out));
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        if (unix_path)
                curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, unix_path);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
        }
        if (ctype) {
                snprintf(h1, sizeof(h1), "Content-Type: %s", ctype);
                hdrs = curl_slist_append(hdrs, h1);
        }
        if (cenc) {
                snprintf(h2, sizeof(h2), "Content-Encoding: %s", cenc);
                hdrs = curl_slist_append(hdrs, h2);
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, (long) CLIENT_TIMEOUT_S);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK)
                fprintf(stderr, "curl: %s\n", curl_easy_strerror(rc));
        assert_int_equal(rc, CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(c);
}

static void http_post(int port, const char *path, const char *ctype, const char *cenc, const void *body, size_t len,
                      struct http_resp *out) {
        http_request(NULL, port, "POST", path, ctype, cenc, body, len, out);
}

/* The google.rpc.Status in a protobuf error body. */
static Google__Rpc__Status *status_body(const struct http_resp *r) {
        Google__Rpc__Status *st = google__rpc__status__unpack(NULL, r->body.len, (const uint8_t *) r->body.data);
        assert_non_null(st);
        return st;
}

/* ---- config ---------------------------------------------------------------------------------- */

static void test_config_defaults(void **state) {
        void *cfg;
        assert_int_equal(load_config("protocols:\n  grpc:\n  http: {}\n", &cfg, NULL, 0), 0);
        const struct otlprecv_config *c = cfg;
        assert_true(c->protocols.has_grpc);
        assert_true(c->protocols.has_http);
        assert_string_equal(c->protocols.grpc.endpoint, "127.0.0.1:4317");
        assert_string_equal(c->protocols.grpc.unix_socket_mode, "0660");
        assert_int_equal(c->protocols.grpc.max_recv_msg_size, 4u << 20);
        assert_false(c->protocols.grpc.has_tls);
        assert_string_equal(c->protocols.http.endpoint, "127.0.0.1:4318");
        assert_int_equal(otlprecv_http_body_limit(&c->protocols.http), 4u << 20);
        assert_string_equal(c->protocols.http.traces_url_path, "/v1/traces");
        assert_string_equal(c->protocols.http.metrics_url_path, "/v1/metrics");
        assert_string_equal(c->protocols.http.logs_url_path, "/v1/logs");
        st_cfg_free(st_receiver_otlp.config, cfg);
        free(cfg);

        assert_int_equal(load_config("protocols:\n  http:\n    max_recv_msg_size: 1KiB\n", &cfg, NULL, 0), 0);
        c = cfg;
        assert_false(c->protocols.has_grpc);
        assert_int_equal(otlprecv_http_body_limit(&c->protocols.http), 1024);
        st_cfg_free(st_receiver_otlp.config, cfg);
        free(cfg);
}

static void expect_config_error(const char *yaml, const char *needle) {
        char diag[1024];
        void *cfg = NULL;
        assert_int_equal(load_config(yaml, &cfg, diag, sizeof(diag)), -EINVAL);
        if (!strstr(diag, needle))
                fail_msg("expected '%s' in: %s", needle, diag);
}

static void test_config_errors(void **state) {
        expect_config_error("protocols: {}\n", "at least one protocol");
        expect_config_error("protocols:\n  grpc:\n    endpoint: localhost\n", "protocols.grpc.endpoint");
        expect_config_error("protocols:\n  grpc:\n    endpoint: 127.0.0.1:70000\n", "protocols.grpc.endpoint");
        expect_config_error("protocols:\n  grpc:\n    endpoint: unix://relative\n", "protocols.grpc.endpoint");
        expect_config_error("protocols:\n  grpc:\n    unix_socket: relative.sock\n", "protocols.grpc.unix_socket");
        expect_config_error("protocols:\n  grpc:\n    unix_socket_mode: \"0968\"\n", "protocols.grpc.unix_socket_mode");
        expect_config_error("protocols:\n  grpc:\n    endpoint: \"\"\n", "protocols.grpc.endpoint");
        expect_config_error("protocols:\n  grpc:\n    tls: { cert_file: /x }\n", "protocols.grpc.tls.key_file");
        expect_config_error("protocols:\n  http:\n    endpoint: \"[::1]\"\n", "protocols.http.endpoint");
        expect_config_error("protocols:\n  http:\n    traces_url_path: v1/traces\n", "protocols.http.traces_url_path");
        expect_config_error("protocols:\n  http:\n    logs_url_path: /v1/traces\n", "protocols.http.logs_url_path");
        expect_config_error("protocols:\n  http:\n    max_request_body_size: 0\n", "protocols.http.max_request_body_size");
        expect_config_error("protocols:\n  http:\n    bogus: 1\n", "bogus");
}

static void test_shutdown_without_start(void **state) {
        struct rx x;
        rx_create(&x, BOTH_YAML, ST_SIG_ALL);
        rx_stop(&x);
        st_receiver_otlp.destroy(NULL);
        assert_int_equal(st_receiver_otlp.shutdown(NULL, 0), 0);
}

static void test_start_fails_cleanly(void **state) {
        struct rx a, b;
        char yaml[256];
        rx_start(&a, BOTH_YAML, ST_SIG_ALL);
        /* the same gRPC port again: start() fails, and cleans up after itself */
        snprintf(yaml, sizeof(yaml), "protocols:\n  grpc:\n    endpoint: 127.0.0.1:%d\n", a.grpc_port);
        rx_create(&b, yaml, ST_SIG_ALL);
        assert_true(st_receiver_otlp.start(b.inst) < 0);
        rx_stop(&b);
        /* and the same HTTP port */
        snprintf(yaml, sizeof(yaml), "protocols:\n  http:\n    endpoint: 127.0.0.1:%d\n", a.http_port);
        rx_create(&b, yaml, ST_SIG_ALL);
        assert_int_equal(st_receiver_otlp.start(b.inst), -EADDRINUSE);
        rx_stop(&b);
        rx_stop(&a);
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

static void test_http_protobuf(void **state) {
        struct rx x;
        struct http_resp r;
        size_t len;
        uint8_t *body = pack_traces(3, &len);

        rx_start(&x, BOTH_YAML, ST_SIG_ALL);
        assert_true(x.http_port > 0);
        http_post(x.http_port, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "application/x-protobuf");
        assert_int_equal(r.body.len, 0);
        assert_int_equal(x.cap[ST_TRACES].calls, 1);
        assert_int_equal(x.cap[ST_TRACES].items, 3);
        assert_int_equal(x.tel.sig[ST_TRACES].accepted, 3);
        assert_int_equal(x.tel.sig[ST_TRACES].refused, 0);
        const st_traces_req *req = (const st_traces_req *) st_batch_req(x.cap[ST_TRACES].last);
        assert_string_equal(req->resource_spans[0]->scope_spans[0]->spans[2]->name,
                            "a span with a name long enough to make the request grow");
        st_buf_free(&r.body);

        /* an empty request is fine: zero items */
        http_post(x.http_port, "/v1/traces", "application/x-protobuf", NULL, "", 0, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(x.cap[ST_TRACES].calls, 2);
        assert_int_equal(x.tel.sig[ST_TRACES].accepted, 3);
        st_buf_free(&r.body);

        /* logs go to the logs pipeline; a content type with parameters */
        http_post(x.http_port, "/v1/logs", "Application/X-Protobuf; charset=binary", NULL, "", 0, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(x.cap[ST_LOGS].calls, 1);
        st_buf_free(&r.body);

        rx_stop(&x);
        free(body);
}

static void test_http_json(void **state) {
        struct rx x;
        struct http_resp r;

        rx_start(&x, "protocols:\n  http:\n    endpoint: 127.0.0.1:0\n", ST_SIG_ALL);
        assert_int_equal(x.grpc_port, 0);
        http_post(x.http_port, "/v1/traces", "application/json", NULL, JSON_TRACES, strlen(JSON_TRACES), &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "application/json");
        assert_string_equal(st_buf_cstr(&r.body), "{}");
        assert_int_equal(x.cap[ST_TRACES].items, 2);
        const st_traces_req *req = (const st_traces_req *) st_batch_req(x.cap[ST_TRACES].last);
        assert_string_equal(req->resource_spans[0]->scope_spans[0]->spans[1]->name, "b");
        assert_int_equal(req->resource_spans[0]->scope_spans[0]->spans[0]->trace_id.len, 16);
        st_buf_free(&r.body);

        /* broken JSON: 400 with a JSON Status */
        http_post(x.http_port, "/v1/traces", "application/json", NULL, "{\"resourceSpans\":[", 18, &r);
        assert_int_equal(r.status, 400);
        assert_string_equal(r.content_type, "application/json");
        assert_non_null(strstr(st_buf_cstr(&r.body), "\"code\":3"));
        assert_non_null(strstr(st_buf_cstr(&r.body), "failed to decode ExportTraceServiceRequest as JSON"));
        st_buf_free(&r.body);
        rx_stop(&x);
}

static void test_http_gzip(void **state) {
        struct rx x;
        struct http_resp r;
        size_t len, zlen;
        uint8_t *body = pack_traces(100, &len);
        uint8_t *gz = gzip_buf(body, len, &zlen);

        rx_start(&x, BOTH_YAML, ST_SIG_ALL);
        http_post(x.http_port, "/v1/traces", "application/x-protobuf", "gzip", gz, zlen, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(x.cap[ST_TRACES].items, 100);
        st_buf_free(&r.body);

        /* JSON, gzipped */
        uint8_t *jgz = gzip_buf((const uint8_t *) JSON_TRACES, strlen(JSON_TRACES), &zlen);
        http_post(x.http_port, "/v1/traces", "application/json", "gzip", jgz, zlen, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(x.cap[ST_TRACES].items, 102);
        st_buf_free(&r.body);
        free(jgz);

        /* not gzip */
        http_post(x.http_port, "/v1/traces", "application/x-protobuf", "gzip", body, len, &r);
        assert_int_equal(r.status, 400);
        Google__Rpc__Status *st = status_body(&r);
        assert_int_equal(st->code, 3);
        assert_non_null(strstr(st->message, "decompress"));
        google__rpc__status__free_unpacked(st, NULL);
        st_buf_free(&r.body);

        /* truncated gzip */
        http_post(x.http_port, "/v1/traces", "application/x-protobuf", "gzip", gz, zlen / 2, &r);
        assert_int_equal(r.status, 400);
        st_buf_free(&r.body);

        /* an encoding we do not know */
        http_post(x.http_port, "/v1/traces", "application/x-protobuf", "br", body, len, &r);
        assert_int_equal(r.status, 400);
        st = status_body(&r);
        assert_non_null(strstr(st->message, "unsupported Content-Encoding: br"));
        google__rpc__status__free_unpacked(st, NULL);
        st_buf_free(&r.body);

        assert_int_equal(x.cap[ST_TRACES].calls, 2);
        rx_stop(&x);
        free(gz);
        free(body);
}

static void test_http_errors(void **state) {
        struct rx x;
        struct http_resp r;
        size_t len;
        uint8_t *body = pack_traces(1, &len);

        rx_start(&x, BOTH_YAML, ST_SIG_BIT(ST_TRACES) | ST_SIG_BIT(ST_LOGS));

        /* malformed protobuf */
        http_post(x.http_port, "/v1/traces", "application/x-protobuf", NULL, "\xff\xff\xff", 3, &r);
        assert_int_equal(r.status, 400);
        assert_string_equal(r.content_type, "application/x-protobuf");
        Google__Rpc__Status *st = status_body(&r);
        assert_int_equal(st->code, 3);
        assert_string_equal(st->message, "failed to decode ExportTraceServiceRequest (3 bytes)");
        assert_int_equal(st->n_details, 0);
        google__rpc__status__free_unpacked(st, NULL);
        st_buf_free(&r.body);

        /* wrong path, wrong method, wrong type, no pipeline */
        http_post(x.http_port, "/v1/nothing", "application/x-protobuf", NULL, body, len, &r);
        assert_int_equal(r.status, 404);
        assert_true(r.body.len > 0);
        st_buf_free(&r.body);
        http_request(NULL, x.http_port, "GET", "/v1/traces", NULL, NULL, NULL, 0, &r);
        assert_int_equal(r.status, 405);
        assert_true(r.body.len > 0);
        st_buf_free(&r.body);
        http_post(x.http_port, "/v1/traces", "text/plain", NULL, body, len, &r);
        assert_int_equal(r.status, 415);
        assert_true(r.body.len > 0);
        st_buf_free(&r.body);
        http_post(x.http_port, "/v1/traces", NULL, NULL, body, len, &r);
        assert_int_equal(r.status, 415); /* curl sends application/x-www-form-urlencoded */
        st_buf_free(&r.body);
        http_post(x.http_port, "/v1/metrics", "application/x-protobuf", NULL, body, len, &r);
        assert_int_equal(r.status, 404);
        assert_non_null(strstr(st_buf_cstr(&r.body), "no pipeline for metrics"));
        st_buf_free(&r.body);

        /* pushback: 429 with Retry-After and a RetryInfo; refused is counted */
        x.cap[ST_TRACES].ret = -ENOBUFS;
        http_post(x.http_port, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
        assert_int_equal(r.status, 429);
        assert_string_equal(r.retry_after, "1");
        st = status_body(&r);
        assert_int_equal(st->code, 8);
        assert_int_equal(st->n_details, 1);
        assert_string_equal(st->details[0]->type_url, "type.googleapis.com/google.rpc.RetryInfo");
        google__rpc__status__free_unpacked(st, NULL);
        st_buf_free(&r.body);
        assert_int_equal(x.tel.sig[ST_TRACES].refused, 1);

        /* the same in JSON */
        http_post(x.http_port, "/v1/traces", "application/json", NULL, JSON_TRACES, strlen(JSON_TRACES), &r);
        assert_int_equal(r.status, 429);
        assert_non_null(strstr(st_buf_cstr(&r.body), "\"retryDelay\":\"1s\""));
        st_buf_free(&r.body);

        /* a permanent refusal is a 400, another failure a 503 with Retry-After */
        x.cap[ST_TRACES].ret = -EINVAL;
        http_post(x.http_port, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
        assert_int_equal(r.status, 400);
        st_buf_free(&r.body);
        x.cap[ST_TRACES].ret = -EIO;
        http_post(x.http_port, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
        assert_int_equal(r.status, 503);
        assert_string_equal(r.retry_after, "1");
        st_buf_free(&r.body);
        assert_int_equal(x.tel.sig[ST_TRACES].refused, 5);
        assert_int_equal(x.tel.sig[ST_TRACES].accepted, 0);

        rx_stop(&x);
        free(body);
}

static void test_http_size_limit(void **state) {
        struct rx x;
        struct http_resp r;
        size_t len, zlen;
        uint8_t *body = pack_traces(200, &len); /* ~16KiB */
        uint8_t *gz = gzip_buf(body, len, &zlen);

        assert_true(len > 8192 && zlen < 8192);
        rx_start(&x, "protocols:\n  http:\n    endpoint: 127.0.0.1:0\n    max_request_body_size: 8KiB\n"
                     "    traces_url_path: /t\n", ST_SIG_ALL);
        http_post(x.http_port, "/t", "application/x-protobuf", NULL, body, len, &r);
        assert_int_equal(r.status, 400);
        Google__Rpc__Status *st = status_body(&r);
        assert_string_equal(st->message, "request body too large: limit 8192 bytes");
        google__rpc__status__free_unpacked(st, NULL);
        st_buf_free(&r.body);

        /* small compressed, too large decompressed */
        http_post(x.http_port, "/t", "application/x-protobuf", "gzip", gz, zlen, &r);
        assert_int_equal(r.status, 400);
        st = status_body(&r);
        assert_string_equal(st->message, "decompressed request body too large: limit 8192 bytes");
        google__rpc__status__free_unpacked(st, NULL);
        st_buf_free(&r.body);

        /* the configured path; the default one is gone */
        free(body);
        body = pack_traces(10, &len);
        http_post(x.http_port, "/t", "application/x-protobuf", NULL, body, len, &r);
        assert_int_equal(r.status, 200);
        st_buf_free(&r.body);
        http_post(x.http_port, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
        assert_int_equal(r.status, 404);
        st_buf_free(&r.body);
        assert_int_equal(x.cap[ST_TRACES].items, 10);

        rx_stop(&x);
        free(gz);
        free(body);
}

/* Bodies above curl's 1MiB Expect: 100-continue threshold, within and above the limit. */
static void test_http_large(void **state) {
        struct rx x;
        struct http_resp r;
        size_t len;
        uint8_t *body = pack_traces(30000, &len); /* ~3MiB */

        rx_start(&x, BOTH_YAML, ST_SIG_ALL);
        http_post(x.http_port, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(x.cap[ST_TRACES].items, 30000);
        st_buf_free(&r.body);
        free(body);

        body = pack_traces(60000, &len); /* ~6MiB, above the default 4MiB */
        http_post(x.http_port, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
        assert_int_equal(r.status, 400);
        Google__Rpc__Status *st = status_body(&r);
        assert_string_equal(st->message, "request body too large: limit 4194304 bytes");
        google__rpc__status__free_unpacked(st, NULL);
        st_buf_free(&r.body);
        assert_int_equal(x.cap[ST_TRACES].calls, 1);
        rx_stop(&x);
        free(body);
}

struct http_worker {
        int port, n;
        const uint8_t *body;
        size_t len;
        int ok;
};

static void *http_worker_run(void *arg) {
        struct http_worker *w = arg;
        for (int i = 0; i < w->n; i++) {
                struct http_resp r;
                http_post(w->port, "/v1/traces", "application/x-protobuf", NULL, w->body, w->len, &r);
                w->ok += r.status == 200;
                st_buf_free(&r.body);
        }
        return NULL;
}

/* Several clients at once: every request reaches the pipeline exactly once. */
static void test_http_concurrent(void **state) {
        struct rx x;
        struct http_worker w[4];
        pthread_t t[4];
        size_t len;
        uint8_t *body = pack_traces(10, &len);

        rx_start(&x, BOTH_YAML, ST_SIG_ALL);
        for (int i = 0; i < 4; i++) {
                w[i] = (struct http_worker) { .port = x.http_port, .n = 25, .body = body, .len = len };
                assert_int_equal(pthread_create(&t[i], NULL, http_worker_run, &w[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
                pthread_join(t[i], NULL);
                assert_int_equal(w[i].ok, 25);
        }
        assert_int_equal(x.cap[ST_TRACES].calls, 100);
        assert_int_equal(x.tel.sig[ST_TRACES].accepted, 1000);
        rx_stop(&x);
        free(body);
}

static void test_http_unix_socket(void **state) {
        struct rx x;
        struct http_resp r;
        char path[64], yaml[256];
        size_t len;
        uint8_t *body = pack_traces(2, &len);

        snprintf(path, sizeof(path), "/tmp/strata-test-http-%d.sock", (int) getpid());
        snprintf(yaml, sizeof(yaml), "protocols:\n  http:\n    endpoint: unix://%s\n", path);
        rx_start(&x, yaml, ST_SIG_ALL);
        http_request(path, 0, "POST", "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(x.cap[ST_TRACES].items, 2);
        st_buf_free(&r.body);
        rx_stop(&x);
        assert_int_equal(access(path, F_OK), -1);
        free(body);
}

static int open_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        int n = 0;
        assert_non_null(d);
        while ((e = readdir(d)))
                n += e->d_name[0] != '.';
        closedir(d);
        return n;
}

/* stop() turns new connections away and closes the listen socket that was handed to MHD */
static void test_http_stop_closes_listener(void **state) {
        struct rx x;
        struct http_resp r;
        char yaml[128];
        size_t len;
        uint8_t *body = pack_traces(1, &len);
        int before = open_fds();

        rx_start(&x, "protocols:\n  http:\n    endpoint: 127.0.0.1:0\n", ST_SIG_ALL);
        http_post(x.http_port, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
        assert_int_equal(r.status, 200);
        st_buf_free(&r.body);
        rx_stop(&x);
        assert_int_equal(open_fds(), before);
        /* the port is free again */
        snprintf(yaml, sizeof(yaml), "protocols:\n  http:\n    endpoint: 127.0.0.1:%d\n", x.http_port);
        rx_start(&x, yaml, ST_SIG_ALL);
        rx_stop(&x);
        free(body);
}

/* ---- gRPC ------------------------------------------------------------------------------------ */

struct grpc_result {
        grpc_status_code status;
        char details[512];
        size_t resp_len;
        bool got_resp;
        Google__Rpc__Status *status_bin; /* from grpc-status-details-bin */
};

struct grpc_client {
        grpc_channel *ch;
        grpc_completion_queue *cq;
        grpc_call *call;
        grpc_byte_buffer *req, *resp;
        grpc_metadata_array initial, trailing;
        grpc_status_code status;
        grpc_slice details;
};

static gpr_timespec client_deadline(void) {
        return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(CLIENT_TIMEOUT_S, GPR_TIMESPAN));
}

/* root_pem: the CA to trust for TLS; NULL for plaintext. */
static void grpc_call_begin_tls(struct grpc_client *c, const char *target, const char *root_pem, const char *method,
                                const void *msg, size_t len) {
        grpc_channel_credentials *creds = root_pem ? grpc_ssl_credentials_create(root_pem, NULL, NULL, NULL)
                                                   : grpc_insecure_credentials_create();
        grpc_slice s = grpc_slice_from_copied_buffer(msg, len);
        grpc_op ops[6];

        memset(c, 0, sizeof(*c));
        c->ch = grpc_channel_create(target, creds, NULL);
        grpc_channel_credentials_release(creds);
        c->cq = grpc_completion_queue_create_for_pluck(NULL);
        c->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, grpc_slice_from_static_string(method),
                                           NULL, client_deadline(), NULL);
        assert_non_null(c->call);
        c->req = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        grpc_metadata_array_init(&c->initial);
        grpc_metadata_array_init(&c->trailing);
        memset(ops, 0, sizeof(ops));
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = c->req;
        ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->initial;
        ops[4].op = GRPC_OP_RECV_MESSAGE;
        ops[4].data.recv_message.recv_message = &c->resp;
        ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        ops[5].data.recv_status_on_client.trailing_metadata = &c->trailing;
        ops[5].data.recv_status_on_client.status = &c->status;
        ops[5].data.recv_status_on_client.status_details = &c->details;
        assert_int_equal(grpc_call_start_batch(c->call, ops, 6, c, NULL), GRPC_CALL_OK);
}

static void grpc_call_begin(struct grpc_client *c, const char *target, const char *method, const void *msg, size_t len) {
        grpc_call_begin_tls(c, target, NULL, method, msg, len);
}

static void grpc_call_end(struct grpc_client *c, struct grpc_result *out) {
        grpc_event ev = grpc_completion_queue_pluck(c->cq, c, client_deadline(), NULL);
        assert_int_equal(ev.type, GRPC_OP_COMPLETE);
        memset(out, 0, sizeof(*out));
        out->status = c->status;
        snprintf(out->details, sizeof(out->details), "%.*s", (int) GRPC_SLICE_LENGTH(c->details),
                 (const char *) GRPC_SLICE_START_PTR(c->details));
        if (c->resp) {
                out->got_resp = true;
                out->resp_len = grpc_byte_buffer_length(c->resp);
        }
        for (size_t i = 0; i < c->trailing.count; i++) {
                grpc_metadata *m = &c->trailing.metadata[i];
                if (grpc_slice_str_cmp(m->key, "grpc-status-details-bin") == 0)
                        out->status_bin = google__rpc__status__unpack(NULL, GRPC_SLICE_LENGTH(m->value),
                                                                      GRPC_SLICE_START_PTR(m->value));
        }
        grpc_byte_buffer_destroy(c->req);
        grpc_byte_buffer_destroy(c->resp);
        grpc_metadata_array_destroy(&c->initial);
        grpc_metadata_array_destroy(&c->trailing);
        grpc_slice_unref(c->details);
        grpc_call_unref(c->call);
        grpc_channel_destroy(c->ch);
        grpc_completion_queue_shutdown(c->cq);
        while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
                ;
        grpc_completion_queue_destroy(c->cq);
}

static void grpc_unary(const char *target, const char *method, const void *msg, size_t len, struct grpc_result *out) {
        struct grpc_client c;
        grpc_call_begin(&c, target, method, msg, len);
        grpc_call_end(&c, out);
}

static void grpc_result_free(struct grpc_result *r) {
        if (r->status_bin)
                google__rpc__status__free_unpacked(r->status_bin, NULL);
}

#define TRACES_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define METRICS_METHOD "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

static void test_grpc(void **state) {
        struct rx x;
        struct grpc_result r;
        char target[64];
        size_t len;
        uint8_t *body = pack_traces(5, &len);

        rx_start(&x, BOTH_YAML, ST_SIG_BIT(ST_TRACES));
        assert_true(x.grpc_port > 0);
        snprintf(target, sizeof(target), "127.0.0.1:%d", x.grpc_port);

        grpc_unary(target, TRACES_METHOD, body, len, &r);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        assert_true(r.got_resp);
        assert_int_equal(r.resp_len, 0);
        assert_int_equal(x.cap[ST_TRACES].items, 5);
        assert_int_equal(x.tel.sig[ST_TRACES].accepted, 5);
        grpc_result_free(&r);

        /* empty request */
        grpc_unary(target, TRACES_METHOD, "", 0, &r);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        assert_int_equal(x.cap[ST_TRACES].calls, 2);
        grpc_result_free(&r);

        /* malformed */
        grpc_unary(target, TRACES_METHOD, "\xff\xff\xff\xff", 4, &r);
        assert_int_equal(r.status, GRPC_STATUS_INVALID_ARGUMENT);
        assert_string_equal(r.details, "failed to decode ExportTraceServiceRequest (4 bytes)");
        assert_null(r.status_bin);
        grpc_result_free(&r);

        /* no pipeline for metrics */
        grpc_unary(target, METRICS_METHOD, "", 0, &r);
        assert_int_equal(r.status, GRPC_STATUS_UNIMPLEMENTED);
        assert_string_equal(r.details, "no pipeline for metrics");
        grpc_result_free(&r);

        /* a method nobody serves */
        grpc_unary(target, "/grpc.health.v1.Health/Check", "", 0, &r);
        assert_int_equal(r.status, GRPC_STATUS_UNIMPLEMENTED);
        grpc_result_free(&r);

        /* pushback: RESOURCE_EXHAUSTED with a RetryInfo of 1s */
        x.cap[ST_TRACES].ret = -ENOBUFS;
        grpc_unary(target, TRACES_METHOD, body, len, &r);
        assert_int_equal(r.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
        assert_non_null(r.status_bin);
        assert_int_equal(r.status_bin->code, GRPC_STATUS_RESOURCE_EXHAUSTED);
        assert_string_equal(r.status_bin->message, r.details);
        assert_int_equal(r.status_bin->n_details, 1);
        assert_string_equal(r.status_bin->details[0]->type_url, "type.googleapis.com/google.rpc.RetryInfo");
        Google__Rpc__RetryInfo *ri = google__rpc__retry_info__unpack(NULL, r.status_bin->details[0]->value.len,
                                                                    r.status_bin->details[0]->value.data);
        assert_non_null(ri);
        assert_non_null(ri->retry_delay);
        assert_int_equal(ri->retry_delay->seconds, 1);
        google__rpc__retry_info__free_unpacked(ri, NULL);
        grpc_result_free(&r);
        assert_int_equal(x.tel.sig[ST_TRACES].refused, 5);

        /* permanent and other failures */
        x.cap[ST_TRACES].ret = -EINVAL;
        grpc_unary(target, TRACES_METHOD, body, len, &r);
        assert_int_equal(r.status, GRPC_STATUS_INVALID_ARGUMENT);
        grpc_result_free(&r);
        x.cap[ST_TRACES].ret = -EIO;
        grpc_unary(target, TRACES_METHOD, body, len, &r);
        assert_int_equal(r.status, GRPC_STATUS_UNAVAILABLE);
        grpc_result_free(&r);

        rx_stop(&x);
        free(body);
}

static void test_grpc_size_limit(void **state) {
        struct rx x;
        struct grpc_result r;
        char target[64];
        size_t len;
        uint8_t *body;

        rx_start(&x, "protocols:\n  grpc:\n    endpoint: 127.0.0.1:0\n    max_recv_msg_size: 64KiB\n", ST_SIG_ALL);
        snprintf(target, sizeof(target), "127.0.0.1:%d", x.grpc_port);

        /* just below: accepted (and large enough to arrive in several slices) */
        body = pack_traces(500, &len);
        assert_true(len < 64 * 1024 && len > 32 * 1024);
        grpc_unary(target, TRACES_METHOD, body, len, &r);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        assert_int_equal(x.cap[ST_TRACES].items, 500);
        grpc_result_free(&r);
        free(body);

        /* above ours, below the core's: INVALID_ARGUMENT naming the sizes */
        body = pack_traces(1000, &len);
        assert_true(len > 64 * 1024 && len < 128 * 1024);
        grpc_unary(target, TRACES_METHOD, body, len, &r);
        assert_int_equal(r.status, GRPC_STATUS_INVALID_ARGUMENT);
        char want[160];
        snprintf(want, sizeof(want), "ExportTraceServiceRequest of %zu bytes exceeds max_recv_msg_size of 65536 bytes", len);
        assert_string_equal(r.details, want);
        grpc_result_free(&r);
        free(body);

        /* a large request on a large limit: many slices, merged once */
        rx_stop(&x);
        rx_start(&x, "protocols:\n  grpc:\n    endpoint: 127.0.0.1:0\n", ST_SIG_ALL);
        snprintf(target, sizeof(target), "127.0.0.1:%d", x.grpc_port);
        body = pack_traces(30000, &len);
        assert_true(len > 1024 * 1024);
        grpc_unary(target, TRACES_METHOD, body, len, &r);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        assert_int_equal(x.cap[ST_TRACES].items, 30000);
        grpc_result_free(&r);
        free(body);
        rx_stop(&x);
}

static void test_grpc_unix_socket(void **state) {
        struct rx x;
        struct grpc_result r;
        char path[64], path2[64], yaml[512], target[80];
        struct stat st;
        size_t len;
        uint8_t *body = pack_traces(4, &len);

        snprintf(path, sizeof(path), "/tmp/strata-test-grpc-%d.sock", (int) getpid());
        snprintf(path2, sizeof(path2), "/tmp/strata-test-grpc2-%d.sock", (int) getpid());
        /* a stale socket file from an earlier run is replaced */
        int fd = -1;
        assert_int_equal(st_unix_listen(path, 0600, &fd), 0);
        close(fd);
        assert_int_equal(access(path, F_OK), 0);

        snprintf(yaml, sizeof(yaml),
                 "protocols:\n  grpc:\n    endpoint: unix://%s\n    unix_socket: %s\n", path2, path);
        rx_start(&x, yaml, ST_SIG_ALL);
        assert_int_equal(x.grpc_port, 0);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0660);
        assert_int_equal(stat(path2, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0660);

        snprintf(target, sizeof(target), "unix:%s", path);
        grpc_unary(target, TRACES_METHOD, body, len, &r);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        grpc_result_free(&r);
        snprintf(target, sizeof(target), "unix://%s", path2);
        grpc_unary(target, TRACES_METHOD, body, len, &r);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        grpc_result_free(&r);
        assert_int_equal(x.cap[ST_TRACES].items, 8);

        /* a live socket is not taken over */
        struct rx y;
        rx_create(&y, yaml, ST_SIG_ALL);
        assert_true(st_receiver_otlp.start(y.inst) < 0);
        rx_stop(&y);
        assert_int_equal(access(path, F_OK), 0);

        rx_stop(&x);
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(access(path2, F_OK), -1);

        /* a regular file at the path is not removed */
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fclose(f);
        rx_create(&y, yaml, ST_SIG_ALL);
        assert_int_equal(st_receiver_otlp.start(y.inst), -EEXIST);
        rx_stop(&y);
        assert_int_equal(access(path, F_OK), 0);
        unlink(path);
        free(body);
}

/* A self-signed certificate for localhost and 127.0.0.1, made for this test only. */
static const char TEST_CERT[] =
        "-----BEGIN CERTIFICATE-----\n"
        "MIIBnDCCAUGgAwIBAgIUCADHlrqpK+VZ4Dl4r9mDafW3gLkwCgYIKoZIzj0EAwIw\n"
        "FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMzEwNTUwOVoYDzIxMjYxMDMw\n"
        "MTA1NTA5WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\n"
        "PQMBBwNCAAT5dPQLODtfQEoqc0SdCSrdRsxN4ewtmcJ89zhtkOlqivU5lWr5bGkm\n"
        "7wsJZvxSn7tkXXnZC+6f4o0IkWQQDhU6o28wbTAdBgNVHQ4EFgQU3i1pK637IxOs\n"
        "RPZTPDp4Rou9mdYwHwYDVR0jBBgwFoAU3i1pK637IxOsRPZTPDp4Rou9mdYwDwYD\n"
        "VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI\n"
        "zj0EAwIDSQAwRgIhAL/ZBTihP+ZAtqdk8KqqajhA/69kq4xnCZGGYsoWeVHHAiEA\n"
        "+s5+Me3nRZXjKkxDW/bu8MJ0bGr+4rMPV5zOpJmD8ms=\n"
        "-----END CERTIFICATE-----\n";
static const char TEST_KEY[] =
        "-----BEGIN PRIVATE KEY-----\n"
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgrPL6DGI65gb8dX8l\n"
        "Z0yJOnTEwktF95oXFRKNp7pcp3GhRANCAAT5dPQLODtfQEoqc0SdCSrdRsxN4ewt\n"
        "mcJ89zhtkOlqivU5lWr5bGkm7wsJZvxSn7tkXXnZC+6f4o0IkWQQDhU6\n"
        "-----END PRIVATE KEY-----\n";

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

static void test_grpc_tls(void **state) {
        struct rx x;
        struct grpc_client c;
        struct grpc_result r;
        char cert[64], key[64], yaml[512], target[64];
        size_t len;
        uint8_t *body = pack_traces(2, &len);

        snprintf(cert, sizeof(cert), "/tmp/strata-test-cert-%d.pem", (int) getpid());
        snprintf(key, sizeof(key), "/tmp/strata-test-key-%d.pem", (int) getpid());
        write_file(cert, TEST_CERT);
        write_file(key, TEST_KEY);
        snprintf(yaml, sizeof(yaml),
                 "protocols:\n  grpc:\n    endpoint: 127.0.0.1:0\n    tls: { cert_file: %s, key_file: %s }\n", cert, key);
        rx_start(&x, yaml, ST_SIG_ALL);
        snprintf(target, sizeof(target), "127.0.0.1:%d", x.grpc_port);
        grpc_call_begin_tls(&c, target, TEST_CERT, TRACES_METHOD, body, len);
        grpc_call_end(&c, &r);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        assert_int_equal(x.cap[ST_TRACES].items, 2);
        grpc_result_free(&r);
        rx_stop(&x);

        /* a key file that is not there: start() fails */
        unlink(key);
        rx_create(&x, yaml, ST_SIG_ALL);
        assert_int_equal(st_receiver_otlp.start(x.inst), -ENOENT);
        rx_stop(&x);
        unlink(cert);
        free(body);
}

/* Shutdown while a call is inside consume(): the consume completes, the client gets OK. */
static void test_grpc_shutdown_in_flight(void **state) {
        struct rx x;
        struct grpc_client c;
        struct grpc_result r;
        char target[64];
        size_t len;
        uint8_t *body = pack_traces(3, &len);

        rx_start(&x, BOTH_YAML, ST_SIG_ALL);
        x.cap[ST_TRACES].delay_ms = 300;
        snprintf(target, sizeof(target), "127.0.0.1:%d", x.grpc_port);
        grpc_call_begin(&c, target, TRACES_METHOD, body, len);
        for (int i = 0; i < 500 && !x.cap[ST_TRACES].entered; i++)
                usleep(10000);
        assert_true(x.cap[ST_TRACES].entered);
        int64_t t0 = st_now_ns();
        assert_int_equal(st_receiver_otlp.shutdown(x.inst, st_now_ns() + 5 * ST_NS_PER_SEC), 0);
        assert_true(st_now_ns() - t0 < 4 * ST_NS_PER_SEC);
        assert_int_equal(x.cap[ST_TRACES].items, 3);
        grpc_call_end(&c, &r);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        grpc_result_free(&r);
        rx_stop(&x);
        free(body);
}


/* ---- sender attribution ------------------------------------------------------------------------ */

/* A traces request whose resource claims process.pid = claimed (0: claims nothing). */
static uint8_t *pack_claiming(int64_t claimed, size_t *ret_len) {
        st_traces_req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
        st_resource_spans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT, *rsv[1] = { &rs };
        st_resource res = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
        st_key_value kv[2] = { OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT,
                               OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT },
                     *kvv[2] = { &kv[0], &kv[1] };
        st_any_value v[2] = { OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT,
                              OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT };
        st_scope_spans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT, *ssv[1] = { &ss };
        st_span span = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT, *sv[1] = { &span };
        uint8_t tid[16] = { 1 }, sid[8] = { 2 };

        kv[0].key = (char *) "process.pid";
        kv[0].value = &v[0];
        v[0].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        v[0].int_value = claimed;
        /* a sender cannot say how it was attributed */
        kv[1].key = (char *) "strata.attribution.method";
        kv[1].value = &v[1];
        v[1].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v[1].string_value = (char *) "forged";
        res.attributes = claimed ? kvv : kvv + 1;
        res.n_attributes = claimed ? 2 : 1;
        rs.resource = &res;
        span.name = (char *) "s";
        span.trace_id = (ProtobufCBinaryData) { 16, tid };
        span.span_id = (ProtobufCBinaryData) { 8, sid };
        ss.spans = sv;
        ss.n_spans = 1;
        rs.scope_spans = ssv;
        rs.n_scope_spans = 1;
        req.resource_spans = rsv;
        req.n_resource_spans = 1;
        size_t len = protobuf_c_message_get_packed_size(&req.base);
        uint8_t *out = malloc(len);
        assert_non_null(out);
        protobuf_c_message_pack(&req.base, out);
        *ret_len = len;
        return out;
}

static const st_any_value *res_attr(st_batch *b, const char *key) {
        const st_traces_req *req = (const st_traces_req *) st_batch_req(b);
        assert_non_null(req);
        assert_int_equal(req->n_resource_spans, 1);
        const st_resource *res = req->resource_spans[0]->resource;
        const st_any_value *found = NULL;
        int n = 0;
        for (size_t i = 0; res && i < res->n_attributes; i++)
                if (strcmp(res->attributes[i]->key, key) == 0) {
                        found = res->attributes[i]->value;
                        n++;
                }
        assert_true(n <= 1); /* never twice */
        return found;
}

static void expect_attributed(struct capture *c, int64_t pid, const char *method, int64_t claimed) {
        const st_any_value *v = res_attr(c->last, "process.pid");
        assert_non_null(v);
        assert_int_equal(v->int_value, pid);
        v = res_attr(c->last, "strata.attribution.method");
        if (!method) {
                assert_string_equal(v->string_value, "forged"); /* untouched: not attributed */
                return;
        }
        assert_non_null(v);
        assert_string_equal(v->string_value, method);
        v = res_attr(c->last, "strata.claimed.process.pid");
        if (claimed) {
                assert_non_null(v);
                assert_int_equal(v->int_value, claimed);
        } else
                assert_null(v);
}

/* Unix sockets: the sender is who SO_PEERCRED says, whatever the payload claims. gRPC and
 * HTTP; a claim that differs is kept beside the observed pid. */
static void test_unix_sender_attribution(void **state) {
        struct rx x;
        struct grpc_result r;
        char gpath[64], hpath[64], yaml[512], target[80];
        size_t len, len2;
        uint8_t *lying = pack_claiming(1, &len), *honest = pack_claiming(getpid(), &len2);

        snprintf(gpath, sizeof(gpath), "/tmp/strata-test-attr-g-%d.sock", (int) getpid());
        snprintf(hpath, sizeof(hpath), "/tmp/strata-test-attr-h-%d.sock", (int) getpid());
        snprintf(yaml, sizeof(yaml), "protocols:\n  grpc:\n    endpoint: unix://%s\n  http:\n    endpoint: unix://%s\n",
                 gpath, hpath);
        rx_start(&x, yaml, ST_SIG_ALL);

        snprintf(target, sizeof(target), "unix:%s", gpath);
        grpc_unary(target, TRACES_METHOD, lying, len, &r);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        grpc_result_free(&r);
        expect_attributed(&x.cap[ST_TRACES], getpid(), "unix_peercred", 1);
        grpc_unary(target, TRACES_METHOD, honest, len2, &r);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        grpc_result_free(&r);
        expect_attributed(&x.cap[ST_TRACES], getpid(), "unix_peercred", 0);

        struct http_resp hr;
        http_request(hpath, 0, "POST", "/v1/traces", "application/x-protobuf", NULL, lying, len, &hr);
        assert_int_equal(hr.status, 200);
        st_buf_free(&hr.body);
        expect_attributed(&x.cap[ST_TRACES], getpid(), "unix_peercred", 1);
        rx_stop(&x);

        /* switched off: the payload is left as sent */
        snprintf(yaml, sizeof(yaml), "attribute_senders: false\nprotocols:\n  grpc:\n    endpoint: unix://%s\n", gpath);
        rx_start(&x, yaml, ST_SIG_ALL);
        grpc_unary(target, TRACES_METHOD, lying, len, &r);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        grpc_result_free(&r);
        expect_attributed(&x.cap[ST_TRACES], 1, NULL, 0);
        rx_stop(&x);
        free(lying);
        free(honest);
}

/* TCP: the connection owner source (the ebpf receiver's, here a stand-in that knows one
 * client) is told our ports and attributes what it knows; without a source nothing is. */
struct fake_source {
        int watched[4];
        int n_watched;
        struct st_conn_key seen;
        int lookups;
};

static int fake_lookup(void *data, const struct st_conn_key *k, struct st_conn_owner *ret) {
        struct fake_source *f = data;
        f->seen = *k;
        f->lookups++;
        if (k->family != AF_INET || k->client_addr[0] != 127)
                return -ENOENT;
        *ret = (struct st_conn_owner) { .pid = 4242, .uid = 7 };
        return 0;
}

static int fake_watch(void *data, uint16_t port, bool add) {
        struct fake_source *f = data;
        if (add && f->n_watched < 4)
                f->watched[f->n_watched++] = port;
        return 0;
}

static void test_tcp_sender_attribution(void **state) {
        struct rx x;
        struct grpc_result r;
        struct fake_source f = { 0 };
        struct st_conn_owner_source src = { .lookup = fake_lookup, .watch_port = fake_watch, .data = &f };
        char target[64];
        size_t len;
        uint8_t *body = pack_claiming(99, &len);

        rx_start(&x, BOTH_YAML, ST_SIG_ALL);
        /* no source yet: unattributed */
        snprintf(target, sizeof(target), "127.0.0.1:%d", x.grpc_port);
        grpc_unary(target, TRACES_METHOD, body, len, &r);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        grpc_result_free(&r);
        expect_attributed(&x.cap[ST_TRACES], 99, NULL, 0);

        /* a source that arrives later learns the ports already served */
        st_conn_owner_provide(&src);
        assert_int_equal(f.n_watched, 2);
        assert_true((f.watched[0] == x.grpc_port && f.watched[1] == x.http_port) ||
                    (f.watched[1] == x.grpc_port && f.watched[0] == x.http_port));
        grpc_unary(target, TRACES_METHOD, body, len, &r);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        grpc_result_free(&r);
        expect_attributed(&x.cap[ST_TRACES], 4242, "kernel_connection", 99);
        assert_int_equal(f.seen.server_port, x.grpc_port);
        assert_int_not_equal(f.seen.client_port, 0);

        struct http_resp hr;
        http_post(x.http_port, "/v1/traces", "application/x-protobuf", NULL, body, len, &hr);
        assert_int_equal(hr.status, 200);
        st_buf_free(&hr.body);
        expect_attributed(&x.cap[ST_TRACES], 4242, "kernel_connection", 99);
        assert_int_equal(f.seen.server_port, x.http_port);
        st_conn_owner_provide(NULL);
        rx_stop(&x);
        free(body);
}

static void test_grpc_peer_strings(void **state) {
        struct st_conn_key k;
        assert_int_equal(st_conn_key_from_grpc_peer("ipv4:127.0.0.1:5000", &k), 0);
        assert_int_equal(k.family, AF_INET);
        assert_int_equal(k.client_port, 5000);
        assert_int_equal(k.client_addr[0], 127);
        assert_int_equal(k.client_addr[3], 1);
        assert_int_equal(st_conn_key_from_grpc_peer("ipv6:[::1]:6000", &k), 0);
        assert_int_equal(k.family, AF_INET6);
        assert_int_equal(k.client_port, 6000);
        assert_int_equal(k.client_addr[15], 1);
        assert_int_equal(st_conn_key_from_grpc_peer("ipv6:[::ffff:127.0.0.1]:7000", &k), 0);
        assert_int_equal(k.family, AF_INET);
        assert_int_equal(k.client_addr[0], 127);
        assert_int_equal(k.client_port, 7000);
        assert_int_equal(st_conn_key_from_grpc_peer("ipv6:%5B::1%5D:8000", &k), 0); /* gRPC 1.51's form */
        assert_int_equal(k.family, AF_INET6);
        assert_int_equal(k.client_port, 8000);
        assert_int_equal(k.client_addr[15], 1);
        assert_int_equal(st_conn_key_from_grpc_peer("ipv6:%5B::ffff:127.0.0.1%5D:8001", &k), 0);
        assert_int_equal(k.family, AF_INET);
        assert_int_equal(st_conn_key_from_grpc_peer("ipv6:%5B::1:1", &k), -EINVAL);
        assert_int_equal(st_conn_key_from_grpc_peer("unix:/tmp/x", &k), -EINVAL);
        assert_int_equal(st_conn_key_from_grpc_peer("fd:7", &k), -EINVAL);
        assert_int_equal(st_conn_key_from_grpc_peer("ipv4:127.0.0.1:", &k), -EINVAL);
        assert_int_equal(st_conn_key_from_grpc_peer("ipv4:127.0.0.1:70000", &k), -EINVAL);
        assert_int_equal(st_conn_key_from_grpc_peer("ipv4:300.0.0.1:1", &k), -EINVAL);
}

static int setup(void **state) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        grpc_init();
        return 0;
}

static int teardown(void **state) {
        grpc_shutdown();
        curl_global_cleanup();
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config_defaults),
                cmocka_unit_test(test_config_errors),
                cmocka_unit_test(test_shutdown_without_start),
                cmocka_unit_test(test_start_fails_cleanly),
                cmocka_unit_test(test_http_protobuf),
                cmocka_unit_test(test_http_json),
                cmocka_unit_test(test_http_gzip),
                cmocka_unit_test(test_http_errors),
                cmocka_unit_test(test_http_size_limit),
                cmocka_unit_test(test_http_large),
                cmocka_unit_test(test_http_concurrent),
                cmocka_unit_test(test_http_unix_socket),
                cmocka_unit_test(test_http_stop_closes_listener),
                cmocka_unit_test(test_grpc),
                cmocka_unit_test(test_grpc_size_limit),
                cmocka_unit_test(test_grpc_unix_socket),
                cmocka_unit_test(test_unix_sender_attribution),
                cmocka_unit_test(test_tcp_sender_attribution),
                cmocka_unit_test(test_grpc_peer_strings),
                cmocka_unit_test(test_grpc_tls),
                cmocka_unit_test(test_grpc_shutdown_in_flight),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
