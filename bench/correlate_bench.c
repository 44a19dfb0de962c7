/* correlate_bench: what the correlate processor costs per record, on the agent's real context
 * store (process table, span index), without gRPC or the kernel.
 *
 *   enrich  spans of attributed senders through the traces instance: each resource gets the
 *           process and container facts of one of P processes; each span goes into the index.
 *   join    kernel events through the logs instance (join_window 0: joined as they come):
 *           each record looks up the span active on its thread among S spans per process.
 *
 * Both run on 1 and on N threads at once (separate batches, one shared store): the hot path
 * takes per-shard locks only, so the per-thread cost should not grow with threads (on a
 * machine with as many free cores).
 *
 *   correlate_bench [--processes 10000] [--spans-per-process 20] [--threads 2] [--rounds 3]
 * last line, machine-readable:
 *   correlate enrich_ns_per_span=X enrich_ns_per_resource=X join_ns_per_event=X join_mt_ns_per_event=X */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "clock.h"
#include "component.h"
#include "config_map.h"
#include "log.h"
#include "malloc_tune.h"
#include "otlp_attr.h"
#include "process_table.h"
#include "processor_run.h"
#include "span_index.h"
#include "tree.h"

extern const struct st_factory st_processor_correlate;

#define BASE_PID 2000000u
#define SEC UINT64_C(1000000000)
#define RES_PER_BATCH 100
#define ITEMS_PER_RES 10

static size_t n_procs = 10000, spans_per_proc = 20, n_threads = 2, rounds = 3;
static uint64_t t0;

static atomic_size_t consumed, joined;
/* Counts what came out, and the kernel events that did get a trace: a bench whose events all
 * miss measures nothing. */
static int count_consume(void *data, st_batch *b) {
        (void) data;
        atomic_fetch_add(&consumed, b->items);
        if (b->signal != ST_LOGS)
                return 0;
        const st_logs_req *req = (const st_logs_req *) st_batch_req(b);
        size_t n = 0;
        for (size_t i = 0; i < req->n_resource_logs; i++)
                for (size_t k = 0; k < req->resource_logs[i]->n_scope_logs; k++) {
                        const st_scope_logs *sl = req->resource_logs[i]->scope_logs[k];
                        for (size_t j = 0; j < sl->n_log_records; j++)
                                n += sl->log_records[j]->trace_id.len == 16;
                }
        atomic_fetch_add(&joined, n);
        return 0;
}

static void *load(const char *yaml, enum st_signal s, void **ret_cfg) {
        struct st_diag d = { 0 };
        st_node *root = NULL;
        void *cfg = calloc(1, st_processor_correlate.config_size), *inst;
        if (st_tree_parse_string("bench.yaml", yaml, strlen(yaml), &root, &d) < 0 ||
            st_cfg_load(st_processor_correlate.config, cfg, root, &d) < 0) {
                fprintf(stderr, "config: %s\n", st_buf_cstr(&d.text));
                exit(2);
        }
        st_node_free(root);
        struct st_component_settings set = { .id = "correlate", .log_name = "correlate", .kind = ST_PROCESSOR, .signal = s };
        set.next[s] = (struct st_consumer) { .consume = count_consume };
        if (st_processor_correlate.create(&set, cfg, &inst) < 0) {
                fprintf(stderr, "create failed\n");
                exit(2);
        }
        *ret_cfg = cfg;
        return inst;
}

static st_resource *resource(st_arena *a, uint32_t pid, const char *method) {
        st_resource *r = st_arena_zalloc(a, sizeof(*r));
        opentelemetry__proto__resource__v1__resource__init(r);
        r->attributes = st_arena_zalloc(a, 4 * sizeof(*r->attributes));
        r->attributes[r->n_attributes++] = st_kv_static(a, "service.name", "bench");
        r->attributes[r->n_attributes++] = st_kv_int(a, "process.pid", pid);
        r->attributes[r->n_attributes++] = st_kv_static(a, "strata.attribution.method", method);
        return r;
}

static st_batch *traces_batch(uint64_t *seed) {
        st_batch *b;
        st_batch_new(ST_TRACES, &b);
        b->pid_source = ST_PIDS_OBSERVED; /* as the OTLP receiver marks a Unix socket sender's */
        st_arena *a = &b->arena;
        st_traces_req *req = (st_traces_req *) b->req;
        req->resource_spans = st_arena_zalloc(a, RES_PER_BATCH * sizeof(void *));
        for (size_t i = 0; i < RES_PER_BATCH; i++) {
                st_resource_spans *rs = st_arena_zalloc(a, sizeof(*rs));
                st_scope_spans *ss = st_arena_zalloc(a, sizeof(*ss));
                opentelemetry__proto__trace__v1__resource_spans__init(rs);
                opentelemetry__proto__trace__v1__scope_spans__init(ss);
                uint32_t pid = BASE_PID + pr_rnd(seed) % (uint32_t) n_procs;
                rs->resource = resource(a, pid, "unix_peercred");
                ss->spans = st_arena_zalloc(a, ITEMS_PER_RES * sizeof(void *));
                for (size_t j = 0; j < ITEMS_PER_RES; j++) {
                        st_span *sp = st_arena_zalloc(a, sizeof(*sp));
                        opentelemetry__proto__trace__v1__span__init(sp);
                        uint8_t *ids = st_arena_alloc(a, 24);
                        uint64_t r1 = pr_rnd(seed), r2 = pr_rnd(seed);
                        memcpy(ids, &r1, 8);
                        memcpy(ids + 8, &r2, 8);
                        r1 = ((uint64_t) pr_rnd(seed) << 32) | pr_rnd(seed);
                        memcpy(ids + 16, &r1, 8);
                        sp->trace_id = (ProtobufCBinaryData) { 16, ids };
                        sp->span_id = (ProtobufCBinaryData) { 8, ids + 16 };
                        sp->name = (char *) "op";
                        sp->start_time_unix_nano = t0 + 20 * SEC + pr_rnd(seed) % (10 * SEC);
                        sp->end_time_unix_nano = sp->start_time_unix_nano + 1000000;
                        ss->spans[ss->n_spans++] = sp;
                }
                rs->scope_spans = st_arena_zalloc(a, sizeof(void *));
                rs->scope_spans[rs->n_scope_spans++] = ss;
                req->resource_spans[req->n_resource_spans++] = rs;
        }
        st_batch_recount(b);
        return b;
}

static st_batch *logs_batch(uint64_t *seed) {
        st_batch *b;
        st_batch_new(ST_LOGS, &b);
        b->pid_source = ST_PIDS_KERNEL; /* as the ebpf receiver marks its records */
        st_arena *a = &b->arena;
        st_logs_req *req = (st_logs_req *) b->req;
        req->resource_logs = st_arena_zalloc(a, RES_PER_BATCH * sizeof(void *));
        for (size_t i = 0; i < RES_PER_BATCH; i++) {
                st_resource_logs *rl = st_arena_zalloc(a, sizeof(*rl));
                st_scope_logs *sl = st_arena_zalloc(a, sizeof(*sl));
                opentelemetry__proto__logs__v1__resource_logs__init(rl);
                opentelemetry__proto__logs__v1__scope_logs__init(sl);
                uint32_t pid = BASE_PID + pr_rnd(seed) % (uint32_t) n_procs;
                rl->resource = resource(a, pid, "kernel");
                sl->log_records = st_arena_zalloc(a, ITEMS_PER_RES * sizeof(void *));
                for (size_t j = 0; j < ITEMS_PER_RES; j++) {
                        st_log_record *lr = st_arena_zalloc(a, sizeof(*lr));
                        opentelemetry__proto__logs__v1__log_record__init(lr);
                        lr->time_unix_nano = t0 + pr_rnd(seed) % (10 * SEC);
                        lr->attributes = st_arena_zalloc(a, 2 * sizeof(void *));
                        lr->attributes[lr->n_attributes++] = st_kv_static(a, "event.name", "network.connect");
                        lr->attributes[lr->n_attributes++] = st_kv_int(a, "thread.id", pid + (pr_rnd(seed) & 1));
                        sl->log_records[sl->n_log_records++] = lr;
                }
                rl->scope_logs = st_arena_zalloc(a, sizeof(void *));
                rl->scope_logs[rl->n_scope_logs++] = sl;
                req->resource_logs[req->n_resource_logs++] = rl;
        }
        st_batch_recount(b);
        return b;
}

/* --- runs ---------------------------------------------------------------------------------- */

/* ns per item, over `threads` threads each consuming its own 100 fresh batches. */
static double measure(void *inst, st_batch *(*make)(uint64_t *), size_t threads) {
        return pr_measure(&st_processor_correlate, inst, make, threads, 100, RES_PER_BATCH * ITEMS_PER_RES, (uint64_t) st_now_ns());
}

static void populate(void) {
        struct st_proctab *pt = st_proctab_global();
        struct st_spanidx *x = st_spanidx_global();
        /* the spans are a minute old: kept for the run (expiry is not what is measured) */
        st_spanidx_keep_at_least(x, UINT64_C(600) * SEC);
        char exe[64], cmd[128];
        for (size_t i = 0; i < n_procs; i++) {
                uint32_t pid = BASE_PID + (uint32_t) i;
                snprintf(exe, sizeof(exe), "/usr/bin/app-%zu", i % 50);
                snprintf(cmd, sizeof(cmd), "/usr/bin/app-%zu --port %zu --config /etc/app/%zu.yaml", i % 50, 8000 + i, i);
                struct st_process p = { .pid = pid, .ppid = 1, .start_ns = 1000 + i, .uid = 1000, .exe = exe, .cmdline = cmd };
                snprintf(p.comm, sizeof(p.comm), "app-%zu", i % 50);
                if (i % 2) {
                        snprintf(p.container.id, sizeof(p.container.id), "%064zx", i);
                        p.container.runtime = "containerd";
                        snprintf(p.container.pod_uid, sizeof(p.container.pod_uid), "%08x-1c2f-4e6a-9b8d-0a1b2c3d4e5f", (unsigned) i);
                }
                st_proctab_exec(pt, &p);
                /* spans over [t0, t0+10s): half with their thread known, nested in pairs */
                for (size_t s = 0; s < spans_per_proc; s++) {
                        struct st_span_ref ref;
                        memset(&ref, (int) s, sizeof(ref));
                        memcpy(ref.span_id, &pid, 4);
                        uint64_t start = t0 + s * (10 * SEC / spans_per_proc);
                        st_spanidx_add(x, pid, s % 2 ? pid : 0, start, start + 10 * SEC / spans_per_proc, &ref);
                }
        }
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "processes", required_argument, NULL, 'p' },
                { "spans-per-process", required_argument, NULL, 's' },
                { "threads", required_argument, NULL, 't' },
                { "rounds", required_argument, NULL, 'r' },
                { 0 },
        };
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'p': n_procs = strtoul(optarg, NULL, 10); break;
                case 's': spans_per_proc = strtoul(optarg, NULL, 10); break;
                case 't': n_threads = strtoul(optarg, NULL, 10); break;
                case 'r': rounds = strtoul(optarg, NULL, 10); break;
                default:
                        fprintf(stderr, "usage: correlate_bench [--processes N] [--spans-per-process N] [--threads N] [--rounds N]\n");
                        return 2;
                }
        }
        if (!n_procs || n_threads < 1 || n_threads > 16) {
                fprintf(stderr, "correlate_bench: processes >= 1, 1 <= threads <= 16\n");
                return 2;
        }
        st_log_setup(ST_LOG_WARN, ST_LOG_TEXT);
        st_malloc_configure(); /* as the agent does: freed batches do not turn into page faults */
        t0 = (uint64_t) st_wall_ns() - 60 * SEC;
        populate();
        void *cfg_t, *cfg_l;
        void *tr = load("{}", ST_TRACES, &cfg_t);
        void *lg = load("join_window: 0s\n", ST_LOGS, &cfg_l); /* joined in consume: the cost, not the wait */
        printf("context store: %zu processes (half in containers), %zu spans (%zu per process)\n",
               st_proctab_size(st_proctab_global()), st_spanidx_size(st_spanidx_global()), spans_per_proc);

        double enrich = 1e30, join1 = 1e30, joinN = 1e30;
        /* joins first: indexing the spans of the enrichment runs fills the store (max_spans)
         * and evicts the populated spans the events are meant to find */
        for (size_t r = 0; r < rounds; r++) {
                double j = measure(lg, logs_batch, 1);
                double jn = measure(lg, logs_batch, n_threads);
                join1 = j < join1 ? j : join1;
                joinN = jn < joinN ? jn : joinN;
        }
        for (size_t r = 0; r < rounds; r++) {
                double e = measure(tr, traces_batch, 1);
                enrich = e < enrich ? e : enrich;
        }
        printf("enrich+index  %8.0f ns/span   (%8.0f ns per resource of %d spans)\n", enrich, enrich * ITEMS_PER_RES, ITEMS_PER_RES);
        printf("join          %8.0f ns/event  one thread: 100k events/s cost %.1f%% of a core\n", join1, join1 * 1e5 / 1e9 * 100);
        printf("join x%zu      %8.0f ns/event  per thread, %zu threads at once on one store\n", n_threads, joinN, n_threads);
        size_t events = (size_t) rounds * (n_threads + 1) * 100 * RES_PER_BATCH * ITEMS_PER_RES;
        double hit = (double) atomic_load(&joined) / (double) events;
        printf("joined        %8.1f%% of the events got a span's trace\n", hit * 100);
        printf("correlate enrich_ns_per_span=%.0f enrich_ns_per_resource=%.0f join_ns_per_event=%.0f join_mt_ns_per_event=%.0f "
               "joined_ratio=%.3f\n",
               enrich, enrich * ITEMS_PER_RES, join1, joinN, hit);
        int rc = hit > 0.5 ? 0 : 1; /* the store covers every event's time: most must join */
        if (rc)
                fprintf(stderr, "correlate_bench: too few events joined: the figures above are not a join's cost\n");
        st_processor_correlate.shutdown(tr, 0);
        st_processor_correlate.shutdown(lg, 0);
        st_processor_correlate.destroy(tr);
        st_processor_correlate.destroy(lg);
        st_cfg_free(st_processor_correlate.config, cfg_t);
        st_cfg_free(st_processor_correlate.config, cfg_l);
        free(cfg_t);
        free(cfg_l);
        return rc;
}
