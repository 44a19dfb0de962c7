/* OTLP/JSON codec: round trips through the protobuf wire format, the OTLP/JSON rules (hex
 * ids, 64-bit integers as strings, enums by number or name, oneofs written when set) and
 * every error path. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "buf.h"
#include "otlp.h"
#include "otlp_json.h"

#define TRACES_REQ (&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor)
#define METRICS_REQ (&opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor)
#define LOGS_REQ (&opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor)

/* A trace export of our own, in the style of the OTLP repository's examples. */
static const char trace_doc[] =
        "{\n"
        "  \"resourceSpans\": [{\n"
        "    \"resource\": {\n"
        "      \"attributes\": [\n"
        "        {\"key\": \"service.name\", \"value\": {\"stringValue\": \"checkout\"}},\n"
        "        {\"key\": \"host.cpus\", \"value\": {\"intValue\": \"8\"}}\n"
        "      ]\n"
        "    },\n"
        "    \"scopeSpans\": [{\n"
        "      \"scope\": {\"name\": \"checkout.http\", \"version\": \"2.1.0\",\n"
        "                \"attributes\": [{\"key\": \"lib\", \"value\": {\"stringValue\": \"x\"}}]},\n"
        "      \"spans\": [{\n"
        "        \"traceId\": \"0af7651916cd43dd8448eb211c80319c\",\n"
        "        \"spanId\": \"b7ad6b7169203331\",\n"
        "        \"parentSpanId\": \"\",\n"
        "        \"traceState\": \"vendor=1\",\n"
        "        \"flags\": 257,\n"
        "        \"name\": \"POST /cart\",\n"
        "        \"kind\": 2,\n"
        "        \"startTimeUnixNano\": \"1700000000000000000\",\n"
        "        \"endTimeUnixNano\": \"1700000000250000000\",\n"
        "        \"attributes\": [\n"
        "          {\"key\": \"http.status_code\", \"value\": {\"intValue\": 0}},\n"
        "          {\"key\": \"retry\", \"value\": {\"boolValue\": false}},\n"
        "          {\"key\": \"ratio\", \"value\": {\"doubleValue\": 0.25}},\n"
        "          {\"key\": \"empty\", \"value\": {\"stringValue\": \"\"}},\n"
        "          {\"key\": \"blob\", \"value\": {\"bytesValue\": \"aGVsbG8=\"}},\n"
        "          {\"key\": \"tags\", \"value\": {\"arrayValue\": {\"values\": [{\"stringValue\": \"a\"}, {\"intValue\": \"-3\"}]}}},\n"
        "          {\"key\": \"nested\", \"value\": {\"kvlistValue\": {\"values\": [{\"key\": \"k\", \"value\": {\"doubleValue\": 1.5}}]}}}\n"
        "        ],\n"
        "        \"droppedAttributesCount\": 1,\n"
        "        \"events\": [{\"timeUnixNano\": \"1700000000100000000\", \"name\": \"retry\"}],\n"
        "        \"links\": [{\"traceId\": \"4bf92f3577b34da6a3ce929d0e0e4736\", \"spanId\": \"00f067aa0ba902b7\", \"flags\": 1}],\n"
        "        \"status\": {\"code\": 2, \"message\": \"boom\"}\n"
        "      }, {\n"
        "        \"traceId\": \"0af7651916cd43dd8448eb211c80319c\",\n"
        "        \"spanId\": \"c7ad6b7169203331\",\n"
        "        \"parentSpanId\": \"b7ad6b7169203331\",\n"
        "        \"name\": \"SELECT cart\",\n"
        "        \"kind\": \"SPAN_KIND_CLIENT\",\n"
        "        \"startTimeUnixNano\": 1700000000010000000,\n"
        "        \"endTimeUnixNano\": \"1700000000020000000\"\n"
        "      }]\n"
        "    }],\n"
        "    \"schemaUrl\": \"https://opentelemetry.io/schemas/1.21.0\"\n"
        "  }]\n"
        "}\n";

static const char metrics_doc[] =
        "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"api\"}}]},"
        "\"scopeMetrics\":[{\"scope\":{\"name\":\"meter\"},\"metrics\":["
        "{\"name\":\"temp\",\"unit\":\"Cel\",\"gauge\":{\"dataPoints\":[{\"timeUnixNano\":\"1700000000000000000\",\"asDouble\":21.5,"
        "\"attributes\":[{\"key\":\"room\",\"value\":{\"stringValue\":\"a\"}}]}]}},"
        "{\"name\":\"requests\",\"description\":\"count\",\"sum\":{\"dataPoints\":[{\"startTimeUnixNano\":\"1\",\"timeUnixNano\":\"2\","
        "\"asInt\":\"0\",\"exemplars\":[{\"timeUnixNano\":\"2\",\"asInt\":\"7\",\"traceId\":\"0AF7651916CD43DD8448EB211C80319C\","
        "\"spanId\":\"B7AD6B7169203331\"}]}],\"aggregationTemporality\":\"AGGREGATION_TEMPORALITY_CUMULATIVE\",\"isMonotonic\":true}},"
        "{\"name\":\"latency\",\"histogram\":{\"dataPoints\":[{\"timeUnixNano\":\"3\",\"count\":\"0\",\"sum\":0,\"bucketCounts\":[\"0\",0],"
        "\"explicitBounds\":[0.5],\"min\":0,\"max\":0}],\"aggregationTemporality\":1}},"
        "{\"name\":\"size\",\"exponentialHistogram\":{\"dataPoints\":[{\"timeUnixNano\":\"4\",\"count\":\"3\",\"sum\":12.5,\"scale\":-2,"
        "\"zeroCount\":\"1\",\"positive\":{\"offset\":-1,\"bucketCounts\":[\"1\",\"1\"]},\"negative\":{},\"zeroThreshold\":1e-9}],"
        "\"aggregationTemporality\":2}},"
        "{\"name\":\"rtt\",\"summary\":{\"dataPoints\":[{\"timeUnixNano\":\"5\",\"count\":\"2\",\"sum\":\"NaN\","
        "\"quantileValues\":[{\"quantile\":0,\"value\":\"-Infinity\"},{\"quantile\":1,\"value\":\"Infinity\"}]}]}}"
        "]}]}]}";

static const char logs_doc[] =
        "{\"resource_logs\":[{\"scope_logs\":[{\"log_records\":["
        "{\"time_unix_nano\":\"1700000000000000001\",\"observedTimeUnixNano\":1700000000000000002,"
        "\"severityNumber\":\"SEVERITY_NUMBER_WARN\",\"severityText\":\"WARN\","
        "\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"msg\",\"value\":{\"stringValue\":\"disk \\\"full\\\"\\n\\u00e9\\u2603\"}}]}},"
        "\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\",\"span_id\":\"b7ad6b7169203331\",\"flags\":1,"
        "\"eventName\":\"disk.full\",\"attributes\":[{\"key\":\"raw\",\"value\":{\"bytesValue\":\"AAEC_-8\"}}]},"
        "{\"severityNumber\":17,\"body\":{\"stringValue\":\"second\"}}"
        "]}]}]}";

struct decoded {
        st_arena arena;
        ProtobufCMessage *m;
        char err[512];
};

static int decode(struct decoded *d, const ProtobufCMessageDescriptor *desc, const char *json) {
        st_arena_init(&d->arena);
        d->m = NULL;
        return st_otlp_json_decode(desc, json, strlen(json), st_arena_allocator(&d->arena), &d->m, d->err, sizeof(d->err));
}

static char *encode(const ProtobufCMessage *m, bool pretty) {
        st_buf b = { 0 };
        assert_int_equal(st_otlp_json_encode(m, &b, pretty), 0);
        return (char *) st_buf_cstr(&b);
}

/* JSON → message → protobuf → message → JSON: both JSON outputs must be equal, and
 * the compact and pretty forms must decode to the same wire bytes. Returns the JSON. */
static char *round_trip(const ProtobufCMessageDescriptor *desc, const char *json) {
        struct decoded d;
        int r = decode(&d, desc, json);
        if (r < 0)
                fail_msg("decode: %s", d.err);
        char *first = encode(d.m, false);

        size_t n = protobuf_c_message_get_packed_size(d.m);
        uint8_t *wire = malloc(n + 1);
        assert_non_null(wire);
        assert_int_equal(protobuf_c_message_pack(d.m, wire), n);
        st_arena a2;
        st_arena_init(&a2);
        ProtobufCMessage *back = protobuf_c_message_unpack(desc, st_arena_allocator(&a2), n, wire);
        assert_non_null(back);
        char *second = encode(back, false);
        assert_string_equal(first, second);

        /* the pretty form reads back to the same bytes */
        char *pretty = encode(back, true);
        struct decoded d3;
        if (decode(&d3, desc, pretty) < 0)
                fail_msg("decode pretty: %s", d3.err);
        size_t n3 = protobuf_c_message_get_packed_size(d3.m);
        assert_int_equal(n3, n);
        uint8_t *wire3 = malloc(n3 + 1);
        protobuf_c_message_pack(d3.m, wire3);
        assert_memory_equal(wire, wire3, n);

        free(wire3);
        free(pretty);
        free(second);
        free(wire);
        st_arena_reset(&a2);
        st_arena_reset(&d3.arena);
        st_arena_reset(&d.arena);
        return first;
}

static void assert_contains(const char *hay, const char *needle) {
        if (!strstr(hay, needle))
                fail_msg("expected %s in %s", needle, hay);
}

static void test_traces_round_trip(void **state) {
        (void) state;
        char *j = round_trip(TRACES_REQ, trace_doc);
        assert_contains(j, "\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"spanId\":\"b7ad6b7169203331\"");
        assert_contains(j, "\"startTimeUnixNano\":\"1700000000000000000\"");
        assert_contains(j, "\"startTimeUnixNano\":\"1700000000010000000\""); /* number in → string out */
        assert_contains(j, "\"kind\":2");
        assert_contains(j, "\"kind\":3"); /* by name in → number out */
        assert_contains(j, "{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"0\"}}"); /* oneof 0 kept */
        assert_contains(j, "{\"key\":\"retry\",\"value\":{\"boolValue\":false}}");
        assert_contains(j, "{\"key\":\"empty\",\"value\":{\"stringValue\":\"\"}}");
        assert_contains(j, "\"bytesValue\":\"aGVsbG8=\"");
        assert_contains(j, "\"values\":[{\"stringValue\":\"a\"},{\"intValue\":\"-3\"}]");
        assert_contains(j, "\"flags\":257");
        assert_contains(j, "\"status\":{\"message\":\"boom\",\"code\":2}");
        assert_contains(j, "\"links\":[{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902b7\",\"flags\":1}]");
        assert_contains(j, "\"schemaUrl\":\"https://opentelemetry.io/schemas/1.21.0\"");
        assert_null(strstr(j, "parentSpanId\":\"\"")); /* empty bytes are the default: omitted */

        /* and the values landed in the right C fields */
        struct decoded d;
        assert_int_equal(decode(&d, TRACES_REQ, trace_doc), 0);
        const st_traces_req *req = (const st_traces_req *) d.m;
        assert_int_equal(req->n_resource_spans, 1);
        const st_span *s = req->resource_spans[0]->scope_spans[0]->spans[0];
        assert_int_equal(s->trace_id.len, 16);
        assert_int_equal(s->trace_id.data[0], 0x0a);
        assert_int_equal(s->span_id.len, 8);
        assert_int_equal(s->parent_span_id.len, 0);
        assert_int_equal(s->start_time_unix_nano, 1700000000000000000ULL);
        assert_int_equal(s->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
        assert_int_equal(s->attributes[0]->value->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
        assert_int_equal(s->attributes[0]->value->int_value, 0);
        assert_int_equal(st_request_items(ST_TRACES, d.m), 2);
        free(j);
        st_arena_reset(&d.arena);
}

static void test_metrics_round_trip(void **state) {
        (void) state;
        char *j = round_trip(METRICS_REQ, metrics_doc);
        assert_contains(j, "\"asDouble\":21.5");
        assert_contains(j, "\"asInt\":\"0\""); /* oneof member 0 kept */
        assert_contains(j, "\"traceId\":\"0af7651916cd43dd8448eb211c80319c\""); /* exemplar, upper case in */
        assert_contains(j, "\"aggregationTemporality\":2,\"isMonotonic\":true");
        assert_contains(j, "\"sum\":0,\"bucketCounts\":[\"0\",\"0\"],\"explicitBounds\":[0.5],\"min\":0,\"max\":0");
        assert_contains(j, "\"scale\":-2");
        assert_contains(j, "\"positive\":{\"offset\":-1,\"bucketCounts\":[\"1\",\"1\"]},\"negative\":{}");
        assert_contains(j, "\"zeroThreshold\":1e-09");
        assert_contains(j, "\"sum\":\"NaN\"");
        assert_contains(j, "{\"value\":\"-Infinity\"},{\"quantile\":1,\"value\":\"Infinity\"}");

        struct decoded d;
        assert_int_equal(decode(&d, METRICS_REQ, metrics_doc), 0);
        const st_metrics_req *req = (const st_metrics_req *) d.m;
        st_metric **ms = req->resource_metrics[0]->scope_metrics[0]->metrics;
        assert_int_equal(req->resource_metrics[0]->scope_metrics[0]->n_metrics, 5);
        assert_int_equal(ms[0]->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
        assert_int_equal(ms[2]->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
        const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *hp = ms[2]->histogram->data_points[0];
        assert_int_equal(hp->_sum_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM);
        assert_true(hp->sum == 0);
        assert_int_equal(hp->n_bucket_counts, 2);
        assert_int_equal(ms[1]->sum->aggregation_temporality, OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
        assert_int_equal(st_request_items(ST_METRICS, d.m), 5);
        free(j);
        st_arena_reset(&d.arena);
}

static void test_logs_round_trip(void **state) {
        (void) state;
        char *j = round_trip(LOGS_REQ, logs_doc);
        assert_contains(j, "\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"1700000000000000001\"");
        assert_contains(j, "\"severityNumber\":13,\"severityText\":\"WARN\"");
        assert_contains(j, "\"stringValue\":\"disk \\\"full\\\"\\n\xc3\xa9\xe2\x98\x83\"");
        assert_contains(j, "\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"spanId\":\"b7ad6b7169203331\"");
        assert_contains(j, "\"bytesValue\":\"AAEC/+8=\""); /* URL-safe, unpadded in → standard out */
        assert_contains(j, "\"eventName\":\"disk.full\"");
        assert_contains(j, "\"severityNumber\":17");
        free(j);
}

static void test_int64_forms(void **state) {
        (void) state;
        const char *forms[] = { "\"-9223372036854775808\"", "-9223372036854775808", "9223372036854775807", "1e3", "\"1000\"" };
        const int64_t want[] = { INT64_MIN, INT64_MIN, INT64_MAX, 1000, 1000 };
        for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
                char doc[256];
                snprintf(doc, sizeof(doc), "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"intValue\":%s}}]}]}]}", forms[i]);
                struct decoded d;
                if (decode(&d, LOGS_REQ, doc) < 0)
                        fail_msg("%s: %s", forms[i], d.err);
                const st_logs_req *req = (const st_logs_req *) d.m;
                assert_int_equal(req->resource_logs[0]->scope_logs[0]->log_records[0]->body->int_value, want[i]);
                st_arena_reset(&d.arena);
        }
        /* unsigned 64-bit: the full range, as a string and as a number */
        struct decoded d;
        assert_int_equal(decode(&d, LOGS_REQ, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"18446744073709551615\","
                                              "\"observedTimeUnixNano\":18446744073709551615}]}]}]}"), 0);
        const st_log_record *lr = ((const st_logs_req *) d.m)->resource_logs[0]->scope_logs[0]->log_records[0];
        assert_true(lr->time_unix_nano == UINT64_MAX);
        assert_true(lr->observed_time_unix_nano == UINT64_MAX);
        char *j = encode(d.m, false);
        assert_contains(j, "\"timeUnixNano\":\"18446744073709551615\",\"observedTimeUnixNano\":\"18446744073709551615\"");
        free(j);
        st_arena_reset(&d.arena);
}

static void test_names_nulls_unknown(void **state) {
        (void) state;
        struct decoded d;
        const char *doc = "{\"resource_spans\":[{\"futureField\":{\"x\":[1,2,{\"y\":null}]},\"scope_spans\":[{\"spans\":[{"
                          "\"trace_id\":\"0AF7651916CD43DD8448EB211C80319C\",\"span_id\":null,\"name\":null,\"kind\":\"SPAN_KIND_PRODUCER\","
                          "\"dropped_attributes_count\":\"4\",\"status\":null,\"events\":null}]}]}]}";
        if (decode(&d, TRACES_REQ, doc) < 0)
                fail_msg("%s", d.err);
        const st_span *s = ((const st_traces_req *) d.m)->resource_spans[0]->scope_spans[0]->spans[0];
        assert_int_equal(s->trace_id.len, 16);
        assert_int_equal(s->trace_id.data[15], 0x9c);
        assert_int_equal(s->span_id.len, 0);
        assert_string_equal(s->name, "");
        assert_int_equal(s->kind, 4);
        assert_int_equal(s->dropped_attributes_count, 4);
        assert_null(s->status);
        assert_int_equal(s->n_events, 0);
        char *j = encode(d.m, false);
        assert_string_equal(j, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\","
                               "\"kind\":4,\"droppedAttributesCount\":4}]}]}]}");
        free(j);
        st_arena_reset(&d.arena);

        /* an empty request is "{}" both ways */
        assert_int_equal(decode(&d, TRACES_REQ, " {}\n"), 0);
        j = encode(d.m, true);
        assert_string_equal(j, "{}");
        free(j);
        st_arena_reset(&d.arena);
}

static void test_pretty(void **state) {
        (void) state;
        struct decoded d;
        assert_int_equal(decode(&d, TRACES_REQ, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"a\",\"kind\":1}]}]}]}"), 0);
        char *j = encode(d.m, true);
        assert_string_equal(j, "{\n"
                               "  \"resourceSpans\": [\n"
                               "    {\n"
                               "      \"scopeSpans\": [\n"
                               "        {\n"
                               "          \"spans\": [\n"
                               "            {\n"
                               "              \"name\": \"a\",\n"
                               "              \"kind\": 1\n"
                               "            }\n"
                               "          ]\n"
                               "        }\n"
                               "      ]\n"
                               "    }\n"
                               "  ]\n"
                               "}");
        free(j);
        st_arena_reset(&d.arena);
}

/* Protobuf strings need not be UTF-8; the JSON must still be valid. */
static void test_encode_escapes(void **state) {
        (void) state;
        st_arena a;
        st_arena_init(&a);
        st_any_value *v = st_arena_alloc(&a, sizeof(*v));
        opentelemetry__proto__common__v1__any_value__init(v);
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = st_arena_strdup(&a, "a\x01\tb\xff\xc3(\xed\xa0\x80\xf0\x9f\x98\x80\\/");
        char *j = encode(&v->base, false);
        assert_string_equal(j, "{\"stringValue\":\"a\\u0001\\tb\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffd\xf0\x9f\x98\x80\\\\/\"}");
        struct decoded d;
        assert_int_equal(decode(&d, &opentelemetry__proto__common__v1__any_value__descriptor, j), 0);
        free(j);

        /* doubles: shortest form that reads back exactly */
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        v->double_value = 0.1;
        j = encode(&v->base, false);
        assert_string_equal(j, "{\"doubleValue\":0.1}");
        free(j);
        v->double_value = 1.0 / 3;
        j = encode(&v->base, false);
        assert_string_equal(j, "{\"doubleValue\":0.3333333333333333}");
        free(j);
        st_arena_reset(&d.arena);
        st_arena_reset(&a);
}

struct bad {
        const ProtobufCMessageDescriptor *desc;
        const char *json;
        const char *want; /* substring of the error */
};

static void test_errors(void **state) {
        (void) state;
        static const struct bad cases[] = {
                { TRACES_REQ, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0af7651916cd43dd8448eb211c80319g\"}]}]}]}",
                  "resourceSpans[0].scopeSpans[0].spans[0].traceId: invalid hex digit at position 31" },
                { TRACES_REQ, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{},{\"spanId\":\"b7ad6b71692033\"}]}]}]}",
                  "resourceSpans[0].scopeSpans[0].spans[1].spanId: expected 16 hex digits (8 bytes), got 14 characters" },
                { TRACES_REQ, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"links\":[{\"traceId\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}]}]}]}]}",
                  "resourceSpans[0].scopeSpans[0].spans[0].links[0].traceId: expected 32 hex digits" },
                { TRACES_REQ, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":5}]}]}]}",
                  "resourceSpans[0].scopeSpans[0].spans[0].name: expected a string, got int" },
                { TRACES_REQ, "{\"resourceSpans\":{}}", "resourceSpans: expected an array, got object" },
                { TRACES_REQ, "{\"resourceSpans\":[\"x\"]}", "resourceSpans[0]: expected an object, got string" },
                { TRACES_REQ, "[]", "document: expected an object, got array" },
                { TRACES_REQ, "42", "document: expected an object" },
                { TRACES_REQ, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"a\"", "document: unexpected end of document" },
                { TRACES_REQ, "", "document: unexpected end of document" },
                { TRACES_REQ, "{\"resourceSpans\":[]} {}", "trailing data" },
                { TRACES_REQ, "{\"resourceSpans\":[],}", "document: unexpected character at offset 20" },
                { TRACES_REQ, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":\"SERVER\"}]}]}]}",
                  "spans[0].kind: unknown SpanKind value \"SERVER\"" },
                { TRACES_REQ, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":true}]}]}]}",
                  "spans[0].kind: expected an enum number or name, got boolean" },
                { TRACES_REQ, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"droppedAttributesCount\":-1}]}]}]}",
                  "spans[0].droppedAttributesCount: integer out of range [0, 4294967295]" },
                { TRACES_REQ, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":\"12x\"}]}]}]}",
                  "spans[0].startTimeUnixNano: expected an unsigned integer, got \"12x\"" },
                { TRACES_REQ, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":1.5}]}]}]}",
                  "spans[0].startTimeUnixNano: expected an integer, got 1.5" },
                { TRACES_REQ, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"flags\":\"1\",\"events\":[{\"name\":[]}]}]}]}]}",
                  "spans[0].events[0].name: expected a string, got array" },
                { TRACES_REQ, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"a\",\"value\":{\"intValue\":\"1\",\"stringValue\":\"x\"}}]}}]}",
                  "resourceSpans[0].resource.attributes[0].value.stringValue: only one of a oneof may be set" },
                { TRACES_REQ, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"a\",\"value\":{\"bytesValue\":\"a$==\"}}]}}]}",
                  "resourceSpans[0].resource.attributes[0].value.bytesValue: invalid base64 character at position 1" },
                { TRACES_REQ, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"a\",\"value\":{\"boolValue\":\"true\"}}]}}]}",
                  "value.boolValue: expected true or false, got string" },
                { TRACES_REQ, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"a\",\"value\":{\"doubleValue\":\"fast\"}}]}}]}",
                  "value.doubleValue: expected a number, got \"fast\"" },
                { METRICS_REQ, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"histogram\":{\"dataPoints\":[{\"bucketCounts\":[1,null]}]}}]}]}]}",
                  "resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0].bucketCounts[1]: null in an array" },
                { LOGS_REQ, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"intValue\":\"9223372036854775808\"}}]}]}]}",
                  "logRecords[0].body.intValue: expected an integer" },
                { LOGS_REQ, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"intValue\":9223372036854775808}}]}]}]}",
                  "logRecords[0].body.intValue: integer out of range" },
                { LOGS_REQ, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityText\":\"\xff\"}]}]}]}",
                  "document: invalid utf-8 string" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct decoded d;
                int r = decode(&d, cases[i].desc, cases[i].json);
                if (r != -EBADMSG || !strstr(d.err, cases[i].want))
                        fail_msg("case %zu: r=%d err \"%s\", want \"%s\"", i, r, d.err, cases[i].want);
                assert_null(d.m);
                st_arena_reset(&d.arena);
        }
}

/* Found by tests/fuzz/fuzz_otlp_json: json-c's UTF-8 check lets overlong forms, surrogates and
 * code points above U+10FFFF through; such a string was accepted, then forwarded as protobuf
 * that other OTLP implementations refuse (and re-encoded with U+FFFD, so not round-tripping). */
static void test_invalid_utf8(void **state) {
        (void) state;
        static const char *const bad[] = {
                "\xc1\xa9",         /* overlong 'i' */
                "\xe0\x80\xaf",    /* overlong '/' */
                "\xed\xa0\x80",    /* UTF-16 surrogate U+D800 */
                "\xf4\x90\x80\x80", /* U+110000 */
        };
        char json[256];
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(json, sizeof(json), "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":"
                         "{\"stringValue\":\"ok %s\"}}]}]}]}", bad[i]);
                struct decoded d;
                int r = decode(&d, LOGS_REQ, json);
                if (r != -EBADMSG || !strstr(d.err, "logRecords[0].body.stringValue: invalid UTF-8 in a string at byte 3"))
                        fail_msg("case %zu: r=%d err \"%s\"", i, r, d.err);
                st_arena_reset(&d.arena);
        }
        /* valid UTF-8, raw and escaped (a surrogate pair), is kept as it is */
        struct decoded d;
        assert_int_equal(decode(&d, LOGS_REQ, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"severityText\":"
                                              "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\\ud83d\\ude00\"}]}]}]}"), 0);
        const st_logs_req *req = (const st_logs_req *) d.m;
        assert_string_equal(req->resource_logs[0]->scope_logs[0]->log_records[0]->severity_text,
                            "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf0\x9f\x98\x80");
        st_arena_reset(&d.arena);
}

/* Found by tests/fuzz/fuzz_otlp_json: -0.0 was written as -0, which JSON parsers read as the
 * integer 0, so the sign was lost on the way back. */
static void test_negative_zero(void **state) {
        (void) state;
        char *out = round_trip(METRICS_REQ, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"histogram\":"
                                            "{\"dataPoints\":[{\"sum\":-0.0,\"min\":0,\"explicitBounds\":[-0.0]}]}}]}]}]}");
        assert_contains(out, "\"sum\":-0.0,");
        assert_contains(out, "\"explicitBounds\":[-0.0]");
        assert_contains(out, "\"min\":0}");
        struct decoded d;
        assert_int_equal(decode(&d, METRICS_REQ, out), 0);
        const st_metrics_req *req = (const st_metrics_req *) d.m;
        const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p =
                req->resource_metrics[0]->scope_metrics[0]->metrics[0]->histogram->data_points[0];
        assert_true(p->sum == 0 && signbit(p->sum));
        assert_true(p->explicit_bounds[0] == 0 && signbit(p->explicit_bounds[0]));
        assert_true(p->min == 0 && !signbit(p->min));
        st_arena_reset(&d.arena);
        free(out);
}

/* AnyValue arrays nested n deep. */
static char *nested_doc(int n) {
        st_buf b = { 0 };
        st_buf_puts(&b, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":");
        for (int i = 0; i < n; i++)
                st_buf_puts(&b, "{\"arrayValue\":{\"values\":[");
        st_buf_puts(&b, "{\"intValue\":\"1\"}");
        for (int i = 0; i < n; i++)
                st_buf_puts(&b, "]}}");
        st_buf_puts(&b, "}]}]}]}");
        return (char *) st_buf_cstr(&b);
}

static void test_depth(void **state) {
        (void) state;
        struct decoded d;
        /* The request is depth 0, the body AnyValue 4; each arrayValue adds two levels, so 30
         * of them put the innermost AnyValue at 64, the limit, and a 31st is refused. */
        char *ok = nested_doc(30);
        if (decode(&d, LOGS_REQ, ok) < 0)
                fail_msg("%s", d.err);
        char *j = encode(d.m, false);
        assert_string_equal(j, ok);
        free(j);
        free(ok);
        st_arena_reset(&d.arena);

        char *deep = nested_doc(31);
        assert_int_equal(decode(&d, LOGS_REQ, deep), -EBADMSG);
        assert_contains(d.err, "resourceLogs[0].scopeLogs[0].logRecords[0].body.arrayValue...");
        assert_contains(d.err, ".values[0].arrayValue: ");
        assert_contains(d.err, ": nesting deeper than 64 messages");
        free(deep);
        st_arena_reset(&d.arena);

        /* plain JSON nesting in an ignored field is bounded by the tokener */
        st_buf b = { 0 };
        st_buf_puts(&b, "{\"x\":");
        for (int i = 0; i < 200; i++)
                st_buf_putc(&b, '[');
        for (int i = 0; i < 200; i++)
                st_buf_putc(&b, ']');
        st_buf_putc(&b, '}');
        assert_int_equal(decode(&d, LOGS_REQ, st_buf_cstr(&b)), -EBADMSG);
        assert_contains(d.err, "document: nesting too deep at offset");
        st_buf_free(&b);
        st_arena_reset(&d.arena);

        /* the encoder refuses what the decoder would refuse */
        st_arena a;
        st_arena_init(&a);
        st_any_value *v = st_arena_alloc(&a, sizeof(*v));
        opentelemetry__proto__common__v1__any_value__init(v);
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        for (int i = 0; i < 40; i++) {
                st_array_value *arr = st_arena_alloc(&a, sizeof(*arr));
                opentelemetry__proto__common__v1__array_value__init(arr);
                arr->n_values = 1;
                arr->values = st_arena_alloc(&a, sizeof(void *));
                arr->values[0] = v;
                v = st_arena_alloc(&a, sizeof(*v));
                opentelemetry__proto__common__v1__any_value__init(v);
                v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
                v->array_value = arr;
        }
        st_buf out = { 0 };
        st_buf_puts(&out, "kept");
        assert_int_equal(st_otlp_json_encode(&v->base, &out, false), -EBADMSG);
        assert_string_equal(st_buf_cstr(&out), "kept");
        st_buf_free(&out);
        st_arena_reset(&a);
}

/* The decoder reads exactly len bytes: no terminator needed, nothing read beyond. */
static void test_length_bound(void **state) {
        (void) state;
        const char *doc = "{\"resourceSpans\":[]}";
        size_t n = strlen(doc);
        char *exact = malloc(n);
        memcpy(exact, doc, n);
        st_arena a;
        st_arena_init(&a);
        ProtobufCMessage *m = NULL;
        char err[256];
        assert_int_equal(st_otlp_json_decode(TRACES_REQ, exact, n, st_arena_allocator(&a), &m, err, sizeof(err)), 0);
        assert_non_null(m);
        m = NULL;
        assert_int_equal(st_otlp_json_decode(TRACES_REQ, exact, n - 1, st_arena_allocator(&a), &m, err, sizeof(err)), -EBADMSG);
        assert_null(m);
        assert_contains(err, "unexpected end of document");
        free(exact);
        st_arena_reset(&a);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_traces_round_trip),
                cmocka_unit_test(test_metrics_round_trip),
                cmocka_unit_test(test_logs_round_trip),
                cmocka_unit_test(test_int64_forms),
                cmocka_unit_test(test_names_nulls_unknown),
                cmocka_unit_test(test_pretty),
                cmocka_unit_test(test_encode_escapes),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_depth),
                cmocka_unit_test(test_length_bound),
                cmocka_unit_test(test_invalid_utf8),
                cmocka_unit_test(test_negative_zero),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
