/* The k8s receiver: the Kubernetes API poller. Lists this node's pods, then watches them, and
 * keeps the context store's pod cache (pod_cache.h) current; the k8sattributes processor
 * enriches records from it.
 *
 * One thread: list (in pages) → replace the cache → watch from the list's resourceVersion →
 * apply events → when the server ends the stream, watch again from the last resourceVersion
 * (moved by events and bookmarks); 410 Gone → relist; errors → back off (exponential with
 * jitter, 1 s to 30 s) and try again. The bearer token is re-read for every request. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "component.h"
#include "doctor.h"
#include "k8s_api.h"
#include "k8s_kubeconfig.h"
#include "k8s_pod.h"
#include "log.h"
#include "otlp_attr.h"
#include "pod_cache.h"
#include "stop_signal.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define BACKOFF_MIN_NS (INT64_C(1) * ST_NS_PER_SEC)
#define BACKOFF_MAX_NS (INT64_C(30) * ST_NS_PER_SEC)

struct k8s_extract_cfg {
        struct st_strv labels, annotations, namespace_labels, node_labels;
};

struct k8s_cfg {
        char *kubeconfig;
        char *context;
        char *api_server;
        char *token_file;
        char *ca_file;
        bool insecure_skip_verify;
        char *node;
        char *namespace_;
        int64_t page_size;
        int64_t watch_timeout;
        bool lifecycle_records;
        struct k8s_extract_cfg extract;
};

static const struct st_cfg_field extract_fields[] = {
        { .name = "labels", .type = ST_CFG_STRINGS, .offset = offsetof(struct k8s_extract_cfg, labels),
          .desc = "pod labels to keep (emitted as k8s.pod.label.<key>)" },
        { .name = "annotations", .type = ST_CFG_STRINGS, .offset = offsetof(struct k8s_extract_cfg, annotations),
          .desc = "pod annotations to keep (emitted as k8s.pod.annotation.<key>)" },
        { .name = "namespace_labels", .type = ST_CFG_STRINGS, .offset = offsetof(struct k8s_extract_cfg, namespace_labels),
          .desc = "labels of the pods' namespaces (k8s.namespace.label.<key>): adds a Namespace watch (list/watch namespaces)" },
        { .name = "node_labels", .type = ST_CFG_STRINGS, .offset = offsetof(struct k8s_extract_cfg, node_labels),
          .desc = "labels of this node (k8s.node.label.<key>): adds a Node watch of this node (get/list/watch nodes)" },
        ST_CFG_END,
};

static const struct st_cfg_field k8s_fields[] = {
        { .name = "kubeconfig", .type = ST_CFG_STRING, .offset = offsetof(struct k8s_cfg, kubeconfig), .def = "",
          .desc = "a kubeconfig file (development, outside a cluster): server, CA and credentials of its context" },
        { .name = "context", .type = ST_CFG_STRING, .offset = offsetof(struct k8s_cfg, context), .def = "",
          .desc = "the kubeconfig context to use (\"\" = its current-context)" },
        { .name = "api_server", .type = ST_CFG_STRING, .offset = offsetof(struct k8s_cfg, api_server), .def = "",
          .desc = "https://host:port of the API; \"\" = in-cluster (KUBERNETES_SERVICE_HOST and _PORT)" },
        { .name = "token_file", .type = ST_CFG_STRING, .offset = offsetof(struct k8s_cfg, token_file),
          .def = SA_DIR "/token", .desc = "bearer token, re-read for every request (\"\" = none)" },
        { .name = "ca_file", .type = ST_CFG_STRING, .offset = offsetof(struct k8s_cfg, ca_file), .def = SA_DIR "/ca.crt",
          .desc = "CA bundle that signed the API server's certificate (\"\" = the system's)" },
        { .name = "insecure_skip_verify", .type = ST_CFG_BOOL, .offset = offsetof(struct k8s_cfg, insecure_skip_verify),
          .def = "false", .desc = "do not verify the API server's certificate (never in production)" },
        { .name = "node", .type = ST_CFG_STRING, .offset = offsetof(struct k8s_cfg, node), .def = "",
          .desc = "only the pods of this node; \"\" = $NODE_NAME (the downward API's spec.nodeName) when set; \"*\" = every pod of the cluster" },
        { .name = "namespace", .type = ST_CFG_STRING, .offset = offsetof(struct k8s_cfg, namespace_), .def = "",
          .desc = "only the pods of this namespace (a Role is then enough); \"\" = every namespace (needs a ClusterRole)" },
        { .name = "page_size", .type = ST_CFG_INT, .offset = offsetof(struct k8s_cfg, page_size), .def = "500", .min = 1,
          .max = 10000, .desc = "pods per list page (limit=, then continue=)" },
        { .name = "watch_timeout", .type = ST_CFG_DURATION, .offset = offsetof(struct k8s_cfg, watch_timeout),
          .def = "5m", .desc = "how long one watch request lasts before it is renewed (timeoutSeconds)" },
        { .name = "lifecycle_records", .type = ST_CFG_BOOL, .offset = offsetof(struct k8s_cfg, lifecycle_records),
          .def = "false",
          .desc = "emit log records of pod lifecycle changes: k8s.pod.created, k8s.pod.deleted, "
                  "k8s.container.restarted, k8s.container.oom_killed" },
        { .name = "extract", .type = ST_CFG_SECTION, .offset = offsetof(struct k8s_cfg, extract), .sub = extract_fields,
          .desc = "what to keep of each pod beyond names, ids, IPs, owners and containers" },
        ST_CFG_END,
};

struct k8s_receiver {
        struct st_component_settings set;
        const struct k8s_cfg *cfg;
        struct k8s_conn conn;
        struct k8s_extract x;
        struct st_pod_cache *cache;
        struct k8s_kubeconfig kc;
        struct watcher {
                struct k8s_receiver *r;
                enum k8s_kind kind;
                pthread_t thread;
                bool running;
        } watchers[3];
        struct st_stop stop;
        struct st_tel_metric *m_pods, *m_bytes, *m_lists, *m_watches, *m_events, *m_errors, *m_bad_pods;
};

static int k8s_validate(const void *cfg, struct st_cfg_ctx *ctx) {
        const struct k8s_cfg *c = cfg;
        if (c->api_server && *c->api_server && strncmp(c->api_server, "https://", 8) != 0 &&
            strncmp(c->api_server, "http://", 7) != 0) {
                st_cfg_errorf(ctx, "api_server", "'%s' is not an https:// URL", c->api_server);
                return -EINVAL;
        }
        if (c->watch_timeout < ST_NS_PER_SEC) {
                st_cfg_errorf(ctx, "watch_timeout", "must be at least 1s");
                return -EINVAL;
        }
        return 0;
}

static int k8s_create(const struct st_component_settings *set, const void *cfg, void **ret) {
        const struct k8s_cfg *c = cfg;
        struct k8s_receiver *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->set = *set;
        r->cfg = c;
        r->cache = st_pod_cache_global();
        if (!r->cache) {
                free(r);
                return -ENOMEM;
        }
        st_stop_init(&r->stop);
        r->x = (struct k8s_extract) { .labels = c->extract.labels.v, .n_labels = c->extract.labels.n,
                                      .annotations = c->extract.annotations.v, .n_annotations = c->extract.annotations.n };
        r->m_pods = st_tel_metric(set->tel, "k8s_pods", "Pods in the cache.", true);
        r->m_bytes = st_tel_metric(set->tel, "k8s_pod_cache_bytes", "Memory the cached pods take.", true);
        r->m_lists = st_tel_metric(set->tel, "k8s_lists_total", "Complete pod lists (start-up and relists).", false);
        r->m_watches = st_tel_metric(set->tel, "k8s_watches_total", "Watch requests made.", false);
        r->m_events = st_tel_metric(set->tel, "k8s_watch_events_total", "Pod watch events applied.", false);
        r->m_errors = st_tel_metric(set->tel, "k8s_errors_total", "Failed list and watch requests.", false);
        r->m_bad_pods = st_tel_metric(set->tel, "k8s_bad_pods_total", "Pod objects that could not be read (left out).", false);
        *ret = r;
        return 0;
}

/* --- the loop ---------------------------------------------------------------------------------- */

static void gauges(struct k8s_receiver *r) {
        st_tel_metric_set(r->m_pods, (int64_t) st_pod_cache_size(r->cache));
        st_tel_metric_set(r->m_bytes, (int64_t) st_pod_cache_bytes(r->cache));
}

/* Sleeps (interruptibly) and doubles the delay, with jitter. false when stopping. */
static bool backoff(struct k8s_receiver *r, int64_t *delay) {
        int64_t d = *delay / 2 + (int64_t) ((uint64_t) rand() % (uint64_t) (*delay / 2 + 1));
        *delay = *delay * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : *delay * 2;
        return st_stop_sleep_until(&r->stop, st_wall_ns() + d);
}

struct listing {
        struct k8s_receiver *r;
        struct st_pod **v;
        size_t n, cap;
};

static int on_listed(void *ctx, json_object *obj) {
        struct listing *l = ctx;
        char err[256];
        struct st_pod *p;
        int e = k8s_pod_from_json(obj, &l->r->x, &p, err, sizeof(err));
        if (e == -EBADMSG) {
                /* one bad pod does not stop the others, nor poison the cache */
                st_warn(l->r->set.log_name, "a listed pod cannot be read: %s, leaving it out", err);
                st_tel_metric_add(l->r->m_bad_pods, 1);
                return 0;
        }
        if (e < 0)
                return e;
        if (l->n == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 256;
                struct st_pod **v = realloc(l->v, cap * sizeof(*v));
                if (!v) {
                        st_pod_free(p);
                        return -ENOMEM;
                }
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n++] = p;
        return 0;
}

/* --- lifecycle records ------------------------------------------------------------------------ */

/* What a pod's containers were before an event: restarts by name. */
#define MAX_PREV 32
struct prev {
        bool known;
        size_t n;
        struct {
                char name[64];
                uint32_t restarts;
        } c[MAX_PREV];
};

static void remember(const struct st_pod *p, const struct st_pod_container *unused, void *ctx) {
        (void) unused;
        struct prev *pv = ctx;
        pv->known = true;
        for (size_t i = 0; i < p->n_containers && pv->n < MAX_PREV; i++) {
                snprintf(pv->c[pv->n].name, sizeof(pv->c[pv->n].name), "%s", p->containers[i].name);
                pv->c[pv->n++].restarts = p->containers[i].restarts;
        }
}

/* One log record about pod p (and container c), sent down the logs pipeline at once. */
static void lifecycle(struct k8s_receiver *r, const struct st_pod *p, const char *event,
                      const struct st_pod_container *c) {
        const struct st_consumer *next = &r->set.next[ST_LOGS];
        st_batch *b;
        if (!r->cfg->lifecycle_records || !st_consumer_set(next) || st_batch_new(ST_LOGS, &b) < 0)
                return;
        st_arena *a = &b->arena;
        st_logs_req *req = (st_logs_req *) b->req;
        st_resource_logs *rl = st_arena_zalloc(a, sizeof(*rl));
        st_resource *res = st_arena_zalloc(a, sizeof(*res));
        st_scope_logs *sl = st_arena_zalloc(a, sizeof(*sl));
        st_scope *scope = st_arena_zalloc(a, sizeof(*scope));
        st_log_record *lr = st_arena_zalloc(a, sizeof(*lr));
        void **one = st_arena_zalloc(a, 3 * sizeof(void *));
        st_key_value **ra = st_arena_zalloc(a, 4 * sizeof(*ra)), **la = st_arena_zalloc(a, 4 * sizeof(*la));
        if (!rl || !res || !sl || !scope || !lr || !one || !ra || !la)
                goto fail;
        opentelemetry__proto__logs__v1__resource_logs__init(rl);
        opentelemetry__proto__resource__v1__resource__init(res);
        opentelemetry__proto__logs__v1__scope_logs__init(sl);
        opentelemetry__proto__common__v1__instrumentation_scope__init(scope);
        opentelemetry__proto__logs__v1__log_record__init(lr);
        scope->name = (char *) "strata/k8s";
        if (!(ra[0] = st_kv_str(a, "k8s.namespace.name", p->namespace_)) || !(ra[1] = st_kv_str(a, "k8s.pod.name", p->name)) ||
            !(ra[2] = st_kv_str(a, "k8s.pod.uid", p->uid)))
                goto fail;
        res->attributes = ra;
        res->n_attributes = 3;
        if (p->node && (ra[3] = st_kv_str(a, "k8s.node.name", p->node)))
                res->n_attributes = 4;
        lr->time_unix_nano = lr->observed_time_unix_nano = (uint64_t) st_wall_ns();
        lr->event_name = (char *) event;
        lr->severity_number = strstr(event, "oom") || strstr(event, "restarted")
                                      ? OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_WARN
                                      : OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
        if (!(la[lr->n_attributes++] = st_kv_str(a, "event.name", event)))
                goto fail;
        if (c) {
                if (!(la[lr->n_attributes++] = st_kv_str(a, "k8s.container.name", c->name)) ||
                    !(la[lr->n_attributes++] = st_kv_int(a, "k8s.container.restart_count", c->restarts)))
                        goto fail;
                if (c->last_termination && !(la[lr->n_attributes++] = st_kv_str(a, "strata.k8s.container.last_termination_reason",
                                                                                c->last_termination)))
                        goto fail;
        }
        lr->attributes = la;
        one[0] = lr;
        sl->log_records = (st_log_record **) one;
        sl->n_log_records = 1;
        sl->scope = scope;
        one[1] = sl;
        rl->scope_logs = (st_scope_logs **) &one[1];
        rl->n_scope_logs = 1;
        rl->resource = res;
        one[2] = rl;
        req->resource_logs = (st_resource_logs **) &one[2];
        req->n_resource_logs = 1;
        st_batch_recount(b);
        int e = st_consume(next, b);
        st_tel_add(e < 0 ? &r->set.tel->sig[ST_LOGS].refused : &r->set.tel->sig[ST_LOGS].accepted, 1);
        st_batch_unref(b);
        return;
fail:
        st_tel_add(&r->set.tel->sig[ST_LOGS].refused, 1);
        st_batch_unref(b);
}

static int on_event(void *ctx, const char *type, json_object *obj) {
        struct k8s_receiver *r = ctx;
        char err[256];
        st_tel_metric_add(r->m_events, 1);
        if (strcmp(type, "DELETED") == 0) {
                struct st_pod *p;
                /* a deletion's object is the pod's last state: read it for the record */
                if (k8s_pod_from_json(obj, &r->x, &p, err, sizeof(err)) == 0) {
                        (void) st_pod_cache_delete(r->cache, p->uid);
                        lifecycle(r, p, "k8s.pod.deleted", NULL);
                        st_pod_free(p);
                } else {
                        json_object *meta = NULL, *uid = NULL;
                        if (json_object_object_get_ex(obj, "metadata", &meta) && json_object_object_get_ex(meta, "uid", &uid) &&
                            json_object_is_type(uid, json_type_string))
                                (void) st_pod_cache_delete(r->cache, json_object_get_string(uid));
                }
                gauges(r);
                return 0;
        }
        struct st_pod *p;
        int e = k8s_pod_from_json(obj, &r->x, &p, err, sizeof(err));
        if (e < 0) {
                st_warn(r->set.log_name, "a %s pod cannot be read: %s, ignoring", type, err);
                st_tel_metric_add(r->m_bad_pods, 1);
                return e;
        }
        struct prev pv = { 0 };
        if (r->cfg->lifecycle_records)
                (void) st_pod_cache_by_uid(r->cache, p->uid, remember, &pv);
        if (r->cfg->lifecycle_records) {
                if (!pv.known)
                        lifecycle(r, p, "k8s.pod.created", NULL);
                for (size_t i = 0; i < p->n_containers; i++)
                        for (size_t k = 0; k < pv.n; k++)
                                if (strcmp(pv.c[k].name, p->containers[i].name) == 0 && p->containers[i].restarts > pv.c[k].restarts)
                                        lifecycle(r, p,
                                                  p->containers[i].last_termination &&
                                                                  strcmp(p->containers[i].last_termination, "OOMKilled") == 0
                                                          ? "k8s.container.oom_killed"
                                                          : "k8s.container.restarted",
                                                  &p->containers[i]);
        }
        e = st_pod_cache_put(r->cache, p);
        gauges(r);
        return e;
}

/* Namespaces and nodes: only their labels, by name. */
static enum st_meta_kind meta_kind(enum k8s_kind k) { return k == K8S_NODES ? ST_META_NODE : ST_META_NAMESPACE; }

static const struct st_strv *meta_keys(struct k8s_receiver *r, enum k8s_kind k) {
        return k == K8S_NODES ? &r->cfg->extract.node_labels : &r->cfg->extract.namespace_labels;
}

struct meta_ctx {
        struct k8s_receiver *r;
        enum k8s_kind kind;
};

static int on_meta(void *ctx, const char *type, json_object *obj) {
        struct meta_ctx *m = ctx;
        const struct st_strv *keys = meta_keys(m->r, m->kind);
        char err[256], *name;
        struct st_pod_kv *labels;
        size_t n;
        st_tel_metric_add(m->r->m_events, 1);
        if (k8s_meta_from_json(obj, keys->v, keys->n, &name, &labels, &n, err, sizeof(err)) < 0) {
                st_warn(m->r->set.log_name, "a %s object cannot be read: %s, ignoring", k8s_kind_name(m->kind), err);
                st_tel_metric_add(m->r->m_bad_pods, 1);
                return 0;
        }
        if (strcmp(type, "DELETED") == 0) {
                (void) st_pod_cache_meta_delete(m->r->cache, meta_kind(m->kind), name);
                st_pod_kv_free(labels, n);
        } else
                (void) st_pod_cache_meta_put(m->r->cache, meta_kind(m->kind), name, labels, n);
        free(name);
        return 0;
}

/* A list of namespaces or nodes is gathered whole, and replaces what was there only once
 * complete: a failed relist leaves the labels as they were. */
struct meta_list {
        struct meta_ctx *mc;
        struct { char *name; struct st_pod_kv *labels; size_t n; } *v;
        size_t n, cap;
};

static int on_meta_listed(void *ctx, json_object *obj) {
        struct meta_list *ml = ctx;
        const struct st_strv *keys = meta_keys(ml->mc->r, ml->mc->kind);
        char err[256], *name;
        struct st_pod_kv *labels;
        size_t n;
        if (k8s_meta_from_json(obj, keys->v, keys->n, &name, &labels, &n, err, sizeof(err)) < 0) {
                st_warn(ml->mc->r->set.log_name, "a listed %s object cannot be read: %s, leaving it out",
                        k8s_kind_name(ml->mc->kind), err);
                st_tel_metric_add(ml->mc->r->m_bad_pods, 1);
                return 0;
        }
        if (ml->n == ml->cap) {
                size_t cap = ml->cap ? 2 * ml->cap : 32;
                void *v = realloc(ml->v, cap * sizeof(*ml->v));
                if (!v) {
                        free(name);
                        st_pod_kv_free(labels, n);
                        return -ENOMEM;
                }
                ml->v = v;
                ml->cap = cap;
        }
        ml->v[ml->n].name = name;
        ml->v[ml->n].labels = labels;
        ml->v[ml->n++].n = n;
        return 0;
}

static void meta_list_apply(struct meta_list *ml, struct k8s_receiver *r, bool ok) {
        if (ok)
                st_pod_cache_meta_clear(r->cache, meta_kind(ml->mc->kind));
        for (size_t i = 0; i < ml->n; i++) {
                if (ok)
                        (void) st_pod_cache_meta_put(r->cache, meta_kind(ml->mc->kind), ml->v[i].name, ml->v[i].labels, ml->v[i].n);
                else
                        st_pod_kv_free(ml->v[i].labels, ml->v[i].n);
                free(ml->v[i].name);
        }
        free(ml->v);
}

/* One kind's loop: list, then watch; relist on 410; back off on errors. */
static void *run(void *arg) {
        struct watcher *w = arg;
        struct k8s_receiver *r = w->r;
        struct meta_ctx mc = { .r = r, .kind = w->kind };
        const char *what = k8s_kind_name(w->kind);
        char err[512];
        char *rv = NULL;
        int64_t delay = BACKOFF_MIN_NS;
        bool listed_once = false;

        while (!st_stop_raised(&r->stop)) {
                struct listing l = { .r = r };
                struct meta_list ml = { .mc = &mc };
                int e;
                free(rv); /* the watch's: the list gives a new one */
                rv = NULL;
                if (w->kind == K8S_PODS)
                        e = k8s_list(&r->conn, w->kind, on_listed, &l, &rv, err, sizeof(err));
                else {
                        e = k8s_list(&r->conn, w->kind, on_meta_listed, &ml, &rv, err, sizeof(err));
                        meta_list_apply(&ml, r, e == 0);
                }
                if (e < 0) {
                        for (size_t i = 0; i < l.n; i++)
                                st_pod_free(l.v[i]);
                        free(l.v);
                        if (e == -ECANCELED)
                                break;
                        st_tel_metric_add(r->m_errors, 1);
                        st_warn(r->set.log_name, "cannot list %s from %s: %s; retrying", what, r->conn.server, err);
                        if (!backoff(r, &delay))
                                break;
                        continue;
                }
                if (w->kind == K8S_PODS) {
                        e = st_pod_cache_replace(r->cache, l.v, l.n);
                        free(l.v);
                        st_tel_metric_add(r->m_lists, 1);
                        gauges(r);
                        if (e < 0)
                                st_warn(r->set.log_name, "the pod cache is incomplete: %s", strerror(-e));
                        st_info(r->set.log_name, "%s %zu pods%s%s (resourceVersion %s)", listed_once ? "relisted" : "listed",
                                st_pod_cache_size(r->cache), *r->conn.node ? " of node " : "", r->conn.node, rv);
                } else
                        st_info(r->set.log_name, "%s %s (resourceVersion %s)", listed_once ? "relisted" : "listed", what, rv);
                listed_once = true;
                delay = BACKOFF_MIN_NS;

                for (;;) {
                        st_tel_metric_add(r->m_watches, 1);
                        enum k8s_watch_end end = k8s_watch(&r->conn, w->kind, &rv, w->kind == K8S_PODS ? on_event : on_meta,
                                                           w->kind == K8S_PODS ? (void *) r : (void *) &mc, err, sizeof(err));
                        if (end == K8S_WATCH_STOPPED || st_stop_raised(&r->stop))
                                goto out;
                        if (end == K8S_WATCH_TIMEOUT) {
                                delay = BACKOFF_MIN_NS;
                                continue;
                        }
                        if (end == K8S_WATCH_GONE) {
                                st_info(r->set.log_name, "watch of %s: resourceVersion %s is gone (410), relisting", what, rv);
                                break;
                        }
                        st_tel_metric_add(r->m_errors, 1);
                        st_warn(r->set.log_name, "watch of %s failed: %s; retrying", what, err);
                        if (!backoff(r, &delay))
                                goto out;
                }
        }
out:
        free(rv);
        return NULL;
}

static int k8s_shutdown(void *self, int64_t deadline_ns);

static int k8s_start(void *self) {
        struct k8s_receiver *r = self;
        const struct k8s_cfg *c = r->cfg;
        char server[512];
        bool from_kubeconfig = c->kubeconfig && *c->kubeconfig;
        if (from_kubeconfig) {
                char err[512];
                int e = k8s_kubeconfig_load(c->kubeconfig, c->context, &r->kc, err, sizeof(err));
                if (e < 0) {
                        st_error(r->set.log_name, "kubeconfig: %s", err);
                        return e;
                }
        }
        if (c->api_server && *c->api_server)
                snprintf(server, sizeof(server), "%s", c->api_server);
        else if (from_kubeconfig)
                snprintf(server, sizeof(server), "%s", r->kc.server);
        else {
                const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
                if (!host || !*host) {
                        st_error(r->set.log_name, "not in a pod (KUBERNETES_SERVICE_HOST is not set) and no api_server configured");
                        return -EINVAL;
                }
                snprintf(server, sizeof(server), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
                         port && *port ? port : "443");
        }
        size_t n = strlen(server);
        while (n && server[n - 1] == '/')
                server[--n] = '\0';
        const char *node = c->node && *c->node ? c->node : getenv("NODE_NAME");
        if (!node || strcmp(node, "*") == 0)
                node = "";
        r->conn = (struct k8s_conn) { .server = strdup(server), .token_file = c->token_file, .ca_file = c->ca_file,
                                      .insecure = c->insecure_skip_verify, .node = (char *) node,
                                      .token = r->kc.token, .ca_pem = r->kc.ca_pem, .cert_file = r->kc.cert_file,
                                      .cert_pem = r->kc.cert_pem, .key_file = r->kc.key_file, .key_pem = r->kc.key_pem,
                                      .namespace_ = c->namespace_ ? c->namespace_ : (char *) "",
                                      .page_size = c->page_size, .watch_timeout_s = c->watch_timeout / ST_NS_PER_SEC,
                                      .stop = &r->stop.raised };
        if (from_kubeconfig) {
                /* the kubeconfig's credentials, not the service account's defaults */
                r->conn.token_file = r->kc.token_file ? r->kc.token_file : (char *) "";
                r->conn.ca_file = r->kc.ca_file ? r->kc.ca_file : (char *) "";
                r->conn.insecure = r->conn.insecure || r->kc.insecure;
        }
        if (!r->conn.server)
                return -ENOMEM;
        bool want[3] = { true, c->extract.namespace_labels.n > 0, c->extract.node_labels.n > 0 };
        for (int k = 0; k < 3; k++) {
                struct watcher *w = &r->watchers[k];
                *w = (struct watcher) { .r = r, .kind = (enum k8s_kind) k };
                if (!want[k])
                        continue;
                int e = -pthread_create(&w->thread, NULL, run, w);
                if (e < 0) {
                        st_error(r->set.log_name, "cannot start the API thread: %s", strerror(-e));
                        k8s_shutdown(r, 0);
                        return e;
                }
                w->running = true;
                (void) pthread_setname_np(w->thread, "k8s-watch");
        }
        st_info(r->set.log_name, "watching pods%s%s at %s", *r->conn.node ? " of node " : "", r->conn.node, r->conn.server);
        return 0;
}

static int k8s_shutdown(void *self, int64_t deadline_ns) {
        struct k8s_receiver *r = self;
        (void) deadline_ns;
        if (!r)
                return 0;
        st_stop_raise(&r->stop); /* also aborts the transfers underway (progress callback) */
        for (int k = 0; k < 3; k++)
                if (r->watchers[k].running) {
                        pthread_join(r->watchers[k].thread, NULL);
                        r->watchers[k].running = false;
                }
        return 0;
}

static void k8s_destroy(void *self) {
        struct k8s_receiver *r = self;
        if (!r)
                return;
        k8s_shutdown(r, 0);
        free(r->conn.server);
        k8s_kubeconfig_clear(&r->kc);
        st_stop_destroy(&r->stop);
        free(r);
}

const struct st_factory st_receiver_k8s = {
        .type = "k8s",
        .kind = ST_RECEIVER,
        .signals = ST_SIG_BIT(ST_LOGS),
        .description = "pods of this node from the Kubernetes API (list, then watch) into the pod cache that k8sattributes reads",
        .config_size = sizeof(struct k8s_cfg),
        .config = k8s_fields,
        .validate = k8s_validate,
        .create = k8s_create,
        .start = k8s_start,
        .shutdown = k8s_shutdown,
        .destroy = k8s_destroy,
};
