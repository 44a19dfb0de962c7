#include "pod_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 16
#define CHAINS 1024
#define UID_MAX 64

void st_pod_free(struct st_pod *p) {
        if (!p)
                return;
        char **strs[] = { &p->uid, &p->name, &p->namespace_, &p->node, &p->start_time, &p->ips[0], &p->ips[1],
                          &p->phase, &p->owner_kind, &p->owner_name, &p->deployment, &p->statefulset, &p->daemonset,
                          &p->job, &p->cronjob, &p->replicaset };
        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
                free(*strs[i]);
        for (size_t i = 0; i < p->n_labels; i++) {
                free(p->labels[i].key);
                free(p->labels[i].value);
        }
        for (size_t i = 0; i < p->n_annotations; i++) {
                free(p->annotations[i].key);
                free(p->annotations[i].value);
        }
        for (size_t i = 0; i < p->n_containers; i++) {
                free(p->containers[i].name);
                free(p->containers[i].id);
                free(p->containers[i].image);
                free(p->containers[i].last_termination);
        }
        free(p->labels);
        free(p->annotations);
        free(p->containers);
        free(p);
}

/* --- string → value maps, sharded ------------------------------------------------------------ */

struct node {
        struct node *next;
        char *key;
        void *value;  /* a pod (pods map) or a uid string (indexes) */
        uint64_t gen; /* pods: the relist that last saw it */
        uint64_t hash; /* of key: compared before the key */
};

struct shard {
        pthread_rwlock_t lock;
        struct node *chains[CHAINS];
        bool meta; /* values are struct meta (freed so) */
};

struct map {
        struct shard shards[SHARDS];
};

static uint64_t hash(const char *s) {
        uint64_t h = UINT64_C(1469598103934665603);
        for (; *s; s++)
                h = (h ^ (uint8_t) *s) * UINT64_C(1099511628211);
        return h;
}

static void map_init(struct map *m) {
        for (size_t i = 0; i < SHARDS; i++)
                pthread_rwlock_init(&m->shards[i].lock, NULL);
}

static struct shard *shard_of(struct map *m, uint64_t h) { return &m->shards[h % SHARDS]; }
static struct node **chain_of(struct shard *s, uint64_t h) { return &s->chains[(h / SHARDS) % CHAINS]; }

/* Locked by the caller. Returns the node's slot, or the end of its chain. */
static struct node **find(struct shard *s, uint64_t h, const char *key) {
        struct node **pp = chain_of(s, h);
        while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
                pp = &(*pp)->next;
        return pp;
}

/* --- the cache ----------------------------------------------------------------------------------- */

struct st_pod_cache {
        struct map pods;       /* uid → struct st_pod * (the node's key is the pod's uid) */
        struct map containers; /* container id → uid (copied) */
        struct map ips;        /* pod IP → uid (copied) */
        struct map meta[2];    /* namespace / node name → struct meta * */
        pthread_mutex_t write_lock; /* one writer at a time (the receiver), so that a pod and its
                                     * index entries change together */
        uint64_t gen;               /* relists so far (write_lock) */
        atomic_size_t n, bytes;
};

int st_pod_cache_new(struct st_pod_cache **ret) {
        struct st_pod_cache *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        map_init(&c->pods);
        map_init(&c->containers);
        map_init(&c->ips);
        map_init(&c->meta[0]);
        map_init(&c->meta[1]);
        for (size_t i = 0; i < SHARDS; i++)
                c->meta[0].shards[i].meta = c->meta[1].shards[i].meta = true;
        pthread_mutex_init(&c->write_lock, NULL);
        *ret = c;
        return 0;
}

struct meta {
        struct st_pod_kv *labels;
        size_t n;
};

void st_pod_kv_free(struct st_pod_kv *v, size_t n) {
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].key);
                free(v[i].value);
        }
        free(v);
}

static void meta_free(struct meta *m) {
        if (m)
                st_pod_kv_free(m->labels, m->n);
        free(m);
}

static void map_free(struct map *m, bool pods) {
        for (size_t i = 0; i < SHARDS; i++) {
                for (size_t k = 0; k < CHAINS; k++)
                        for (struct node *n = m->shards[i].chains[k], *next; n; n = next) {
                                next = n->next;
                                if (pods)
                                        st_pod_free(n->value); /* its key is the pod's uid */
                                else if (m->shards[i].meta) {
                                        free(n->key);
                                        meta_free(n->value);
                                } else {
                                        free(n->key);
                                        free(n->value);
                                }
                                free(n);
                        }
                pthread_rwlock_destroy(&m->shards[i].lock);
        }
}

void st_pod_cache_free(struct st_pod_cache *c) {
        if (!c)
                return;
        map_free(&c->pods, true);
        map_free(&c->containers, false);
        map_free(&c->ips, false);
        map_free(&c->meta[0], false);
        map_free(&c->meta[1], false);
        pthread_mutex_destroy(&c->write_lock);
        free(c);
}

static struct st_pod_cache *global;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void) {
        if (st_pod_cache_new(&global) < 0)
                global = NULL;
}
struct st_pod_cache *st_pod_cache_global(void) {
        pthread_once(&global_once, global_init);
        return global;
}

/* index key → uid. Write-locked inside. */
static int index_put(struct map *m, const char *key, const char *uid) {
        uint64_t h = hash(key);
        struct shard *s = shard_of(m, h);
        char *u = strdup(uid);
        if (!u)
                return -ENOMEM;
        pthread_rwlock_wrlock(&s->lock);
        struct node **pp = find(s, h, key);
        if (*pp) {
                free((*pp)->value);
                (*pp)->value = u;
        } else {
                struct node *n = calloc(1, sizeof(*n));
                char *k = strdup(key);
                if (!n || !k) {
                        free(n);
                        free(k);
                        free(u);
                        pthread_rwlock_unlock(&s->lock);
                        return -ENOMEM;
                }
                n->key = k;
                n->value = u;
                n->hash = h;
                *pp = n;
        }
        pthread_rwlock_unlock(&s->lock);
        return 0;
}

/* Removes key only while it still points at uid (another pod may have taken it since). */
static void index_del(struct map *m, const char *key, const char *uid) {
        uint64_t h = hash(key);
        struct shard *s = shard_of(m, h);
        pthread_rwlock_wrlock(&s->lock);
        struct node **pp = find(s, h, key);
        if (*pp && strcmp((*pp)->value, uid) == 0) {
                struct node *n = *pp;
                *pp = n->next;
                free(n->key);
                free(n->value);
                free(n);
        }
        pthread_rwlock_unlock(&s->lock);
}

/* A pod's IPs find it while it can use them: not a hostNetwork pod's (the node's), not a
 * finished pod's (its IP goes to the next pod on the node, while the finished one may linger
 * and still see MODIFIED events). */
static bool ip_indexed(const struct st_pod *p) {
        return !p->host_network && !(p->phase && (strcmp(p->phase, "Succeeded") == 0 || strcmp(p->phase, "Failed") == 0));
}

static void unindex(struct st_pod_cache *c, const struct st_pod *p) {
        for (size_t i = 0; i < p->n_containers; i++)
                if (p->containers[i].id && *p->containers[i].id)
                        index_del(&c->containers, p->containers[i].id, p->uid);
        for (size_t i = 0; i < 2; i++)
                if (p->ips[i] && ip_indexed(p))
                        index_del(&c->ips, p->ips[i], p->uid);
}

static int index_pod(struct st_pod_cache *c, const struct st_pod *p) {
        int r = 0;
        for (size_t i = 0; i < p->n_containers && r >= 0; i++)
                if (p->containers[i].id && *p->containers[i].id)
                        r = index_put(&c->containers, p->containers[i].id, p->uid);
        for (size_t i = 0; i < 2 && r >= 0; i++)
                if (p->ips[i] && ip_indexed(p))
                        r = index_put(&c->ips, p->ips[i], p->uid);
        return r;
}

/* Swaps p in for its uid (write_lock held); returns the old pod to free (after unindexing). */
static struct st_pod *swap_in(struct st_pod_cache *c, struct st_pod *p, int *ret) {
        uint64_t h = hash(p->uid);
        struct shard *s = shard_of(&c->pods, h);
        struct st_pod *old = NULL;
        *ret = 0;
        pthread_rwlock_wrlock(&s->lock);
        struct node **pp = find(s, h, p->uid);
        if (*pp) {
                old = (*pp)->value;
                (*pp)->value = p;
                (*pp)->key = p->uid;
                (*pp)->gen = c->gen;
        } else {
                struct node *n = calloc(1, sizeof(*n));
                if (!n)
                        *ret = -ENOMEM;
                else {
                        n->key = p->uid;
                        n->value = p;
                        n->gen = c->gen;
                        n->hash = h;
                        *pp = n;
                        atomic_fetch_add(&c->n, 1);
                }
        }
        pthread_rwlock_unlock(&s->lock);
        if (*ret == 0)
                atomic_fetch_add(&c->bytes, p->bytes);
        if (old)
                atomic_fetch_sub(&c->bytes, old->bytes);
        return old;
}

int st_pod_cache_put(struct st_pod_cache *c, struct st_pod *p) {
        int r;
        pthread_mutex_lock(&c->write_lock);
        struct st_pod *old = swap_in(c, p, &r);
        if (r < 0) {
                pthread_mutex_unlock(&c->write_lock);
                st_pod_free(p);
                return r;
        }
        if (old)
                unindex(c, old); /* before indexing the new one: shared keys stay the new pod's */
        r = index_pod(c, p);
        pthread_mutex_unlock(&c->write_lock);
        st_pod_free(old);
        return r;
}

static int delete_locked(struct st_pod_cache *c, const char *uid) {
        uint64_t h = hash(uid);
        struct shard *s = shard_of(&c->pods, h);
        struct st_pod *old = NULL;
        pthread_rwlock_wrlock(&s->lock);
        struct node **pp = find(s, h, uid);
        if (*pp) {
                struct node *n = *pp;
                old = n->value;
                *pp = n->next;
                free(n);
        }
        pthread_rwlock_unlock(&s->lock);
        if (!old)
                return -ENOENT;
        atomic_fetch_sub(&c->n, 1);
        atomic_fetch_sub(&c->bytes, old->bytes);
        unindex(c, old);
        st_pod_free(old);
        return 0;
}

int st_pod_cache_delete(struct st_pod_cache *c, const char *uid) {
        pthread_mutex_lock(&c->write_lock);
        int r = delete_locked(c, uid);
        pthread_mutex_unlock(&c->write_lock);
        return r;
}

int st_pod_cache_replace(struct st_pod_cache *c, struct st_pod **v, size_t n) {
        int r = 0;
        char **gone = NULL;
        size_t n_gone = 0, cap = 0;
        pthread_mutex_lock(&c->write_lock);
        /* everything listed now is of this generation; what is left of older ones is gone */
        c->gen++;
        for (size_t i = 0; i < n; i++) {
                int e;
                struct st_pod *old = swap_in(c, v[i], &e);
                if (e < 0) {
                        st_pod_free(v[i]);
                        r = e;
                        continue;
                }
                if (old)
                        unindex(c, old);
                if ((e = index_pod(c, v[i])) < 0)
                        r = e;
                st_pod_free(old);
        }
        for (size_t i = 0; i < SHARDS; i++) {
                struct shard *s = &c->pods.shards[i];
                pthread_rwlock_rdlock(&s->lock);
                for (size_t k = 0; k < CHAINS; k++)
                        for (struct node *nd = s->chains[k]; nd; nd = nd->next) {
                                if (nd->gen == c->gen)
                                        continue;
                                if (n_gone == cap) {
                                        size_t nc = cap ? 2 * cap : 64;
                                        char **g = realloc(gone, nc * sizeof(*g));
                                        if (!g)
                                                continue; /* stays until the next relist */
                                        gone = g;
                                        cap = nc;
                                }
                                if ((gone[n_gone] = strdup(nd->key)))
                                        n_gone++;
                        }
                pthread_rwlock_unlock(&s->lock);
        }
        for (size_t i = 0; i < n_gone; i++) {
                delete_locked(c, gone[i]);
                free(gone[i]);
        }
        free(gone);
        pthread_mutex_unlock(&c->write_lock);
        return r;
}

typedef void (*pod_fn)(const struct st_pod *, const struct st_pod_container *, void *);

int st_pod_cache_by_uid(struct st_pod_cache *c, const char *uid, pod_fn fn, void *ctx) {
        uint64_t h = hash(uid);
        struct shard *s = shard_of(&c->pods, h);
        int r = -ENOENT;
        pthread_rwlock_rdlock(&s->lock);
        struct node **pp = find(s, h, uid);
        if (*pp) {
                fn((*pp)->value, NULL, ctx);
                r = 0;
        }
        pthread_rwlock_unlock(&s->lock);
        return r;
}

/* index key → uid (copied out), then the pod. */
static int by_index(struct st_pod_cache *c, struct map *m, const char *key, const char *container_id, pod_fn fn,
                    void *ctx) {
        char uid[UID_MAX + 1];
        uint64_t h = hash(key);
        struct shard *s = shard_of(m, h);
        int r = -ENOENT;
        pthread_rwlock_rdlock(&s->lock);
        struct node **pp = find(s, h, key);
        if (*pp && strlen((*pp)->value) <= UID_MAX) {
                strcpy(uid, (*pp)->value);
                r = 0;
        }
        pthread_rwlock_unlock(&s->lock);
        if (r < 0)
                return r;
        h = hash(uid);
        s = shard_of(&c->pods, h);
        r = -ENOENT;
        pthread_rwlock_rdlock(&s->lock);
        pp = find(s, h, uid);
        if (*pp) {
                const struct st_pod *p = (*pp)->value;
                const struct st_pod_container *which = NULL;
                for (size_t i = 0; container_id && i < p->n_containers && !which; i++)
                        if (p->containers[i].id && strcmp(p->containers[i].id, container_id) == 0)
                                which = &p->containers[i];
                fn(p, which, ctx);
                r = 0;
        }
        pthread_rwlock_unlock(&s->lock);
        return r;
}

int st_pod_cache_by_container(struct st_pod_cache *c, const char *container_id, pod_fn fn, void *ctx) {
        return by_index(c, &c->containers, container_id, container_id, fn, ctx);
}

int st_pod_cache_by_ip(struct st_pod_cache *c, const char *ip, pod_fn fn, void *ctx) {
        return by_index(c, &c->ips, ip, NULL, fn, ctx);
}

size_t st_pod_cache_size(struct st_pod_cache *c) { return atomic_load(&c->n); }
size_t st_pod_cache_bytes(struct st_pod_cache *c) { return atomic_load(&c->bytes); }

/* --- namespaces and nodes ------------------------------------------------------------------------- */

int st_pod_cache_meta_put(struct st_pod_cache *c, enum st_meta_kind kind, const char *name, struct st_pod_kv *labels,
                          size_t n_labels) {
        struct map *m = &c->meta[kind == ST_META_NODE];
        uint64_t h = hash(name);
        struct shard *s = shard_of(m, h);
        struct meta *v = calloc(1, sizeof(*v));
        if (!v) {
                st_pod_kv_free(labels, n_labels);
                return -ENOMEM;
        }
        v->labels = labels;
        v->n = n_labels;
        pthread_rwlock_wrlock(&s->lock);
        struct node **pp = find(s, h, name);
        int r = 0;
        if (*pp) {
                meta_free((*pp)->value);
                (*pp)->value = v;
        } else {
                struct node *nd = calloc(1, sizeof(*nd));
                char *k = strdup(name);
                if (!nd || !k) {
                        free(nd);
                        free(k);
                        meta_free(v);
                        r = -ENOMEM;
                } else {
                        nd->key = k;
                        nd->value = v;
                        nd->hash = h;
                        *pp = nd;
                }
        }
        pthread_rwlock_unlock(&s->lock);
        return r;
}

int st_pod_cache_meta_delete(struct st_pod_cache *c, enum st_meta_kind kind, const char *name) {
        struct map *m = &c->meta[kind == ST_META_NODE];
        uint64_t h = hash(name);
        struct shard *s = shard_of(m, h);
        int r = -ENOENT;
        pthread_rwlock_wrlock(&s->lock);
        struct node **pp = find(s, h, name);
        if (*pp) {
                struct node *nd = *pp;
                *pp = nd->next;
                free(nd->key);
                meta_free(nd->value);
                free(nd);
                r = 0;
        }
        pthread_rwlock_unlock(&s->lock);
        return r;
}

void st_pod_cache_meta_clear(struct st_pod_cache *c, enum st_meta_kind kind) {
        struct map *m = &c->meta[kind == ST_META_NODE];
        for (size_t i = 0; i < SHARDS; i++) {
                struct shard *s = &m->shards[i];
                pthread_rwlock_wrlock(&s->lock);
                for (size_t k = 0; k < CHAINS; k++) {
                        for (struct node *nd = s->chains[k], *next; nd; nd = next) {
                                next = nd->next;
                                free(nd->key);
                                meta_free(nd->value);
                                free(nd);
                        }
                        s->chains[k] = NULL;
                }
                pthread_rwlock_unlock(&s->lock);
        }
}

int st_pod_cache_meta_with(struct st_pod_cache *c, enum st_meta_kind kind, const char *name,
                           void (*fn)(const struct st_pod_kv *labels, size_t n, void *ctx), void *ctx) {
        struct map *m = &c->meta[kind == ST_META_NODE];
        uint64_t h = hash(name);
        struct shard *s = shard_of(m, h);
        int r = -ENOENT;
        pthread_rwlock_rdlock(&s->lock);
        struct node **pp = find(s, h, name);
        if (*pp) {
                const struct meta *v = (*pp)->value;
                fn(v->labels, v->n, ctx);
                r = 0;
        }
        pthread_rwlock_unlock(&s->lock);
        return r;
}
