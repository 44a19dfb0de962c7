/* The context store's pods: what the Kubernetes API says of the pods on this node, stripped to
 * what strata emits, and found by pod uid, by container id or by pod IP.
 *
 * Written by the k8s receiver (list, then watch), read by the k8sattributes processor. Pods
 * are immutable once in the cache: an update replaces the whole pod. Lookups lock one shard of
 * one index for reading, then one shard of the pods; no lock is global. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct st_pod_container {
        char *name;
        char *id;    /* without the runtime prefix ("containerd://"), "" while not started */
        char *image; /* "repo/name:tag" as in the pod status (or spec) */
        uint32_t restarts;
        char *last_termination; /* lastState.terminated.reason ("OOMKilled", "Error"), NULL if none */
};

struct st_pod_kv {
        char *key, *value;
};

struct st_pod {
        char *uid, *name, *namespace_, *node;
        char *start_time;           /* RFC 3339, as the API gives it; "" when not started */
        char *ips[2];               /* status.podIPs (IPv4 and/or IPv6); NULL when none */
        bool host_network;
        char *phase;
        /* workload: the controller owner, and the names derived from it */
        char *owner_kind, *owner_name;
        char *deployment, *statefulset, *daemonset, *job, *cronjob, *replicaset;
        struct st_pod_kv *labels, *annotations; /* only those the config asks for */
        size_t n_labels, n_annotations;
        struct st_pod_container *containers;    /* init, regular and ephemeral */
        size_t n_containers;
        size_t bytes;                           /* memory this pod takes (measured) */
};

void st_pod_free(struct st_pod *p); /* NULL-safe */

struct st_pod_cache;

int st_pod_cache_new(struct st_pod_cache **ret);
void st_pod_cache_free(struct st_pod_cache *c); /* NULL-safe */
/* The agent's cache (created on first use; NULL only when out of memory). */
struct st_pod_cache *st_pod_cache_global(void);

/* Adds or replaces the pod of p->uid (the cache takes p). */
int st_pod_cache_put(struct st_pod_cache *c, struct st_pod *p);
/* Removes the pod. -ENOENT when not there. */
int st_pod_cache_delete(struct st_pod_cache *c, const char *uid);
/* Replaces the whole content (after a relist): pods not in v are gone. Takes v's pods. */
int st_pod_cache_replace(struct st_pod_cache *c, struct st_pod **v, size_t n);

/* Calls fn with the pod under its shard's read lock (fn copies what it needs; it must not
 * call into the cache). -ENOENT when unknown. by_container also says which container. */
int st_pod_cache_by_uid(struct st_pod_cache *c, const char *uid, void (*fn)(const struct st_pod *, const struct st_pod_container *, void *), void *ctx);
int st_pod_cache_by_container(struct st_pod_cache *c, const char *container_id,
                              void (*fn)(const struct st_pod *, const struct st_pod_container *, void *), void *ctx);
/* Pods of the host's network share the node's IP: never found by IP. */
int st_pod_cache_by_ip(struct st_pod_cache *c, const char *ip, void (*fn)(const struct st_pod *, const struct st_pod_container *, void *),
                       void *ctx);

/* Labels of namespaces and nodes, by name, when the config asks for them (a Namespace or Node
 * watch). */
enum st_meta_kind { ST_META_NAMESPACE, ST_META_NODE };
/* Sets the labels of kind/name (the cache takes labels, n_labels of them, and their strings). */
int st_pod_cache_meta_put(struct st_pod_cache *c, enum st_meta_kind kind, const char *name, struct st_pod_kv *labels,
                          size_t n_labels);
int st_pod_cache_meta_delete(struct st_pod_cache *c, enum st_meta_kind kind, const char *name);
/* Forgets every entry of kind (before a relist fills it again). */
void st_pod_cache_meta_clear(struct st_pod_cache *c, enum st_meta_kind kind);
/* Calls fn with the labels of kind/name under a read lock. -ENOENT when unknown. */
int st_pod_cache_meta_with(struct st_pod_cache *c, enum st_meta_kind kind, const char *name,
                           void (*fn)(const struct st_pod_kv *labels, size_t n, void *ctx), void *ctx);
void st_pod_kv_free(struct st_pod_kv *v, size_t n); /* NULL-safe */

size_t st_pod_cache_size(struct st_pod_cache *c);
size_t st_pod_cache_bytes(struct st_pod_cache *c); /* memory of the cached pods */
