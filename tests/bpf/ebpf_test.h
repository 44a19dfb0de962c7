/* What the kernel tests share: the ebpf receiver wired to a capturing consumer, its metrics,
 * and a walk over the log records it produced. */
#pragma once
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>

#include "batch.h"
#include "component.h"
#include "config_map.h"
#include "log.h"
#include "telemetry.h"
#include "tree.h"
#include "../unit/processor_test.h"

extern const struct st_factory st_receiver_ebpf;

#pragma GCC diagnostic ignored "-Wunused-parameter"

/* Whether the running kernel has this function (a kfunc: bpf_rdonly_cast) in its BTF: what
 * decides whether the tp+cast programs load, backports included. */
static inline bool kernel_has_func(const char *name) {
        struct btf *btf = btf__load_vmlinux_btf();
        if (!btf)
                return false;
        bool has = btf__find_by_name_kind(btf, name, BTF_KIND_FUNC) >= 0;
        btf__free(btf);
        return has;
}

/* Whether a BPF program of this name is loaded in the kernel now: which variant of a hook the
 * receiver chose (names are unique to strata's programs, and tests run one receiver at a
 * time). */
static inline bool prog_loaded(const char *name) {
        __u32 id = 0;
        while (bpf_prog_get_next_id(id, &id) == 0) {
                int fd = bpf_prog_get_fd_by_id(id);
                if (fd < 0)
                        continue;
                struct bpf_prog_info info = { 0 };
                __u32 len = sizeof(info);
                bool same = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && strcmp(info.name, name) == 0;
                close(fd);
                if (same)
                        return true;
        }
        return false;
}

/* Loading BPF needs root (CAP_BPF, CAP_PERFMON): without it the tests say so and skip. */
#define REQUIRE_ROOT() do { if (geteuid() != 0) skip(); } while (0)
static inline void announce_skips(const char *name) {
        if (geteuid() != 0)
                print_message("%s: not root: the tests that load BPF programs are SKIPPED (run the tests as root)\n", name);
}

/* ---- the receiver, wired to a capture ----------------------------------------------------- */

/* The receiver, wired to h->cap for logs (through `logs` when given: a consumer that wraps
 * capture_consume) and, when metrics is given, to it for metrics. */
static inline void rx_start_with(struct harness *h, const char *yaml, int (*logs)(void *, st_batch *),
                                 struct capture *metrics) {
        harness_init(h, &st_receiver_ebpf, ST_LOGS, yaml);
        h->set.kind = ST_RECEIVER;
        if (logs)
                h->set.next[ST_LOGS].consume = logs;
        if (metrics) {
                capture_init(metrics);
                h->set.next[ST_METRICS] = (struct st_consumer) { .consume = capture_consume, .data = metrics };
        }
        /* create() took the settings by value: create again with these */
        h->f->destroy(h->inst);
        assert_int_equal(h->f->create(&h->set, h->cfg, &h->inst), 0);
        assert_int_equal(h->f->start(h->inst), 0);
}

static inline void rx_start_metrics(struct harness *h, const char *yaml, struct capture *metrics) {
        rx_start_with(h, yaml, NULL, metrics);
}

static inline void rx_start(struct harness *h, const char *yaml) { rx_start_metrics(h, yaml, NULL); }

static inline void rx_stop(struct harness *h) {
        assert_int_equal(h->f->shutdown(h->inst, INT64_MAX), 0);
}

static inline int64_t metric(struct harness *h, const char *name) {
        for (struct st_tel_metric *m = h->tel.metrics; m; m = m->next)
                if (strcmp(m->name, name) == 0)
                        return atomic_load(&m->value);
        fail_msg("no metric %s", name);
        return -1;
}

static inline void rx_free(struct harness *h) {
        while (h->tel.metrics) {
                struct st_tel_metric *m = h->tel.metrics->next;
                free(h->tel.metrics->name);
                free(h->tel.metrics->help);
                free(h->tel.metrics);
                h->tel.metrics = m;
        }
        harness_free(h);
}

/* ---- what came out --------------------------------------------------------------------------- */

struct rec {
        const st_key_value *const *res;
        size_t n_res;
        const st_log_record *lr;
};

typedef void (*rec_fn)(const struct rec *r, void *ctx);

static inline void each_record(struct harness *h, rec_fn fn, void *ctx) {
        for (size_t i = 0; i < h->cap.n; i++) {
                const st_logs_req *req = (const st_logs_req *) st_batch_req(h->cap.v[i]);
                assert_non_null(req);
                for (size_t a = 0; a < req->n_resource_logs; a++) {
                        const st_resource_logs *rl = req->resource_logs[a];
                        for (size_t b = 0; b < rl->n_scope_logs; b++)
                                for (size_t c = 0; c < rl->scope_logs[b]->n_log_records; c++) {
                                        struct rec r = { (const st_key_value *const *) rl->resource->attributes,
                                                         rl->resource->n_attributes, rl->scope_logs[b]->log_records[c] };
                                        fn(&r, ctx);
                                }
                }
        }
}

static inline int64_t attr_int(const st_log_record *lr, const char *key, int64_t def) {
        const st_any_value *v = attr_get(lr->attributes, lr->n_attributes, key);
        return v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE ? v->int_value : def;
}

static inline const char *attr_str(const st_log_record *lr, const char *key) {
        const st_any_value *v = attr_get(lr->attributes, lr->n_attributes, key);
        return v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE ? v->string_value : NULL;
}

