#include "otlp.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

const struct st_signal_layout st_signals[ST_SIGNAL_COUNT] = {
        [ST_TRACES] = {
                .name = "traces", .item_name = "spans",
                .grpc_method = "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                .http_path = "/v1/traces",
                .req = &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
                .resp = &opentelemetry__proto__collector__trace__v1__export_trace_service_response__descriptor,
                .resource_entry = &opentelemetry__proto__trace__v1__resource_spans__descriptor,
                .scope_entry = &opentelemetry__proto__trace__v1__scope_spans__descriptor,
                .req_n = offsetof(st_traces_req, n_resource_spans), .req_v = offsetof(st_traces_req, resource_spans),
                .res_n = offsetof(st_resource_spans, n_scope_spans), .res_v = offsetof(st_resource_spans, scope_spans),
                .res_resource = offsetof(st_resource_spans, resource),
                .scope_n = offsetof(st_scope_spans, n_spans), .scope_v = offsetof(st_scope_spans, spans),
                .scope_scope = offsetof(st_scope_spans, scope),
        },
        [ST_METRICS] = {
                .name = "metrics", .item_name = "data_points",
                .grpc_method = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                .http_path = "/v1/metrics",
                .req = &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
                .resp = &opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__descriptor,
                .resource_entry = &opentelemetry__proto__metrics__v1__resource_metrics__descriptor,
                .scope_entry = &opentelemetry__proto__metrics__v1__scope_metrics__descriptor,
                .req_n = offsetof(st_metrics_req, n_resource_metrics), .req_v = offsetof(st_metrics_req, resource_metrics),
                .res_n = offsetof(st_resource_metrics, n_scope_metrics), .res_v = offsetof(st_resource_metrics, scope_metrics),
                .res_resource = offsetof(st_resource_metrics, resource),
                .scope_n = offsetof(st_scope_metrics, n_metrics), .scope_v = offsetof(st_scope_metrics, metrics),
                .scope_scope = offsetof(st_scope_metrics, scope),
        },
        [ST_LOGS] = {
                .name = "logs", .item_name = "log_records",
                .grpc_method = "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                .http_path = "/v1/logs",
                .req = &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
                .resp = &opentelemetry__proto__collector__logs__v1__export_logs_service_response__descriptor,
                .resource_entry = &opentelemetry__proto__logs__v1__resource_logs__descriptor,
                .scope_entry = &opentelemetry__proto__logs__v1__scope_logs__descriptor,
                .req_n = offsetof(st_logs_req, n_resource_logs), .req_v = offsetof(st_logs_req, resource_logs),
                .res_n = offsetof(st_resource_logs, n_scope_logs), .res_v = offsetof(st_resource_logs, scope_logs),
                .res_resource = offsetof(st_resource_logs, resource),
                .scope_n = offsetof(st_scope_logs, n_log_records), .scope_v = offsetof(st_scope_logs, log_records),
                .scope_scope = offsetof(st_scope_logs, scope),
        },
};

const char *st_signal_name(enum st_signal s) {
        return (unsigned) s < ST_SIGNAL_COUNT ? st_signals[s].name : "unknown";
}

int st_signal_from_name(const char *name) {
        for (int s = 0; s < ST_SIGNAL_COUNT; s++)
                if (strcmp(name, st_signals[s].name) == 0)
                        return s;
        return -EINVAL;
}

size_t st_metric_points(const st_metric *m) {
        switch (m->data_case) {
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                return m->gauge ? m->gauge->n_data_points : 0;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                return m->sum ? m->sum->n_data_points : 0;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                return m->histogram ? m->histogram->n_data_points : 0;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                return m->exponential_histogram ? m->exponential_histogram->n_data_points : 0;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                return m->summary ? m->summary->n_data_points : 0;
        default:
                return 0;
        }
}

size_t st_request_items(enum st_signal s, const ProtobufCMessage *req) {
        size_t total = 0;
        for (size_t i = 0; i < st_req_n(s, req); i++) {
                void *res = st_req_v(s, req)[i];
                for (size_t j = 0; j < st_res_n(s, res); j++) {
                        void *sc = st_res_v(s, res)[j];
                        if (s != ST_METRICS) {
                                total += st_scope_n(s, sc);
                                continue;
                        }
                        for (size_t k = 0; k < st_scope_n(s, sc); k++)
                                total += st_metric_points(st_scope_v(s, sc)[k]);
                }
        }
        return total;
}
