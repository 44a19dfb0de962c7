/* The memory limiter through its factory: refusing above the soft limit from the very first
 * request, passing below it, with and without its sampler thread, and its config checks. */
#include "processor_test.h"

#include <unistd.h>

#include "clock.h"
#include "log.h"

extern const struct st_factory st_processor_memory_limiter;
#define F (&st_processor_memory_limiter)

static void test_refuses_above_limit(void **state) {
        struct harness h;
        uint64_t id = 1;
        st_log_setup(ST_LOG_ERROR, ST_LOG_TEXT); /* the "refusing" warning is expected */
        harness_init(&h, F, ST_TRACES, "limit_mib: 1\n");
        st_batch *b = make_batch(ST_TRACES, 1, 1, 5, &id);
        /* no start(): the first consume samples by itself */
        assert_int_equal(F->consume(h.inst, b), -ENOBUFS);
        assert_int_equal(F->consume(h.inst, b), -ENOBUFS);
        assert_int_equal(h.cap.calls, 0);
        assert_int_equal(h.tel.sig[ST_TRACES].refused, 10);
        assert_true(st_error_retryable(-ENOBUFS));
        st_batch_unref(b);
        assert_int_equal(F->shutdown(h.inst, 0), 0);
        harness_free(&h);
        st_log_setup(ST_LOG_INFO, ST_LOG_TEXT);
}

static void test_passes_below_limit(void **state) {
        struct harness h;
        uint64_t id = 1;
        harness_init(&h, F, ST_LOGS, "limit_mib: 1000000\ncheck_interval: 10ms\n");
        assert_int_equal(F->start(h.inst), 0);
        for (int i = 0; i < 20; i++) {
                st_batch *b = make_batch(ST_LOGS, 1, 1, 5, &id);
                assert_int_equal(F->consume(h.inst, b), 0);
                st_batch_unref(b);
                usleep(1000);
        }
        assert_int_equal(h.cap.n, 20);
        assert_int_equal(h.cap.items, 100);
        assert_int_equal(h.tel.sig[ST_LOGS].refused, 0);
        assert_int_equal(F->shutdown(h.inst, 0), 0);
        assert_int_equal(F->shutdown(h.inst, 0), 0);
        harness_free(&h);
}

/* The sampler thread alone notices (the consume path checks at most once per interval). */
static void test_sampler_thread(void **state) {
        struct harness h;
        uint64_t id = 1;
        st_log_setup(ST_LOG_ERROR, ST_LOG_TEXT);
        harness_init(&h, F, ST_METRICS, "limit_mib: 2\nspike_limit_mib: 1\ncheck_interval: 20ms\n");
        assert_int_equal(F->start(h.inst), 0);
        usleep(100 * 1000);
        st_batch *b = make_batch(ST_METRICS, 1, 1, 2, &id);
        assert_int_equal(F->consume(h.inst, b), -ENOBUFS);
        assert_int_equal(h.tel.sig[ST_METRICS].refused, 2);
        st_batch_unref(b);
        harness_free(&h); /* destroy stops the thread without shutdown */
        st_log_setup(ST_LOG_INFO, ST_LOG_TEXT);
}

static void test_percentage(void **state) {
        struct harness h;
        uint64_t id = 1;
        harness_init(&h, F, ST_TRACES, "limit_percentage: 90\nspike_limit_percentage: 10\n");
        st_batch *b = make_batch(ST_TRACES, 1, 1, 1, &id);
        assert_int_equal(F->consume(h.inst, b), 0); /* a test uses far less than 80% of the machine */
        st_batch_unref(b);
        harness_free(&h);
}

static void test_validation(void **state) {
        expect_config_error(F, "{}", "limit_mib or limit_percentage is required");
        expect_config_error(F, "limit_mib: 0\n", "limit_mib or limit_percentage is required");
        expect_config_error(F, "limit_mib: 100\nspike_limit_mib: 100\n", "spike_limit_mib: must be smaller");
        expect_config_error(F, "limit_mib: 100\ncheck_interval: 0\n", "check_interval: must be greater than zero");
        expect_config_error(F, "limit_mib: 100\nlimit_percentage: 50\n", "not both");
        expect_config_error(F, "limit_percentage: 50\nspike_limit_percentage: 60\n", "spike_limit_percentage");
        expect_config_error(F, "limit_percentage: 150\n", "limit_percentage");
        expect_config_error(F, "limit_mib: lots\n", "limit_mib");

        struct st_diag d = { 0 };
        void *cfg = NULL;
        assert_int_equal(load_config(F, "limit_mib: 100\n", &cfg, &d), 0);
        const int64_t *c = cfg;
        assert_int_equal(c[0], ST_NS_PER_SEC); /* check_interval */
        st_cfg_free(F->config, cfg);
        free(cfg);
        st_diag_free(&d);
        F->destroy(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_refuses_above_limit),
                cmocka_unit_test(test_passes_below_limit),
                cmocka_unit_test(test_sampler_thread),
                cmocka_unit_test(test_percentage),
                cmocka_unit_test(test_validation),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
