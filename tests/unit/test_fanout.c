/* The fan-out: every consumer gets the batch; a refusal for now before anyone took it goes back
 * whole; a refusal after someone took it is a drop on the refusing consumer. */
#include "processor_test.h"

#include "fanout.h"

struct fixture {
        struct capture cap[3];
        struct st_component_telemetry tel[3];
        struct st_fanout fo;
};

static void fixture_init(struct fixture *f, size_t n) {
        memset(f, 0, sizeof(*f));
        for (size_t i = 0; i < 3; i++)
                capture_init(&f->cap[i]);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(st_fanout_add(&f->fo, (struct st_consumer) { .consume = capture_consume, .data = &f->cap[i] },
                                               &f->tel[i]),
                                 0);
        }
}

static void fixture_free(struct fixture *f) {
        for (size_t i = 0; i < 3; i++)
                capture_free(&f->cap[i]);
        st_fanout_free(&f->fo);
}

static int offer(struct fixture *f, size_t items) {
        uint64_t id = 1;
        st_batch *b = make_batch(ST_TRACES, 1, 1, items, &id);
        struct st_consumer c = st_fanout_consumer(&f->fo);
        int r = st_consume(&c, b);
        st_batch_unref(b);
        return r;
}

/* One consumer: no fan-out in between. */
static void test_single(void **state) {
        struct fixture f;
        fixture_init(&f, 1);
        struct st_consumer c = st_fanout_consumer(&f.fo);
        assert_ptr_equal(c.data, &f.cap[0]);
        fixture_free(&f);
}

static void test_all_take(void **state) {
        struct fixture f;
        fixture_init(&f, 3);
        assert_int_equal(offer(&f, 4), 0);
        for (int i = 0; i < 3; i++)
                assert_int_equal(f.cap[i].items, 4);
        fixture_free(&f);
}

/* The first refuses: nobody has it, so the caller hears it and the others are not offered it
 * (offering it again later reaches each once). */
static void test_first_refuses(void **state) {
        struct fixture f;
        fixture_init(&f, 3);
        f.cap[0].ret = -ENOBUFS;
        assert_int_equal(offer(&f, 4), -ENOBUFS);
        assert_int_equal(f.cap[1].calls + f.cap[2].calls, 0);
        for (int i = 0; i < 3; i++)
                assert_int_equal(f.tel[i].sig[ST_TRACES].dropped, 0);
        f.cap[0].ret = 0;
        assert_int_equal(offer(&f, 4), 0);
        for (int i = 0; i < 3; i++)
                assert_int_equal(f.cap[i].items, 4);
        fixture_free(&f);
}

/* A later one refuses after the first took it: success for the caller (an offer again would
 * duplicate it for the first), a drop counted on the refusing one; the rest still get it. */
static void test_partial_kept(void **state) {
        struct fixture f;
        fixture_init(&f, 3);
        f.cap[1].ret = -ENOBUFS;
        assert_int_equal(offer(&f, 4), 0);
        assert_int_equal(f.cap[0].items, 4);
        assert_int_equal(f.cap[1].items, 0);
        assert_int_equal(f.cap[2].items, 4);
        assert_int_equal(f.tel[0].sig[ST_TRACES].dropped, 0);
        assert_int_equal(f.tel[1].sig[ST_TRACES].dropped, 4);
        assert_int_equal(f.tel[2].sig[ST_TRACES].dropped, 0);
        fixture_free(&f);
}

/* The first refuses for good, a later one takes it: the caller hears success (nothing to
 * offer again), the refusal is a drop on the first. */
static void test_first_fails_others_take(void **state) {
        struct fixture f;
        fixture_init(&f, 3);
        f.cap[0].ret = -EIO;
        f.cap[1].ret = -ENOBUFS; /* after a failure: no longer "nobody has it" */
        assert_int_equal(offer(&f, 4), 0);
        assert_int_equal(f.cap[2].items, 4);
        assert_int_equal(f.tel[0].sig[ST_TRACES].dropped, 4);
        assert_int_equal(f.tel[1].sig[ST_TRACES].dropped, 4);
        assert_int_equal(f.tel[2].sig[ST_TRACES].dropped, 0);
        fixture_free(&f);
}

/* Everyone refuses: the first error goes back, nothing is counted (the caller counts). */
static void test_all_refuse(void **state) {
        struct fixture f;
        fixture_init(&f, 2);
        f.cap[0].ret = -EIO;
        f.cap[1].ret = -ENOBUFS;
        assert_int_equal(offer(&f, 4), -EIO);
        assert_int_equal(f.cap[1].calls, 1);
        assert_int_equal(f.tel[0].sig[ST_TRACES].dropped + f.tel[1].sig[ST_TRACES].dropped, 0);
        fixture_free(&f);
}

static void test_bounded(void **state) {
        struct st_fanout fo = { 0 };
        struct capture c;
        capture_init(&c);
        for (int i = 0; i < ST_FANOUT_MAX; i++)
                assert_int_equal(st_fanout_add(&fo, (struct st_consumer) { .consume = capture_consume, .data = &c }, NULL), 0);
        assert_int_equal(st_fanout_add(&fo, (struct st_consumer) { .consume = capture_consume, .data = &c }, NULL), -E2BIG);
        uint64_t id = 1;
        st_batch *b = make_batch(ST_LOGS, 1, 1, 2, &id);
        struct st_consumer fc = st_fanout_consumer(&fo);
        assert_int_equal(st_consume(&fc, b), 0);
        assert_int_equal(c.items, 2 * ST_FANOUT_MAX);
        st_batch_unref(b);
        st_fanout_free(&fo);
        capture_free(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_single),
                cmocka_unit_test(test_all_take),
                cmocka_unit_test(test_first_refuses),
                cmocka_unit_test(test_partial_kept),
                cmocka_unit_test(test_first_fails_others_take),
                cmocka_unit_test(test_all_refuse),
                cmocka_unit_test(test_bounded),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
