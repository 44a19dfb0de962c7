/* The contract every factory keeps: its defaults (plus the keys it requires) validate, it can
 * be created and shut down without being started, and destroy is NULL-safe. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "clock.h"
#include "component.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"

/* Keys without a sensible default. Everything not listed must validate with {}. */
static const struct {
        enum st_kind kind;
        const char *type, *yaml;
} required[] = {
        { ST_RECEIVER, "otlp", "protocols: { grpc: { endpoint: 127.0.0.1:0 }, http: { endpoint: 127.0.0.1:0 } }" },
        { ST_PROCESSOR, "memory_limiter", "limit_mib: 512" },
        { ST_PROCESSOR, "resource", "attributes: [ { key: env, value: prod, action: upsert } ]" },
        { ST_PROCESSOR, "attributes", "actions: [ { key: env, action: delete } ]" },
        { ST_EXPORTER, "otlp", "endpoint: 127.0.0.1:4317" },
        { ST_EXPORTER, "file", "path: /tmp/strata-contract-test.jsonl" },
};

static int discard(void *data, st_batch *b) { return 0; }

static void every_factory_keeps_the_contract(void **state) {
        size_t n = 0;
        for (size_t i = 0; st_factories[i]; i++, n++) {
                const struct st_factory *f = st_factories[i];
                const char *yaml = "{}";
                for (size_t j = 0; j < sizeof(required) / sizeof(required[0]); j++)
                        if (required[j].kind == f->kind && strcmp(required[j].type, f->type) == 0)
                                yaml = required[j].yaml;

                assert_non_null(f->type);
                assert_non_null(f->create);
                assert_non_null(f->destroy);
                assert_true(f->signals != 0 && (f->signals & ~ST_SIG_ALL) == 0);
                if (f->kind != ST_RECEIVER)
                        assert_non_null(f->consume);

                struct st_diag d = { 0 };
                st_node *root = NULL;
                assert_int_equal(st_tree_parse_string("contract.yaml", yaml, strlen(yaml), &root, &d), 0);
                void *cfg = calloc(1, f->config_size ? f->config_size : 1);
                int r = st_cfg_load(f->config, cfg, root, &d);
                if (r == 0 && f->validate) {
                        struct st_cfg_ctx ctx = { .diag = &d, .node = root, .at = root };
                        f->validate(cfg, &ctx);
                }
                if (d.errors)
                        fail_msg("%s %s: default config does not validate:\n%s", st_kind_name(f->kind), f->type,
                                 st_buf_cstr(&d.text));

                struct st_component_settings set = {
                        .id = f->type, .log_name = f->type, .kind = f->kind, .signal = ST_TRACES,
                        .tel = st_tel_component(st_kind_name(f->kind), f->type),
                };
                for (int s = 0; s < ST_SIGNAL_COUNT; s++)
                        set.next[s] = (struct st_consumer) { .consume = discard };
                void *inst = NULL;
                assert_int_equal(f->create(&set, cfg, &inst), 0);
                assert_non_null(inst);
                if (f->shutdown)
                        assert_int_equal(f->shutdown(inst, st_now_ns() + ST_NS_PER_SEC), 0);
                f->destroy(inst);
                f->destroy(NULL);
                st_cfg_free(f->config, cfg);
                free(cfg);
                st_node_free(root);
                st_diag_free(&d);
        }
        assert_true(n >= 8); /* otlp receiver; batch, memory_limiter, resource, attributes; otlp, debug, file */
        st_tel_reset();
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(every_factory_keeps_the_contract),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
