/* The service: config validation across components and pipelines (every error with
 * file:line:col), graph building, and start/shutdown ordering with real components. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "component.h"
#include "service.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"

static void expect_errors(const char *yaml, const char *const *needles) {
        struct st_diag d = { 0 };
        struct st_service *s = NULL;
        int r = st_service_load("svc.yaml", yaml, strlen(yaml), &d, &s);
        const char *text = st_buf_cstr(&d.text);
        if (r == 0)
                fail_msg("config was accepted:\n%s", yaml);
        for (size_t i = 0; needles[i]; i++)
                if (!strstr(text, needles[i]))
                        fail_msg("expected '%s' in:\n%s", needles[i], text);
        st_diag_free(&d);
}

#define ERRORS(yaml, ...) expect_errors(yaml, (const char *const[]) { __VA_ARGS__, NULL })

static const char *good =
        "receivers:\n"
        "  otlp:\n"
        "    protocols: { grpc: { endpoint: 127.0.0.1:0 } }\n"
        "processors:\n"
        "  batch: { timeout: 10ms }\n"
        "  resource/env: { attributes: [ { key: env, value: test, action: upsert } ] }\n"
        "exporters:\n"
        "  debug: {}\n"
        "  debug/detailed: { verbosity: detailed }\n"
        "service:\n"
        "  pipelines:\n"
        "    traces: { receivers: [otlp], processors: [resource/env, batch], exporters: [debug, debug/detailed] }\n"
        "    logs/x: { receivers: [otlp], processors: [batch], exporters: [debug] }\n"
        "  telemetry: { metrics: { address: '' }, logs: { level: warn } }\n";

static void a_good_config_loads(void **state) {
        struct st_diag d = { 0 };
        struct st_service *s = NULL;
        int r = st_service_load("svc.yaml", good, strlen(good), &d, &s);
        if (r < 0)
                fail_msg("%s", st_buf_cstr(&d.text));
        st_buf out = { 0 };
        st_service_describe(s, &out);
        assert_string_equal(st_buf_cstr(&out), "traces: [otlp] -> [resource/env, batch] -> [debug, debug/detailed]\n"
                                               "logs/x: [otlp] -> [batch] -> [debug]\n");
        assert_string_equal(st_service_telemetry(s)->metrics_address, "");
        st_buf_free(&out);
        st_service_free(s);
}

static void every_problem_is_reported_with_its_place(void **state) {
        ERRORS("receivers:\n  otlp:\n    protocols: { grpc: { endpoint: 127.0.0.1:0 } }\n    bogus: 1\n"
               "exporters:\n  debug: { verbosity: loud }\n"
               "  nosuch: {}\n"
               "service:\n  pipelines:\n"
               "    traces: { receivers: [otlp], exporters: [debug, missing] }\n"
               "    spans: { receivers: [otlp], exporters: [debug] }\n"
               "    metrics: { receivers: [otlp], exporters: [] }\n",
               "svc.yaml:4:5: unknown key 'bogus'",
               "svc.yaml:6:23: 'verbosity' must be one of basic, normal, detailed, not 'loud'",
               "svc.yaml:7:3: unknown exporter type 'nosuch'",
               "svc.yaml:10:53: pipeline 'traces' uses exporter 'missing', which is not defined under 'exporters'",
               "svc.yaml:11:5: bad pipeline id 'spans'",
               "pipeline 'metrics' needs at least one exporter");
        ERRORS("receivers: { otlp: { protocols: { grpc: {} } } }\nexporters: { debug: {} }\nextensions: {}\n"
               "service: { pipelines: { traces: { receivers: [otlp], exporters: [debug], procesors: [] } } }\n",
               "svc.yaml:3:1: unknown top-level key 'extensions'", "unknown key 'procesors' in pipeline 'traces'");
        ERRORS("receivers: { otlp: { protocols: { grpc: {} } } }\nexporters: { debug: {} }\n",
               "missing 'service' with 'pipelines'");
        ERRORS("receivers: { otlp: { protocols: { grpc: {} } } }\nexporters: { debug: {} }\n"
               "service: { pipelines: { traces: { receivers: [otlp, otlp], exporters: [debug] } }, extensions: [] }\n",
               "receiver 'otlp' is listed twice", "unknown key 'extensions' in service");
        ERRORS("receivers: [otlp]\nservice: {}\n", "'receivers' must be a map of component ids to settings",
               "'service.pipelines' must define at least one pipeline");
        ERRORS("receivers: { otlp: { protocols: { grpc: {} } } }\nexporters: { debug: {} }\n"
               "service: { pipelines: { traces: { receivers: [otlp], exporters: [debug] } }, shutdown_timeout: soon }\n",
               "'shutdown_timeout' must be a duration");
        ERRORS("receivers: { otlp: { protocols: { grpc: {} } } }\nexporters: { debug: {} }\n"
               "service: { pipelines: { traces: { receivers: [otlp], exporters: [debug] } },\n"
               "  telemetry: { logs: { level: loud } } }\n",
               "'level' must be one of debug, info, warn, error");
}

/* A pipeline feeds its exporters through a fan-out of at most ST_FANOUT_MAX (64) consumers. */
static void fan_out_limits(void **state) {
        st_buf y = { 0 };
        st_buf_puts(&y, "receivers: { otlp: { protocols: { grpc: {} } } }\nexporters:\n");
        for (int i = 0; i < 65; i++)
                st_buf_printf(&y, "  debug/%d: {}\n", i);
        st_buf_puts(&y, "service: { pipelines: { traces: { receivers: [otlp], exporters: [");
        for (int i = 0; i < 65; i++)
                st_buf_printf(&y, "%sdebug/%d", i ? ", " : "", i);
        st_buf_puts(&y, "] } } }\n");
        ERRORS(st_buf_cstr(&y), "more than 64 exporters in one pipeline are not supported");
        st_buf_free(&y);
}

static void processors_support_their_signals(void **state) {
        /* memory_limiter needs limit_mib: a missing required key is reported at the component. */
        ERRORS("receivers: { otlp: { protocols: { grpc: {} } } }\nprocessors: { memory_limiter: {} }\nexporters: { debug: {} }\n"
               "service: { pipelines: { traces: { receivers: [otlp], processors: [memory_limiter], exporters: [debug] } } }\n",
               "svc.yaml:2:31:");
}

static void starts_and_stops_downstream_first(void **state) {
        struct st_diag d = { 0 };
        struct st_service *s = NULL;
        assert_int_equal(st_service_load("svc.yaml", good, strlen(good), &d, &s), 0);
        assert_int_equal(st_service_start(s), 0);
        assert_int_equal(st_service_shutdown(s), 0);
        st_service_free(s);
        st_tel_reset();
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(a_good_config_loads),
                cmocka_unit_test(every_problem_is_reported_with_its_place),
                cmocka_unit_test(fan_out_limits),
                cmocka_unit_test(processors_support_their_signals),
                cmocka_unit_test(starts_and_stops_downstream_first),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
