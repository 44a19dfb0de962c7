/* The k8sattributes processor: resources get the pod (and container) they come from, from the
 * pod cache the k8s receiver keeps (pod_cache.h).
 *
 * Association rules, in order, first match wins (the Collector's pod_association):
 *   container.id    the resource's container.id (from the process's cgroup: exact)
 *   k8s.pod.uid     the resource's k8s.pod.uid (the cgroup path carries it, or the SDK said)
 *   process.pid     a pid strata observed → its container in the process table
 *   connection.ip   the address the request came from (TCP senders; not hostNetwork pods)
 *   k8s.pod.ip      the resource's k8s.pod.ip
 * Attributes already on the resource are left as they are; strata.k8s.association says which
 * rule matched. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "component.h"
#include "log.h"
#include "otlp_attr.h"
#include "pod_cache.h"
#include "process_table.h"

enum rule { R_CONTAINER_ID, R_POD_UID, R_PROCESS_PID, R_CONNECTION_IP, R_POD_IP, N_RULES };
static const char *const rule_names[N_RULES] = { "container.id", "k8s.pod.uid", "process.pid", "connection.ip", "k8s.pod.ip" };

struct k8sattr_cfg {
        struct st_strv pod_association;
};

static const struct st_cfg_field k8sattr_fields[] = {
        { .name = "pod_association", .type = ST_CFG_STRINGS, .offset = offsetof(struct k8sattr_cfg, pod_association),
          .desc = "rules tried in order, first match wins: container.id, k8s.pod.uid, process.pid, connection.ip, "
                  "k8s.pod.ip (default: all, in this order)" },
        ST_CFG_END,
};

struct k8sattr {
        struct st_consumer next;
        enum rule rules[N_RULES];
        size_t n_rules;
        struct st_pod_cache *pods;
        struct st_proctab *procs;
        struct st_tel_metric *m_associated, *m_unassociated;
};

static int rule_of(const char *s) {
        for (int i = 0; i < N_RULES; i++)
                if (strcmp(s, rule_names[i]) == 0)
                        return i;
        return -1;
}

static int k8sattr_validate(const void *cfg, struct st_cfg_ctx *ctx) {
        const struct k8sattr_cfg *c = cfg;
        for (size_t i = 0; i < c->pod_association.n; i++)
                if (rule_of(c->pod_association.v[i]) < 0) {
                        st_cfg_errorf(ctx, "pod_association", "unknown rule '%s' (container.id, k8s.pod.uid, process.pid, "
                                      "connection.ip, k8s.pod.ip)", c->pod_association.v[i]);
                        return -EINVAL;
                }
        return 0;
}

static int k8sattr_create(const struct st_component_settings *set, const void *cfg, void **ret) {
        const struct k8sattr_cfg *c = cfg;
        struct k8sattr *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->next = set->next[set->signal];
        p->pods = st_pod_cache_global();
        p->procs = st_proctab_global();
        if (!p->pods || !p->procs) {
                free(p);
                return -ENOMEM;
        }
        if (c->pod_association.n)
                for (size_t i = 0; i < c->pod_association.n; i++)
                        p->rules[p->n_rules++] = (enum rule) rule_of(c->pod_association.v[i]);
        else
                for (int i = 0; i < N_RULES; i++)
                        p->rules[p->n_rules++] = (enum rule) i;
        p->m_associated = st_tel_metric(set->tel, "k8sattributes_associated_total", "Resources associated with a pod.", false);
        p->m_unassociated = st_tel_metric(set->tel, "k8sattributes_unassociated_total", "Resources no rule associated with a pod.", false);
        *ret = p;
        return 0;
}

/* --- attributes ---------------------------------------------------------------------------- */

static const char *res_str(const st_resource *res, const char *key) {
        for (size_t i = 0; res && i < res->n_attributes; i++) {
                const st_key_value *kv = res->attributes[i];
                if (kv && kv->key && strcmp(kv->key, key) == 0 && kv->value &&
                    kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
                        return kv->value->string_value;
        }
        return NULL;
}

static bool res_has(const st_resource *res, const char *key) {
        for (size_t i = 0; res && i < res->n_attributes; i++)
                if (res->attributes[i] && res->attributes[i]->key && strcmp(res->attributes[i]->key, key) == 0)
                        return true;
        return false;
}

#define MAX_ADDS 64

struct emit {
        st_arena *a;
        const st_resource *res;
        st_key_value *v[MAX_ADDS];
        size_t n;
        bool oom;
        bool found;
        char ns[256], node[256]; /* the pod's, for their labels (looked up after the pod's lock) */
        const char *label_prefix;
};

/* key=s (both copied into the arena, key when not static) unless the resource has key. */
static void put(struct emit *e, const char *key, bool copy_key, const char *s) {
        if (!s || !*s || e->n == MAX_ADDS || res_has(e->res, key))
                return;
        const char *k = copy_key ? st_arena_strdup(e->a, key) : key;
        st_key_value *kv = k ? st_kv_str(e->a, k, s) : NULL;
        if (!kv) {
                e->oom = true;
                return;
        }
        e->v[e->n++] = kv;
}

/* "registry:5000/team/app:1.2@sha256:…" → name "registry:5000/team/app", tag "1.2" */
static void put_image(struct emit *e, const char *image) {
        char name[512];
        if (!image || strlen(image) >= sizeof(name))
                return;
        strcpy(name, image);
        char *at = strchr(name, '@');
        if (at)
                *at = '\0';
        char *slash = strrchr(name, '/'), *colon = strrchr(name, ':');
        const char *tag = NULL;
        if (colon && (!slash || colon > slash)) {
                *colon = '\0';
                tag = colon + 1;
        }
        put(e, "container.image.name", false, name);
        put(e, "container.image.tag", false, tag);
}

static void from_pod(const struct st_pod *pod, const struct st_pod_container *c, void *ctx) {
        struct emit *e = ctx;
        char key[320];
        e->found = true;
        snprintf(e->ns, sizeof(e->ns), "%s", pod->namespace_ ? pod->namespace_ : "");
        snprintf(e->node, sizeof(e->node), "%s", pod->node ? pod->node : "");
        put(e, "k8s.namespace.name", false, pod->namespace_);
        put(e, "k8s.pod.name", false, pod->name);
        put(e, "k8s.pod.uid", false, pod->uid);
        put(e, "k8s.pod.start_time", false, pod->start_time);
        put(e, "k8s.node.name", false, pod->node);
        put(e, "k8s.deployment.name", false, pod->deployment);
        put(e, "k8s.replicaset.name", false, pod->replicaset);
        put(e, "k8s.statefulset.name", false, pod->statefulset);
        put(e, "k8s.daemonset.name", false, pod->daemonset);
        put(e, "k8s.job.name", false, pod->job);
        put(e, "k8s.cronjob.name", false, pod->cronjob);
        if (c) {
                put(e, "k8s.container.name", false, c->name);
                put_image(e, c->image);
        }
        for (size_t i = 0; i < pod->n_labels; i++) {
                snprintf(key, sizeof(key), "k8s.pod.label.%s", pod->labels[i].key);
                put(e, key, true, pod->labels[i].value);
        }
        for (size_t i = 0; i < pod->n_annotations; i++) {
                snprintf(key, sizeof(key), "k8s.pod.annotation.%s", pod->annotations[i].key);
                put(e, key, true, pod->annotations[i].value);
        }
}

/* k8s.namespace.label.<key>, k8s.node.label.<key> */
static void meta_labels(const struct st_pod_kv *labels, size_t n, void *ctx) {
        struct emit *e = ctx;
        char key[320];
        for (size_t i = 0; i < n; i++) {
                snprintf(key, sizeof(key), "%s%s", e->label_prefix, labels[i].key);
                put(e, key, true, labels[i].value);
        }
}

struct pid_container {
        char id[ST_CONTAINER_ID_MAX + 1];
};

static void container_of(const struct st_process *proc, void *ctx) {
        struct pid_container *pc = ctx;
        memcpy(pc->id, proc->container.id, sizeof(pc->id));
}

/* Tries the rules in order on one resource; true when a pod was found. */
static bool associate(struct k8sattr *p, const st_batch *b, const st_resource *res, struct emit *e, enum rule *ret) {
        for (size_t i = 0; i < p->n_rules; i++) {
                const char *key = NULL;
                int r = -ENOENT;
                switch (p->rules[i]) {
                case R_CONTAINER_ID:
                        if ((key = res_str(res, "container.id")))
                                r = st_pod_cache_by_container(p->pods, key, from_pod, e);
                        break;
                case R_POD_UID:
                        if ((key = res_str(res, "k8s.pod.uid")))
                                r = st_pod_cache_by_uid(p->pods, key, from_pod, e);
                        break;
                case R_PROCESS_PID: {
                        /* only a pid strata observed: a claimed one may be another host's */
                        int64_t pid = -1;
                        for (size_t k = 0; res && k < res->n_attributes && b->pid_source != ST_PIDS_CLAIMED; k++) {
                                const st_key_value *kv = res->attributes[k];
                                if (kv && kv->key && strcmp(kv->key, "process.pid") == 0 && kv->value &&
                                    kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE)
                                        pid = kv->value->int_value;
                        }
                        struct pid_container pc = { 0 };
                        if (pid > 0 && pid <= UINT32_MAX && st_proctab_with(p->procs, (uint32_t) pid, 0, container_of, &pc) == 0 &&
                            pc.id[0]) {
                                r = st_pod_cache_by_container(p->pods, pc.id, from_pod, e);
                                if (r == 0)
                                        put(e, "container.id", false, pc.id);
                        }
                        break;
                }
                case R_CONNECTION_IP:
                        if (b->peer_ip[0])
                                r = st_pod_cache_by_ip(p->pods, b->peer_ip, from_pod, e);
                        break;
                case R_POD_IP:
                        if ((key = res_str(res, "k8s.pod.ip")))
                                r = st_pod_cache_by_ip(p->pods, key, from_pod, e);
                        break;
                case N_RULES:
                        break;
                }
                if (r == 0) {
                        *ret = p->rules[i];
                        return true;
                }
        }
        return false;
}

static int enrich(struct k8sattr *p, st_batch *b) {
        enum st_signal s = b->signal;
        for (size_t i = 0; i < st_req_n(s, b->req); i++) {
                void *entry = st_req_v(s, b->req)[i];
                st_resource *res = st_res_resource(s, entry);
                struct emit e = { .a = &b->arena, .res = res };
                enum rule rule;
                if (!associate(p, b, res, &e, &rule)) {
                        st_tel_metric_add(p->m_unassociated, 1);
                        continue;
                }
                st_tel_metric_add(p->m_associated, 1);
                put(&e, "strata.k8s.association", false, rule_names[rule]);
                if (e.ns[0]) {
                        e.label_prefix = "k8s.namespace.label.";
                        (void) st_pod_cache_meta_with(p->pods, ST_META_NAMESPACE, e.ns, meta_labels, &e);
                }
                if (e.node[0]) {
                        e.label_prefix = "k8s.node.label.";
                        (void) st_pod_cache_meta_with(p->pods, ST_META_NODE, e.node, meta_labels, &e);
                }
                if (e.oom)
                        return -ENOMEM;
                if (!res) {
                        if (!(res = st_arena_alloc(&b->arena, sizeof(*res))))
                                return -ENOMEM;
                        opentelemetry__proto__resource__v1__resource__init(res);
                        ST_FIELD(entry, st_signals[s].res_resource, st_resource *) = res;
                }
                st_key_value **v = st_arena_alloc(&b->arena, (res->n_attributes + e.n) * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                if (res->n_attributes)
                        memcpy(v, res->attributes, res->n_attributes * sizeof(*v));
                memcpy(v + res->n_attributes, e.v, e.n * sizeof(*v));
                res->attributes = v;
                res->n_attributes += e.n;
        }
        b->wire = NULL;
        b->wire_len = 0;
        return 0;
}

static int k8sattr_consume(void *self, st_batch *b) {
        struct k8sattr *p = self;
        st_batch *w;
        if (st_pod_cache_size(p->pods) == 0)
                return st_consume(&p->next, b); /* nothing to add: no copy, no decode */
        int r = st_batch_writable(b, &w);
        if (r < 0)
                return r;
        r = enrich(p, w);
        if (r >= 0)
                r = st_consume(&p->next, w);
        st_batch_unref(w);
        return r;
}

static void k8sattr_destroy(void *self) { free(self); }

const struct st_factory st_processor_k8sattributes = {
        .type = "k8sattributes",
        .kind = ST_PROCESSOR,
        .signals = ST_SIG_ALL,
        .description = "adds the pod, workload and container of each resource from the k8s receiver's pod cache",
        .mutates = true,
        .config_size = sizeof(struct k8sattr_cfg),
        .config = k8sattr_fields,
        .validate = k8sattr_validate,
        .create = k8sattr_create,
        .consume = k8sattr_consume,
        .destroy = k8sattr_destroy,
};
