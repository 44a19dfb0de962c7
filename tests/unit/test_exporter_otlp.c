/* exporter `otlp` against a tiny in-test OTLP/gRPC server (gRPC C core on 127.0.0.1): bytes,
 * headers and compression on the wire, status mapping, RetryInfo, reconnects, shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "batch.h"
#include "clock.h"
#include "component.h"
#include "config_map.h"
#include "grpc_glue.h"
#include "log.h"
#include "telemetry.h"
#include "tree.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"

#define MS ST_NS_PER_MS

extern const struct st_factory st_exporter_otlp;

static void sleep_ns(int64_t ns) {
        struct timespec ts = { .tv_sec = ns / ST_NS_PER_SEC, .tv_nsec = ns % ST_NS_PER_SEC };
        nanosleep(&ts, NULL);
}

/* --- batches ------------------------------------------------------------------------------ */

static st_batch *make_traces(size_t n_spans, const char *tag) {
        st_batch *b;
        assert_int_equal(st_batch_new(ST_TRACES, &b), 0);
        st_arena *a = &b->arena;
        st_traces_req *req = (st_traces_req *) b->req;
        st_resource_spans *rs = st_arena_alloc(a, sizeof(*rs));
        st_scope_spans *ss = st_arena_alloc(a, sizeof(*ss));
        opentelemetry__proto__trace__v1__resource_spans__init(rs);
        opentelemetry__proto__trace__v1__scope_spans__init(ss);
        req->n_resource_spans = 1;
        req->resource_spans = st_arena_alloc(a, sizeof(void *));
        req->resource_spans[0] = rs;
        rs->n_scope_spans = 1;
        rs->scope_spans = st_arena_alloc(a, sizeof(void *));
        rs->scope_spans[0] = ss;
        ss->n_spans = n_spans;
        ss->spans = st_arena_alloc(a, n_spans * sizeof(void *));
        for (size_t k = 0; k < n_spans; k++) {
                st_span *sp = st_arena_alloc(a, sizeof(*sp));
                opentelemetry__proto__trace__v1__span__init(sp);
                char name[96];
                /* Repetitive text: gzip shrinks it a lot, which the wire check relies on. */
                snprintf(name, sizeof(name), "%s span %zu of a batch with a long and repetitive name", tag, k);
                sp->name = st_arena_strdup(a, name);
                uint8_t id[16] = { 1, 2, 3, (uint8_t) k };
                sp->trace_id = (ProtobufCBinaryData) { .len = 16, .data = st_arena_memdup(a, id, 16) };
                sp->span_id = (ProtobufCBinaryData) { .len = 8, .data = st_arena_memdup(a, id, 8) };
                sp->start_time_unix_nano = 1700000000000000000ull + k;
                sp->end_time_unix_nano = sp->start_time_unix_nano + 1000;
                ss->spans[k] = sp;
        }
        st_batch_recount(b);
        assert_int_equal(b->items, n_spans);
        return b;
}

static st_batch *make_logs(size_t n) {
        st_batch *b;
        assert_int_equal(st_batch_new(ST_LOGS, &b), 0);
        st_arena *a = &b->arena;
        st_logs_req *req = (st_logs_req *) b->req;
        st_resource_logs *rl = st_arena_alloc(a, sizeof(*rl));
        st_scope_logs *sl = st_arena_alloc(a, sizeof(*sl));
        opentelemetry__proto__logs__v1__resource_logs__init(rl);
        opentelemetry__proto__logs__v1__scope_logs__init(sl);
        req->n_resource_logs = 1;
        req->resource_logs = st_arena_alloc(a, sizeof(void *));
        req->resource_logs[0] = rl;
        rl->n_scope_logs = 1;
        rl->scope_logs = st_arena_alloc(a, sizeof(void *));
        rl->scope_logs[0] = sl;
        sl->n_log_records = n;
        sl->log_records = st_arena_alloc(a, n * sizeof(void *));
        for (size_t k = 0; k < n; k++) {
                st_log_record *lr = st_arena_alloc(a, sizeof(*lr));
                opentelemetry__proto__logs__v1__log_record__init(lr);
                lr->time_unix_nano = 1700000000000000000ull + k;
                lr->severity_text = st_arena_strdup(a, "INFO");
                sl->log_records[k] = lr;
        }
        st_batch_recount(b);
        assert_int_equal(b->items, n);
        return b;
}

static st_batch *make_metrics(size_t n_points) {
        st_batch *b;
        assert_int_equal(st_batch_new(ST_METRICS, &b), 0);
        st_arena *a = &b->arena;
        st_metrics_req *req = (st_metrics_req *) b->req;
        st_resource_metrics *rm = st_arena_alloc(a, sizeof(*rm));
        st_scope_metrics *sm = st_arena_alloc(a, sizeof(*sm));
        st_metric *m = st_arena_alloc(a, sizeof(*m));
        Opentelemetry__Proto__Metrics__V1__Gauge *g = st_arena_alloc(a, sizeof(*g));
        opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
        opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
        opentelemetry__proto__metrics__v1__metric__init(m);
        opentelemetry__proto__metrics__v1__gauge__init(g);
        req->n_resource_metrics = 1;
        req->resource_metrics = st_arena_alloc(a, sizeof(void *));
        req->resource_metrics[0] = rm;
        rm->n_scope_metrics = 1;
        rm->scope_metrics = st_arena_alloc(a, sizeof(void *));
        rm->scope_metrics[0] = sm;
        sm->n_metrics = 1;
        sm->metrics = st_arena_alloc(a, sizeof(void *));
        sm->metrics[0] = m;
        m->name = st_arena_strdup(a, "queue.depth");
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        m->gauge = g;
        g->n_data_points = n_points;
        g->data_points = st_arena_alloc(a, n_points * sizeof(void *));
        for (size_t k = 0; k < n_points; k++) {
                st_number_point *p = st_arena_alloc(a, sizeof(*p));
                opentelemetry__proto__metrics__v1__number_data_point__init(p);
                p->time_unix_nano = 1700000000000000000ull + k;
                p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
                p->as_int = (int64_t) k;
                g->data_points[k] = p;
        }
        st_batch_recount(b);
        assert_int_equal(b->items, n_points);
        return b;
}

static uint8_t *pack(const st_batch *b, size_t *len) {
        *len = st_batch_packed_size(b);
        uint8_t *p = malloc(*len ? *len : 1);
        assert_non_null(p);
        assert_int_equal(st_batch_pack(b, p), *len);
        return p;
}

/* --- the test server ---------------------------------------------------------------------- */

enum tag_kind { TAG_REQUEST, TAG_ANSWER, TAG_SHUTDOWN };

struct server;

struct request_tag {
        enum tag_kind kind;
        struct server *srv;
        int signal;
        grpc_call *call;
        gpr_timespec deadline;
        grpc_metadata_array md;
        grpc_byte_buffer *payload;
};

struct answer_tag {
        enum tag_kind kind;
        grpc_call *call;
        int cancelled;
        grpc_byte_buffer *resp;
        grpc_slice details;
        grpc_metadata trailer;
        bool has_trailer;
};

#define MAX_REQ 64

struct received {
        int signal;
        int64_t at;
        uint8_t *body; /* decompressed */
        size_t len;
        bool gzip;
        char tenant[64];  /* x-tenant metadata */
        char auth[64];    /* authorization metadata */
        char ua[128];     /* user-agent */
};

struct server {
        grpc_server *server;
        grpc_completion_queue *cq;
        void *method[ST_SIGNAL_COUNT];
        int port;
        pthread_t thread;
        enum tag_kind shutdown_tag;
        bool tls;

        pthread_mutex_t lock;
        pthread_cond_t changed;
        bool stopping, shut;
        /* behaviour, consumed in this order */
        int unavailable;           /* answer UNAVAILABLE this many times */
        int exhausted;             /* answer RESOURCE_EXHAUSTED this many times ... */
        int64_t retry_delay;       /* ... with RetryInfo of this delay (< 0: without RetryInfo) */
        grpc_status_code permanent; /* != OK: always answer this */
        int64_t rejected;          /* OK answers carry this partial success */
        bool hold;                 /* never answer */
        /* what arrived */
        size_t n;
        struct received req[MAX_REQ];
};

static void record(struct server *s, struct request_tag *rt) {
        struct received *r = &s->req[s->n < MAX_REQ ? s->n : MAX_REQ - 1];
        grpc_byte_buffer *bb = rt->payload;
        grpc_slice_buffer *sb;
        uint8_t *raw;
        size_t len, off = 0;

        free(r->body);
        memset(r, 0, sizeof(*r));
        r->signal = rt->signal;
        r->at = st_now_ns();
        for (size_t i = 0; i < rt->md.count; i++) {
                const grpc_metadata *m = &rt->md.metadata[i];
                char *dst = grpc_slice_str_cmp(m->key, "x-tenant") == 0         ? r->tenant
                            : grpc_slice_str_cmp(m->key, "authorization") == 0 ? r->auth
                            : grpc_slice_str_cmp(m->key, "user-agent") == 0     ? r->ua
                                                                                : NULL;
                if (dst)
                        snprintf(dst, 64, "%.*s", (int) GRPC_SLICE_LENGTH(m->value), GRPC_SLICE_START_PTR(m->value));
        }
        s->n++;
        if (!bb)
                return;
        /* Decompression is off on this server: the raw message is what crossed the wire. */
        sb = &bb->data.raw.slice_buffer;
        len = sb->length;
        raw = malloc(len ? len : 1);
        for (size_t i = 0; i < sb->count; i++) {
                memcpy(raw + off, GRPC_SLICE_START_PTR(sb->slices[i]), GRPC_SLICE_LENGTH(sb->slices[i]));
                off += GRPC_SLICE_LENGTH(sb->slices[i]);
        }
        r->gzip = bb->data.raw.compression == GRPC_COMPRESS_GZIP || (len >= 2 && raw[0] == 0x1f && raw[1] == 0x8b);
        if (!r->gzip) {
                r->body = raw;
                r->len = len;
                return;
        }
        z_stream z = { 0 };
        size_t cap = 1 << 20;
        r->body = malloc(cap);
        inflateInit2(&z, 16 + MAX_WBITS);
        z.next_in = raw;
        z.avail_in = (uInt) len;
        z.next_out = r->body;
        z.avail_out = (uInt) cap;
        int zr = inflate(&z, Z_FINISH);
        r->len = zr == Z_STREAM_END ? z.total_out : 0;
        inflateEnd(&z);
        free(raw);
}

static void request_call(struct server *s, int signal) {
        struct request_tag *rt = calloc(1, sizeof(*rt));
        rt->kind = TAG_REQUEST;
        rt->srv = s;
        rt->signal = signal;
        grpc_metadata_array_init(&rt->md);
        grpc_call_error e = grpc_server_request_registered_call(s->server, s->method[signal], &rt->call, &rt->deadline,
                                                                &rt->md, &rt->payload, s->cq, s->cq, rt);
        assert_int_equal(e, GRPC_CALL_OK);
}

static grpc_byte_buffer *response(int signal, int64_t rejected) {
        st_traces_resp tr = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
        Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess tps =
                OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
        st_logs_resp lr = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_RESPONSE__INIT;
        Opentelemetry__Proto__Collector__Logs__V1__ExportLogsPartialSuccess lps =
                OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
        st_metrics_resp mr = OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
        grpc_byte_buffer *bb = NULL;
        ProtobufCMessage *m = signal == ST_TRACES ? &tr.base : signal == ST_LOGS ? &lr.base : &mr.base;
        if (rejected) {
                tps.rejected_spans = rejected;
                tps.error_message = (char *) "spans too old";
                tr.partial_success = &tps;
                lps.rejected_log_records = rejected;
                lps.error_message = (char *) "records too old";
                lr.partial_success = &lps;
        }
        assert_int_equal(st_grpc_pack_message(m, &bb), 0);
        return bb;
}

static void answer(struct server *s, struct request_tag *rt) {
        struct answer_tag *at = calloc(1, sizeof(*at));
        grpc_status_code code = GRPC_STATUS_OK;
        const char *msg = "";
        grpc_op ops[4];
        size_t n = 0;

        at->kind = TAG_ANSWER;
        at->call = rt->call;
        pthread_mutex_lock(&s->lock);
        record(s, rt);
        if (s->hold) {
                pthread_cond_broadcast(&s->changed);
                pthread_mutex_unlock(&s->lock);
                /* No answer: only learn when the client gives up. */
                ops[n++] = (grpc_op) { .op = GRPC_OP_RECV_CLOSE_ON_SERVER, .data.recv_close_on_server.cancelled = &at->cancelled };
                assert_int_equal(grpc_call_start_batch(at->call, ops, n, at, NULL), GRPC_CALL_OK);
                return;
        }
        if (s->permanent != GRPC_STATUS_OK) {
                code = s->permanent;
                msg = "the request is malformed";
        } else if (s->unavailable > 0) {
                s->unavailable--;
                code = GRPC_STATUS_UNAVAILABLE;
                msg = "backend warming up";
        } else if (s->exhausted > 0) {
                s->exhausted--;
                code = GRPC_STATUS_RESOURCE_EXHAUSTED;
                msg = "slow down";
                if (s->retry_delay >= 0) {
                        at->trailer.key = grpc_slice_from_static_string(ST_GRPC_STATUS_DETAILS_KEY);
                        assert_int_equal(st_grpc_status_details_retry(code, msg, s->retry_delay, &at->trailer.value), 0);
                        at->has_trailer = true;
                }
        }
        int64_t rejected = s->rejected;
        pthread_cond_broadcast(&s->changed);
        pthread_mutex_unlock(&s->lock);

        at->details = grpc_slice_from_copied_string(msg);
        ops[n++] = (grpc_op) { .op = GRPC_OP_SEND_INITIAL_METADATA };
        ops[n++] = (grpc_op) { .op = GRPC_OP_RECV_CLOSE_ON_SERVER, .data.recv_close_on_server.cancelled = &at->cancelled };
        if (code == GRPC_STATUS_OK) {
                at->resp = response(rt->signal, rejected);
                ops[n++] = (grpc_op) { .op = GRPC_OP_SEND_MESSAGE, .data.send_message.send_message = at->resp };
        }
        ops[n++] = (grpc_op) { .op = GRPC_OP_SEND_STATUS_FROM_SERVER,
                               .data.send_status_from_server = { .status = code,
                                                                 .status_details = &at->details,
                                                                 .trailing_metadata_count = at->has_trailer ? 1 : 0,
                                                                 .trailing_metadata = &at->trailer } };
        assert_int_equal(grpc_call_start_batch(at->call, ops, n, at, NULL), GRPC_CALL_OK);
}

static void *serve(void *arg) {
        struct server *s = arg;
        for (;;) {
                grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                if (ev.type == GRPC_QUEUE_SHUTDOWN)
                        break;
                if (ev.type != GRPC_OP_COMPLETE)
                        continue;
                enum tag_kind kind = *(enum tag_kind *) ev.tag;
                if (kind == TAG_SHUTDOWN) {
                        pthread_mutex_lock(&s->lock);
                        s->shut = true;
                        pthread_cond_broadcast(&s->changed);
                        pthread_mutex_unlock(&s->lock);
                } else if (kind == TAG_REQUEST) {
                        struct request_tag *rt = ev.tag;
                        pthread_mutex_lock(&s->lock);
                        bool stopping = s->stopping;
                        pthread_mutex_unlock(&s->lock);
                        if (ev.success) {
                                answer(s, rt);
                                if (!stopping)
                                        request_call(s, rt->signal);
                        }
                        if (rt->payload)
                                grpc_byte_buffer_destroy(rt->payload);
                        grpc_metadata_array_destroy(&rt->md);
                        free(rt);
                } else {
                        struct answer_tag *at = ev.tag;
                        grpc_call_unref(at->call);
                        if (at->resp)
                                grpc_byte_buffer_destroy(at->resp);
                        grpc_slice_unref(at->details);
                        if (at->has_trailer) {
                                grpc_slice_unref(at->trailer.key);
                                grpc_slice_unref(at->trailer.value);
                        }
                        free(at);
                }
        }
        return NULL;
}

/* addr: "127.0.0.1:0" (any free port), "unix:/path". creds NULL: plaintext. */
static struct server *server_start_at(const char *addr, grpc_server_credentials *creds) {
        struct server *s = calloc(1, sizeof(*s));
        grpc_arg arg = { .type = GRPC_ARG_INTEGER, .key = (char *) GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION,
                         .value.integer = 0 };
        grpc_channel_args args = { .num_args = 1, .args = &arg };

        grpc_init();
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->changed, NULL);
        s->shutdown_tag = TAG_SHUTDOWN;
        s->retry_delay = -1;
        s->tls = creds != NULL;
        s->server = grpc_server_create(&args, NULL);
        s->cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(s->server, s->cq, NULL);
        for (int i = 0; i < ST_SIGNAL_COUNT; i++)
                s->method[i] = grpc_server_register_method(s->server, st_signals[i].grpc_method, NULL,
                                                           GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (!creds)
                creds = grpc_insecure_server_credentials_create();
        s->port = grpc_server_add_http2_port(s->server, addr, creds);
        grpc_server_credentials_release(creds);
        assert_true(s->port > 0);
        grpc_server_start(s->server);
        for (int i = 0; i < ST_SIGNAL_COUNT; i++)
                request_call(s, i);
        assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
        return s;
}

static struct server *server_start(int port, grpc_server_credentials *creds) {
        char addr[64];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        return server_start_at(addr, creds);
}

static void server_stop(struct server *s) {
        if (!s)
                return;
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_mutex_unlock(&s->lock);
        grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
        grpc_server_cancel_all_calls(s->server);
        pthread_mutex_lock(&s->lock);
        while (!s->shut)
                pthread_cond_wait(&s->changed, &s->lock);
        pthread_mutex_unlock(&s->lock);
        grpc_server_destroy(s->server);
        grpc_completion_queue_shutdown(s->cq);
        pthread_join(s->thread, NULL);
        grpc_completion_queue_destroy(s->cq);
        for (size_t i = 0; i < MAX_REQ; i++)
                free(s->req[i].body);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->changed);
        free(s);
        grpc_shutdown();
}

static size_t server_count(struct server *s) {
        pthread_mutex_lock(&s->lock);
        size_t n = s->n;
        pthread_mutex_unlock(&s->lock);
        return n;
}

static bool server_wait(struct server *s, size_t n, int64_t timeout) {
        int64_t until = st_now_ns() + timeout;
        while (server_count(s) < n && st_now_ns() < until)
                sleep_ns(2 * MS);
        return server_count(s) >= n;
}

/* --- the exporter under test -------------------------------------------------------------- */

struct exp {
        void *cfg;
        struct st_component_settings set;
        void *self;
};

static uint64_t counter(struct exp *x, enum st_signal s, size_t off) {
        return atomic_load((atomic_uint_least64_t *) ((char *) &x->set.tel->sig[s] + off));
}
#define SENT(x, s) counter(x, s, offsetof(struct st_signal_counters, sent))
#define FAILED(x, s) counter(x, s, offsetof(struct st_signal_counters, failed))
#define DROPPED(x, s) counter(x, s, offsetof(struct st_signal_counters, dropped))

static int load_config(const char *yaml, void **ret_cfg, struct st_diag *d) {
        st_node *root = NULL;
        void *cfg = calloc(1, st_exporter_otlp.config_size);
        int r = st_tree_parse_string("test.yaml", yaml, strlen(yaml), &root, d);
        if (r == 0)
                r = st_cfg_load(st_exporter_otlp.config, cfg, root, d);
        if (r == 0) {
                struct st_cfg_ctx ctx = { .diag = d, .node = root, .at = root };
                r = st_exporter_otlp.validate(cfg, &ctx);
        }
        st_node_free(root);
        if (r < 0) {
                st_cfg_free(st_exporter_otlp.config, cfg);
                free(cfg);
                return r;
        }
        *ret_cfg = cfg;
        return 0;
}

/* yaml is a printf format; the exporter is created and started. */
static struct exp *exp_start(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static struct exp *exp_start(const char *id, const char *fmt, ...) {
        struct exp *x = calloc(1, sizeof(*x));
        struct st_diag d = { 0 };
        char yaml[2048];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(yaml, sizeof(yaml), fmt, ap);
        va_end(ap);
        if (load_config(yaml, &x->cfg, &d) < 0)
                fail_msg("config rejected: %s", st_buf_cstr(&d.text));
        st_diag_free(&d);
        x->set = (struct st_component_settings) { .id = id, .log_name = id, .kind = ST_EXPORTER,
                                                  .tel = st_tel_component("exporter", id) };
        assert_int_equal(st_exporter_otlp.create(&x->set, x->cfg, &x->self), 0);
        assert_int_equal(st_exporter_otlp.start(x->self), 0);
        return x;
}

static void exp_stop(struct exp *x, int64_t grace) {
        assert_int_equal(st_exporter_otlp.shutdown(x->self, st_now_ns() + grace), 0);
        st_exporter_otlp.destroy(x->self);
        st_cfg_free(st_exporter_otlp.config, x->cfg);
        free(x->cfg);
        free(x);
}

static int consume(struct exp *x, st_batch *b) {
        int r = st_exporter_otlp.consume(x->self, b);
        st_batch_unref(b);
        return r;
}

static bool wait_counter(struct exp *x, enum st_signal s, size_t off, uint64_t want, int64_t timeout) {
        int64_t until = st_now_ns() + timeout;
        while (counter(x, s, off) < want && st_now_ns() < until)
                sleep_ns(2 * MS);
        return counter(x, s, off) >= want;
}

/* A backend in another process: in-process, the test server's thread polls gRPC's I/O for
 * the exporter too, and would hide an exporter that only makes progress while a call runs.
 * The child is this binary, re-executed with --serve PORT: it answers OK until its stdin
 * closes. */
struct child {
        pid_t pid;
        int in; /* the child's stdin */
};

static struct child child_server_start(int port) {
        int to[2], from[2];
        char arg[16], line[16];
        struct child c;

        assert_int_equal(pipe2(to, O_CLOEXEC), 0);
        assert_int_equal(pipe2(from, O_CLOEXEC), 0);
        snprintf(arg, sizeof(arg), "%d", port);
        c.pid = fork();
        assert_true(c.pid >= 0);
        if (c.pid == 0) {
                dup2(to[0], STDIN_FILENO);
                dup2(from[1], STDOUT_FILENO);
                execl("/proc/self/exe", "test_exporter_otlp", "--serve", arg, (char *) NULL);
                _exit(127);
        }
        close(to[0]);
        close(from[1]);
        c.in = to[1];
        ssize_t n = read(from[0], line, sizeof(line) - 1); /* "ready" once it listens */
        close(from[0]);
        assert_true(n > 0);
        return c;
}

static void child_server_stop(struct child c) {
        int status;
        close(c.in);
        assert_int_equal(waitpid(c.pid, &status, 0), c.pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int serve_main(int port) {
        struct server *s = server_start(port, NULL);
        char buf[16];
        printf("ready\n");
        fflush(stdout);
        while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
                ;
        server_stop(s);
        return 0;
}

/* A port nobody listens on (for "backend down"): bind, read, close. */
static int free_port(void) {
        struct server *s = server_start(0, NULL);
        int port = s->port;
        server_stop(s);
        return port;
}

#define FAST_RETRY "retry_on_failure: { initial_interval: 20ms, max_interval: 100ms, max_elapsed_time: 5s, randomization_factor: 0 }\n"

static int setup(void **state) {
        st_log_setup(ST_LOG_INFO, ST_LOG_TEXT);
        return 0;
}

static int teardown(void **state) {
        st_tel_reset();
        return 0;
}

/* --- tests: config ------------------------------------------------------------------------ */

static void expect_invalid(const char *yaml, const char *needle) {
        struct st_diag d = { 0 };
        void *cfg = NULL;
        assert_int_equal(load_config(yaml, &cfg, &d), -EINVAL);
        if (!strstr(st_buf_cstr(&d.text), needle))
                fail_msg("expected '%s' in: %s", needle, st_buf_cstr(&d.text));
        st_diag_free(&d);
}

static void test_config(void **state) {
        struct st_diag d = { 0 };
        void *cfg = NULL;

        /* Defaults. */
        assert_int_equal(load_config("endpoint: collector:4317\n", &cfg, &d), 0);
        st_cfg_free(st_exporter_otlp.config, cfg);
        free(cfg);
        assert_int_equal(load_config("endpoint: https://collector.example.com:443/\n", &cfg, &d), 0);
        st_cfg_free(st_exporter_otlp.config, cfg);
        free(cfg);
        assert_int_equal(load_config("endpoint: dns:///collector:4317\nheaders: { Authorization: Bearer x, "
                                     "x-blob-bin: \"\\x01\" }\ncompression: none\n",
                                     &cfg, &d),
                         0);
        st_cfg_free(st_exporter_otlp.config, cfg);
        free(cfg);
        assert_int_equal(d.errors, 0);

        expect_invalid("compression: gzip\n", "missing required key 'endpoint'");
        expect_invalid("endpoint: collector\n", "not a gRPC endpoint");
        expect_invalid("endpoint: http://collector:4317/v1/traces\n", "not a gRPC endpoint");
        expect_invalid("endpoint: collector:99999\n", "not a gRPC endpoint");
        expect_invalid("endpoint: unix:///tmp/" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
                       "at most 107 fit a Unix socket address");
        expect_invalid("endpoint: https://c:4317\ntls: { insecure: true }\n", "https:// endpoint means TLS");
        expect_invalid("endpoint: http://c:4317\ntls: { ca_file: /etc/ca.pem }\n", "turns TLS off");
        expect_invalid("endpoint: c:4317\ntls: { cert_file: /etc/c.pem }\n", "go together");
        expect_invalid("endpoint: c:4317\nheaders: { \"bad header\": x }\n", "headers.bad header");
        expect_invalid("endpoint: c:4317\nheaders: { grpc-timeout: 1S }\n", "reserved");
        expect_invalid("endpoint: c:4317\nheaders: { x-id: \"caf\\xe9\" }\n", "printable ASCII");
        expect_invalid("endpoint: c:4317\ncompression: zstd\n", "compression");
        expect_invalid("endpoint: c:4317\ntimeout: 0\n", "timeout");
        expect_invalid("endpoint: c:4317\nretry_on_failure: { multiplier: 0.5 }\n", "multiplier");
        expect_invalid("endpoint: c:4317\nsending_queue: { queue_size: 0 }\n", "queue_size");
        expect_invalid("endpoint: c:4317\nbalancer_name: round_robin\n", "unknown key 'balancer_name'");
}

static void test_targets(void **state) {
        static const struct { const char *in, *out; enum st_grpc_scheme scheme; } ok[] = {
                { "collector:4317", "dns:///collector:4317", ST_GRPC_SCHEME_NONE },
                { "127.0.0.1:4317", "ipv4:127.0.0.1:4317", ST_GRPC_SCHEME_NONE },
                { "http://10.1.2.3:4317/", "ipv4:10.1.2.3:4317", ST_GRPC_SCHEME_HTTP },
                { "[::1]:4317", "ipv6:[::1]:4317", ST_GRPC_SCHEME_NONE },
                { "[fe80::1%eth0]:4317", "dns:///[fe80::1%eth0]:4317", ST_GRPC_SCHEME_NONE },
                { "http://collector:4317", "dns:///collector:4317", ST_GRPC_SCHEME_HTTP },
                { "https://collector:4317/", "dns:///collector:4317", ST_GRPC_SCHEME_HTTPS },
                { "dns:///collector:4317", "dns:///collector:4317", ST_GRPC_SCHEME_NONE },
                { "dns://8.8.8.8:53/collector:4317", "dns://8.8.8.8:53/collector:4317", ST_GRPC_SCHEME_NONE },
                { "unix:///run/otel.sock", "unix:///run/otel.sock", ST_GRPC_SCHEME_NONE },
        };
        static const char *const bad[] = { "", "collector", ":4317", "collector:", "collector:0", "collector:65536",
                                           "::1:4317", "http://collector:4317/path", "ftp://c:1", "dns:collector:1",
                                           "unix://relative", "https://", "c:43x7",
                                           /* 108 bytes of path: sun_path has no room for its NUL */
                                           "unix:///tmp/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                char *t = NULL;
                enum st_grpc_scheme sc;
                assert_int_equal(st_grpc_target_from_endpoint(ok[i].in, &t, &sc), 0);
                assert_string_equal(t, ok[i].out);
                assert_int_equal(sc, ok[i].scheme);
                free(t);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *t = NULL;
                if (st_grpc_target_from_endpoint(bad[i], &t, NULL) != -EINVAL)
                        fail_msg("'%s' was accepted as %s", bad[i], t);
        }
}

static void test_status_details_roundtrip(void **state) {
        grpc_metadata md = { .key = grpc_slice_from_static_string(ST_GRPC_STATUS_DETAILS_KEY) };
        grpc_metadata_array arr = { .count = 1, .capacity = 1, .metadata = &md };
        int64_t delay = -1;

        grpc_init();
        assert_int_equal(st_grpc_status_details_retry(GRPC_STATUS_RESOURCE_EXHAUSTED, "slow down", 1500 * MS, &md.value), 0);
        assert_int_equal(st_grpc_retry_info(&arr, &delay), 1);
        assert_int_equal(delay, 1500 * MS);
        grpc_slice_unref(md.value);
        md.value = grpc_slice_from_static_string("\x08\x08"); /* a Status with a code and no details */
        assert_int_equal(st_grpc_retry_info(&arr, &delay), 0);
        md.value = grpc_slice_from_static_string("\xff\xff\xff");
        assert_int_equal(st_grpc_retry_info(&arr, &delay), -EBADMSG);
        arr.count = 0;
        assert_int_equal(st_grpc_retry_info(&arr, &delay), 0);
        assert_string_equal(st_grpc_status_name(GRPC_STATUS_UNAVAILABLE), "UNAVAILABLE");
        assert_string_equal(st_grpc_status_name((grpc_status_code) 99), "UNKNOWN");
        grpc_shutdown();
}

/* --- tests: on the wire ------------------------------------------------------------------- */

static void test_delivers_bytes_headers_gzip(void **state) {
        struct server *s = server_start(0, NULL);
        struct exp *x = exp_start("otlp/wire",
                                  "endpoint: 127.0.0.1:%d\ntls: { insecure: true }\n"
                                  "headers: { X-Tenant: acme, authorization: \"Bearer s3cret\" }\n" FAST_RETRY,
                                  s->port);
        st_batch *batches[3] = { make_traces(50, "wire"), make_metrics(7), make_logs(5) };
        size_t len[3];
        uint8_t *want[3];

        for (int i = 0; i < 3; i++) {
                want[i] = pack(batches[i], &len[i]);
                assert_int_equal(consume(x, batches[i]), 0);
        }
        assert_true(server_wait(s, 3, 5 * ST_NS_PER_SEC));
        assert_true(wait_counter(x, ST_LOGS, offsetof(struct st_signal_counters, sent), 5, 2 * ST_NS_PER_SEC));
        assert_true(wait_counter(x, ST_METRICS, offsetof(struct st_signal_counters, sent), 7, 2 * ST_NS_PER_SEC));
        assert_true(wait_counter(x, ST_TRACES, offsetof(struct st_signal_counters, sent), 50, 2 * ST_NS_PER_SEC));

        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n; i++) {
                struct received *r = &s->req[i];
                int sig = r->signal;
                assert_true(r->gzip);
                assert_int_equal(r->len, len[sig]);
                assert_memory_equal(r->body, want[sig], len[sig]);
                assert_string_equal(r->tenant, "acme");
                assert_string_equal(r->auth, "Bearer s3cret");
                assert_non_null(strstr(r->ua, "strata/"));
        }
        pthread_mutex_unlock(&s->lock);
        assert_int_equal(FAILED(x, ST_TRACES) + DROPPED(x, ST_TRACES), 0);
        exp_stop(x, ST_NS_PER_SEC);
        server_stop(s);
        for (int i = 0; i < 3; i++)
                free(want[i]);
}

static void test_compression_none(void **state) {
        struct server *s = server_start(0, NULL);
        struct exp *x = exp_start("otlp/plain", "endpoint: http://127.0.0.1:%d\ncompression: none\n" FAST_RETRY, s->port);
        st_batch *b = make_traces(20, "plain");
        size_t len;
        uint8_t *want = pack(b, &len);

        assert_int_equal(consume(x, b), 0);
        assert_true(server_wait(s, 1, 5 * ST_NS_PER_SEC));
        pthread_mutex_lock(&s->lock);
        assert_false(s->req[0].gzip);
        assert_int_equal(s->req[0].len, len);
        assert_memory_equal(s->req[0].body, want, len);
        pthread_mutex_unlock(&s->lock);
        exp_stop(x, ST_NS_PER_SEC);
        server_stop(s);
        free(want);
}

static void test_retries_then_success(void **state) {
        struct server *s = server_start(0, NULL);
        s->unavailable = 2;
        struct exp *x = exp_start("otlp/retry", "endpoint: 127.0.0.1:%d\ntls: { insecure: true }\n" FAST_RETRY, s->port);

        assert_int_equal(consume(x, make_traces(10, "retry")), 0);
        assert_true(wait_counter(x, ST_TRACES, offsetof(struct st_signal_counters, sent), 10, 5 * ST_NS_PER_SEC));
        assert_int_equal(server_count(s), 3);
        /* 20ms, then 30ms (x1.5) between attempts. */
        assert_true(s->req[1].at - s->req[0].at >= 15 * MS);
        assert_true(s->req[2].at - s->req[1].at >= 28 * MS);
        assert_int_equal(FAILED(x, ST_TRACES), 0);
        exp_stop(x, ST_NS_PER_SEC);
        server_stop(s);
}

static void test_permanent_not_retried(void **state) {
        struct server *s = server_start(0, NULL);
        s->permanent = GRPC_STATUS_INVALID_ARGUMENT;
        struct exp *x = exp_start("otlp/perm", "endpoint: 127.0.0.1:%d\ntls: { insecure: true }\n" FAST_RETRY, s->port);

        assert_int_equal(consume(x, make_traces(4, "perm")), 0);
        assert_true(wait_counter(x, ST_TRACES, offsetof(struct st_signal_counters, failed), 4, 5 * ST_NS_PER_SEC));
        sleep_ns(100 * MS); /* room for a retry that must not come */
        assert_int_equal(server_count(s), 1);
        assert_int_equal(SENT(x, ST_TRACES), 0);
        exp_stop(x, ST_NS_PER_SEC);
        server_stop(s);
}

static void test_exhausted_without_retry_info_is_permanent(void **state) {
        struct server *s = server_start(0, NULL);
        s->exhausted = 5;
        s->retry_delay = -1;
        struct exp *x = exp_start("otlp/exhausted", "endpoint: 127.0.0.1:%d\ntls: { insecure: true }\n" FAST_RETRY, s->port);

        assert_int_equal(consume(x, make_logs(3)), 0);
        assert_true(wait_counter(x, ST_LOGS, offsetof(struct st_signal_counters, failed), 3, 5 * ST_NS_PER_SEC));
        sleep_ns(100 * MS);
        assert_int_equal(server_count(s), 1);
        exp_stop(x, ST_NS_PER_SEC);
        server_stop(s);
}

static void test_retry_info_honoured(void **state) {
        struct server *s = server_start(0, NULL);
        s->exhausted = 1;
        s->retry_delay = 400 * MS;
        struct exp *x = exp_start("otlp/retryinfo", "endpoint: 127.0.0.1:%d\ntls: { insecure: true }\n" FAST_RETRY, s->port);

        assert_int_equal(consume(x, make_traces(3, "ri")), 0);
        assert_true(wait_counter(x, ST_TRACES, offsetof(struct st_signal_counters, sent), 3, 5 * ST_NS_PER_SEC));
        assert_int_equal(server_count(s), 2);
        int64_t gap = s->req[1].at - s->req[0].at;
        assert_true(gap >= 400 * MS);  /* not the 20ms of our own backoff */
        assert_true(gap < 700 * MS);
        exp_stop(x, ST_NS_PER_SEC);
        server_stop(s);
}

static void test_partial_success(void **state) {
        struct server *s = server_start(0, NULL);
        s->rejected = 4;
        struct exp *x = exp_start("otlp/partial", "endpoint: 127.0.0.1:%d\ntls: { insecure: true }\n" FAST_RETRY, s->port);

        assert_int_equal(consume(x, make_traces(10, "partial")), 0);
        assert_true(wait_counter(x, ST_TRACES, offsetof(struct st_signal_counters, failed), 4, 5 * ST_NS_PER_SEC));
        assert_int_equal(SENT(x, ST_TRACES), 6);
        assert_int_equal(server_count(s), 1);
        exp_stop(x, ST_NS_PER_SEC);
        server_stop(s);
}

static void test_backend_down_then_up(void **state) {
        int port = free_port();
        struct exp *x = exp_start("otlp/reconnect",
                                  "endpoint: 127.0.0.1:%d\ntls: { insecure: true }\ntimeout: 500ms\n" FAST_RETRY, port);

        assert_int_equal(consume(x, make_traces(8, "late")), 0);
        sleep_ns(1500 * MS); /* refused attempts, and gRPC's own reconnect backoff under way */
        assert_int_equal(SENT(x, ST_TRACES), 0);
        int64_t up = st_now_ns();
        struct child c = child_server_start(port);
        assert_true(wait_counter(x, ST_TRACES, offsetof(struct st_signal_counters, sent), 8, 5 * ST_NS_PER_SEC));
        /* Delivered on one of the next retries, not after gRPC's reconnect backoff or its 5s
         * backup poller. */
        assert_true(st_now_ns() - up < 800 * MS);
        assert_int_equal(FAILED(x, ST_TRACES) + DROPPED(x, ST_TRACES), 0);
        exp_stop(x, ST_NS_PER_SEC);
        child_server_stop(c);
}

/* The watcher sleeps while the channel is ready (otlp_watch.c): a backend that goes away
 * while the exporter is idle is noticed by the next export, which fails and wakes the watcher
 * to reconnect; the retry reaches the backend once it is back. */
static void test_backend_restarted_while_idle(void **state) {
        int port = free_port();
        struct exp *x = exp_start("otlp/idle-restart",
                                  "endpoint: 127.0.0.1:%d\ntls: { insecure: true }\ntimeout: 500ms\n" FAST_RETRY, port);
        struct child c = child_server_start(port);

        assert_int_equal(consume(x, make_traces(4, "before")), 0);
        assert_true(wait_counter(x, ST_TRACES, offsetof(struct st_signal_counters, sent), 4, 5 * ST_NS_PER_SEC));
        /* past the watch that a failed first attempt (the channel was connecting) starts */
        sleep_ns(1200 * MS);
        child_server_stop(c);
        sleep_ns(200 * MS);
        c = child_server_start(port);
        int64_t up = st_now_ns();
        assert_int_equal(consume(x, make_traces(6, "after")), 0);
        assert_true(wait_counter(x, ST_TRACES, offsetof(struct st_signal_counters, sent), 10, 5 * ST_NS_PER_SEC));
        assert_true(st_now_ns() - up < 800 * MS);
        assert_int_equal(FAILED(x, ST_TRACES) + DROPPED(x, ST_TRACES), 0);
        exp_stop(x, ST_NS_PER_SEC);
        child_server_stop(c);
}

/* The same, but the backend is still down when the next export comes: that export fails,
 * which wakes the watcher, whose polling dials again while the retries wait; the backend that
 * comes back gets the batch on the next retry (without the wake-up, nobody would poll, and
 * the batch would be dropped after its retries). */
static void test_backend_down_while_idle_then_up(void **state) {
        int port = free_port();
        struct child c = child_server_start(port);
        struct exp *x = exp_start("otlp/idle-down",
                                  "endpoint: 127.0.0.1:%d\ntls: { insecure: true }\ntimeout: 500ms\n" FAST_RETRY, port);

        assert_int_equal(consume(x, make_traces(4, "before")), 0);
        assert_true(wait_counter(x, ST_TRACES, offsetof(struct st_signal_counters, sent), 4, 5 * ST_NS_PER_SEC));
        sleep_ns(1200 * MS); /* the watcher is asleep on a ready channel */
        child_server_stop(c);
        assert_int_equal(consume(x, make_traces(6, "during")), 0);
        sleep_ns(1500 * MS);
        assert_int_equal(SENT(x, ST_TRACES), 4);
        c = child_server_start(port);
        int64_t up = st_now_ns();
        assert_true(wait_counter(x, ST_TRACES, offsetof(struct st_signal_counters, sent), 10, 5 * ST_NS_PER_SEC));
        assert_true(st_now_ns() - up < 800 * MS);
        assert_int_equal(FAILED(x, ST_TRACES) + DROPPED(x, ST_TRACES), 0);
        exp_stop(x, ST_NS_PER_SEC);
        child_server_stop(c);
}

/* A stop right after the start: the channel may be destroyed before the watcher thread first
 * runs, which must then leave it alone (it used to crash on the NULL channel). */
static void test_start_stop_races(void **state) {
        for (int i = 0; i < 300; i++) {
                struct exp *x = exp_start("otlp/quick", "endpoint: 127.0.0.1:1\ntls: { insecure: true }\n"
                                                        "sending_queue: { enabled: false }\n");
                exp_stop(x, 0);
        }
}

static void test_shutdown_backend_down_drops(void **state) {
        int port = free_port();
        struct exp *x = exp_start("otlp/down",
                                  "endpoint: 127.0.0.1:%d\ntls: { insecure: true }\ntimeout: 1s\n" FAST_RETRY
                                  "sending_queue: { num_consumers: 1, queue_size: 10 }\n",
                                  port);

        for (int i = 0; i < 3; i++)
                assert_int_equal(consume(x, make_traces(5, "down")), 0);
        sleep_ns(150 * MS);
        int64_t t0 = st_now_ns();
        assert_int_equal(st_exporter_otlp.shutdown(x->self, t0 + 300 * MS), 0);
        int64_t took = st_now_ns() - t0;
        assert_true(took < 500 * MS);
        assert_int_equal(DROPPED(x, ST_TRACES), 15);
        assert_int_equal(SENT(x, ST_TRACES) + FAILED(x, ST_TRACES), 0);
        exp_stop(x, 0);
}

static void test_shutdown_cuts_hanging_call(void **state) {
        struct server *s = server_start(0, NULL);
        s->hold = true;
        struct exp *x = exp_start("otlp/hang", "endpoint: 127.0.0.1:%d\ntls: { insecure: true }\ntimeout: 10s\n" FAST_RETRY,
                                  s->port);

        assert_int_equal(consume(x, make_traces(6, "hang")), 0);
        assert_true(server_wait(s, 1, 5 * ST_NS_PER_SEC));
        int64_t t0 = st_now_ns();
        assert_int_equal(st_exporter_otlp.shutdown(x->self, t0 + 300 * MS), 0);
        int64_t took = st_now_ns() - t0;
        assert_true(took >= 250 * MS);
        assert_true(took < 800 * MS); /* not the 10s timeout */
        assert_int_equal(DROPPED(x, ST_TRACES), 6);
        exp_stop(x, 0);
        server_stop(s);
}

static void test_timeout_retried(void **state) {
        struct server *s = server_start(0, NULL);
        s->hold = true;
        struct exp *x = exp_start("otlp/timeout",
                                  "endpoint: 127.0.0.1:%d\ntls: { insecure: true }\ntimeout: 100ms\n"
                                  "retry_on_failure: { initial_interval: 10ms, max_interval: 10ms, max_elapsed_time: 5s }\n",
                                  s->port);

        assert_int_equal(consume(x, make_traces(2, "slow")), 0);
        /* DEADLINE_EXCEEDED is retryable: the call comes again about every 110ms. */
        assert_true(server_wait(s, 3, 2 * ST_NS_PER_SEC));
        pthread_mutex_lock(&s->lock);
        s->hold = false;
        pthread_mutex_unlock(&s->lock);
        assert_true(wait_counter(x, ST_TRACES, offsetof(struct st_signal_counters, sent), 2, 2 * ST_NS_PER_SEC));
        /* Each attempt waited out its 100ms (the first may reach us late: connection set-up). */
        assert_true(s->req[2].at - s->req[1].at >= 90 * MS);
        exp_stop(x, ST_NS_PER_SEC);
        server_stop(s);
}

static void test_unix_socket(void **state) {
        char path[64], addr[80];
        snprintf(path, sizeof(path), "/tmp/st-otlp-%d.sock", (int) getpid());
        snprintf(addr, sizeof(addr), "unix:%s", path);
        unlink(path);
        struct server *s = server_start_at(addr, NULL);
        /* More headers than otlp_send keeps on its stack. */
        char headers[1024] = "";
        for (int i = 0; i < 20; i++)
                snprintf(headers + strlen(headers), sizeof(headers) - strlen(headers), "%sx-h%d: v%d", i ? ", " : "", i, i);
        struct exp *x = exp_start("otlp/unix", "endpoint: unix://%s\ntls: { insecure: true }\nheaders: { %s, x-tenant: unix }\n",
                                  path, headers);

        assert_int_equal(consume(x, make_logs(4)), 0);
        assert_true(wait_counter(x, ST_LOGS, offsetof(struct st_signal_counters, sent), 4, 5 * ST_NS_PER_SEC));
        assert_string_equal(s->req[0].tenant, "unix");
        exp_stop(x, ST_NS_PER_SEC);
        server_stop(s);
        unlink(path);
}

/* --- TLS ---------------------------------------------------------------------------------- */

static char tls_dir[64];

static bool make_certs(void) {
        char cmd[2048];
        snprintf(tls_dir, sizeof(tls_dir), "/tmp/st-otlp-tls-XXXXXX");
        if (!mkdtemp(tls_dir))
                return false;
        snprintf(cmd, sizeof(cmd),
                 "cd %s && "
                 "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=strata-test-ca -keyout ca.key -out ca.pem && "
                 "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr && "
                 "printf 'subjectAltName=DNS:localhost,DNS:otlp.test,IP:127.0.0.1\\n' > ext.cnf && "
                 "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf "
                 "-out server.pem",
                 tls_dir);
        char full[2100];
        snprintf(full, sizeof(full), "(%s) >/dev/null 2>&1", cmd);
        return system(full) == 0;
}

static char *slurp(const char *name) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", tls_dir, name);
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        char *buf = calloc(1, 1 << 16);
        size_t n = fread(buf, 1, (1 << 16) - 1, f);
        fclose(f);
        buf[n] = 0;
        return buf;
}

static grpc_server_credentials *server_tls_creds(void) {
        char *key = slurp("server.key"), *cert = slurp("server.pem");
        grpc_ssl_pem_key_cert_pair pair = { .private_key = key, .cert_chain = cert };
        grpc_server_credentials *c = grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
        free(key);
        free(cert);
        return c;
}

static void test_tls(void **state) {
        if (system("command -v openssl >/dev/null 2>&1") != 0 || !make_certs()) {
                skip();
                return;
        }
        grpc_init(); /* server_tls_creds runs before server_start's grpc_init */
        struct server *s = server_start(0, server_tls_creds());

        /* Verified against our CA, by the name in the certificate. */
        struct exp *x = exp_start("otlp/tls",
                                  "endpoint: localhost:%d\ntls: { ca_file: %s/ca.pem }\n" FAST_RETRY, s->port, tls_dir);
        assert_int_equal(consume(x, make_traces(3, "tls")), 0);
        assert_true(wait_counter(x, ST_TRACES, offsetof(struct st_signal_counters, sent), 3, 5 * ST_NS_PER_SEC));
        exp_stop(x, ST_NS_PER_SEC);

        /* An IP endpoint whose certificate is checked against another of its names. */
        x = exp_start("otlp/tls-override",
                      "endpoint: https://127.0.0.1:%d\ntls: { ca_file: %s/ca.pem, server_name_override: otlp.test }\n" FAST_RETRY,
                      s->port, tls_dir);
        assert_int_equal(consume(x, make_traces(2, "tls")), 0);
        assert_true(wait_counter(x, ST_TRACES, offsetof(struct st_signal_counters, sent), 2, 5 * ST_NS_PER_SEC));
        exp_stop(x, ST_NS_PER_SEC);

        /* System roots do not know our CA: the handshake fails, retried, never delivered. */
        x = exp_start("otlp/tls-untrusted", "endpoint: localhost:%d\n" FAST_RETRY, s->port);
        assert_int_equal(consume(x, make_traces(2, "tls")), 0);
        sleep_ns(300 * MS);
        assert_int_equal(st_exporter_otlp.shutdown(x->self, st_now_ns() + 100 * MS), 0);
        assert_int_equal(SENT(x, ST_TRACES), 0);
        assert_int_equal(DROPPED(x, ST_TRACES), 2);
        exp_stop(x, 0);

        /* insecure_skip_verify trusts it anyway. */
        x = exp_start("otlp/tls-skip", "endpoint: localhost:%d\ntls: { insecure_skip_verify: true }\n" FAST_RETRY, s->port);
        assert_int_equal(consume(x, make_traces(2, "tls")), 0);
        assert_true(wait_counter(x, ST_TRACES, offsetof(struct st_signal_counters, sent), 2, 5 * ST_NS_PER_SEC));
        exp_stop(x, ST_NS_PER_SEC);

        /* A missing CA file is a start() error, not a crash. */
        struct st_diag d = { 0 };
        void *cfg = NULL, *self = NULL;
        char yaml[256];
        snprintf(yaml, sizeof(yaml), "endpoint: localhost:%d\ntls: { ca_file: %s/nope.pem }\n", s->port, tls_dir);
        assert_int_equal(load_config(yaml, &cfg, &d), 0);
        struct st_component_settings set = { .id = "otlp/noca", .log_name = "otlp/noca", .kind = ST_EXPORTER,
                                             .tel = st_tel_component("exporter", "otlp/noca") };
        assert_int_equal(st_exporter_otlp.create(&set, cfg, &self), 0);
        assert_int_equal(st_exporter_otlp.start(self), -ENOENT);
        assert_int_equal(st_exporter_otlp.shutdown(self, st_now_ns()), 0);
        st_exporter_otlp.destroy(self);
        st_cfg_free(st_exporter_otlp.config, cfg);
        free(cfg);

        server_stop(s);
        grpc_shutdown();
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tls_dir);
        assert_int_equal(system(cmd), 0);
}

static void test_not_started(void **state) {
        /* Created, never started: shutdown and destroy still work and count what was queued. */
        struct st_diag d = { 0 };
        void *cfg = NULL, *self = NULL;
        assert_int_equal(load_config("endpoint: 127.0.0.1:1\n", &cfg, &d), 0);
        struct st_component_settings set = { .id = "otlp/idle", .log_name = "otlp/idle", .kind = ST_EXPORTER,
                                             .tel = st_tel_component("exporter", "otlp/idle") };
        assert_int_equal(st_exporter_otlp.create(&set, cfg, &self), 0);
        st_batch *b = make_traces(2, "idle");
        assert_int_equal(st_exporter_otlp.consume(self, b), 0);
        st_batch_unref(b);
        assert_int_equal(st_exporter_otlp.shutdown(self, st_now_ns() + 50 * MS), 0);
        assert_int_equal(atomic_load(&set.tel->sig[ST_TRACES].dropped), 2);
        st_exporter_otlp.destroy(self);
        st_exporter_otlp.destroy(NULL);
        st_cfg_free(st_exporter_otlp.config, cfg);
        free(cfg);
}

/* c-ares 1.18.1 leaks the name of each lookup answered from /etc/hosts ("localhost" here;
 * c-ares/c-ares#439). Not ours to fix; ASan builds only read this hook. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
        return "leak:libcares.so\n";
}

int main(int argc, char **argv) {
        if (argc == 3 && strcmp(argv[1], "--serve") == 0)
                return serve_main(atoi(argv[2]));
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_config, setup, teardown),
                cmocka_unit_test_setup_teardown(test_targets, setup, teardown),
                cmocka_unit_test_setup_teardown(test_status_details_roundtrip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_delivers_bytes_headers_gzip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_compression_none, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retries_then_success, setup, teardown),
                cmocka_unit_test_setup_teardown(test_permanent_not_retried, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exhausted_without_retry_info_is_permanent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retry_info_honoured, setup, teardown),
                cmocka_unit_test_setup_teardown(test_partial_success, setup, teardown),
                cmocka_unit_test_setup_teardown(test_backend_down_then_up, setup, teardown),
                cmocka_unit_test_setup_teardown(test_backend_restarted_while_idle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_backend_down_while_idle_then_up, setup, teardown),
                cmocka_unit_test_setup_teardown(test_start_stop_races, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shutdown_backend_down_drops, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shutdown_cuts_hanging_call, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout_retried, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unix_socket, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_started, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
