/* The attributes processor through its factory: every action on present and absent keys of
 * span, log record and all five kinds of data point attributes; shared input left alone;
 * config errors. */
#include "processor_test.h"

extern const struct st_factory st_processor_attributes;
#define F (&st_processor_attributes)

static const char *const ACTIONS =
        "actions:\n"
        "  - { key: env, value: prod, action: insert }\n"
        "  - { key: env, value: other, action: insert }\n"
        "  - { key: old, value: 3, action: update }\n"
        "  - { key: missing, value: x, action: update }\n"
        "  - { key: up, value: 1.25, action: upsert }\n"
        "  - { key: up, value: false, action: upsert }\n"
        "  - { key: gone, action: delete }\n"
        "  - { key: never, action: delete }\n"
        "  - { key: copy, from_attribute: env, action: upsert }\n"
        "  - { key: env, from_attribute: nope, action: update }\n";

struct check {
        size_t lists;
};

static void want_applied(st_key_value ***pv, size_t *pn, void *ctx) {
        st_key_value **v = *pv;
        size_t n = *pn;
        const st_any_value *a;
        struct check *c = ctx;

        c->lists++;
        assert_int_equal(n, 4); /* old, env, up, copy */
        a = attr_get(v, n, "env");
        assert_non_null(a);
        assert_string_equal(a->string_value, "prod");
        a = attr_get(v, n, "copy");
        assert_non_null(a);
        assert_string_equal(a->string_value, "prod");
        a = attr_get(v, n, "old");
        assert_non_null(a);
        assert_int_equal(a->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
        assert_int_equal(a->int_value, 3);
        a = attr_get(v, n, "up");
        assert_non_null(a);
        assert_int_equal(a->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
        assert_false(a->bool_value);
        assert_int_equal(attr_count(v, n, "up"), 1);
        assert_null(attr_get(v, n, "gone"));
        assert_null(attr_get(v, n, "missing"));
}

static void want_untouched(st_key_value ***pv, size_t *pn, void *ctx) {
        struct check *c = ctx;
        c->lists++;
        assert_int_equal(*pn, 2);
        assert_string_equal((*pv)[0]->key, "old");
        assert_string_equal((*pv)[0]->value->string_value, "v");
        assert_string_equal((*pv)[1]->key, "gone");
}

static void want_empty_plus_env(st_key_value ***pv, size_t *pn, void *ctx) {
        struct check *c = ctx;
        c->lists++;
        assert_int_equal(*pn, 3); /* env, up, copy: nothing to update or delete */
        assert_non_null(attr_get(*pv, *pn, "env"));
}

static void test_actions_all_signals(void **state) {
        for (int s = 0; s < ST_SIGNAL_COUNT; s++) {
                struct harness h;
                uint64_t id = 0;
                harness_init(&h, F, s, ACTIONS);
                /* metrics: 20 metrics cycling through the five kinds, 3 points each */
                st_batch *b = make_batch_p(s, 2, 2, 5, 3, &id);
                size_t lists = item_lists(b, set_item_attrs, &b->arena);
                assert_int_equal(lists, s == ST_METRICS ? 60 : 20);
                assert_int_equal(F->consume(h.inst, b), 0);
                assert_int_equal(h.cap.n, 1);
                assert_ptr_equal(h.cap.v[0], b);
                st_batch *u = roundtrip(h.cap.v[0]);
                struct check c = { 0 };
                assert_int_equal(item_lists(u, want_applied, &c), lists);
                assert_int_equal(c.lists, lists);
                st_batch_unref(u);
                st_batch_unref(b);
                harness_free(&h);
        }
}

/* Items without attributes get the inserts only. */
static void test_empty_lists(void **state) {
        for (int s = 0; s < ST_SIGNAL_COUNT; s++) {
                struct harness h;
                uint64_t id = 0;
                harness_init(&h, F, s, ACTIONS);
                st_batch *b = make_batch_p(s, 1, 1, 5, 2, &id);
                assert_int_equal(F->consume(h.inst, b), 0);
                struct check c = { 0 };
                size_t lists = item_lists(h.cap.v[0], want_empty_plus_env, &c);
                assert_int_equal(c.lists, lists);
                assert_true(lists >= 5);
                st_batch_unref(b);
                harness_free(&h);
        }
}

static void test_shared_input_untouched(void **state) {
        for (int s = 0; s < ST_SIGNAL_COUNT; s++) {
                struct harness h;
                uint64_t id = 0;
                harness_init(&h, F, s, ACTIONS);
                st_batch *b = make_batch_p(s, 1, 2, 5, 2, &id);
                item_lists(b, set_item_attrs, &b->arena);
                st_batch_ref(b);
                assert_int_equal(F->consume(h.inst, b), 0);
                assert_ptr_not_equal(h.cap.v[0], b);
                struct check c = { 0 }, c2 = { 0 };
                size_t lists = item_lists(b, want_untouched, &c);
                assert_int_equal(c.lists, lists);
                assert_int_equal(item_lists(h.cap.v[0], want_applied, &c2), lists);
                uint64_t ids[64], ids2[64];
                size_t n = batch_ids(b, ids);
                assert_int_equal(batch_ids(h.cap.v[0], ids2), n);
                assert_memory_equal(ids, ids2, n * sizeof(*ids));
                st_batch_unref(b);
                st_batch_unref(b);
                harness_free(&h);
        }
}

/* A batch merged by the batch processor (borrowing others' memory) is cloned, not written. */
static void test_borrowed_input(void **state) {
        struct harness h;
        uint64_t id = 0;
        harness_init(&h, F, ST_TRACES, ACTIONS);
        st_batch *src = make_batch(ST_TRACES, 1, 1, 4, &id), *merged;
        item_lists(src, set_item_attrs, &src->arena);
        assert_int_equal(st_batch_new(ST_TRACES, &merged), 0);
        struct st_batch_cursor cur = { 0 };
        size_t added;
        bool done;
        assert_int_equal(st_batch_append(merged, src, &cur, 0, &added, &done), 0);
        st_batch_unref(src); /* only merged holds it now */
        assert_int_equal(F->consume(h.inst, merged), 0);
        assert_ptr_not_equal(h.cap.v[0], merged);
        struct check c = { 0 };
        item_lists(merged, want_untouched, &c);
        assert_int_equal(c.lists, 4);
        st_batch_unref(merged);
        harness_free(&h);
}

static void test_validation(void **state) {
        expect_config_error(F, "{}", "missing required key 'actions'");
        expect_config_error(F, "actions: []\n", "actions: at least one action");
        expect_config_error(F, "actions:\n  - { key: a, action: upsert }\n",
                            "test.yaml:2:5: actions[0].value: action 'upsert' needs a value or from_attribute");
        expect_config_error(F, "actions:\n  - { key: a, value: 1, action: extract }\n", "not 'extract'");
        expect_config_error(F, "actions:\n  - { key: a, value: 1, action: update, include: {} }\n", "unknown key 'include'");
        expect_config_error(F, "actions: { key: a }\n", "'actions' must be a list");
        F->destroy(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_actions_all_signals),
                cmocka_unit_test(test_empty_lists),
                cmocka_unit_test(test_shared_input_untouched),
                cmocka_unit_test(test_borrowed_input),
                cmocka_unit_test(test_validation),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
