/* The resource processor through its factory: every action on present and absent keys, typed
 * values, from_attribute, a missing Resource, all signals, shared input left alone, and config
 * errors that name their line. */
#include "processor_test.h"

extern const struct st_factory st_processor_resource;
#define F (&st_processor_resource)

static const char *const ACTIONS =
        "attributes:\n"
        "  - { key: service.name, value: overridden, action: update }\n"
        "  - { key: env, value: prod, action: insert }\n"
        "  - { key: env, value: other, action: insert }\n"          /* present now: no-op */
        "  - { key: count, value: 42, action: upsert }\n"
        "  - { key: ratio, value: 0.5, action: insert }\n"
        "  - { key: flag, value: true, action: insert }\n"
        "  - { key: quoted, value: \"7\", action: insert }\n"
        "  - { key: missing, value: x, action: update }\n"          /* absent: no-op */
        "  - { key: old, value: new, action: upsert }\n"            /* present: replaced */
        "  - { key: gone, action: delete }\n"
        "  - { key: never, action: delete }\n"
        "  - { key: copy, from_attribute: service.name, action: insert }\n"
        "  - { key: copy2, from_attribute: nope, action: upsert }\n";

/* Adds `old: v, gone: x` to every Resource (a new array in b's arena). */
static void add_resource_attrs(st_batch *b) {
        enum st_signal s = b->signal;
        for (size_t r = 0; r < st_req_n(s, b->req); r++) {
                st_resource *res = st_res_resource(s, st_req_v(s, b->req)[r]);
                st_key_value **v = (st_key_value **) ptrs_new(&b->arena, res->n_attributes + 2);
                memcpy(v, res->attributes, res->n_attributes * sizeof(*v));
                v[res->n_attributes] = kv_new(&b->arena, "old", "v");
                v[res->n_attributes + 1] = kv_new(&b->arena, "gone", "x");
                res->attributes = v;
                res->n_attributes += 2;
        }
}

static void want_string(const st_resource *res, const char *key, const char *want) {
        const st_any_value *v = attr_get(res->attributes, res->n_attributes, key);
        if (!v)
                fail_msg("%s missing", key);
        assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
        assert_string_equal(v->string_value, want);
        assert_int_equal(attr_count(res->attributes, res->n_attributes, key), 1);
}

static void expect_actions_applied(const st_resource *res) {
        const st_any_value *v;
        want_string(res, "service.name", "overridden");
        want_string(res, "env", "prod");
        want_string(res, "old", "new");
        want_string(res, "copy", "overridden");
        want_string(res, "quoted", "7");
        v = attr_get(res->attributes, res->n_attributes, "count");
        assert_non_null(v);
        assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
        assert_int_equal(v->int_value, 42);
        v = attr_get(res->attributes, res->n_attributes, "ratio");
        assert_non_null(v);
        assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
        assert_true(v->double_value == 0.5);
        v = attr_get(res->attributes, res->n_attributes, "flag");
        assert_non_null(v);
        assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
        assert_true(v->bool_value);
        assert_null(attr_get(res->attributes, res->n_attributes, "missing"));
        assert_null(attr_get(res->attributes, res->n_attributes, "gone"));
        assert_null(attr_get(res->attributes, res->n_attributes, "never"));
        assert_null(attr_get(res->attributes, res->n_attributes, "copy2"));
        assert_int_equal(res->n_attributes, 8);
}

static void test_actions_all_signals(void **state) {
        for (int s = 0; s < ST_SIGNAL_COUNT; s++) {
                struct harness h;
                uint64_t id = 1;
                harness_init(&h, F, s, ACTIONS);
                st_batch *b = make_batch(s, 3, 2, 2, &id);
                add_resource_attrs(b);
                assert_int_equal(F->consume(h.inst, b), 0);
                assert_int_equal(h.cap.n, 1);
                assert_ptr_equal(h.cap.v[0], b); /* not shared: changed in place */
                assert_int_equal(h.cap.v[0]->items, b->items);
                /* what goes on is a valid request, as an exporter would send it */
                st_batch *u = roundtrip(h.cap.v[0]);
                for (size_t r = 0; r < 3; r++)
                        expect_actions_applied(st_res_resource(s, st_req_v(s, st_batch_req(u))[r]));
                st_batch_unref(u);
                st_batch_unref(b);
                harness_free(&h);
        }
}

/* A shared batch (fan-out) is never written: the processor works on a clone. */
static void test_shared_input_untouched(void **state) {
        struct harness h;
        uint64_t id = 1;
        harness_init(&h, F, ST_TRACES, ACTIONS);
        st_batch *b = make_batch(ST_TRACES, 2, 1, 3, &id);
        add_resource_attrs(b);
        st_batch_ref(b); /* a second pipeline holds it */
        assert_int_equal(F->consume(h.inst, b), 0);
        assert_int_equal(h.cap.n, 1);
        assert_ptr_not_equal(h.cap.v[0], b);
        for (size_t r = 0; r < 2; r++) {
                st_resource *orig = st_res_resource(ST_TRACES, st_req_v(ST_TRACES, b->req)[r]);
                assert_int_equal(orig->n_attributes, 3);
                want_string(orig, "service.name", r ? "svc1" : "svc0");
                want_string(orig, "gone", "x");
                assert_null(attr_get(orig->attributes, orig->n_attributes, "env"));
                expect_actions_applied(st_res_resource(ST_TRACES, st_req_v(ST_TRACES, st_batch_req(h.cap.v[0]))[r]));
        }
        uint64_t ids[6];
        assert_int_equal(batch_ids(h.cap.v[0], ids), 6);
        for (size_t i = 0; i < 6; i++)
                assert_int_equal(ids[i], i + 1);
        st_batch_unref(b);
        st_batch_unref(b);
        harness_free(&h);
}

/* A resource entry without Resource gets one when something is inserted, else stays bare. */
static void test_missing_resource(void **state) {
        struct harness h;
        uint64_t id = 1;
        harness_init(&h, F, ST_LOGS, "attributes:\n  - { key: env, value: prod, action: upsert }\n"
                                      "  - { key: x, from_attribute: env, action: insert }\n");
        st_batch *b = make_batch(ST_LOGS, 1, 1, 1, &id);
        ST_FIELD(st_req_v(ST_LOGS, b->req)[0], st_signals[ST_LOGS].res_resource, st_resource *) = NULL;
        assert_int_equal(F->consume(h.inst, b), 0);
        st_resource *res = st_res_resource(ST_LOGS, st_req_v(ST_LOGS, st_batch_req(h.cap.v[0]))[0]);
        assert_non_null(res);
        assert_int_equal(res->n_attributes, 2);
        want_string(res, "env", "prod");
        want_string(res, "x", "prod");
        st_batch *u = roundtrip(h.cap.v[0]);
        st_batch_unref(u);
        st_batch_unref(b);
        harness_free(&h);

        harness_init(&h, F, ST_LOGS, "attributes:\n  - { key: env, value: prod, action: update }\n"
                                      "  - { key: x, action: delete }\n");
        b = make_batch(ST_LOGS, 1, 1, 1, &id);
        ST_FIELD(st_req_v(ST_LOGS, b->req)[0], st_signals[ST_LOGS].res_resource, st_resource *) = NULL;
        assert_int_equal(F->consume(h.inst, b), 0);
        assert_null(st_res_resource(ST_LOGS, st_req_v(ST_LOGS, st_batch_req(h.cap.v[0]))[0]));
        st_batch_unref(b);
        harness_free(&h);
}

/* The next consumer's answer is the processor's answer. */
static void test_next_error(void **state) {
        struct harness h;
        uint64_t id = 1;
        harness_init(&h, F, ST_METRICS, "attributes: [ { key: a, value: 1, action: insert } ]\n");
        h.cap.ret = -ENOBUFS;
        st_batch *b = make_batch(ST_METRICS, 1, 1, 1, &id);
        assert_int_equal(F->consume(h.inst, b), -ENOBUFS);
        st_batch_unref(b);
        harness_free(&h);
}

static void test_validation(void **state) {
        expect_config_error(F, "{}", "missing required key 'attributes'");
        expect_config_error(F, "attributes: []\n", "at least one action");
        expect_config_error(F, "attributes:\n  - { key: a, action: insert }\n",
                            "test.yaml:2:5: attributes[0].value: action 'insert' needs a value or from_attribute");
        expect_config_error(F, "attributes:\n  - { key: a, value: 1, action: delete }\n  - { value: 1, action: upsert }\n",
                            "test.yaml:3:5: missing required key 'key'");
        expect_config_error(F, "attributes:\n  - { key: a, value: 1, action: upsert }\n  - { key: b, value: 1, action: hash }\n",
                            "test.yaml:3:33: 'action' must be one of insert, update, upsert, delete, not 'hash'");
        expect_config_error(F, "attributes:\n  - { key: a, value: 1, from_attribute: b, action: update }\n",
                            "test.yaml:2:22: attributes[0].value: set either value or from_attribute, not both");
        expect_config_error(F, "attributes:\n  - { key: \"\", value: 1, action: update }\n", "attributes[0].key: must not be empty");
        expect_config_error(F, "attributes:\n  - { key: a, value: [1], action: update }\n", "'value' must be a string, number or bool");
        expect_config_error(F, "attributes:\n  - { key: a, value: 1, action: update, pattern: x }\n", "unknown key 'pattern'");
        expect_config_error(F, "attributes:\n  - { key: a, value: 1 }\n", "missing required key 'action'");

        struct st_diag d = { 0 };
        void *cfg = NULL;
        assert_int_equal(load_config(F, "attributes:\n  - { key: a, action: delete }\n", &cfg, &d), 0);
        st_cfg_free(F->config, cfg);
        free(cfg);
        st_diag_free(&d);
        F->destroy(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_actions_all_signals),
                cmocka_unit_test(test_shared_input_untouched),
                cmocka_unit_test(test_missing_resource),
                cmocka_unit_test(test_next_error),
                cmocka_unit_test(test_validation),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
