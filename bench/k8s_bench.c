/* k8s_bench: what the pod cache costs in memory per pod, and what k8sattributes costs per
 * record, with N pods of the real v1 shape (parsed by the receiver's own code).
 *
 *   k8s_bench [--pods 10000] [--threads 2]
 * last line, machine-readable:
 *   k8s pods=N bytes_per_pod=X rss_per_pod=X lookup_ns_per_resource=X lookup_mt_ns_per_resource=X */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "clock.h"
#include "component.h"
#include "config_map.h"
#include "log.h"
#include "malloc_tune.h"
#include "otlp_attr.h"
#include "pod_cache.h"
#include "processor_run.h"
#include "receivers/k8s/k8s_pod.h"
#include "tree.h"

extern const struct st_factory st_processor_k8sattributes;

#define RES_PER_BATCH 100
#define SPANS_PER_RES 10

static size_t n_pods = 10000, n_threads = 2;

static long rss_kib(void) {
        long pages = 0, rss = 0;
        FILE *f = fopen("/proc/self/statm", "re");
        if (f) {
                if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
                        rss = 0;
                fclose(f);
        }
        return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void container_id(size_t i, int k, char out[65]) { snprintf(out, 65, "%016zx%02d%046d", i, k, 0); }

/* A pod as the API serves it: two containers, labels and annotations, an owner. */
static char *pod_json(size_t i) {
        char c0[65], c1[65], *s;
        container_id(i, 0, c0);
        container_id(i, 1, c1);
        if (asprintf(&s,
                     "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"svc-%zu-7d4b9c8f5-x%05zu\",\"namespace\":\"team-%zu\","
                     "\"uid\":\"%08zx-1c2f-4e6a-9b8d-0a1b2c3d4e5f\",\"resourceVersion\":\"%zu\",\"labels\":{\"app.kubernetes.io/name\":\"svc-%zu\","
                     "\"app.kubernetes.io/version\":\"1.%zu\",\"pod-template-hash\":\"7d4b9c8f5\",\"tier\":\"backend\",\"team\":\"t%zu\"},"
                     "\"annotations\":{\"prometheus.io/scrape\":\"true\",\"kubectl.kubernetes.io/restartedAt\":\"2026-11-30T10:00:00Z\"},"
                     "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"svc-%zu-7d4b9c8f5\",\"uid\":\"o\",\"controller\":true}]},"
                     "\"spec\":{\"nodeName\":\"node-1\",\"containers\":[{\"name\":\"app\",\"image\":\"registry.example.com/team-%zu/svc-%zu:1.%zu.0\"},"
                     "{\"name\":\"envoy\",\"image\":\"docker.io/envoyproxy/envoy:v1.29.1\"}]},"
                     "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.%zu.%zu.%zu\",\"podIPs\":[{\"ip\":\"10.%zu.%zu.%zu\"}],\"startTime\":\"2026-11-30T10:00:01Z\","
                     "\"containerStatuses\":[{\"name\":\"app\",\"containerID\":\"containerd://%s\",\"image\":\"registry.example.com/team-%zu/svc-%zu:1.%zu.0\",\"restartCount\":0},"
                     "{\"name\":\"envoy\",\"containerID\":\"containerd://%s\",\"image\":\"docker.io/envoyproxy/envoy:v1.29.1\",\"restartCount\":0}]}}",
                     i % 300, i, i % 20, i, i, i % 300, i % 7, i % 20, i % 300, i % 20, i % 300, i % 7, (i >> 16) & 255,
                     (i >> 8) & 255, i & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255, c0, i % 20, i % 300, i % 7, c1) < 0)
                return NULL;
        return s;
}

static int discard(void *data, st_batch *b) {
        (void) data, (void) b;
        return 0;
}

static st_batch *batch(uint64_t *seed) {
        st_batch *b;
        st_batch_new(ST_TRACES, &b);
        st_arena *a = &b->arena;
        st_traces_req *req = (st_traces_req *) b->req;
        req->resource_spans = st_arena_zalloc(a, RES_PER_BATCH * sizeof(void *));
        for (size_t i = 0; i < RES_PER_BATCH; i++) {
                st_resource_spans *rs = st_arena_zalloc(a, sizeof(*rs));
                st_resource *res = st_arena_zalloc(a, sizeof(*res));
                st_scope_spans *ss = st_arena_zalloc(a, sizeof(*ss));
                opentelemetry__proto__trace__v1__resource_spans__init(rs);
                opentelemetry__proto__resource__v1__resource__init(res);
                opentelemetry__proto__trace__v1__scope_spans__init(ss);
                char *cid = st_arena_alloc(a, 65);
                container_id(pr_rnd(seed) % n_pods, (int) (pr_rnd(seed) & 1), cid);
                res->attributes = st_arena_zalloc(a, sizeof(void *));
                res->attributes[res->n_attributes++] = st_kv_static(a, "container.id", cid);
                rs->resource = res;
                ss->spans = st_arena_zalloc(a, SPANS_PER_RES * sizeof(void *));
                for (size_t j = 0; j < SPANS_PER_RES; j++) {
                        st_span *sp = st_arena_zalloc(a, sizeof(*sp));
                        opentelemetry__proto__trace__v1__span__init(sp);
                        sp->name = (char *) "op";
                        ss->spans[ss->n_spans++] = sp;
                }
                rs->scope_spans = st_arena_zalloc(a, sizeof(void *));
                rs->scope_spans[rs->n_scope_spans++] = ss;
                req->resource_spans[req->n_resource_spans++] = rs;
        }
        st_batch_recount(b);
        return b;
}

static double measure(void *inst, size_t threads) {
        return pr_measure(&st_processor_k8sattributes, inst, batch, threads, 200, RES_PER_BATCH, 88172645463325252ull);
}

int main(int argc, char **argv) {
        static const struct option opts[] = { { "pods", required_argument, NULL, 'p' }, { "threads", required_argument, NULL, 't' }, { 0 } };
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                if (c == 'p')
                        n_pods = strtoul(optarg, NULL, 10);
                else if (c == 't')
                        n_threads = strtoul(optarg, NULL, 10);
                else {
                        fprintf(stderr, "usage: k8s_bench [--pods N] [--threads N]\n");
                        return 2;
                }
        }
        if (!n_pods || !n_threads || n_threads > 16)
                return 2;
        st_log_setup(ST_LOG_WARN, ST_LOG_TEXT);
        st_malloc_configure();
        char *labels[] = { "app.kubernetes.io/name", "app.kubernetes.io/version" };
        char *annotations[] = { "prometheus.io/scrape" };
        struct k8s_extract x = { labels, 2, annotations, 1 };
        struct st_pod **pods = calloc(n_pods, sizeof(*pods));
        char err[256];
        for (size_t i = 0; i < n_pods; i++) {
                char *js = pod_json(i);
                json_object *o = json_tokener_parse(js);
                if (!o || k8s_pod_from_json(o, &x, &pods[i], err, sizeof(err)) < 0) {
                        fprintf(stderr, "pod %zu: %s\n", i, err);
                        return 1;
                }
                json_object_put(o);
                free(js);
        }
        long before = rss_kib();
        struct st_pod_cache *cache = st_pod_cache_global();
        st_pod_cache_replace(cache, pods, n_pods);
        free(pods);
        long after = rss_kib();
        double bytes = (double) st_pod_cache_bytes(cache) / (double) n_pods;
        /* RSS: the pods were allocated before `before`; the cache adds its nodes and indexes */
        printf("pod cache: %zu pods, %.0f bytes per pod (strings, structs, allocator overhead); the cache's own nodes "
               "and indexes add %.0f bytes per pod of RSS\n",
               st_pod_cache_size(cache), bytes, (double) (after - before) * 1024 / (double) n_pods);

        struct st_diag d = { 0 };
        st_node *root = NULL;
        void *cfg = calloc(1, st_processor_k8sattributes.config_size), *inst;
        st_tree_parse_string("bench.yaml", "{}", 2, &root, &d);
        st_cfg_load(st_processor_k8sattributes.config, cfg, root, &d);
        st_node_free(root);
        struct st_component_settings set = { .id = "k8sattributes", .log_name = "k8sattributes", .kind = ST_PROCESSOR, .signal = ST_TRACES };
        set.next[ST_TRACES] = (struct st_consumer) { .consume = discard };
        st_processor_k8sattributes.create(&set, cfg, &inst);
        double one = 1e30, many = 1e30;
        for (int r = 0; r < 3; r++) {
                double a = measure(inst, 1), b = measure(inst, n_threads);
                one = a < one ? a : one;
                many = b < many ? b : many;
        }
        printf("k8sattributes  %6.0f ns per resource (by container.id, 15 attributes added)\n", one);
        printf("k8sattributes  %6.0f ns per resource per thread, %zu threads at once\n", many, n_threads);
        printf("k8s pods=%zu bytes_per_pod=%.0f rss_per_pod=%.0f lookup_ns_per_resource=%.0f lookup_mt_ns_per_resource=%.0f\n",
               n_pods, bytes, (double) (after - before) * 1024 / (double) n_pods, one, many);
        st_processor_k8sattributes.destroy(inst);
        st_cfg_free(st_processor_k8sattributes.config, cfg);
        free(cfg);
        return 0;
}
