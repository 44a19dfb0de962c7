/* Kubernetes: v1 Pod objects of the real shape → stripped pods (and refusals of what is not a
 * pod), the pod cache (put, replace after a relist, delete, the three lookups), and the
 * k8sattributes processor's association rules. */
#include <errno.h>
#include <unistd.h>

#include "processor_test.h"
#include "pod_cache.h"
#include "process_table.h"
#include "receivers/k8s/k8s_kubeconfig.h"
#include "receivers/k8s/k8s_pod.h"

extern const struct st_factory st_processor_k8sattributes;

#define CID "3f4f1c1e4a6b5c2d8e7f90a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6"
#define CID2 "9d2c1e0f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d"

/* A pod of a Deployment, as `kubectl get pod -o json` shows one (fields we do not read
 * included, so that they are seen to be skipped). */
static const char *const DEPLOYMENT_POD =
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-7d4b9c8f5-x2kq9\",\"generateName\":\"web-7d4b9c8f5-\","
        "\"namespace\":\"shop\",\"uid\":\"5d4b3a7e-1c2f-4e6a-9b8d-0a1b2c3d4e5f\",\"resourceVersion\":\"1042\","
        "\"creationTimestamp\":\"2026-11-30T10:00:00Z\",\"labels\":{\"app\":\"web\",\"pod-template-hash\":\"7d4b9c8f5\",\"tier\":\"front\"},"
        "\"annotations\":{\"team\":\"payments\",\"kubectl.kubernetes.io/restartedAt\":\"x\"},"
        "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"web-7d4b9c8f5\",\"uid\":\"r1\","
        "\"controller\":true,\"blockOwnerDeletion\":true}]},"
        "\"spec\":{\"nodeName\":\"node-1\",\"containers\":[{\"name\":\"app\",\"image\":\"registry.local:5000/shop/web:1.4.2\","
        "\"ports\":[{\"containerPort\":8080}]},{\"name\":\"envoy\",\"image\":\"envoyproxy/envoy:v1.29\"}],"
        "\"initContainers\":[{\"name\":\"migrate\",\"image\":\"shop/migrate:1\"}],\"serviceAccountName\":\"web\"},"
        "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.244.1.17\",\"podIPs\":[{\"ip\":\"10.244.1.17\"},{\"ip\":\"fd00::17\"}],"
        "\"startTime\":\"2026-11-30T10:00:01Z\",\"hostIP\":\"192.168.1.10\","
        "\"initContainerStatuses\":[{\"name\":\"migrate\",\"containerID\":\"containerd://" CID2 "\",\"image\":\"docker.io/shop/migrate:1\","
        "\"restartCount\":0,\"ready\":true,\"state\":{\"terminated\":{\"exitCode\":0}}}],"
        "\"containerStatuses\":[{\"name\":\"app\",\"containerID\":\"containerd://" CID "\",\"image\":\"registry.local:5000/shop/web:1.4.2\","
        "\"imageID\":\"sha256:abc\",\"restartCount\":3,\"ready\":true,\"started\":true,\"state\":{\"running\":{}}},"
        "{\"name\":\"envoy\",\"image\":\"docker.io/envoyproxy/envoy:v1.29\",\"restartCount\":0,\"ready\":false,"
        "\"state\":{\"waiting\":{\"reason\":\"ContainerCreating\"}}}]}}";

static json_object *parse(const char *s) {
        json_object *o = json_tokener_parse(s);
        assert_non_null(o);
        return o;
}

static const struct st_pod_container *container(const struct st_pod *p, const char *name) {
        for (size_t i = 0; i < p->n_containers; i++)
                if (strcmp(p->containers[i].name, name) == 0)
                        return &p->containers[i];
        fail_msg("no container %s", name);
        return NULL;
}

static char *labels_wanted[] = { "app", "missing" };
static char *annotations_wanted[] = { "team" };
static const struct k8s_extract X = { labels_wanted, 2, annotations_wanted, 1 };

static void test_pod_of_deployment(void **state) {
        (void) state;
        char err[256];
        struct st_pod *p;
        json_object *o = parse(DEPLOYMENT_POD);
        assert_int_equal(k8s_pod_from_json(o, &X, &p, err, sizeof(err)), 0);
        json_object_put(o);
        assert_string_equal(p->uid, "5d4b3a7e-1c2f-4e6a-9b8d-0a1b2c3d4e5f");
        assert_string_equal(p->name, "web-7d4b9c8f5-x2kq9");
        assert_string_equal(p->namespace_, "shop");
        assert_string_equal(p->node, "node-1");
        assert_string_equal(p->start_time, "2026-11-30T10:00:01Z");
        assert_string_equal(p->ips[0], "10.244.1.17");
        assert_string_equal(p->ips[1], "fd00::17");
        assert_false(p->host_network);
        assert_string_equal(p->owner_kind, "ReplicaSet");
        assert_string_equal(p->replicaset, "web-7d4b9c8f5");
        assert_string_equal(p->deployment, "web");
        assert_null(p->statefulset);
        assert_int_equal(p->n_labels, 1); /* "missing" is not there; "tier" not asked for */
        assert_string_equal(p->labels[0].key, "app");
        assert_string_equal(p->labels[0].value, "web");
        assert_int_equal(p->n_annotations, 1);
        assert_string_equal(p->annotations[0].value, "payments");
        assert_int_equal(p->n_containers, 3);
        const struct st_pod_container *app = container(p, "app"), *envoy = container(p, "envoy");
        assert_string_equal(app->id, CID);
        assert_int_equal(app->restarts, 3);
        assert_string_equal(envoy->id, ""); /* not started yet */
        assert_string_equal(envoy->image, "docker.io/envoyproxy/envoy:v1.29");
        assert_string_equal(container(p, "migrate")->id, CID2);
        assert_true(p->bytes > sizeof(*p) && p->bytes < 4096);
        st_pod_free(p);
}

static void test_workload_names(void **state) {
        (void) state;
        char *s;
        assert_non_null(s = k8s_deployment_of_replicaset("web-7d4b9c8f5", "7d4b9c8f5"));
        assert_string_equal(s, "web");
        free(s);
        assert_non_null(s = k8s_deployment_of_replicaset("my-api-v2-6b8c9d7f4", NULL)); /* no label: by its alphabet */
        assert_string_equal(s, "my-api-v2");
        free(s);
        assert_null(k8s_deployment_of_replicaset("standalone-rs", NULL)); /* "rs" is no hash */
        assert_null(k8s_deployment_of_replicaset("web-abc", "7d4b9c8f5"));
        assert_non_null(s = k8s_cronjob_of_job("backup-28930260"));
        assert_string_equal(s, "backup");
        free(s);
        assert_null(k8s_cronjob_of_job("migrate-once"));

        /* a StatefulSet pod on the host's network; a Job of a CronJob */
        char err[256];
        struct st_pod *p;
        json_object *o = parse("{\"metadata\":{\"name\":\"db-0\",\"namespace\":\"d\",\"uid\":\"u-db0\","
                               "\"ownerReferences\":[{\"kind\":\"StatefulSet\",\"name\":\"db\",\"controller\":true}]},"
                               "\"spec\":{\"hostNetwork\":true,\"containers\":[{\"name\":\"pg\",\"image\":\"postgres:16\"}]},"
                               "\"status\":{\"podIP\":\"192.168.1.10\"}}");
        assert_int_equal(k8s_pod_from_json(o, &X, &p, err, sizeof(err)), 0);
        json_object_put(o);
        assert_string_equal(p->statefulset, "db");
        assert_true(p->host_network);
        assert_string_equal(p->ips[0], "192.168.1.10");
        st_pod_free(p);
        o = parse("{\"metadata\":{\"name\":\"backup-28930260-abcde\",\"namespace\":\"ops\",\"uid\":\"u-job\","
                  "\"ownerReferences\":[{\"kind\":\"Job\",\"name\":\"backup-28930260\",\"controller\":true}]}}");
        assert_int_equal(k8s_pod_from_json(o, &X, &p, err, sizeof(err)), 0);
        json_object_put(o);
        assert_string_equal(p->job, "backup-28930260");
        assert_string_equal(p->cronjob, "backup");
        st_pod_free(p);
}

/* What is not a pod of the expected shape is refused with the path of the problem. */
static void test_bad_pods(void **state) {
        (void) state;
        static const struct {
                const char *json, *needle;
        } cases[] = {
                { "[]", "expected object" },
                { "{\"spec\":{}}", "metadata: missing" },
                { "{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"}}", "metadata.uid: missing" },
                { "{\"metadata\":{\"uid\":7,\"name\":\"a\",\"namespace\":\"n\"}}", "metadata.uid: expected string, got int" },
                { "{\"metadata\":{\"uid\":\"u\",\"name\":\"a\",\"namespace\":\"n\",\"labels\":[1]}}", "metadata.labels: expected object" },
                { "{\"metadata\":{\"uid\":\"u\",\"name\":\"a\",\"namespace\":\"n\",\"labels\":{\"app\":5}}}", "metadata.labels.app: expected string" },
                { "{\"metadata\":{\"uid\":\"u\",\"name\":\"a\",\"namespace\":\"n\"},\"spec\":{\"containers\":{}}}", "spec.containers: expected array" },
                { "{\"metadata\":{\"uid\":\"u\",\"name\":\"a\",\"namespace\":\"n\"},\"spec\":{\"containers\":[\"x\"]}}", "spec.containers[0]: expected object" },
                { "{\"metadata\":{\"uid\":\"u\",\"name\":\"a\",\"namespace\":\"n\"},\"status\":{\"containerStatuses\":[{\"name\":\"c\",\"restartCount\":\"3\"}]}}",
                  "restartCount: expected int" },
                { "{\"metadata\":{\"uid\":\"u\",\"name\":\"a\",\"namespace\":\"n\"},\"status\":{\"podIPs\":[{\"ip\":1}]}}", "status.podIPs[].ip" },
                { "{\"metadata\":{\"uid\":\"u\",\"name\":\"a\",\"namespace\":\"n\",\"ownerReferences\":[{\"kind\":\"ReplicaSet\"}]}}",
                  "ownerReferences[].name: missing" },
                { "{\"metadata\":{\"uid\":\"u\",\"name\":\"a\",\"namespace\":\"n\"},\"spec\":{\"hostNetwork\":\"yes\"}}", "spec.hostNetwork: expected boolean" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char err[256] = "";
                struct st_pod *p = NULL;
                json_object *o = parse(cases[i].json);
                int r = k8s_pod_from_json(o, &X, &p, err, sizeof(err));
                json_object_put(o);
                if (r != -EBADMSG || !strstr(err, cases[i].needle))
                        fail_msg("case %zu (%s): got %d '%s', expected '%s'", i, cases[i].json, r, err, cases[i].needle);
                assert_null(p);
        }
}

/* ---- the cache ----------------------------------------------------------------------------- */

static struct st_pod *pod(const char *uid, const char *name, const char *cid, const char *ip, bool host_network) {
        struct st_pod *p = calloc(1, sizeof(*p));
        p->uid = strdup(uid);
        p->name = strdup(name);
        p->namespace_ = strdup("ns");
        p->ips[0] = ip ? strdup(ip) : NULL;
        p->host_network = host_network;
        p->containers = calloc(1, sizeof(*p->containers));
        p->containers[0] = (struct st_pod_container) { .name = strdup("c"), .id = strdup(cid), .image = strdup("img:1") };
        p->n_containers = 1;
        p->bytes = 100;
        return p;
}

static void seen(const struct st_pod *p, const struct st_pod_container *c, void *ctx) {
        char *out = ctx;
        snprintf(out, 64, "%s/%s", p->name, c ? c->name : "-");
}

static void test_cache(void **state) {
        (void) state;
        struct st_pod_cache *c;
        char out[64];
        assert_int_equal(st_pod_cache_new(&c), 0);
        assert_int_equal(st_pod_cache_put(c, pod("u1", "a", "c1", "10.0.0.1", false)), 0);
        assert_int_equal(st_pod_cache_put(c, pod("u2", "b", "c2", "192.168.1.10", true)), 0);
        assert_int_equal(st_pod_cache_size(c), 2);
        assert_int_equal(st_pod_cache_bytes(c), 200);
        assert_int_equal(st_pod_cache_by_container(c, "c1", seen, out), 0);
        assert_string_equal(out, "a/c");
        assert_int_equal(st_pod_cache_by_uid(c, "u2", seen, out), 0);
        assert_string_equal(out, "b/-");
        assert_int_equal(st_pod_cache_by_ip(c, "10.0.0.1", seen, out), 0);
        assert_int_equal(st_pod_cache_by_ip(c, "192.168.1.10", seen, out), -ENOENT); /* the host's network */
        /* an update replaces the pod and its index entries */
        assert_int_equal(st_pod_cache_put(c, pod("u1", "a2", "c1b", "10.0.0.2", false)), 0);
        assert_int_equal(st_pod_cache_by_container(c, "c1", seen, out), -ENOENT);
        assert_int_equal(st_pod_cache_by_container(c, "c1b", seen, out), 0);
        assert_string_equal(out, "a2/c");
        assert_int_equal(st_pod_cache_by_ip(c, "10.0.0.1", seen, out), -ENOENT);
        assert_int_equal(st_pod_cache_size(c), 2);
        /* a relist: what it lacks is gone, what it has is there */
        struct st_pod *v[] = { pod("u2", "b", "c2", "192.168.1.10", true), pod("u3", "c", "c3", "10.0.0.3", false) };
        assert_int_equal(st_pod_cache_replace(c, v, 2), 0);
        assert_int_equal(st_pod_cache_size(c), 2);
        assert_int_equal(st_pod_cache_by_uid(c, "u1", seen, out), -ENOENT);
        assert_int_equal(st_pod_cache_by_container(c, "c1b", seen, out), -ENOENT);
        assert_int_equal(st_pod_cache_by_container(c, "c3", seen, out), 0);
        assert_int_equal(st_pod_cache_delete(c, "u3"), 0);
        assert_int_equal(st_pod_cache_delete(c, "u3"), -ENOENT);
        assert_int_equal(st_pod_cache_by_ip(c, "10.0.0.3", seen, out), -ENOENT);
        assert_int_equal(st_pod_cache_size(c), 1);
        assert_int_equal(st_pod_cache_bytes(c), 100);
        /* a finished pod gives its IP up: the next pod on the node may have it */
        struct st_pod *done = pod("u-job", "job-1", "c-job", "10.0.0.9", false);
        done->phase = strdup("Succeeded");
        assert_int_equal(st_pod_cache_put(c, done), 0);
        assert_int_equal(st_pod_cache_by_ip(c, "10.0.0.9", seen, out), -ENOENT);
        assert_int_equal(st_pod_cache_put(c, pod("u-new", "web-9", "c-new", "10.0.0.9", false)), 0);
        struct st_pod *done2 = pod("u-job", "job-1", "c-job", "10.0.0.9", false); /* a late MODIFIED of the old one */
        done2->phase = strdup("Succeeded");
        assert_int_equal(st_pod_cache_put(c, done2), 0);
        assert_int_equal(st_pod_cache_by_ip(c, "10.0.0.9", seen, out), 0);
        assert_string_equal(out, "web-9/-");
        assert_int_equal(st_pod_cache_by_container(c, "c-job", seen, out), 0); /* still found by its container */
        st_pod_cache_free(c);
}

/* ---- k8sattributes ---------------------------------------------------------------------------- */

static st_batch *traces_with(const char *const *kv, size_t n, uint8_t pid_source, const char *peer_ip, int64_t pid) {
        uint64_t id = 0;
        st_batch *b = make_batch(ST_TRACES, 1, 1, 1, &id);
        st_resource *res = ((st_traces_req *) b->req)->resource_spans[0]->resource;
        if (!res) {
                res = msg_new(&b->arena, &opentelemetry__proto__resource__v1__resource__descriptor);
                ((st_traces_req *) b->req)->resource_spans[0]->resource = res;
        }
        st_key_value **v = (st_key_value **) ptrs_new(&b->arena, n / 2 + 1);
        size_t m = 0;
        for (size_t i = 0; i + 1 < n; i += 2)
                v[m++] = kv_new(&b->arena, kv[i], kv[i + 1]);
        if (pid) {
                st_key_value *k = kv_new(&b->arena, "process.pid", "");
                k->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
                k->value->int_value = pid;
                v[m++] = k;
        }
        res->attributes = v;
        res->n_attributes = m;
        b->pid_source = pid_source;
        if (peer_ip)
                snprintf(b->peer_ip, sizeof(b->peer_ip), "%s", peer_ip);
        return b;
}

static void feed(struct harness *h, st_batch *b) {
        assert_int_equal(h->f->consume(h->inst, b), 0);
        st_batch_unref(b);
}

static const char *out_attr(struct harness *h, size_t i, const char *key) {
        const st_traces_req *req = (const st_traces_req *) st_batch_req(h->cap.v[i]);
        const st_resource *res = req->resource_spans[0]->resource;
        const st_any_value *v = attr_get(res->attributes, res->n_attributes, key);
        return v ? v->string_value : NULL;
}

static void test_k8sattributes(void **state) {
        (void) state;
        struct st_pod_cache *c = st_pod_cache_global();
        char err[256];
        struct st_pod *p;
        json_object *o = parse(DEPLOYMENT_POD);
        assert_int_equal(k8s_pod_from_json(o, &X, &p, err, sizeof(err)), 0);
        json_object_put(o);
        assert_int_equal(st_pod_cache_put(c, p), 0);
        assert_int_equal(st_pod_cache_put(c, pod("u-host", "node-agent", "c-host", "192.168.1.10", true)), 0);

        struct harness h;
        harness_init(&h, &st_processor_k8sattributes, ST_TRACES, "{}");
        /* 0: by container.id (the kernel's, via the cgroup) */
        const char *by_cid[] = { "container.id", CID };
        feed(&h, traces_with(by_cid, 2, ST_PIDS_KERNEL, NULL, 0));
        /* 1: by the pod uid */
        const char *by_uid[] = { "k8s.pod.uid", "5d4b3a7e-1c2f-4e6a-9b8d-0a1b2c3d4e5f" };
        feed(&h, traces_with(by_uid, 2, ST_PIDS_CLAIMED, NULL, 0));
        /* 2: by an observed pid whose process runs in the container */
        struct st_process proc = { .pid = 3999101, .start_ns = 1 };
        strcpy(proc.comm, "web");
        strcpy(proc.container.id, CID);
        assert_int_equal(st_proctab_exec(st_proctab_global(), &proc), 0);
        feed(&h, traces_with(NULL, 0, ST_PIDS_OBSERVED, NULL, 3999101));
        /* 3: the same pid only claimed: not looked up */
        feed(&h, traces_with(NULL, 0, ST_PIDS_CLAIMED, NULL, 3999101));
        /* 4: by the sender's address; 5: a hostNetwork pod's address matches nothing */
        feed(&h, traces_with(NULL, 0, ST_PIDS_CLAIMED, "fd00::17", 0));
        feed(&h, traces_with(NULL, 0, ST_PIDS_CLAIMED, "192.168.1.10", 0));
        /* 6: by k8s.pod.ip; what the resource has already is kept */
        const char *by_ip[] = { "k8s.pod.ip", "10.244.1.17", "k8s.pod.name", "as-sent" };
        feed(&h, traces_with(by_ip, 4, ST_PIDS_CLAIMED, NULL, 0));
        assert_int_equal(h.cap.n, 7);

        assert_string_equal(out_attr(&h, 0, "k8s.pod.name"), "web-7d4b9c8f5-x2kq9");
        assert_string_equal(out_attr(&h, 0, "k8s.namespace.name"), "shop");
        assert_string_equal(out_attr(&h, 0, "k8s.node.name"), "node-1");
        assert_string_equal(out_attr(&h, 0, "k8s.deployment.name"), "web");
        assert_string_equal(out_attr(&h, 0, "k8s.replicaset.name"), "web-7d4b9c8f5");
        assert_string_equal(out_attr(&h, 0, "k8s.container.name"), "app");
        assert_string_equal(out_attr(&h, 0, "container.image.name"), "registry.local:5000/shop/web");
        assert_string_equal(out_attr(&h, 0, "container.image.tag"), "1.4.2");
        assert_string_equal(out_attr(&h, 0, "k8s.pod.label.app"), "web");
        assert_string_equal(out_attr(&h, 0, "k8s.pod.annotation.team"), "payments");
        assert_string_equal(out_attr(&h, 0, "k8s.pod.start_time"), "2026-11-30T10:00:01Z");
        assert_string_equal(out_attr(&h, 0, "strata.k8s.association"), "container.id");
        assert_string_equal(out_attr(&h, 1, "strata.k8s.association"), "k8s.pod.uid");
        assert_null(out_attr(&h, 1, "k8s.container.name")); /* the pod, not which container */
        assert_string_equal(out_attr(&h, 2, "strata.k8s.association"), "process.pid");
        assert_string_equal(out_attr(&h, 2, "k8s.container.name"), "app");
        assert_string_equal(out_attr(&h, 2, "container.id"), CID);
        assert_null(out_attr(&h, 3, "k8s.pod.name"));
        assert_string_equal(out_attr(&h, 4, "strata.k8s.association"), "connection.ip");
        assert_null(out_attr(&h, 5, "k8s.pod.name"));
        assert_string_equal(out_attr(&h, 6, "strata.k8s.association"), "k8s.pod.ip");
        assert_string_equal(out_attr(&h, 6, "k8s.pod.name"), "as-sent");
        harness_free(&h);

        expect_config_error(&st_processor_k8sattributes, "pod_association: [container.id, pod.name]\n", "pod.name");
        /* only some rules, in another order */
        harness_init(&h, &st_processor_k8sattributes, ST_TRACES, "pod_association: [k8s.pod.ip]\n");
        feed(&h, traces_with(by_cid, 2, ST_PIDS_KERNEL, NULL, 0));
        assert_null(out_attr(&h, 0, "k8s.pod.name"));
        harness_free(&h);
}

static void count_labels(const struct st_pod_kv *labels, size_t n, void *ctx) {
        char *out = ctx;
        snprintf(out, 64, "%zu:%s=%s", n, n ? labels[0].key : "", n ? labels[0].value : "");
}

/* Namespaces and nodes: their labels (only those asked for), by name. */
static void test_meta(void **state) {
        (void) state;
        char err[256], *name, out[64];
        struct st_pod_kv *labels;
        size_t n;
        char *keys[] = { "team" };
        json_object *o = parse("{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"shop\",\"labels\":{\"team\":\"pay\",\"x\":\"y\"}}}");
        assert_int_equal(k8s_meta_from_json(o, keys, 1, &name, &labels, &n, err, sizeof(err)), 0);
        json_object_put(o);
        assert_string_equal(name, "shop");
        assert_int_equal(n, 1);
        struct st_pod_cache *c;
        assert_int_equal(st_pod_cache_new(&c), 0);
        assert_int_equal(st_pod_cache_meta_put(c, ST_META_NAMESPACE, name, labels, n), 0);
        assert_int_equal(st_pod_cache_meta_with(c, ST_META_NAMESPACE, "shop", count_labels, out), 0);
        assert_string_equal(out, "1:team=pay");
        assert_int_equal(st_pod_cache_meta_with(c, ST_META_NODE, "shop", count_labels, out), -ENOENT); /* another kind */
        assert_int_equal(st_pod_cache_meta_delete(c, ST_META_NAMESPACE, "shop"), 0);
        assert_int_equal(st_pod_cache_meta_with(c, ST_META_NAMESPACE, "shop", count_labels, out), -ENOENT);
        free(name);
        o = parse("{\"metadata\":{\"name\":\"n1\"}}");
        assert_int_equal(k8s_meta_from_json(o, keys, 1, &name, &labels, &n, err, sizeof(err)), 0);
        json_object_put(o);
        assert_int_equal(st_pod_cache_meta_put(c, ST_META_NODE, name, labels, n), 0);
        free(name);
        st_pod_cache_meta_clear(c, ST_META_NODE);
        assert_int_equal(st_pod_cache_meta_with(c, ST_META_NODE, "n1", count_labels, out), -ENOENT);
        o = parse("{\"metadata\":{\"name\":\"n1\",\"labels\":{\"team\":1}}}");
        assert_int_equal(k8s_meta_from_json(o, keys, 1, &name, &labels, &n, err, sizeof(err)), -EBADMSG);
        json_object_put(o);
        assert_non_null(strstr(err, "metadata.labels.team"));
        st_pod_cache_free(c);
}

static void write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static void test_kubeconfig(void **state) {
        (void) state;
        char dir[] = "/tmp/strata-kubeconfig-XXXXXX", path[128], err[512];
        struct k8s_kubeconfig k;
        size_t n;
        char *d = k8s_base64_decode("aGVsbG8s\nIHdvcmxk", &n);
        assert_string_equal(d, "hello, world");
        assert_int_equal(n, 12);
        free(d);
        assert_null(k8s_base64_decode("not*base64", NULL));

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/config", dir);
        write_text(path,
                   "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
                   "clusters:\n"
                   "- name: kind\n  cluster:\n    server: https://127.0.0.1:6443\n"
                   "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n"
                   "- name: prod\n  cluster:\n    server: https://prod:6443\n    certificate-authority: ca.crt\n"
                   "contexts:\n"
                   "- name: dev\n  context:\n    cluster: kind\n    user: me\n"
                   "- name: prod\n  context:\n    cluster: prod\n    user: cert\n"
                   "- name: cloud\n  context:\n    cluster: prod\n    user: plugin\n"
                   "users:\n"
                   "- name: me\n  user:\n    token: abc.def\n"
                   "- name: cert\n  user:\n    client-certificate: certs/me.crt\n    client-key: /abs/me.key\n"
                   "- name: plugin\n  user:\n    exec:\n      command: aws\n");
        assert_int_equal(k8s_kubeconfig_load(path, NULL, &k, err, sizeof(err)), 0);
        assert_string_equal(k.server, "https://127.0.0.1:6443");
        assert_string_equal(k.ca_pem, "-----BEGIN CERTIFICATE-----\n");
        assert_string_equal(k.token, "abc.def");
        assert_null(k.ca_file);
        k8s_kubeconfig_clear(&k);

        char want[160];
        assert_int_equal(k8s_kubeconfig_load(path, "prod", &k, err, sizeof(err)), 0);
        assert_string_equal(k.server, "https://prod:6443");
        snprintf(want, sizeof(want), "%s/ca.crt", dir);
        assert_string_equal(k.ca_file, want); /* relative to the file, as kubectl has it */
        snprintf(want, sizeof(want), "%s/certs/me.crt", dir);
        assert_string_equal(k.cert_file, want);
        assert_string_equal(k.key_file, "/abs/me.key");
        assert_null(k.token);
        k8s_kubeconfig_clear(&k);

        assert_int_equal(k8s_kubeconfig_load(path, "cloud", &k, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "plugin"));
        assert_int_equal(k8s_kubeconfig_load(path, "nope", &k, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "no context named 'nope'"));
        write_text(path, "- just\n- a list\n");
        assert_int_equal(k8s_kubeconfig_load(path, NULL, &k, err, sizeof(err)), -EINVAL);
        unlink(path);
        rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pod_of_deployment),
                cmocka_unit_test(test_workload_names),
                cmocka_unit_test(test_bad_pods),
                cmocka_unit_test(test_cache),
                cmocka_unit_test(test_k8sattributes),
                cmocka_unit_test(test_kubeconfig),
                cmocka_unit_test(test_meta),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
