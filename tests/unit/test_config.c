/* Config: YAML tree with positions, env substitution, config maps and their errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#pragma GCC diagnostic ignored "-Wunused-parameter"

#include "config_map.h"
#include "tree.h"

struct inner {
        char *endpoint;
        bool enabled;
};
struct item {
        char *key;
        struct st_cfg_value value;
        int action;
};
struct cfg {
        char *name;
        bool flag;
        int64_t count;
        double ratio;
        int64_t timeout;
        uint64_t size;
        int mode;
        struct st_strv list;
        struct st_kvv headers;
        struct inner grpc;
        bool has_grpc;
        struct st_list items;
};

static const char *const modes[] = { "basic", "normal", "detailed", NULL };
static const char *const actions[] = { "insert", "update", "upsert", "delete", NULL };

static const struct st_cfg_field inner_fields[] = {
        { "endpoint", ST_CFG_STRING, offsetof(struct inner, endpoint), "127.0.0.1:4317", "where" },
        { "enabled", ST_CFG_BOOL, offsetof(struct inner, enabled), "true", "on" },
        ST_CFG_END,
};
static const struct st_cfg_field item_fields[] = {
        { "key", ST_CFG_STRING, offsetof(struct item, key), NULL, "key", .required = true },
        { "value", ST_CFG_VALUE, offsetof(struct item, value), NULL, "value" },
        { "action", ST_CFG_ENUM, offsetof(struct item, action), "upsert", "action", .enums = actions },
        ST_CFG_END,
};
static const struct st_cfg_field fields[] = {
        { "name", ST_CFG_STRING, offsetof(struct cfg, name), "default-name", "a name" },
        { "flag", ST_CFG_BOOL, offsetof(struct cfg, flag), "false", "a flag" },
        { "count", ST_CFG_INT, offsetof(struct cfg, count), "8192", "a count", .min = 1, .max = 100000 },
        { "ratio", ST_CFG_DOUBLE, offsetof(struct cfg, ratio), "1.5", "a ratio" },
        { "timeout", ST_CFG_DURATION, offsetof(struct cfg, timeout), "200ms", "a duration" },
        { "size", ST_CFG_SIZE, offsetof(struct cfg, size), "4MiB", "a size" },
        { "mode", ST_CFG_ENUM, offsetof(struct cfg, mode), "basic", "a mode", .enums = modes },
        { "list", ST_CFG_STRINGS, offsetof(struct cfg, list), NULL, "a list" },
        { "headers", ST_CFG_MAP, offsetof(struct cfg, headers), NULL, "a map" },
        { "grpc", ST_CFG_SECTION, offsetof(struct cfg, grpc), .sub = inner_fields, .present = ST_CFG_PRESENT(struct cfg, has_grpc) },
        { "items", ST_CFG_LIST, offsetof(struct cfg, items), .sub = item_fields, .elem_size = sizeof(struct item) },
        ST_CFG_END,
};

static int load(const char *yaml, struct cfg *c, struct st_diag *d) {
        st_node *root = NULL;
        int r = st_tree_parse_string("test.yaml", yaml, strlen(yaml), &root, d);
        if (r < 0)
                return r;
        memset(c, 0, sizeof(*c));
        r = st_cfg_load(fields, c, root, d);
        st_node_free(root);
        return r;
}

static void defaults_apply(void **state) {
        struct st_diag d = { 0 };
        struct cfg c;
        assert_int_equal(load("{}", &c, &d), 0);
        assert_string_equal(c.name, "default-name");
        assert_false(c.flag);
        assert_int_equal(c.count, 8192);
        assert_true(c.ratio == 1.5);
        assert_int_equal(c.timeout, 200000000);
        assert_int_equal(c.size, 4u << 20);
        assert_int_equal(c.mode, 0);
        assert_false(c.has_grpc);
        assert_string_equal(c.grpc.endpoint, "127.0.0.1:4317");
        st_cfg_free(fields, &c);
        assert_int_equal(d.errors, 0);
}

static void values_overlay(void **state) {
        struct st_diag d = { 0 };
        struct cfg c;
        const char *y = "name: x\nflag: true\ncount: 10\nratio: 0.25\ntimeout: 1m30s\nsize: 512KiB\nmode: detailed\n"
                        "list: [a, b]\nheaders: { authorization: secret, x-n: 5 }\ngrpc: { endpoint: 'h:1' }\n"
                        "items:\n  - { key: k1, value: 42 }\n  - { key: k2, value: \"42\", action: delete }\n"
                        "  - { key: k3, value: 1.5 }\n  - { key: k4, value: true }\n";
        assert_int_equal(load(y, &c, &d), 0);
        assert_string_equal(c.name, "x");
        assert_true(c.flag);
        assert_int_equal(c.count, 10);
        assert_int_equal(c.timeout, 90 * INT64_C(1000000000));
        assert_int_equal(c.size, 512 * 1024);
        assert_int_equal(c.mode, 2);
        assert_int_equal(c.list.n, 2);
        assert_string_equal(c.list.v[1], "b");
        assert_int_equal(c.headers.n, 2);
        assert_string_equal(c.headers.k[0], "authorization");
        assert_string_equal(c.headers.v[1], "5");
        assert_true(c.has_grpc);
        assert_string_equal(c.grpc.endpoint, "h:1");
        assert_true(c.grpc.enabled); /* default inside a given section */
        assert_int_equal(c.items.n, 4);
        struct item *it = c.items.v;
        assert_int_equal(it[0].value.type, ST_VALUE_INT);
        assert_int_equal(it[0].value.i, 42);
        assert_int_equal(it[0].action, 2); /* upsert by default */
        assert_int_equal(it[1].value.type, ST_VALUE_STRING);
        assert_string_equal(it[1].value.s, "42");
        assert_int_equal(it[1].action, 3);
        assert_int_equal(it[2].value.type, ST_VALUE_DOUBLE);
        assert_int_equal(it[3].value.type, ST_VALUE_BOOL);
        st_cfg_free(fields, &c);
        assert_int_equal(d.errors, 0);
}

static void expect_error(const char *yaml, const char *needle) {
        struct st_diag d = { 0 };
        struct cfg c = { 0 };
        int r = load(yaml, &c, &d);
        if (r == 0 || !strstr(st_buf_cstr(&d.text), needle))
                fail_msg("expected error containing '%s' for:\n%s\ngot (%d):\n%s", needle, yaml, r, st_buf_cstr(&d.text));
        st_cfg_free(fields, &c);
        st_diag_free(&d);
}

static void errors_name_the_place(void **state) {
        expect_error("name: x\nbogus: 1\n", "test.yaml:2:1: unknown key 'bogus' (known keys: name, flag");
        expect_error("flag: maybe\n", "test.yaml:1:7: 'flag' must be true or false, not 'maybe'");
        expect_error("count: ten\n", "test.yaml:1:8: 'count' must be an integer");
        expect_error("count: 0\n", "'count' must be between 1 and 100000");
        expect_error("timeout: 5\n", "'timeout' must be a duration");
        expect_error("timeout: 5 s\n", "'timeout' must be a duration");
        expect_error("size: lots\n", "'size' must be a size");
        expect_error("mode: loud\n", "'mode' must be one of basic, normal, detailed, not 'loud'");
        expect_error("list: a\n", "'list' must be a list of strings, not a scalar");
        expect_error("list: [a, {b: c}]\n", "test.yaml:1:11: items of 'list' must be strings");
        expect_error("headers: [a]\n", "'headers' must be a map of strings");
        expect_error("grpc: { endpointt: x }\n", "test.yaml:1:9: unknown key 'endpointt'");
        expect_error("grpc: 5\n", "expected a map of settings, not a scalar");
        expect_error("items: [ { value: 1 } ]\n", "missing required key 'key'");
        expect_error("items: [ { key: a, value: [1] } ]\n", "'value' must be a string, number or bool");
        expect_error("name: [x]\n", "'name' must be a string, not a list");
        expect_error("a: b: c\n", "test.yaml:1:5: YAML syntax error");
        expect_error("name: x\nname: y\n", "test.yaml:2:1: duplicate key 'name' (first at line 1)");
        expect_error("name: *anchor\n", "aliases are not supported");
        expect_error("--- {}\n--- {}\n", "only one YAML document");
}

static void several_errors_reported_at_once(void **state) {
        struct st_diag d = { 0 };
        struct cfg c;
        assert_int_equal(load("bogus: 1\nflag: 3\ncount: x\n", &c, &d), -EINVAL);
        assert_int_equal(d.errors, 3);
        st_cfg_free(fields, &c);
        st_diag_free(&d);
}

static void env_substitution(void **state) {
        struct st_diag d = { 0 };
        struct cfg c;
        setenv("ST_TEST_NAME", "from-env", 1);
        setenv("ST_TEST_COUNT", "77", 1);
        unsetenv("ST_TEST_UNSET");
        assert_int_equal(load("name: pre-${env:ST_TEST_NAME}-post\ncount: ${ST_TEST_COUNT}\n"
                              "grpc: { endpoint: \"${ST_TEST_UNSET:-localhost:1}\" }\nheaders:\n  a: $$HOME\n  b: ${env:ST_TEST_UNSET:-}\n",
                              &c, &d),
                         0);
        assert_string_equal(c.name, "pre-from-env-post");
        assert_int_equal(c.count, 77);
        assert_string_equal(c.grpc.endpoint, "localhost:1");
        assert_string_equal(c.headers.v[0], "$HOME");
        assert_string_equal(c.headers.v[1], "");
        st_cfg_free(fields, &c);
        expect_error("name: ${ST_TEST_UNSET}\n", "test.yaml:1:7: environment variable ST_TEST_UNSET is not set");
        expect_error("name: ${ST_TEST_NAME\n", "unterminated ${");
}

static void durations_and_sizes(void **state) {
        int64_t ns;
        uint64_t b;
        assert_int_equal(st_parse_duration("0", &ns), 0);
        assert_int_equal(ns, 0);
        assert_int_equal(st_parse_duration("1h2m3s4ms", &ns), 0);
        assert_int_equal(ns, INT64_C(3723004000000));
        assert_int_equal(st_parse_duration("1.5s", &ns), 0);
        assert_int_equal(ns, 1500000000);
        assert_int_equal(st_parse_duration("250us", &ns), 0);
        assert_int_equal(ns, 250000);
        assert_int_equal(st_parse_duration("-1s", &ns), -EINVAL);
        assert_int_equal(st_parse_duration("s", &ns), -EINVAL);
        assert_int_equal(st_parse_duration("", &ns), -EINVAL);
        assert_int_equal(st_parse_size("1024", &b), 0);
        assert_int_equal(b, 1024);
        assert_int_equal(st_parse_size("4MiB", &b), 0);
        assert_int_equal(b, 4u << 20);
        assert_int_equal(st_parse_size("1GB", &b), 0);
        assert_int_equal(b, 1000000000u);
        assert_int_equal(st_parse_size("1.5KiB", &b), 0);
        assert_int_equal(b, 1536);
        assert_int_equal(st_parse_size("4 MiB", &b), 0);
        assert_int_equal(st_parse_size("4XB", &b), -EINVAL);
        assert_int_equal(st_parse_size("-1", &b), -EINVAL);
}

static void errorf_points_at_path(void **state) {
        struct st_diag d = { 0 };
        st_node *root = NULL;
        const char *y = "items:\n  - key: a\n  - key: b\n    action: upsert\n";
        assert_int_equal(st_tree_parse_string("p.yaml", y, strlen(y), &root, &d), 0);
        struct st_cfg_ctx ctx = { .diag = &d, .node = root, .at = root };
        st_cfg_errorf(&ctx, "items[1].action", "no %s", "good");
        st_cfg_errorf(&ctx, "items[1].missing", "absent");
        assert_non_null(strstr(st_buf_cstr(&d.text), "p.yaml:4:13: items[1].action: no good"));
        assert_non_null(strstr(st_buf_cstr(&d.text), "p.yaml:3:5: items[1].missing: absent"));
        st_node_free(root);
        st_diag_free(&d);
}

static void empty_and_missing_files(void **state) {
        struct st_diag d = { 0 };
        st_node *root = NULL;
        assert_int_equal(st_tree_parse_string("e.yaml", "", 0, &root, &d), 0);
        assert_int_equal(root->kind, ST_NODE_MAP);
        st_node_free(root);
        assert_true(st_tree_parse_file("/nonexistent/strata.yaml", &root, &d) < 0);
        assert_non_null(strstr(st_buf_cstr(&d.text), "/nonexistent/strata.yaml:0:0: cannot open config"));
        st_diag_free(&d);
}

/* Found by tests/fuzz/fuzz_config: a message quoting a value with a newline (a quoted or block
 * scalar) broke the "one file:line:col: message line per problem" form. */
static void diagnostics_stay_on_one_line(void **state) {
        struct st_diag d = { 0 };
        struct cfg c;
        assert_int_equal(load("mode: \"lo\\nud\\r\\x01\"\nname: [x]\n", &c, &d), -EINVAL);
        assert_int_equal(d.errors, 2);
        const char *t = st_buf_cstr(&d.text);
        assert_non_null(strstr(t, "test.yaml:1:7: 'mode' must be one of basic, normal, detailed, not 'lo\\nud\\r\\x01'\n"));
        size_t lines = 0;
        for (const char *p = t; *p; p++)
                lines += *p == '\n';
        assert_int_equal(lines, d.errors);
        st_cfg_free(fields, &c);
        st_diag_free(&d);
        /* a block scalar key: the same through the tree's own messages */
        st_node *root = NULL;
        const char *y = "? |\n  a\n  b\n: 1\n? |\n  a\n  b\n: 2\n";
        assert_int_equal(st_tree_parse_string("k.yaml", y, strlen(y), &root, &d), -EINVAL);
        assert_string_equal(st_buf_cstr(&d.text), "k.yaml:5:3: duplicate key 'a\\nb\\n' (first at line 1)\n");
        st_node_free(root);
        st_diag_free(&d);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(defaults_apply),
                cmocka_unit_test(values_overlay),
                cmocka_unit_test(errors_name_the_place),
                cmocka_unit_test(several_errors_reported_at_once),
                cmocka_unit_test(env_substitution),
                cmocka_unit_test(durations_and_sizes),
                cmocka_unit_test(errorf_points_at_path),
                cmocka_unit_test(empty_and_missing_files),
                cmocka_unit_test(diagnostics_stay_on_one_line),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
