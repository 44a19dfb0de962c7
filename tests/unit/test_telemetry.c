/* Self-telemetry: component-specific metrics (st_tel_metric) render as Prometheus text with
 * one HELP/TYPE per name across components; and `strata doctor` reports every layer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "doctor.h"
#include "telemetry.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"

static size_t count(const char *hay, const char *needle) {
        size_t n = 0;
        for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

static void test_component_metrics(void **state) {
        struct st_component_telemetry *a = st_tel_component("receiver", "ebpf");
        struct st_component_telemetry *b = st_tel_component("receiver", "ebpf/second");
        assert_non_null(a);
        assert_non_null(b);
        struct st_tel_metric *lost = st_tel_metric(a, "ebpf_lost_events_total", "Lost.", false);
        assert_ptr_equal(st_tel_metric(a, "ebpf_lost_events_total", "Lost.", false), lost); /* registered once */
        st_tel_metric_add(lost, 7);
        st_tel_metric_add(lost, 5);
        st_tel_metric_set(st_tel_metric(b, "ebpf_lost_events_total", "Lost.", false), 3);
        st_tel_metric_set(st_tel_metric(a, "ebpf_up", "Up.", true), 1);
        st_tel_metric_add(NULL, 1); /* NULL-safe, as create() may have run out of memory */

        st_buf out = { 0 };
        st_tel_render(&out);
        const char *t = st_buf_cstr(&out);
        assert_int_equal(count(t, "# TYPE strata_receiver_ebpf_lost_events_total counter\n"), 1);
        assert_int_equal(count(t, "# HELP strata_receiver_ebpf_lost_events_total Lost.\n"), 1);
        assert_non_null(strstr(t, "strata_receiver_ebpf_lost_events_total{receiver=\"ebpf\"} 12\n"));
        assert_non_null(strstr(t, "strata_receiver_ebpf_lost_events_total{receiver=\"ebpf/second\"} 3\n"));
        assert_non_null(strstr(t, "# TYPE strata_receiver_ebpf_up gauge\nstrata_receiver_ebpf_up{receiver=\"ebpf\"} 1\n"));
        st_buf_free(&out);
        st_tel_reset();
}

static void test_doctor_reports_every_layer(void **state) {
        st_buf out = { 0 };
        assert_int_equal(st_doctor(&out), 0);
        const char *t = st_buf_cstr(&out);
        assert_non_null(strstr(t, "\nreceiver ebpf ("));
        assert_non_null(strstr(t, "  kernel hooks "));
        assert_non_null(strstr(t, "  privileges "));
        assert_non_null(strstr(t, "\nreceiver otlp ("));
        assert_non_null(strstr(t, "  127.0.0.1:4317 "));
        assert_non_null(strstr(t, "\nAPI\n"));
        assert_non_null(strstr(t, "  kubernetes API "));
        assert_non_null(strstr(t, "  EC2 instance metadata "));
        /* as root on a host with BTF the kernel hooks load; elsewhere the line says why not */
        if (geteuid() == 0 && access("/sys/kernel/btf/vmlinux", R_OK) == 0)
                assert_non_null(strstr(t, "  kernel hooks               yes: process.fork: "));
        else
                assert_non_null(strstr(t, "  kernel hooks               no: "));
        st_buf_free(&out);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_component_metrics),
                cmocka_unit_test(test_doctor_reports_every_layer),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
