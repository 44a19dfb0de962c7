/* The debug exporter (the Collector's debugexporter): prints what reaches it.
 *
 *   basic     one log line per batch: "traces: 3 spans"
 *   normal    that line, and one stdout line per span, log record or metric
 *   detailed  that line, and the whole batch as pretty OTLP/JSON on stdout
 *
 * Synchronous on purpose: consume() prints and returns, so what you see is what passed the
 * pipeline at that moment, in order. Each batch is rendered into a buffer first and written
 * to stdout in one piece under a process-wide lock, so batches from several pipelines or
 * instances never interleave. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "component.h"
#include "log.h"
#include "otlp_json.h"

enum verbosity { VERBOSITY_BASIC, VERBOSITY_NORMAL, VERBOSITY_DETAILED };
static const char *const verbosity_names[] = { "basic", "normal", "detailed", NULL };

struct debug_cfg {
        int verbosity;
};

static const struct st_cfg_field debug_fields[] = {
        { .name = "verbosity", .type = ST_CFG_ENUM, .offset = offsetof(struct debug_cfg, verbosity), .def = "basic",
          .enums = verbosity_names,
          .desc = "basic: a log line per batch; normal: a line per item on stdout; detailed: OTLP/JSON on stdout" },
        ST_CFG_END
};

struct debug_exp {
        char *log_name;
        struct st_component_telemetry *tel;
        struct st_component_telemetry own_tel; /* when the settings bring none (tests) */
        enum verbosity verbosity;
};

/* stdout is one per process, so is its lock. */
static pthread_mutex_t stdout_lock = PTHREAD_MUTEX_INITIALIZER;

static int write_stdout(const st_buf *b) {
        int r = 0;
        pthread_mutex_lock(&stdout_lock);
        if (fwrite(b->data, 1, b->len, stdout) != b->len || fflush(stdout) != 0)
                r = errno > 0 ? -errno : -EIO;
        clearerr(stdout);
        pthread_mutex_unlock(&stdout_lock);
        return r;
}

/* --- normal verbosity: one line per item ------------------------------------------------- */

static void put_hex(st_buf *out, const ProtobufCBinaryData *b) {
        static const char dig[] = "0123456789abcdef";
        if (b->len == 0) {
                st_buf_putc(out, '-');
                return;
        }
        if (st_buf_reserve(out, 2 * b->len) < 0)
                return;
        for (size_t i = 0; i < b->len; i++) {
                out->data[out->len++] = dig[b->data[i] >> 4];
                out->data[out->len++] = dig[b->data[i] & 15];
        }
        out->data[out->len] = 0;
}

/* A quoted string that stays on one line. */
static void put_quoted(st_buf *out, const char *s) {
        st_buf_putc(out, '"');
        for (const char *run = s;; s++) {
                unsigned char c = (unsigned char) *s;
                if (c >= 0x20 && c != '"' && c != '\\')
                        continue;
                st_buf_append(out, run, (size_t) (s - run));
                if (!c)
                        break;
                switch (c) {
                case '"': st_buf_puts(out, "\\\""); break;
                case '\\': st_buf_puts(out, "\\\\"); break;
                case '\n': st_buf_puts(out, "\\n"); break;
                case '\r': st_buf_puts(out, "\\r"); break;
                case '\t': st_buf_puts(out, "\\t"); break;
                default: st_buf_printf(out, "\\x%02x", c);
                }
                run = s + 1;
        }
        st_buf_putc(out, '"');
}

static void put_duration(st_buf *out, uint64_t start, uint64_t end) {
        if (end < start) {
                st_buf_puts(out, "negative");
                return;
        }
        uint64_t ns = end - start;
        if (ns < 1000)
                st_buf_printf(out, "%" PRIu64 "ns", ns);
        else if (ns < 1000000)
                st_buf_printf(out, "%.3fus", (double) ns / 1e3);
        else if (ns < 1000000000)
                st_buf_printf(out, "%.3fms", (double) ns / 1e6);
        else
                st_buf_printf(out, "%.3fs", (double) ns / 1e9);
}

static const char *span_kind(int k) {
        static const char *const names[] = { "unspecified", "internal", "server", "client", "producer", "consumer" };
        return k >= 0 && k < (int) (sizeof(names) / sizeof(names[0])) ? names[k] : "unknown";
}

static void put_span(st_buf *out, const st_span *s) {
        st_buf_puts(out, "span trace_id=");
        put_hex(out, &s->trace_id);
        st_buf_puts(out, " span_id=");
        put_hex(out, &s->span_id);
        if (s->parent_span_id.len) {
                st_buf_puts(out, " parent_id=");
                put_hex(out, &s->parent_span_id);
        }
        st_buf_puts(out, " name=");
        put_quoted(out, s->name ? s->name : "");
        st_buf_printf(out, " kind=%s duration=", span_kind(s->kind));
        put_duration(out, s->start_time_unix_nano, s->end_time_unix_nano);
        if (s->status && s->status->code == OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR)
                st_buf_puts(out, " status=error");
        st_buf_putc(out, '\n');
}

static void put_any_value(st_buf *out, const st_any_value *v) {
        if (!v) {
                st_buf_puts(out, "-");
                return;
        }
        switch (v->value_case) {
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
                put_quoted(out, v->string_value ? v->string_value : "");
                return;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
                st_buf_puts(out, v->bool_value ? "true" : "false");
                return;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
                st_buf_printf(out, "%" PRId64, v->int_value);
                return;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
                st_buf_printf(out, "%g", v->double_value);
                return;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET:
                st_buf_puts(out, "-");
                return;
        default: /* arrays, maps, bytes: their OTLP/JSON, which is one line */
                if (st_otlp_json_encode(&v->base, out, false) < 0)
                        st_buf_puts(out, "(too deep)");
        }
}

static void put_log(st_buf *out, const st_log_record *l) {
        st_buf_puts(out, "log severity=");
        if (l->severity_text && *l->severity_text)
                st_buf_puts(out, l->severity_text);
        else {
                const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
                        &opentelemetry__proto__logs__v1__severity_number__descriptor, l->severity_number);
                const char *prefix = "SEVERITY_NUMBER_";
                if (ev && strncmp(ev->name, prefix, strlen(prefix)) == 0)
                        st_buf_puts(out, ev->name + strlen(prefix));
                else
                        st_buf_printf(out, "%d", (int) l->severity_number);
        }
        if (l->trace_id.len) {
                st_buf_puts(out, " trace_id=");
                put_hex(out, &l->trace_id);
        }
        if (l->event_name && *l->event_name) {
                st_buf_puts(out, " event=");
                put_quoted(out, l->event_name);
        }
        st_buf_puts(out, " body=");
        put_any_value(out, l->body);
        /* event records (the kernel's) carry their content in attributes */
        for (size_t i = 0; i < l->n_attributes; i++) {
                const st_key_value *kv = l->attributes[i];
                if (!kv->key || strcmp(kv->key, "event.name") == 0)
                        continue;
                st_buf_printf(out, " %s=", kv->key);
                put_any_value(out, kv->value);
        }
        st_buf_putc(out, '\n');
}

static const char *metric_type(const st_metric *m) {
        switch (m->data_case) {
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE: return "gauge";
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: return "sum";
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: return "histogram";
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: return "exponential_histogram";
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: return "summary";
        default: return "empty";
        }
}

static void put_metric(st_buf *out, const st_metric *m) {
        st_buf_puts(out, "metric name=");
        put_quoted(out, m->name ? m->name : "");
        st_buf_printf(out, " type=%s points=%zu", metric_type(m), st_metric_points(m));
        if (m->unit && *m->unit)
                st_buf_printf(out, " unit=%s", m->unit);
        st_buf_putc(out, '\n');
}

static void render_items(st_buf *out, enum st_signal s, const ProtobufCMessage *req) {
        for (size_t i = 0; i < st_req_n(s, req); i++) {
                const void *res = st_req_v(s, req)[i];
                for (size_t j = 0; j < st_res_n(s, res); j++) {
                        const void *sc = st_res_v(s, res)[j];
                        for (size_t k = 0; k < st_scope_n(s, sc); k++) {
                                const void *item = st_scope_v(s, sc)[k];
                                if (s == ST_TRACES)
                                        put_span(out, item);
                                else if (s == ST_LOGS)
                                        put_log(out, item);
                                else
                                        put_metric(out, item);
                        }
                }
        }
}

/* --- the component ----------------------------------------------------------------------- */

static void log_summary(const struct debug_exp *e, const st_batch *b) {
        /* Basic verbosity must not decode: counts come with the batch. */
        if (b->signal == ST_METRICS)
                st_info(e->log_name, "metrics: %zu data points", b->items);
        else
                st_info(e->log_name, "%s: %zu %s", st_signal_name(b->signal), b->items,
                        b->signal == ST_TRACES ? "spans" : "log records");
}

static int debug_consume(void *self, st_batch *b) {
        struct debug_exp *e = self;
        st_buf out = { 0 };
        int r = 0;

        log_summary(e, b);
        const ProtobufCMessage *req = e->verbosity == VERBOSITY_BASIC ? NULL : st_batch_req(b);
        if (e->verbosity != VERBOSITY_BASIC && !req)
                r = -ENOMEM;
        else if (e->verbosity == VERBOSITY_NORMAL)
                render_items(&out, b->signal, req);
        else if (e->verbosity == VERBOSITY_DETAILED) {
                r = st_otlp_json_encode(req, &out, true);
                if (r >= 0)
                        r = st_buf_putc(&out, '\n');
        }
        if (r >= 0 && out.len)
                r = write_stdout(&out);
        st_buf_free(&out);

        if (r < 0) {
                st_warn(e->log_name, "cannot print %zu %s: %s", b->items, st_signals[b->signal].item_name, strerror(-r));
                /* Returned to the caller, who decides what the items become: count them once, as refused. */
                st_tel_add(&e->tel->sig[b->signal].refused, b->items);
                return r == -EBADMSG ? -EINVAL : r;
        }
        st_tel_add(&e->tel->sig[b->signal].sent, b->items);
        return 0;
}

static int debug_create(const struct st_component_settings *set, const void *cfg, void **ret) {
        const struct debug_cfg *c = cfg;
        struct debug_exp *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->log_name = strdup(set->log_name ? set->log_name : "exporter/debug");
        e->tel = set->tel ? set->tel : &e->own_tel;
        e->verbosity = (enum verbosity) c->verbosity;
        if (!e->log_name) {
                free(e->log_name);
                free(e);
                return -ENOMEM;
        }
        *ret = e;
        return 0;
}

static int debug_start(void *self) { return 0; }
static int debug_shutdown(void *self, int64_t deadline_ns) { return 0; } /* nothing is ever held */

static void debug_destroy(void *self) {
        struct debug_exp *e = self;
        if (!e)
                return;
        free(e->log_name);
        free(e);
}

const struct st_factory st_exporter_debug = {
        .type = "debug",
        .kind = ST_EXPORTER,
        .signals = ST_SIG_ALL,
        .description = "prints batches: a log line each, one line per item, or OTLP/JSON on stdout",
        .config_size = sizeof(struct debug_cfg),
        .config = debug_fields,
        .create = debug_create,
        .start = debug_start,
        .consume = debug_consume,
        .shutdown = debug_shutdown,
        .destroy = debug_destroy,
};
