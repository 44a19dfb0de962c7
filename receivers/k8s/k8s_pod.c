#include "k8s_pod.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* malloc's own bookkeeping per allocation, in the memory a pod is said to take */
#define ALLOC_OVERHEAD 16

struct parse {
        struct st_pod *p;
        char *err;
        size_t errlen;
        int r;
};

static int fail(struct parse *ps, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err, ps->errlen, fmt, ap);
        va_end(ap);
        ps->r = -EBADMSG;
        return ps->r;
}

static const char *type_name(const json_object *o) {
        return o ? json_type_to_name(json_object_get_type(o)) : "null";
}

/* obj.key: absent (and not required) → NULL; present → must be of type t. */
static json_object *get(struct parse *ps, const json_object *obj, const char *path, const char *key, json_type t,
                        bool required) {
        json_object *v = NULL;
        if (ps->r < 0)
                return NULL;
        if (!json_object_object_get_ex(obj, key, &v) || !v) {
                if (required)
                        fail(ps, "%s%s%s: missing", path, *path ? "." : "", key);
                return NULL;
        }
        if (!json_object_is_type(v, t)) {
                fail(ps, "%s%s%s: expected %s, got %s", path, *path ? "." : "", key, json_type_to_name(t), type_name(v));
                return NULL;
        }
        return v;
}

static char *dup(struct parse *ps, const char *s) {
        if (ps->r < 0 || !s)
                return NULL;
        char *c = strdup(s);
        if (!c) {
                ps->r = -ENOMEM;
                return NULL;
        }
        ps->p->bytes += strlen(s) + 1 + ALLOC_OVERHEAD;
        return c;
}

static char *get_str(struct parse *ps, const json_object *obj, const char *path, const char *key, bool required) {
        json_object *v = get(ps, obj, path, key, json_type_string, required);
        return v ? dup(ps, json_object_get_string(v)) : NULL;
}

static void *alloc(struct parse *ps, size_t n) {
        if (ps->r < 0)
                return NULL;
        void *m = calloc(1, n ? n : 1);
        if (!m) {
                ps->r = -ENOMEM;
                return NULL;
        }
        ps->p->bytes += n + ALLOC_OVERHEAD;
        return m;
}

/* Only the keys asked for, from a map of strings. */
static void keep_keys(struct parse *ps, const json_object *map, const char *path, char *const *keys, size_t n_keys,
                      struct st_pod_kv **ret, size_t *ret_n) {
        if (!map || !n_keys || ps->r < 0)
                return;
        struct st_pod_kv *v = alloc(ps, n_keys * sizeof(*v));
        size_t n = 0;
        if (!v)
                return;
        for (size_t i = 0; i < n_keys && ps->r >= 0; i++) {
                json_object *val = get(ps, map, path, keys[i], json_type_string, false);
                if (!val)
                        continue;
                v[n].key = dup(ps, keys[i]);
                v[n].value = dup(ps, json_object_get_string(val));
                n++;
        }
        *ret = v;
        *ret_n = n;
}

char *k8s_deployment_of_replicaset(const char *rs, const char *hash) {
        const char *dash = strrchr(rs, '-');
        if (!dash || dash == rs || !dash[1])
                return NULL;
        if (hash && *hash) {
                if (strcmp(dash + 1, hash) != 0)
                        return NULL;
        } else {
                /* no label: the suffix must look like a hash (Kubernetes' safe alphabet) */
                size_t n = strlen(dash + 1);
                if (n < 5 || n > 10 || strspn(dash + 1, "bcdfghjklmnpqrstvwxz2456789") != n)
                        return NULL;
        }
        return strndup(rs, (size_t) (dash - rs));
}

char *k8s_cronjob_of_job(const char *job) {
        const char *dash = strrchr(job, '-');
        if (!dash || dash == job)
                return NULL;
        size_t n = strlen(dash + 1);
        /* the scheduled time in minutes since the epoch: 8 digits until the year 2160 */
        if (n < 8 || strspn(dash + 1, "0123456789") != n)
                return NULL;
        return strndup(job, (size_t) (dash - job));
}

static void workload(struct parse *ps, const json_object *meta, const json_object *labels) {
        json_object *owners = get(ps, meta, "metadata", "ownerReferences", json_type_array, false);
        const json_object *owner = NULL;
        for (size_t i = 0; owners && i < json_object_array_length(owners) && ps->r >= 0; i++) {
                json_object *o = json_object_array_get_idx(owners, i);
                if (!json_object_is_type(o, json_type_object)) {
                        fail(ps, "metadata.ownerReferences[%zu]: expected object, got %s", i, type_name(o));
                        return;
                }
                json_object *ctl = get(ps, o, "metadata.ownerReferences[]", "controller", json_type_boolean, false);
                if (!owner || (ctl && json_object_get_boolean(ctl)))
                        owner = o;
        }
        if (!owner || ps->r < 0)
                return;
        struct st_pod *p = ps->p;
        p->owner_kind = get_str(ps, owner, "metadata.ownerReferences[]", "kind", true);
        p->owner_name = get_str(ps, owner, "metadata.ownerReferences[]", "name", true);
        if (ps->r < 0)
                return;
        json_object *hash = labels ? get(ps, labels, "metadata.labels", "pod-template-hash", json_type_string, false) : NULL;
        if (strcmp(p->owner_kind, "ReplicaSet") == 0) {
                p->replicaset = dup(ps, p->owner_name);
                char *d = k8s_deployment_of_replicaset(p->owner_name, hash ? json_object_get_string(hash) : NULL);
                p->deployment = dup(ps, d);
                free(d);
        } else if (strcmp(p->owner_kind, "StatefulSet") == 0)
                p->statefulset = dup(ps, p->owner_name);
        else if (strcmp(p->owner_kind, "DaemonSet") == 0)
                p->daemonset = dup(ps, p->owner_name);
        else if (strcmp(p->owner_kind, "Job") == 0) {
                p->job = dup(ps, p->owner_name);
                char *cj = k8s_cronjob_of_job(p->owner_name);
                p->cronjob = dup(ps, cj);
                free(cj);
        }
}

/* "containerd://3f4f…" → "3f4f…" */
static const char *strip_runtime(const char *id) {
        const char *sep = strstr(id, "://");
        return sep ? sep + 3 : id;
}

static struct st_pod_container *find_container(struct st_pod *p, const char *name) {
        for (size_t i = 0; i < p->n_containers; i++)
                if (strcmp(p->containers[i].name, name) == 0)
                        return &p->containers[i];
        return NULL;
}

/* spec containers (name, image), then what the status says of them (id, image, restarts). */
static void containers(struct parse *ps, const json_object *spec, const json_object *status) {
        static const char *const spec_keys[] = { "initContainers", "containers", "ephemeralContainers" };
        static const char *const status_keys[] = { "initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses" };
        json_object *lists[3] = { 0 }, *statuses[3] = { 0 };
        size_t total = 0;
        for (int k = 0; k < 3; k++) {
                lists[k] = get(ps, spec, "spec", spec_keys[k], json_type_array, false);
                statuses[k] = status ? get(ps, status, "status", status_keys[k], json_type_array, false) : NULL;
                total += lists[k] ? json_object_array_length(lists[k]) : 0;
                total += statuses[k] ? json_object_array_length(statuses[k]) : 0; /* an upper bound */
        }
        struct st_pod *p = ps->p;
        if (!total || ps->r < 0 || !(p->containers = alloc(ps, total * sizeof(*p->containers))))
                return;
        for (int k = 0; k < 3 && ps->r >= 0; k++)
                for (size_t i = 0; lists[k] && i < json_object_array_length(lists[k]) && ps->r >= 0; i++) {
                        json_object *c = json_object_array_get_idx(lists[k], i);
                        if (!json_object_is_type(c, json_type_object)) {
                                fail(ps, "spec.%s[%zu]: expected object, got %s", spec_keys[k], i, type_name(c));
                                return;
                        }
                        char *name = get_str(ps, c, "spec.containers[]", "name", true);
                        if (!name)
                                return;
                        struct st_pod_container *pc = &p->containers[p->n_containers++];
                        pc->name = name;
                        pc->image = get_str(ps, c, "spec.containers[]", "image", false);
                        pc->id = dup(ps, "");
                }
        for (int k = 0; k < 3 && ps->r >= 0; k++)
                for (size_t i = 0; statuses[k] && i < json_object_array_length(statuses[k]) && ps->r >= 0; i++) {
                        json_object *c = json_object_array_get_idx(statuses[k], i);
                        if (!json_object_is_type(c, json_type_object)) {
                                fail(ps, "status.%s[%zu]: expected object, got %s", status_keys[k], i, type_name(c));
                                return;
                        }
                        json_object *name = get(ps, c, "status.containerStatuses[]", "name", json_type_string, true);
                        json_object *id = get(ps, c, "status.containerStatuses[]", "containerID", json_type_string, false);
                        json_object *image = get(ps, c, "status.containerStatuses[]", "image", json_type_string, false);
                        json_object *restarts = get(ps, c, "status.containerStatuses[]", "restartCount", json_type_int, false);
                        if (ps->r < 0)
                                return;
                        struct st_pod_container *pc = find_container(p, json_object_get_string(name));
                        if (!pc) { /* a status without a spec entry: keep it too */
                                pc = &p->containers[p->n_containers++];
                                pc->name = dup(ps, json_object_get_string(name));
                                pc->id = dup(ps, "");
                        }
                        if (id) {
                                free(pc->id);
                                pc->id = dup(ps, strip_runtime(json_object_get_string(id)));
                        }
                        if (image) {
                                free(pc->image);
                                pc->image = dup(ps, json_object_get_string(image));
                        }
                        if (restarts)
                                pc->restarts = (uint32_t) json_object_get_int(restarts);
                        json_object *last = get(ps, c, "status.containerStatuses[]", "lastState", json_type_object, false);
                        json_object *term = last ? get(ps, last, "status.containerStatuses[].lastState", "terminated",
                                                       json_type_object, false)
                                                 : NULL;
                        if (term) {
                                free(pc->last_termination);
                                pc->last_termination = get_str(ps, term, "status.containerStatuses[].lastState.terminated",
                                                               "reason", false);
                        }
                }
}

int k8s_pod_from_json(const json_object *obj, const struct k8s_extract *x, struct st_pod **ret, char *err, size_t errlen) {
        struct parse ps = { .err = err, .errlen = errlen };
        if (!json_object_is_type(obj, json_type_object)) {
                snprintf(err, errlen, "a pod: expected object, got %s", type_name(obj));
                return -EBADMSG;
        }
        if (!(ps.p = calloc(1, sizeof(*ps.p))))
                return -ENOMEM;
        struct st_pod *p = ps.p;
        p->bytes = sizeof(*p) + ALLOC_OVERHEAD;

        json_object *meta = get(&ps, obj, "", "metadata", json_type_object, true);
        json_object *spec = get(&ps, obj, "", "spec", json_type_object, false);
        json_object *status = get(&ps, obj, "", "status", json_type_object, false);
        if (meta) {
                p->uid = get_str(&ps, meta, "metadata", "uid", true);
                p->name = get_str(&ps, meta, "metadata", "name", true);
                p->namespace_ = get_str(&ps, meta, "metadata", "namespace", true);
                json_object *labels = get(&ps, meta, "metadata", "labels", json_type_object, false);
                json_object *annotations = get(&ps, meta, "metadata", "annotations", json_type_object, false);
                keep_keys(&ps, labels, "metadata.labels", x->labels, x->n_labels, &p->labels, &p->n_labels);
                keep_keys(&ps, annotations, "metadata.annotations", x->annotations, x->n_annotations, &p->annotations,
                          &p->n_annotations);
                workload(&ps, meta, labels);
        }
        if (spec) {
                p->node = get_str(&ps, spec, "spec", "nodeName", false);
                json_object *hn = get(&ps, spec, "spec", "hostNetwork", json_type_boolean, false);
                p->host_network = hn && json_object_get_boolean(hn);
        }
        if (spec || status)
                containers(&ps, spec, status);
        if (status) {
                p->phase = get_str(&ps, status, "status", "phase", false);
                p->start_time = get_str(&ps, status, "status", "startTime", false);
                json_object *ips = get(&ps, status, "status", "podIPs", json_type_array, false);
                for (size_t i = 0; ips && i < json_object_array_length(ips) && i < 2 && ps.r >= 0; i++) {
                        json_object *e = json_object_array_get_idx(ips, i);
                        if (!json_object_is_type(e, json_type_object)) {
                                fail(&ps, "status.podIPs[%zu]: expected object, got %s", i, type_name(e));
                                break;
                        }
                        p->ips[i] = get_str(&ps, e, "status.podIPs[]", "ip", true);
                }
                if (!p->ips[0] && ps.r >= 0)
                        p->ips[0] = get_str(&ps, status, "status", "podIP", false);
        }
        if (ps.r >= 0 && strlen(p->uid) > 64)
                fail(&ps, "metadata.uid: longer than 64 characters");
        if (ps.r < 0) {
                if (ps.r == -ENOMEM)
                        snprintf(err, errlen, "out of memory");
                st_pod_free(p);
                return ps.r;
        }
        *ret = p;
        return 0;
}

int k8s_meta_from_json(const json_object *obj, char *const *keys, size_t n_keys, char **ret_name,
                       struct st_pod_kv **ret_labels, size_t *ret_n, char *err, size_t errlen) {
        struct st_pod scratch = { 0 }; /* only for the byte count the helpers keep */
        struct parse ps = { .p = &scratch, .err = err, .errlen = errlen };
        struct st_pod_kv *labels = NULL;
        size_t n = 0;
        if (!json_object_is_type(obj, json_type_object)) {
                snprintf(err, errlen, "expected object, got %s", type_name(obj));
                return -EBADMSG;
        }
        json_object *meta = get(&ps, obj, "", "metadata", json_type_object, true);
        char *name = meta ? get_str(&ps, meta, "metadata", "name", true) : NULL;
        json_object *lab = meta ? get(&ps, meta, "metadata", "labels", json_type_object, false) : NULL;
        keep_keys(&ps, lab, "metadata.labels", keys, n_keys, &labels, &n);
        if (ps.r < 0) {
                free(name);
                st_pod_kv_free(labels, n);
                return ps.r;
        }
        *ret_name = name;
        *ret_labels = labels;
        *ret_n = n;
        return 0;
}
