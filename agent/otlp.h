/* Short names for the protobuf-c OTLP types, and what is common to the three signals.
 *
 * Every OTLP export request has the same shape: request → resource entries → scope entries →
 * items (spans, metrics, log records). st_signal_layout describes where those arrays live so
 * that batching, splitting and counting are written once for all signals. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue st_any_value;
typedef Opentelemetry__Proto__Common__V1__KeyValue st_key_value;
typedef Opentelemetry__Proto__Common__V1__ArrayValue st_array_value;
typedef Opentelemetry__Proto__Common__V1__KeyValueList st_kvlist_value;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope st_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource st_resource;

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest st_traces_req;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse st_traces_resp;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans st_resource_spans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans st_scope_spans;
typedef Opentelemetry__Proto__Trace__V1__Span st_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event st_span_event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link st_span_link;

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest st_metrics_req;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse st_metrics_resp;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics st_resource_metrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics st_scope_metrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric st_metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint st_number_point;

typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest st_logs_req;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse st_logs_resp;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs st_resource_logs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs st_scope_logs;
typedef Opentelemetry__Proto__Logs__V1__LogRecord st_log_record;

enum st_signal { ST_TRACES = 0, ST_METRICS = 1, ST_LOGS = 2, ST_SIGNAL_COUNT = 3 };
#define ST_SIG_BIT(s) (1u << (s))
#define ST_SIG_ALL (ST_SIG_BIT(ST_TRACES) | ST_SIG_BIT(ST_METRICS) | ST_SIG_BIT(ST_LOGS))

struct st_signal_layout {
        const char *name;        /* "traces" */
        const char *item_name;   /* "spans", "data_points", "log_records" */
        const char *grpc_method; /* "/opentelemetry.proto.collector.trace.v1.TraceService/Export" */
        const char *http_path;   /* "/v1/traces" */
        const ProtobufCMessageDescriptor *req, *resp, *resource_entry, *scope_entry;
        size_t req_n, req_v;     /* offsets of n_resource_X / resource_X in the request */
        size_t res_n, res_v;     /* offsets of n_scope_X / scope_X in a resource entry */
        size_t res_resource;     /* offset of the Resource pointer in a resource entry */
        size_t scope_n, scope_v; /* offsets of n_items / items in a scope entry */
        size_t scope_scope;      /* offset of the InstrumentationScope pointer in a scope entry */
};

extern const struct st_signal_layout st_signals[ST_SIGNAL_COUNT];

const char *st_signal_name(enum st_signal s);
int st_signal_from_name(const char *name); /* ST_TRACES.. or -EINVAL */

/* Accessors for the generic walk. */
#define ST_FIELD(p, off, type) (*(type *) ((char *) (p) + (off)))
static inline size_t st_req_n(enum st_signal s, const void *req) { return ST_FIELD(req, st_signals[s].req_n, size_t); }
static inline void **st_req_v(enum st_signal s, const void *req) { return ST_FIELD(req, st_signals[s].req_v, void **); }
static inline size_t st_res_n(enum st_signal s, const void *r) { return ST_FIELD(r, st_signals[s].res_n, size_t); }
static inline void **st_res_v(enum st_signal s, const void *r) { return ST_FIELD(r, st_signals[s].res_v, void **); }
static inline st_resource *st_res_resource(enum st_signal s, const void *r) { return ST_FIELD(r, st_signals[s].res_resource, st_resource *); }
static inline size_t st_scope_n(enum st_signal s, const void *sc) { return ST_FIELD(sc, st_signals[s].scope_n, size_t); }
static inline void **st_scope_v(enum st_signal s, const void *sc) { return ST_FIELD(sc, st_signals[s].scope_v, void **); }

/* Number of items a metric carries (its data points). */
size_t st_metric_points(const st_metric *m);
/* Items (spans / data points / log records) in a request. */
size_t st_request_items(enum st_signal s, const ProtobufCMessage *req);
